import iconv from 'iconv-lite';
import { describe, expect, it } from 'vitest';
import { hasCode } from '../errors.ts';
import { decodeManscdp } from './decode.ts';

const CAMERA = '34020000001320000001';
const NVR = '34020000001180000001';

function body(xml: string, charset = 'GB2312'): Uint8Array {
  return new Uint8Array(iconv.encode(xml, charset));
}

function refused(run: () => unknown, message: RegExp): void {
  let thrown: unknown;
  try {
    run();
  } catch (err) {
    thrown = err;
  }
  expect(hasCode(thrown, 'CS_ERR_MANSCDP_INVALID'), String(thrown)).toBe(true);
  expect((thrown as { statusCode: number }).statusCode).toBe(400);
  expect((thrown as Error).message).toMatch(message);
}

const catalogXml = (charset: string) =>
  `<?xml version="1.0" encoding="${charset}"?>
<Response>
<CmdType>Catalog</CmdType>
<SN>17430</SN>
<DeviceID>${NVR}</DeviceID>
<SumNum>1</SumNum>
<DeviceList Num="1">
<Item>
<DeviceID>${CAMERA}</DeviceID>
<Name>长安街东口球机</Name>
<Manufacturer>海康威视</Manufacturer>
<Address>长安街 &amp; 东单路口</Address>
<Port>5060</Port>
<Status>ON</Status>
<Longitude>116.4175</Longitude>
<Latitude>39.9087</Latitude>
</Item>
</DeviceList>
</Response>`;

describe('decodeManscdp charsets (GB/T 28181 §A.2: decode by the declared encoding)', () => {
  for (const charset of ['GB2312', 'gbk', 'GB18030', 'UTF-8']) {
    it(`reads Chinese names from a body declared and encoded as ${charset}`, () => {
      const message = decodeManscdp(body(catalogXml(charset), charset));
      expect(message).toMatchObject({ kind: 'catalog', sn: 17430, deviceId: NVR, sumNum: 1, num: 1 });
      if (message.kind !== 'catalog') throw new Error('not a catalog');
      expect(message.items).toEqual([
        {
          deviceId: CAMERA,
          name: '长安街东口球机',
          manufacturer: '海康威视',
          address: '长安街 & 东单路口',
          port: 5060,
          status: 'ON',
          longitude: 116.4175,
          latitude: 39.9087,
        },
      ]);
    });
  }

  it('assumes GB2312 when the declaration names no encoding, as field devices do', () => {
    const xml = catalogXml('X').replace(' encoding="X"', '');
    const message = decodeManscdp(body(xml, 'GB2312'));
    expect(message.kind === 'catalog' && message.items[0]?.name).toBe('长安街东口球机');
  });

  it('refuses a body declared UTF-8 whose bytes are GB2312 (a coded error, never garbled names)', () => {
    refused(() => decodeManscdp(body(catalogXml('UTF-8'), 'GB2312')), /not valid UTF-8/);
  });

  it('refuses an encoding outside GB2312, GBK, GB18030, UTF-8', () => {
    refused(() => decodeManscdp(body(catalogXml('Big5'), 'GB2312')), /Big5/);
  });
});

describe('decodeManscdp messages', () => {
  it('decodes a Keepalive, matching element names case-insensitively', () => {
    const xml = `<?xml version="1.0"?><Notify><cmdtype>Keepalive</cmdtype><Sn>7</Sn><DeviceId>${CAMERA}</DeviceId><status>OK</status></Notify>`;
    expect(decodeManscdp(body(xml))).toEqual({ kind: 'keepalive', sn: 7, deviceId: CAMERA, status: 'OK' });
  });

  it('decodes an Alarm with its position and AlarmType under Info', () => {
    const xml = `<?xml version="1.0" encoding="GB2312"?>
<Notify><CmdType>Alarm</CmdType><SN>12</SN><DeviceID>${CAMERA}</DeviceID>
<AlarmPriority>1</AlarmPriority><AlarmMethod>5</AlarmMethod><AlarmTime>2026-11-23T10:00:00</AlarmTime>
<AlarmDescription>区域入侵</AlarmDescription><Longitude>116.4</Longitude><Latitude>39.9</Latitude>
<Info><AlarmType>2</AlarmType></Info></Notify>`;
    expect(decodeManscdp(body(xml))).toEqual({
      kind: 'alarm',
      sn: 12,
      deviceId: CAMERA,
      priority: 1,
      method: 5,
      time: '2026-11-23T10:00:00',
      description: '区域入侵',
      longitude: 116.4,
      latitude: 39.9,
      alarmType: '2',
    });
  });

  it('refuses an Alarm whose priority is outside 1–4', () => {
    const xml = `<Notify><CmdType>Alarm</CmdType><SN>12</SN><DeviceID>${CAMERA}</DeviceID><AlarmPriority>9</AlarmPriority><AlarmMethod>5</AlarmMethod></Notify>`;
    refused(() => decodeManscdp(body(xml)), /AlarmPriority "9"/);
  });

  it('decodes DeviceInfo', () => {
    const xml = `<?xml version="1.0" encoding="GB2312"?><Response><CmdType>DeviceInfo</CmdType><SN>3</SN><DeviceID>${NVR}</DeviceID>
<Result>OK</Result><DeviceName>东口录像机</DeviceName><Manufacturer>Hikvision</Manufacturer><Model>DS-7808N</Model>
<Firmware>V4.1.0</Firmware><Channel>8</Channel></Response>`;
    expect(decodeManscdp(body(xml))).toEqual({
      kind: 'deviceInfo',
      sn: 3,
      deviceId: NVR,
      deviceName: '东口录像机',
      manufacturer: 'Hikvision',
      model: 'DS-7808N',
      firmware: 'V4.1.0',
      channel: 8,
      result: 'OK',
    });
  });

  it('decodes DeviceStatus', () => {
    const xml = `<Response><CmdType>DeviceStatus</CmdType><SN>4</SN><DeviceID>${CAMERA}</DeviceID><Result>OK</Result><Online>ONLINE</Online><Status>OK</Status></Response>`;
    expect(decodeManscdp(body(xml))).toEqual({
      kind: 'deviceStatus',
      sn: 4,
      deviceId: CAMERA,
      online: true,
      status: 'OK',
      result: 'OK',
    });
  });

  it('decodes a Query, naming its CmdType the standard way whatever the case sent', () => {
    const xml = `<?xml version="1.0" encoding="GB2312"?><Query><CmdType>deviceinfo</CmdType><SN>6</SN><DeviceID>${NVR}</DeviceID></Query>`;
    expect(decodeManscdp(body(xml))).toEqual({ kind: 'query', cmdType: 'DeviceInfo', sn: 6, deviceId: NVR });
    const record = `<Query><CmdType>RecordInfo</CmdType><SN>7</SN><DeviceID>${CAMERA}</DeviceID></Query>`;
    expect(decodeManscdp(body(record))).toEqual({ kind: 'unknown', root: 'Query', cmdType: 'RecordInfo' });
    refused(() => decodeManscdp(body('<Query><CmdType>Catalog</CmdType><SN>x</SN></Query>')), /SN "x"/);
  });

  it('decodes an alarm subscription Query (§A.2.4 e) as the standard and vendors write it', () => {
    const standard = `<?xml version="1.0"?>
<Query>
<CmdType>Alarm</CmdType>
<SN>17430</SN>
<DeviceID>${CAMERA}</DeviceID>
<StartAlarmPriority>1</StartAlarmPriority>
<EndAlarmPriority>4</EndAlarmPriority>
<AlarmMethod>0</AlarmMethod>
<StartAlarmTime>2010-11-11T00:00:00</StartAlarmTime>
<EndAlarmTime>2010-12-11T00:00:00</EndAlarmTime>
</Query>`;
    expect(decodeManscdp(body(standard))).toEqual({
      kind: 'query',
      cmdType: 'Alarm',
      sn: 17430,
      deviceId: CAMERA,
      startPriority: 1,
      endPriority: 4,
      startTime: '2010-11-11T00:00:00',
      endTime: '2010-12-11T00:00:00',
    });
    // "Everything" as some platforms send it, methods run together or slash-separated, 2011 time names.
    const all = `<Query><CmdType>alarm</CmdType><SN>2</SN><DeviceID>${CAMERA}</DeviceID><StartAlarmPriority>0</StartAlarmPriority><EndAlarmPriority>0</EndAlarmPriority><AlarmMethod>0</AlarmMethod></Query>`;
    expect(decodeManscdp(body(all))).toEqual({
      kind: 'query',
      cmdType: 'Alarm',
      sn: 2,
      deviceId: CAMERA,
      startPriority: 0,
      endPriority: 0,
    });
    const vendor = `<Query><CmdType>Alarm</CmdType><SN>3</SN><DeviceID>${CAMERA}</DeviceID><alarmMethod>5/1/5</alarmMethod><AlarmType>2</AlarmType><StartTime>2026-11-23T00:00:00</StartTime></Query>`;
    expect(decodeManscdp(body(vendor))).toMatchObject({
      methods: [5, 1],
      alarmType: '2',
      startTime: '2026-11-23T00:00:00',
    });
    const bad = (element: string) =>
      body(`<Query><CmdType>Alarm</CmdType><SN>4</SN><DeviceID>${CAMERA}</DeviceID>${element}</Query>`);
    refused(() => decodeManscdp(bad('<StartAlarmPriority>5</StartAlarmPriority>')), /StartAlarmPriority "5"/);
    refused(() => decodeManscdp(bad('<AlarmMethod>9</AlarmMethod>')), /AlarmMethod "9"/);
  });

  it('reports other commands as unknown instead of failing', () => {
    const xml = `<Notify><CmdType>MobilePosition</CmdType><SN>5</SN><DeviceID>${CAMERA}</DeviceID></Notify>`;
    expect(decodeManscdp(body(xml))).toEqual({ kind: 'unknown', root: 'Notify', cmdType: 'MobilePosition' });
  });
});

describe('decodeManscdp refuses bad bodies with CS_ERR_MANSCDP_INVALID', () => {
  it('garbage', () => refused(() => decodeManscdp(body('not xml at all')), /malformed XML/));

  it('unclosed elements', () =>
    refused(() => decodeManscdp(body('<Notify><CmdType>Keepalive</Notify>')), /malformed XML/));

  it('a body over the size limit', () => {
    const xml = `<Notify><CmdType>Keepalive</CmdType><SN>1</SN><DeviceID>${CAMERA}</DeviceID><Status>${'A'.repeat(70_000)}</Status></Notify>`;
    refused(() => decodeManscdp(body(xml)), /more than the limit of 65536/);
    refused(() => decodeManscdp(body(catalogXml('GB2312')), { maxBytes: 100 }), /limit of 100/);
  });

  it('a DOCTYPE with an entity bomb', () => {
    const xml = `<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">]>
<Notify><CmdType>Keepalive</CmdType><SN>1</SN><DeviceID>${CAMERA}</DeviceID><Status>&lol2;</Status></Notify>`;
    refused(() => decodeManscdp(body(xml)), /DOCTYPE/);
  });

  it('a missing SN', () =>
    refused(
      () =>
        decodeManscdp(body(`<Notify><CmdType>Keepalive</CmdType><DeviceID>${CAMERA}</DeviceID></Notify>`)),
      /SN is missing/,
    ));

  it('a DeviceID that is not a GB/T 28181 ID', () =>
    refused(
      () =>
        decodeManscdp(
          body('<Notify><CmdType>Keepalive</CmdType><SN>1</SN><DeviceID>12345</DeviceID></Notify>'),
        ),
      /DeviceID "12345" is not a 20-digit/,
    ));

  it('a catalog Item with an invalid DeviceID', () =>
    refused(
      () => decodeManscdp(body(catalogXml('GB2312').replace(`<DeviceID>${CAMERA}`, '<DeviceID>abc'))),
      /Item 1 DeviceID "abc"/,
    ));
});

describe('decodeManscdp keepalive hot path', () => {
  const ID = '34020000001320000001';
  const variants = [
    `<?xml version="1.0" encoding="GB2312"?>\r\n<Notify>\r\n<CmdType>Keepalive</CmdType>\r\n<SN>42</SN>\r\n<DeviceID>${ID}</DeviceID>\r\n<Status>OK</Status>\r\n</Notify>\r\n`,
    `<?xml version="1.0"?><Notify><CmdType>Keepalive</CmdType><SN>7</SN><DeviceID>${ID}</DeviceID></Notify>`,
    `<?xml version="1.0" encoding="UTF-8"?>\n<Notify>\n  <CmdType>Keepalive</CmdType>\n  <SN>9</SN>\n  <DeviceID>${ID}</DeviceID>\n  <Status>ERROR</Status>\n</Notify>`,
  ];

  it('gives what the full parser gives for plain keepalives', () => {
    for (const text of variants) {
      // A trailing comment sends the same message through the XML parser.
      const full = decodeManscdp(
        Buffer.from(`${text}<!-- parsed -->`.replace('</Notify>', '<!-- x --></Notify>')),
      );
      expect(decodeManscdp(Buffer.from(text))).toEqual(full);
    }
  });

  it('still refuses a keepalive whose DeviceID is not a GB/T 28181 ID', () => {
    const bad = variants[1]?.replace(ID, '99999999999999999999') ?? '';
    expect(() => decodeManscdp(Buffer.from(bad))).toThrow(
      expect.objectContaining({ code: 'CS_ERR_MANSCDP_INVALID' }),
    );
  });
});
