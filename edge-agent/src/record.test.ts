import { componentLogger, DataType } from '@citysense/protocol';
import { describe, expect, it } from 'vitest';
import { decodeRecord, encodeRecord } from './record.ts';
import { TelemetryRecorder } from './recorder.ts';

/** A recorder whose sink keeps every appended batch in memory. */
function recorderInMemory(metricType: ConstructorParameters<typeof TelemetryRecorder>[0]['metricType']) {
  const appended: Uint8Array[][] = [];
  const recorder = new TelemetryRecorder({
    sink: {
      appendMany: async (p) => {
        appended.push(p);
        return p.map((_, i) => i);
      },
    },
    metricType,
    logger: componentLogger('recorder'),
  });
  return { recorder, appended };
}

describe('spool records', () => {
  it('round-trips a device record with names, datatypes, timestamps and quality', () => {
    const bytes = encodeRecord({
      device: 'P-1.air',
      metrics: [
        { name: 'PM2.5', datatype: DataType.Double, timestamp: 1_700_000_000_123, value: 12.5 },
        {
          name: 'Level',
          datatype: DataType.Int64,
          timestamp: 1_700_000_000_123,
          value: -3,
          properties: { Quality: 64 },
        },
      ],
    });
    const r = decodeRecord(bytes);
    expect(r.device).toBe('P-1.air');
    expect(r.metrics.map((m) => [m.name, m.datatype, m.timestamp, m.value, m.properties?.Quality])).toEqual([
      ['PM2.5', DataType.Double, 1_700_000_000_123, 12.5, undefined],
      ['Level', DataType.Int64, 1_700_000_000_123, -3, 64],
    ]);
    expect(decodeRecord(encodeRecord({ device: null, metrics: [] })).device).toBeNull();
  });

  it('carries bytes metrics (encoded video analytics frames) unchanged', async () => {
    const { recorder, appended } = recorderInMemory(() => undefined);
    const frame = Uint8Array.from([8, 1, 18, 3, 99, 97, 109]);
    recorder.recordReadings([
      { device: 'cam-01', metric: 'citysense/Video Analytics', time: 5, value: frame, quality: 'good' },
    ]);
    await recorder.flush();
    const [record] = (appended[0] ?? []).map(decodeRecord);
    expect(record?.metrics[0]).toMatchObject({ datatype: DataType.Bytes, timestamp: 5 });
    expect(Buffer.from(record?.metrics[0]?.value as Uint8Array)).toEqual(Buffer.from(frame));
  });

  it('refuses bytes it did not write', () => {
    expect(() => decodeRecord(new Uint8Array([9, 0]))).toThrow(
      expect.objectContaining({ code: 'CS_ERR_RECORD_DECODE' }),
    );
  });

  it('groups a batch per device and records a value of the wrong type as bad', async () => {
    const { recorder, appended } = recorderInMemory((_d, m) => (m === 'Count' ? 'int' : 'double'));
    recorder.recordReadings([
      { device: 'a', metric: 'Temp', time: 1, value: 'hot', quality: 'good' },
      { device: 'b', metric: 'Count', time: 1, value: 7.4, quality: 'good' },
      { device: 'a', metric: 'Count', time: 2, value: 3, quality: 'bad' },
    ]);
    await recorder.flush();
    const records = (appended[0] ?? []).map(decodeRecord);
    expect(records.map((r) => r.device)).toEqual(['a', 'b']);
    expect(records[0]?.metrics[0]).toMatchObject({ name: 'Temp', value: null, properties: { Quality: 0 } });
    expect(records[0]?.metrics[1]).toMatchObject({ name: 'Count', value: 3, properties: { Quality: 0 } });
    expect(records[1]?.metrics[0]).toMatchObject({ name: 'Count', datatype: DataType.Int64, value: 7 });
  });
});
