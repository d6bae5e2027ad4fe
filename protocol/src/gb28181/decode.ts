/** Decodes received MANSCDP bodies (GB/T 28181-2016/2022 Annex A) into typed messages. */
import { isGbId } from '../gb28181-id.ts';
import { decodeBody } from './charset.ts';
import { manscdpInvalid } from './manscdp-error.ts';
import type {
  AlarmNotify,
  AlarmPriorityBound,
  AlarmQuery,
  CatalogEvent,
  CatalogItem,
  CatalogResponse,
  CatalogStatus,
  DeviceInfoResponse,
  DeviceQuery,
  DeviceStatusResponse,
  KeepaliveNotify,
  ManscdpMessage,
} from './types.ts';
import { attribute, child, children, childText, parseXmlTree, type XmlNode } from './xml-tree.ts';

/** Largest body accepted unless the caller says otherwise: 64 KiB. */
export const DEFAULT_MANSCDP_MAX_BYTES = 64 * 1024;

/** Options of `decodeManscdp`. */
export interface DecodeManscdpOptions {
  /** Bodies larger than this many bytes are refused before parsing. */
  maxBytes?: number;
}

/**
 * A keepalive exactly as devices send it every minute: ASCII only (so every charset reads
 * it the same), no attributes, comments or entities. Anything else takes the full parser.
 */
const PLAIN_KEEPALIVE =
  /^<\?xml version="1\.0"(?: encoding="[A-Za-z0-9-]{1,16}")?\s*\?>\s*<Notify>\s*<CmdType>Keepalive<\/CmdType>\s*<SN>(\d{1,10})<\/SN>\s*<DeviceID>(\d{20})<\/DeviceID>\s*(?:<Status>([A-Za-z]{0,16})<\/Status>\s*)?<\/Notify>\s*$/;

/** The hot path: a plain keepalive without the XML parser, or undefined. */
function plainKeepalive(body: Uint8Array): KeepaliveNotify | undefined {
  if (body.byteLength > 512) return undefined;
  for (const byte of body) if (byte > 0x7e) return undefined;
  const m = PLAIN_KEEPALIVE.exec(
    Buffer.from(body.buffer, body.byteOffset, body.byteLength).toString('latin1'),
  );
  if (!m || !isGbId(m[2])) return undefined;
  const encoding = /encoding="([^"]*)"/.exec(m[0])?.[1]?.toUpperCase();
  if (encoding !== undefined && !['GB2312', 'GB18030', 'GBK', 'UTF-8'].includes(encoding)) return undefined;
  return { kind: 'keepalive', sn: Number(m[1]), deviceId: m[2] as string, status: m[3] ?? '' };
}

/** Decodes a MANSCDP body by its declared charset; throws CS_ERR_MANSCDP_INVALID (400) on bad input. */
export function decodeManscdp(body: Uint8Array, options: DecodeManscdpOptions = {}): ManscdpMessage {
  const maxBytes = options.maxBytes ?? DEFAULT_MANSCDP_MAX_BYTES;
  if (body.byteLength > maxBytes)
    throw manscdpInvalid(`body is ${body.byteLength} bytes, more than the limit of ${maxBytes}`);
  const quick = plainKeepalive(body);
  if (quick) return quick;
  const { text } = decodeBody(body);
  const { root, node } = parseXmlTree(text);
  const cmdType = childText(node, 'CmdType') ?? '';
  const kind = `${root.toLowerCase()}/${cmdType.toLowerCase()}`;
  switch (kind) {
    case 'notify/keepalive':
      return keepalive(node);
    case 'notify/alarm':
      return alarm(node);
    case 'response/catalog':
    case 'notify/catalog':
      // A subscription's change notification has the body of a Catalog answer plus <Event> per item.
      return catalog(node);
    case 'response/deviceinfo':
      return deviceInfo(node);
    case 'response/devicestatus':
      return deviceStatus(node);
    case 'query/catalog':
    case 'query/deviceinfo':
    case 'query/devicestatus':
      return query(node, cmdType);
    case 'query/alarm':
      return alarmQuery(node);
    default:
      return { kind: 'unknown', root, cmdType };
  }
}

function header(node: XmlNode): { sn: number; deviceId: string } {
  const sn = childText(node, 'SN');
  if (sn === undefined) throw manscdpInvalid('SN is missing');
  if (!/^\d{1,10}$/.test(sn)) throw manscdpInvalid(`SN ${JSON.stringify(sn.slice(0, 20))} is not an integer`);
  return { sn: Number(sn), deviceId: gbId(childText(node, 'DeviceID'), 'DeviceID') };
}

function gbId(value: string | undefined, where: string): string {
  if (value === undefined) throw manscdpInvalid(`${where} is missing`);
  const shown = JSON.stringify(value.slice(0, 40));
  if (!isGbId(value)) throw manscdpInvalid(`${where} ${shown} is not a 20-digit GB/T 28181 ID`);
  return value;
}

function integer(value: string | undefined, name: string, min: number, max: number): number {
  const n = value !== undefined && /^\s*\d{1,10}\s*$/.test(value) ? Number(value) : Number.NaN;
  if (!(n >= min && n <= max))
    throw manscdpInvalid(`${name} ${JSON.stringify(value ?? null)} must be an integer from ${min} to ${max}`);
  return n;
}

function coordinate(value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  return Number.isFinite(n) ? n : undefined;
}

function keepalive(node: XmlNode): KeepaliveNotify {
  return { kind: 'keepalive', ...header(node), status: childText(node, 'Status') ?? '' };
}

function alarm(node: XmlNode): AlarmNotify {
  const message: AlarmNotify = {
    kind: 'alarm',
    ...header(node),
    priority: integer(childText(node, 'AlarmPriority'), 'AlarmPriority', 1, 4) as AlarmNotify['priority'],
    method: integer(childText(node, 'AlarmMethod'), 'AlarmMethod', 1, 7) as AlarmNotify['method'],
    time: childText(node, 'AlarmTime') ?? '',
    description: childText(node, 'AlarmDescription') ?? '',
  };
  const longitude = coordinate(childText(node, 'Longitude'));
  const latitude = coordinate(childText(node, 'Latitude'));
  const alarmType = childText(node, 'AlarmType') ?? childText(child(node, 'Info'), 'AlarmType');
  if (longitude !== undefined) message.longitude = longitude;
  if (latitude !== undefined) message.latitude = latitude;
  if (alarmType !== undefined) message.alarmType = alarmType;
  return message;
}

function catalogStatus(value: string | undefined): CatalogStatus | undefined {
  const upper = value?.toUpperCase();
  if (upper === 'ON' || upper === 'ONLINE' || upper === 'OK') return 'ON';
  if (upper === 'OFF' || upper === 'OFFLINE') return 'OFF';
  return undefined;
}

const CATALOG_EVENTS: readonly CatalogEvent[] = ['ON', 'OFF', 'VLOST', 'DEFECT', 'ADD', 'DEL', 'UPDATE'];

const ITEM_TEXT_FIELDS = [
  ['name', 'Name'],
  ['manufacturer', 'Manufacturer'],
  ['model', 'Model'],
  ['owner', 'Owner'],
  ['civilCode', 'CivilCode'],
  ['address', 'Address'],
  ['parental', 'Parental'],
  ['parentId', 'ParentID'],
  ['registerWay', 'RegisterWay'],
  ['secrecy', 'Secrecy'],
  ['ipAddress', 'IPAddress'],
] as const;

function catalogItem(node: XmlNode, index: number): CatalogItem {
  const item: CatalogItem = { deviceId: gbId(childText(node, 'DeviceID'), `Item ${index + 1} DeviceID`) };
  for (const [field, element] of ITEM_TEXT_FIELDS) {
    const value = childText(node, element);
    if (value !== undefined) item[field] = value;
  }
  const port = childText(node, 'Port');
  if (port !== undefined) item.port = integer(port, `Item ${index + 1} Port`, 0, 65535);
  const status = catalogStatus(childText(node, 'Status'));
  if (status !== undefined) item.status = status;
  const event = CATALOG_EVENTS.find((e) => e === childText(node, 'Event')?.toUpperCase());
  if (event !== undefined) item.event = event;
  const longitude = coordinate(childText(node, 'Longitude'));
  const latitude = coordinate(childText(node, 'Latitude'));
  if (longitude !== undefined) item.longitude = longitude;
  if (latitude !== undefined) item.latitude = latitude;
  return item;
}

function catalog(node: XmlNode): CatalogResponse {
  const head = header(node);
  const sumNum = integer(childText(node, 'SumNum'), 'SumNum', 0, 1_000_000);
  const list = child(node, 'DeviceList');
  const items = children(list, 'Item').map(catalogItem);
  // Some vendors miscount Num; the items themselves are what the assembler counts.
  const declared = attribute(list, 'Num');
  const num = declared === undefined ? items.length : integer(declared, 'DeviceList Num', 0, 1_000_000);
  return { kind: 'catalog', ...head, sumNum, num, items };
}

function deviceInfo(node: XmlNode): DeviceInfoResponse {
  const channel = childText(node, 'Channel');
  return {
    kind: 'deviceInfo',
    ...header(node),
    deviceName: childText(node, 'DeviceName') ?? '',
    manufacturer: childText(node, 'Manufacturer') ?? '',
    model: childText(node, 'Model') ?? '',
    firmware: childText(node, 'Firmware') ?? '',
    channel: channel === undefined ? 0 : integer(channel, 'Channel', 0, 1_000_000),
    result: childText(node, 'Result') ?? '',
  };
}

/** CmdType spelled the standard way, whatever case the sender used. */
const QUERY_TYPES: Readonly<Record<string, DeviceQuery['cmdType']>> = {
  catalog: 'Catalog',
  deviceinfo: 'DeviceInfo',
  devicestatus: 'DeviceStatus',
};

/** A platform's `<Query>` (§A.2.4), as a device or a lower platform receives it. */
function query(node: XmlNode, cmdType: string): DeviceQuery {
  return { kind: 'query', cmdType: QUERY_TYPES[cmdType.toLowerCase()] ?? 'Catalog', ...header(node) };
}

/**
 * An alarm `<Query>` (§A.2.4 e), the body of an alarm SUBSCRIBE: priorities 0–4 (0 all),
 * AlarmMethod as digits 1–7 run together (`12`; some vendors write `1/2`), 0 or empty for all.
 * Devices written against the 2011 edition send `StartTime`/`EndTime`; they are read too.
 */
function alarmQuery(node: XmlNode): AlarmQuery {
  const message: AlarmQuery = { kind: 'query', cmdType: 'Alarm', ...header(node) };
  const start = childText(node, 'StartAlarmPriority');
  const end = childText(node, 'EndAlarmPriority');
  if (start !== undefined)
    message.startPriority = integer(start, 'StartAlarmPriority', 0, 4) as AlarmPriorityBound;
  if (end !== undefined) message.endPriority = integer(end, 'EndAlarmPriority', 0, 4) as AlarmPriorityBound;
  const methods = alarmMethods(childText(node, 'AlarmMethod'));
  if (methods !== undefined) message.methods = methods;
  const alarmType = childText(node, 'AlarmType');
  const startTime = childText(node, 'StartAlarmTime') ?? childText(node, 'StartTime');
  const endTime = childText(node, 'EndAlarmTime') ?? childText(node, 'EndTime');
  if (alarmType !== undefined) message.alarmType = alarmType;
  if (startTime !== undefined) message.startTime = startTime;
  if (endTime !== undefined) message.endTime = endTime;
  return message;
}

/** `AlarmMethod` of a filter: undefined for all (absent or 0), else the distinct methods in order. */
function alarmMethods(value: string | undefined): AlarmNotify['method'][] | undefined {
  if (value === undefined) return undefined;
  const digits = value.replace(/[\s/,;|]/g, '');
  if (!/^[0-7]{1,7}$/.test(digits))
    throw manscdpInvalid(`AlarmMethod ${JSON.stringify(value.slice(0, 20))} must be digits 0 to 7`);
  if (/^0+$/.test(digits)) return undefined;
  const methods: AlarmNotify['method'][] = [];
  for (const digit of digits) {
    const method = Number(digit) as AlarmNotify['method'] | 0;
    if (method !== 0 && !methods.includes(method)) methods.push(method);
  }
  return methods;
}

function deviceStatus(node: XmlNode): DeviceStatusResponse {
  return {
    kind: 'deviceStatus',
    ...header(node),
    online: childText(node, 'Online')?.toUpperCase() === 'ONLINE',
    status: childText(node, 'Status') ?? '',
    result: childText(node, 'Result') ?? '',
  };
}
