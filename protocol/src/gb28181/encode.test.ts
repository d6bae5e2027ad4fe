import iconv from 'iconv-lite';
import { describe, expect, it } from 'vitest';
import { hasCode } from '../errors.ts';
import { decodeManscdp } from './decode.ts';
import { encodeManscdp } from './encode.ts';
import type { ManscdpOutgoing } from './types.ts';

const PLATFORM = '34020000002000000001';
const CAMERA = '34020000001320000001';
const NVR = '34020000001180000001';

describe('encodeManscdp', () => {
  it('encodes a Catalog Query in GB2312 with the matching declaration', () => {
    const bytes = encodeManscdp({ kind: 'query', cmdType: 'Catalog', sn: 17430, deviceId: PLATFORM });
    const text = iconv.decode(Buffer.from(bytes), 'GB2312');
    expect(text.startsWith('<?xml version="1.0" encoding="GB2312"?>')).toBe(true);
    expect(text).toContain('<CmdType>Catalog</CmdType>');
    expect(text).toContain('<SN>17430</SN>');
  });

  it('encodes a cascaded Catalog Response that decodes back, Chinese and escaped text intact', () => {
    const items = [
      {
        deviceId: CAMERA,
        name: '长安街东口球机 <A&B>',
        civilCode: '340200',
        port: 5060,
        status: 'ON' as const,
        longitude: 116.4175,
        latitude: 39.9087,
      },
    ];
    for (const encoding of ['GB2312', 'UTF-8'] as const) {
      const bytes = encodeManscdp(
        { kind: 'catalogResponse', sn: 5, deviceId: PLATFORM, sumNum: 1, items },
        { encoding },
      );
      expect(Buffer.from(bytes).toString('latin1')).toContain(`encoding="${encoding}"`);
      expect(decodeManscdp(bytes)).toEqual({
        kind: 'catalog',
        sn: 5,
        deviceId: PLATFORM,
        sumNum: 1,
        num: 1,
        items,
      });
    }
    const gb = encodeManscdp({ kind: 'catalogResponse', sn: 5, deviceId: PLATFORM, sumNum: 1, items });
    expect(Buffer.from(gb).includes(iconv.encode('长安街', 'GB2312'))).toBe(true);
  });

  it('round-trips every Query, so a device reads what the platform asks', () => {
    for (const cmdType of ['Catalog', 'DeviceInfo', 'DeviceStatus'] as const) {
      const query = { kind: 'query' as const, cmdType, sn: 1, deviceId: CAMERA };
      expect(decodeManscdp(encodeManscdp(query, { encoding: 'UTF-8' }))).toEqual(query);
    }
  });

  it('encodes an alarm subscription Query with its conditions in §A.2.4 e order, and reads it back', () => {
    const query = {
      kind: 'query' as const,
      cmdType: 'Alarm' as const,
      sn: 17430,
      deviceId: CAMERA,
      startPriority: 1 as const,
      endPriority: 2 as const,
      methods: [1, 2] as Array<1 | 2>,
      alarmType: '2',
      startTime: '2026-11-23T00:00:00',
      endTime: '2026-11-24T00:00:00',
    };
    const bytes = encodeManscdp(query);
    expect(decodeManscdp(bytes)).toEqual(query);
    expect(iconv.decode(Buffer.from(bytes), 'GB2312')).toContain(
      [
        '<DeviceID>34020000001320000001</DeviceID>',
        '<StartAlarmPriority>1</StartAlarmPriority>',
        '<EndAlarmPriority>2</EndAlarmPriority>',
        '<AlarmMethod>12</AlarmMethod>',
        '<AlarmType>2</AlarmType>',
        '<StartAlarmTime>2026-11-23T00:00:00</StartAlarmTime>',
        '<EndAlarmTime>2026-11-24T00:00:00</EndAlarmTime>',
        '</Query>',
      ].join('\r\n'),
    );
    const everything = { kind: 'query' as const, cmdType: 'Alarm' as const, sn: 1, deviceId: CAMERA };
    expect(decodeManscdp(encodeManscdp(everything))).toEqual(everything);
  });

  it('round-trips what a device sends: Keepalive, Alarm, DeviceInfo, DeviceStatus, in GB2312 and UTF-8', () => {
    const messages: ManscdpOutgoing[] = [
      { kind: 'keepalive', sn: 9, deviceId: CAMERA, status: 'OK' },
      {
        kind: 'alarm',
        sn: 10,
        deviceId: CAMERA,
        priority: 1,
        method: 5,
        time: '2026-11-23T10:00:00',
        description: '区域入侵 <北门>',
        longitude: 116.4,
        latitude: 39.9,
        alarmType: '2',
      },
      { kind: 'alarm', sn: 11, deviceId: CAMERA, priority: 4, method: 6, time: '', description: '' },
      {
        kind: 'deviceInfo',
        sn: 12,
        deviceId: NVR,
        deviceName: '东口录像机',
        manufacturer: 'citysense',
        model: 'GB-NVR',
        firmware: 'V1.0.0',
        channel: 8,
        result: 'OK',
      },
      { kind: 'deviceStatus', sn: 13, deviceId: NVR, online: true, status: 'OK', result: 'OK' },
      { kind: 'deviceStatus', sn: 14, deviceId: NVR, online: false, status: 'ERROR', result: 'OK' },
    ];
    for (const encoding of ['GB2312', 'UTF-8'] as const)
      for (const message of messages)
        expect(decodeManscdp(encodeManscdp(message, { encoding }))).toEqual(message);
    const alarm = Buffer.from(encodeManscdp(messages[1] as ManscdpOutgoing)).toString('latin1');
    expect(alarm).toContain('<Info>\r\n<AlarmType>2</AlarmType>\r\n</Info>');
  });

  it('encodes a catalog-change Notify with an Event per item, decoded like a Catalog page', () => {
    const items = [{ deviceId: CAMERA, name: '人民路口', status: 'OFF' as const, event: 'OFF' as const }];
    const bytes = encodeManscdp({ kind: 'catalogNotify', sn: 3, deviceId: NVR, sumNum: 1, items });
    expect(decodeManscdp(bytes)).toEqual({ kind: 'catalog', sn: 3, deviceId: NVR, sumNum: 1, num: 1, items });
    const text = iconv.decode(Buffer.from(bytes), 'GB2312');
    expect(text).toMatch(
      /^<\?xml version="1.0" encoding="GB2312"\?>\r\n<Notify>\r\n<CmdType>Catalog<\/CmdType>/,
    );
    expect(text).toContain('<SumNum>1</SumNum>');
    expect(text).toContain('<DeviceList Num="1">');
    expect(text).toContain('<Name>人民路口</Name>');
    expect(text).toContain('<Status>OFF</Status>\r\n<Event>OFF</Event>\r\n</Item>');
  });

  it('refuses characters GB2312 cannot hold instead of sending "?"', () => {
    let thrown: unknown;
    try {
      encodeManscdp({
        kind: 'catalogResponse',
        sn: 1,
        deviceId: PLATFORM,
        sumNum: 1,
        items: [{ deviceId: CAMERA, name: 'camera 📷' }],
      });
    } catch (err) {
      thrown = err;
    }
    expect(hasCode(thrown, 'CS_ERR_MANSCDP_UNENCODABLE')).toBe(true);
  });
});
