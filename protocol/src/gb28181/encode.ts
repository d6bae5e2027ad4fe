/** Encodes what the platform sends over MANSCDP (GB/T 28181-2016/2022 §A.2.4, §A.2.6). */
import { parseGbId } from '../gb28181-id.ts';
import { encodeText, type ManscdpCharset } from './charset.ts';
import type { CatalogItem, ManscdpOutgoing } from './types.ts';

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
    '</Item>\r\n',
  ].join('');
}

/** Encodes a Query or a cascaded Catalog Response as bytes with the matching XML declaration. */
export function encodeManscdp(message: ManscdpOutgoing, options: EncodeManscdpOptions = {}): Uint8Array {
  const encoding = options.encoding ?? 'GB2312';
  parseGbId(message.deviceId);
  let xml = `<?xml version="1.0" encoding="${encoding}"?>\r\n`;
  if (message.kind === 'query') {
    xml += `<Query>\r\n${element('CmdType', message.cmdType)}${element('SN', message.sn)}`;
    xml += `${element('DeviceID', message.deviceId)}</Query>\r\n`;
  } else {
    xml += `<Response>\r\n${element('CmdType', 'Catalog')}${element('SN', message.sn)}`;
    xml += `${element('DeviceID', message.deviceId)}${element('SumNum', message.sumNum)}`;
    xml += `<DeviceList Num="${message.items.length}">\r\n${message.items.map(itemXml).join('')}</DeviceList>\r\n`;
    xml += '</Response>\r\n';
  }
  return encodeText(xml, encoding);
}
