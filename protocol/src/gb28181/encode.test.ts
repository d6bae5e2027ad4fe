import iconv from 'iconv-lite';
import { describe, expect, it } from 'vitest';
import { hasCode } from '../errors.ts';
import { decodeManscdp } from './decode.ts';
import { encodeManscdp } from './encode.ts';

const PLATFORM = '34020000002000000001';
const CAMERA = '34020000001320000001';

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

  it('round-trips every Query as an unknown-but-valid message with its CmdType', () => {
    for (const cmdType of ['Catalog', 'DeviceInfo', 'DeviceStatus'] as const) {
      const bytes = encodeManscdp({ kind: 'query', cmdType, sn: 1, deviceId: CAMERA }, { encoding: 'UTF-8' });
      expect(decodeManscdp(bytes)).toEqual({ kind: 'unknown', root: 'Query', cmdType });
    }
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
