/** Encodes what citysense sends over MANSCDP as platform or simulated device (GB/T 28181-2016/2022 Annex A). */
import { parseGbId } from '../gb28181-id.ts';
import { encodeText, type ManscdpCharset } from './charset.ts';
import type { AlarmFilter, CatalogItem, ManscdpOutgoing } from './types.ts';

/** Options of `encodeManscdp`. */
export interface EncodeManscdpOptions {
  /** Charset of the bytes and of the XML declaration; GB2312 unless the peer speaks UTF-8. */
  encoding?: Extract<ManscdpCharset, 'GB2312' | 'UTF-8'>;
}

const ESCAPES: Readonly<Record<string, string>> = {
  '&': '&amp;',
  '<': '&lt;',
  '>': '&gt;',
  '"': '&quot;',
  "'": '&apos;',
};

/** Escapes the five XML special characters. */
export function escapeXml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => ESCAPES[c] ?? c);
}

function element(name: string, value: string | number | undefined): string {
  return value === undefined ? '' : `<${name}>${escapeXml(String(value))}</${name}>\r\n`;
}

function itemXml(item: CatalogItem): string {
  parseGbId(item.deviceId);
  return [
    '<Item>\r\n',
    element('DeviceID', item.deviceId),
    element('Name', item.name),
    element('Manufacturer', item.manufacturer),
    element('Model', item.model),
    element('Owner', item.owner),
    element('CivilCode', item.civilCode),
    element('Address', item.address),
    element('Parental', item.parental),
    element('ParentID', item.parentId),
    element('RegisterWay', item.registerWay),
    element('Secrecy', item.secrecy),
    element('IPAddress', item.ipAddress),
    element('Port', item.port),
    element('Status', item.status),
    element('Longitude', item.longitude),
    element('Latitude', item.latitude),
    // §A.2.5: an item of a catalog-change Notify says what changed.
    element('Event', item.event),
    '</Item>\r\n',
  ].join('');
}

/** `<Name>text</Name>`, left out when the text is empty (decoders read a missing element as empty). */
function text(name: string, value: string): string {
  return value === '' ? '' : element(name, value);
}

/** Root, CmdType, SN and DeviceID: the head every MANSCDP body starts with (§A.2.1). */
function open(root: string, cmdType: string, sn: number, deviceId: string): string {
  return `<${root}>\r\n${element('CmdType', cmdType)}${element('SN', sn)}${element('DeviceID', deviceId)}`;
}

function deviceList(items: readonly CatalogItem[]): string {
  return `<DeviceList Num="${items.length}">\r\n${items.map(itemXml).join('')}</DeviceList>\r\n`;
}

/** The conditions of an alarm subscription or query, in the order of §A.2.4 e; absent ones are left out. */
function alarmFilterXml(filter: AlarmFilter): string {
  return [
    element('StartAlarmPriority', filter.startPriority),
    element('EndAlarmPriority', filter.endPriority),
    // §A.2.4 e writes several methods run together: `12` is phone or device alarms.
    filter.methods === undefined || filter.methods.length === 0
      ? ''
      : element('AlarmMethod', filter.methods.join('')),
    element('AlarmType', filter.alarmType),
    element('StartAlarmTime', filter.startTime),
    element('EndAlarmTime', filter.endTime),
  ].join('');
}

function bodyXml(message: ManscdpOutgoing): string {
  switch (message.kind) {
    case 'query':
      return `${open('Query', message.cmdType, message.sn, message.deviceId)}${message.cmdType === 'Alarm' ? alarmFilterXml(message) : ''}</Query>\r\n`;
    case 'catalogResponse':
      return [
        open('Response', 'Catalog', message.sn, message.deviceId),
        element('SumNum', message.sumNum),
        deviceList(message.items),
        '</Response>\r\n',
      ].join('');
    case 'catalogNotify':
      return [
        open('Notify', 'Catalog', message.sn, message.deviceId),
        element('SumNum', message.sumNum),
        deviceList(message.items),
        '</Notify>\r\n',
      ].join('');
    case 'keepalive':
      return `${open('Notify', 'Keepalive', message.sn, message.deviceId)}${text('Status', message.status)}</Notify>\r\n`;
    case 'alarm':
      // 2016 §A.2.5 puts AlarmType under <Info>; the decoder reads it there or at the top.
      return [
        open('Notify', 'Alarm', message.sn, message.deviceId),
        element('AlarmPriority', message.priority),
        element('AlarmMethod', message.method),
        text('AlarmTime', message.time),
        text('AlarmDescription', message.description),
        element('Longitude', message.longitude),
        element('Latitude', message.latitude),
        message.alarmType === undefined
          ? ''
          : `<Info>\r\n${element('AlarmType', message.alarmType)}</Info>\r\n`,
        '</Notify>\r\n',
      ].join('');
    case 'deviceInfo':
      return [
        open('Response', 'DeviceInfo', message.sn, message.deviceId),
        text('DeviceName', message.deviceName),
        text('Result', message.result),
        text('Manufacturer', message.manufacturer),
        text('Model', message.model),
        text('Firmware', message.firmware),
        element('Channel', message.channel),
        '</Response>\r\n',
      ].join('');
    case 'deviceStatus':
      return [
        open('Response', 'DeviceStatus', message.sn, message.deviceId),
        text('Result', message.result),
        element('Online', message.online ? 'ONLINE' : 'OFFLINE'),
        text('Status', message.status),
        '</Response>\r\n',
      ].join('');
  }
}

/**
 * Encodes a message as bytes with the matching XML declaration: the platform's Query (an
 * alarm subscription's with its conditions) and cascaded Catalog Response, and a device's Keepalive, Alarm, DeviceInfo, DeviceStatus and
 * catalog-change Notify.
 */
export function encodeManscdp(message: ManscdpOutgoing, options: EncodeManscdpOptions = {}): Uint8Array {
  const encoding = options.encoding ?? 'GB2312';
  parseGbId(message.deviceId);
  const xml = `<?xml version="1.0" encoding="${encoding}"?>\r\n${bodyXml(message)}`;
  return encodeText(xml, encoding);
}
