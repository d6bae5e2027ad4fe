/** MANSCDP messages as citysense sees them (GB/T 28181-2016/2022 Annex A). */

/** Online state of a catalog channel, normalised from ON/ONLINE/OK and OFF/OFFLINE. */
export type CatalogStatus = 'ON' | 'OFF';

/** One `<Item>` of a Catalog `<DeviceList>` (§A.2.6.4); only DeviceID is mandatory. */
export interface CatalogItem {
  deviceId: string;
  name?: string;
  manufacturer?: string;
  model?: string;
  owner?: string;
  civilCode?: string;
  address?: string;
  /** `1` when the item has children (a parent device or group). */
  parental?: string;
  parentId?: string;
  registerWay?: string;
  secrecy?: string;
  ipAddress?: string;
  port?: number;
  status?: CatalogStatus;
  /** WGS84 degrees. */
  longitude?: number;
  latitude?: number;
  /** What changed, in an item of a catalog-change `Notify` (§A.2.5); absent in query answers. */
  event?: CatalogEvent;
}

/** `Notify/Keepalive` (§9.6): the device is alive; `status` is `OK` or `ERROR`, empty when omitted. */
export interface KeepaliveNotify {
  kind: 'keepalive';
  sn: number;
  deviceId: string;
  status: string;
}

/** `Notify/Alarm` (§9.4): an alarm raised by a device. */
export interface AlarmNotify {
  kind: 'alarm';
  sn: number;
  deviceId: string;
  /** 1 first-level (most severe) … 4 fourth-level. */
  priority: 1 | 2 | 3 | 4;
  /** 1 phone, 2 device, 3 SMS, 4 GPS, 5 video, 6 device fault, 7 other. */
  method: 1 | 2 | 3 | 4 | 5 | 6 | 7;
  /** Local time as sent, e.g. `2026-11-23T10:00:00`; empty when omitted. */
  time: string;
  /** Empty when omitted. */
  description: string;
  longitude?: number;
  latitude?: number;
  /** `AlarmType`, directly or under `<Info>` (2016 §A.2.5). */
  alarmType?: string;
}

/**
 * One page of `Response/Catalog`, or of a subscription's catalog-change `Notify/Catalog`
 * (same body, items carry `event`): `num` items of `sumNum` in all.
 */
export interface CatalogResponse {
  kind: 'catalog';
  sn: number;
  deviceId: string;
  sumNum: number;
  /** `DeviceList Num`, or the item count when the attribute is missing. */
  num: number;
  items: CatalogItem[];
}

/** `Response/DeviceInfo`; text fields are empty when the device omits them (it does when Result is ERROR). */
export interface DeviceInfoResponse {
  kind: 'deviceInfo';
  sn: number;
  deviceId: string;
  deviceName: string;
  manufacturer: string;
  model: string;
  firmware: string;
  /** Number of video channels; 0 when omitted. */
  channel: number;
  result: string;
}

/** `Response/DeviceStatus`: `online` from `Online` ONLINE/OFFLINE, `status` OK/ERROR. */
export interface DeviceStatusResponse {
  kind: 'deviceStatus';
  sn: number;
  deviceId: string;
  online: boolean;
  status: string;
  result: string;
}

/** A well-formed message citysense does not interpret: answered and logged, not an error. */
export interface UnknownManscdp {
  kind: 'unknown';
  root: string;
  cmdType: string;
}

/** Every decoded MANSCDP body, discriminated by `kind`. */
export type ManscdpMessage =
  | KeepaliveNotify
  | AlarmNotify
  | CatalogResponse
  | DeviceInfoResponse
  | DeviceStatusResponse
  | ManscdpQuery
  | UnknownManscdp;

/** A `<Query>` the platform sends to a device or lower platform (§A.2.4). */
export type ManscdpQuery = DeviceQuery | AlarmQuery;

/** A Catalog, DeviceInfo or DeviceStatus `<Query>` (§A.2.4 a–d). */
export interface DeviceQuery {
  kind: 'query';
  cmdType: 'Catalog' | 'DeviceInfo' | 'DeviceStatus';
  sn: number;
  deviceId: string;
}

/** `StartAlarmPriority` / `EndAlarmPriority`: 0 all, else 1 (most severe) … 4. */
export type AlarmPriorityBound = 0 | 1 | 2 | 3 | 4;

/**
 * Conditions of an alarm subscription or alarm query (GB/T 28181-2016 §A.2.4 e, 报警订阅):
 * an absent field (or 0) lets every alarm through on that axis.
 */
export interface AlarmFilter {
  /** `StartAlarmPriority`. */
  startPriority?: AlarmPriorityBound;
  /** `EndAlarmPriority`. */
  endPriority?: AlarmPriorityBound;
  /** `AlarmMethod`: the methods wanted, written run together (`12` = phone or device, §A.2.4 e). */
  methods?: AlarmNotify['method'][];
  /** `AlarmType`, compared with the alarm's as text. */
  alarmType?: string;
  /** `StartAlarmTime`, local time like `AlarmTime` (`2026-11-23T10:00:00`). */
  startTime?: string;
  /** `EndAlarmTime`. */
  endTime?: string;
}

/**
 * An alarm `<Query>` (§A.2.4 e): the body of an alarm SUBSCRIBE (§9.11.1), or of a MESSAGE
 * asking for past alarms. The filter fields sit directly in the body.
 */
export interface AlarmQuery extends AlarmFilter {
  kind: 'query';
  cmdType: 'Alarm';
  sn: number;
  deviceId: string;
}

/** A cascaded platform's Catalog `<Response>` page to an upper platform. */
export interface CatalogResponseOut {
  kind: 'catalogResponse';
  sn: number;
  deviceId: string;
  sumNum: number;
  items: CatalogItem[];
}

/** What a catalog `<Item>` in a `Notify/Catalog` says changed (GB/T 28181-2016 §9.6.2, §A.2.5). */
export type CatalogEvent = 'ON' | 'OFF' | 'VLOST' | 'DEFECT' | 'ADD' | 'DEL' | 'UPDATE';

/** One changed channel of a catalog notification. */
export interface CatalogChange extends CatalogItem {
  event: CatalogEvent;
}

/** A device's `Notify/Catalog`, sent in the dialog of a catalog SUBSCRIBE when channels change. */
export interface CatalogNotifyOut {
  kind: 'catalogNotify';
  sn: number;
  deviceId: string;
  /** Number of changed items in the whole notification (pages share it, like a Catalog response). */
  sumNum: number;
  items: CatalogChange[];
}

/**
 * What citysense encodes: the platform's queries and cascaded catalog, and what a device
 * (the simulator) sends: keepalives, alarms, DeviceInfo / DeviceStatus answers, catalog changes.
 * The device-side kinds are the decoded types, so a body encodes and decodes back to itself.
 */
export type ManscdpOutgoing =
  | ManscdpQuery
  | CatalogResponseOut
  | KeepaliveNotify
  | AlarmNotify
  | DeviceInfoResponse
  | DeviceStatusResponse
  | CatalogNotifyOut;
