import { createRequire } from 'node:module';
import { describe, expect, it } from 'vitest';
import { hasCode } from '../errors.ts';
import { applyDatatype, DataType, decodePayload, encodePayload } from './payload.ts';

const require = createRequire(import.meta.url);
// Eclipse Tahu's JavaScript payload library: the reference encoder other edge nodes use.
const tahu = require('sparkplug-payload').get('spBv1.0') as {
  encodePayload(p: unknown): Uint8Array;
  decodePayload(b: Uint8Array): { metrics: Array<{ name: string; value: unknown; type: string }> };
};

describe('Sparkplug B payload codec', () => {
  it('round-trips every scalar datatype citysense stores', () => {
    const bytes = encodePayload({
      timestamp: 1_700_000_000_000,
      seq: 7,
      metrics: [
        { name: 'i8', datatype: DataType.Int8, value: -5 },
        { name: 'i16', datatype: DataType.Int16, value: -300 },
        { name: 'i32', datatype: DataType.Int32, value: -70_000 },
        { name: 'i64', datatype: DataType.Int64, value: -9_000_000_000 },
        { name: 'u32', datatype: DataType.UInt32, value: 4_000_000_000 },
        { name: 'u64', datatype: DataType.UInt64, value: 2 ** 40 },
        { name: 'f', datatype: DataType.Float, value: 1.5 },
        { name: 'd', datatype: DataType.Double, value: 23.456 },
        { name: 'b', datatype: DataType.Boolean, value: true },
        { name: 's', datatype: DataType.String, value: '杆体倾斜' },
        { name: 'n', datatype: DataType.Double, value: null },
        {
          name: 'q',
          alias: 9,
          timestamp: 1_700_000_000_123,
          datatype: DataType.Double,
          value: 1,
          properties: { Quality: 0 },
        },
      ],
    });
    const p = decodePayload(bytes);
    expect(p.seq).toBe(7);
    expect(p.timestamp).toBe(1_700_000_000_000);
    expect(Object.fromEntries(p.metrics.map((m) => [m.name, m.value]))).toEqual({
      i8: -5,
      i16: -300,
      i32: -70_000,
      i64: -9_000_000_000,
      u32: 4_000_000_000,
      u64: 2 ** 40,
      f: 1.5,
      d: 23.456,
      b: true,
      s: '杆体倾斜',
      n: null,
      q: 1,
    });
    const q = p.metrics.find((m) => m.name === 'q');
    expect(q?.alias).toBe(9);
    expect(q?.timestamp).toBe(1_700_000_000_123);
    expect(q?.properties).toEqual({ Quality: 0 });
  });

  it('decodes alias-only data and applies the birth datatype to signed integers', () => {
    const bytes = encodePayload({ seq: 1, metrics: [{ alias: 3, datatype: DataType.Int16, value: -2 }] });
    const [m] = decodePayload(bytes).metrics;
    expect(m?.value).toBe(-2);
    const withoutType = decodePayload(bytes).metrics[0];
    expect(applyDatatype(DataType.Int16, (withoutType?.value as number) & 0xffffffff)).toBe(-2);
  });

  it('reads payloads made by Eclipse Tahu and Tahu reads ours', () => {
    const fromTahu = tahu.encodePayload({
      timestamp: Date.now(),
      seq: 3,
      metrics: [
        { name: 'Air/PM2.5', type: 'Double', value: 35.2 },
        { name: 'Lamp/On', type: 'Boolean', value: true },
        { name: 'Count', type: 'Int32', value: -12 },
        { name: 'Label', type: 'String', value: 'ok' },
      ],
    });
    expect(decodePayload(fromTahu).metrics.map((m) => m.value)).toEqual([35.2, true, -12, 'ok']);

    const ours = encodePayload({
      seq: 4,
      metrics: [{ name: 'Noise/LAeq', datatype: DataType.Double, value: 61.5 }],
    });
    const decoded = tahu.decodePayload(ours);
    expect(decoded.metrics[0]).toMatchObject({ name: 'Noise/LAeq', value: 61.5, type: 'Double' });
  });

  it('rejects malformed bytes with a coded error', () => {
    let caught: unknown;
    try {
      decodePayload(Buffer.from([0x12, 0x10, 0x0a]));
    } catch (err) {
      caught = err;
    }
    expect(hasCode(caught, 'CS_ERR_SPARKPLUG_DECODE')).toBe(true);
  });
});
