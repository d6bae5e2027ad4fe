import {
  DataType,
  decodePayload,
  decodeSpoolAck,
  EDGE_ALERT_METRIC,
  encodeEdgeAlert,
  encodePayload,
  encodeVideoAnalyticsFrame,
  SPOOL_ACK,
  SPOOL_ID,
  VIDEO_ANALYTICS_METRIC,
  type VideoAnalyticsFrame,
} from '@citysense/protocol';
import type { MqttClient } from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eventually } from '../testing/eventually.ts';
import { connectNode } from '../testing/node-client.ts';
import { startTestHub, type TestHub } from '../testing/test-hub.ts';

const MINUTE = 60_000;

function frameAt(time: number, labels: string[]): VideoAnalyticsFrame {
  return {
    utcTimeMs: time,
    source: 'cam-01',
    algorithmId: 'yolox-nano',
    algorithmVersion: '1.0.0',
    frameWidth: 640,
    frameHeight: 480,
    inferMs: 14.5,
    objects: labels.map((label, i) => ({
      label,
      likelihood: 0.5 + i / 100,
      classId: label === 'person' ? 0 : 2,
      objectId: 0,
      box: { left: 0.125 * i, top: 0.25, right: 0.125 * i + 0.125, bottom: 0.75 },
    })),
  };
}

describe('video analytics from edge nodes', () => {
  let t: TestHub;
  let client: MqttClient;
  const acks: number[] = [];
  const t0 = Math.floor((Date.now() - 30 * MINUTE) / MINUTE) * MINUTE;
  const topic = (type: string, device?: string) =>
    `spBv1.0/city/${type}/cam-node${device ? `/${device}` : ''}`;
  let seq = 0;
  const publish = (
    type: string,
    device: string | undefined,
    metrics: Parameters<typeof encodePayload>[0]['metrics'],
  ) =>
    client.publishAsync(
      topic(type, device),
      Buffer.from(encodePayload({ seq: seq++ % 256, timestamp: Date.now(), metrics })),
    );
  const sendFrame = (spoolId: number, frame: VideoAnalyticsFrame | Uint8Array) =>
    publish('DDATA', 'cam-01', [
      {
        alias: 10,
        timestamp: frame instanceof Uint8Array ? t0 : frame.utcTimeMs,
        datatype: DataType.Bytes,
        value: frame instanceof Uint8Array ? frame : encodeVideoAnalyticsFrame(frame),
      },
      { alias: 1, datatype: DataType.UInt64, value: spoolId },
    ]);

  beforeAll(async () => {
    t = await startTestHub();
    const node = await t.enroll('cam-node');
    client = await connectNode(node.mqttUrl, node.nodeId, node.password);
    await client.subscribeAsync('spBv1.0/city/NCMD/cam-node');
    client.on('message', (_topic, payload) => {
      for (const m of decodePayload(payload).metrics)
        if (m.name === SPOOL_ACK)
          for (const r of decodeSpoolAck(m.value as Uint8Array))
            for (let id = r.first; id <= r.last; id++) acks.push(id);
    });
    await publish('NBIRTH', undefined, [
      { name: 'bdSeq', datatype: DataType.UInt64, value: 0 },
      { name: SPOOL_ID, alias: 1, datatype: DataType.UInt64, value: null },
    ]);
    await publish('DBIRTH', 'cam-01', [
      { name: VIDEO_ANALYTICS_METRIC, alias: 10, datatype: DataType.Bytes, value: null },
      { name: SPOOL_ID, alias: 1, datatype: DataType.UInt64, value: null },
    ]);
  });
  afterAll(async () => {
    await client?.endAsync();
    await t?.stop();
  });

  it('stores frames and objects, acks each spool record after commit, and answers by class and time', async () => {
    await sendFrame(1, frameAt(t0, ['person', 'person', 'car']));
    await sendFrame(2, frameAt(t0 + 1000, ['person']));
    await sendFrame(3, frameAt(t0 + 2000, []));
    await eventually(async () => acks.includes(3), 10_000, 'acks');
    expect(acks.slice(0, 3)).toEqual([1, 2, 3]);

    const from = t0 - MINUTE;
    const to = t0 + MINUTE;
    const persons = await t.api<Array<Record<string, unknown>>>(
      'GET',
      `/v1/analytics/detections?node=cam-node&label=person&from=${from}&to=${to}`,
    );
    expect(persons.status).toBe(200);
    expect(persons.body).toHaveLength(3);
    expect(persons.body[0]).toMatchObject({
      node: 'cam-node',
      source: 'cam-01',
      algorithmId: 'yolox-nano',
      label: 'person',
      box: { left: 0, top: 0.25, right: 0.125, bottom: 0.75 },
    });
    const counts = await t.api<Array<Record<string, unknown>>>(
      'GET',
      `/v1/analytics/detection-counts?source=cam-01&bucket=1m&from=${from}&to=${to}`,
    );
    expect(counts.body).toEqual([
      { bucket: new Date(t0).toISOString(), label: 'car', objects: 1, frames: 1, peak: 1 },
      { bucket: new Date(t0).toISOString(), label: 'person', objects: 3, frames: 2, peak: 2 },
    ]);
  });

  it('keeps replays idempotent and rejects malformed frames without losing the connection', async () => {
    await sendFrame(4, frameAt(t0, ['person', 'person', 'car'])); // a replay of record 1
    await sendFrame(5, Uint8Array.from([0xff, 0xff, 0xff]));
    await sendFrame(6, frameAt(t0 + 3000, ['bicycle']));
    await eventually(async () => acks.includes(6), 10_000, 'acks after replay');
    expect(client.connected).toBe(true);
    const all = await t.api<unknown[]>(
      'GET',
      `/v1/analytics/detections?node=cam-node&from=${t0 - MINUTE}&to=${t0 + MINUTE}`,
    );
    expect(all.body).toHaveLength(5);
    const metrics = await fetch(`${t.httpUrl}/metrics`).then((r) => r.text());
    expect(metrics).toMatch(/citysense_rejected_total\{reason="video-analytics"\} 1/);
  });

  it('stores edge alerts once and lists them newest first, filtered by severity', async () => {
    await publish('DBIRTH', 'cam-01', [
      { name: VIDEO_ANALYTICS_METRIC, alias: 10, datatype: DataType.Bytes, value: null },
      { name: EDGE_ALERT_METRIC, alias: 11, datatype: DataType.Bytes, value: null },
      { name: SPOOL_ID, alias: 1, datatype: DataType.UInt64, value: null },
    ]);
    const alert = (time: number, severity: 'warning' | 'critical') => ({
      utcTimeMs: time,
      ruleId: 'gate',
      kind: 'presence' as const,
      severity,
      source: 'cam-01',
      algorithmId: 'yolox-nano',
      algorithmVersion: '1.0.0',
      objects: frameAt(time, ['person']).objects,
      count: 1,
      heldSeconds: 0,
      message: '1 person in the zone',
    });
    const sendAlert = (spoolId: number, a: ReturnType<typeof alert>) =>
      publish('DDATA', 'cam-01', [
        { alias: 11, timestamp: a.utcTimeMs, datatype: DataType.Bytes, value: encodeEdgeAlert(a) },
        { alias: 1, datatype: DataType.UInt64, value: spoolId },
      ]);
    await sendAlert(7, alert(t0 + 5000, 'warning'));
    await sendAlert(8, alert(t0 + 6000, 'critical'));
    await sendAlert(9, alert(t0 + 5000, 'warning')); // replay
    await eventually(async () => acks.includes(9), 10_000, 'alert acks');
    const all = await t.api<Array<{ time: string; severity: string; objects: unknown[] }>>(
      'GET',
      `/v1/alerts?node=cam-node&from=${t0}&to=${t0 + MINUTE}`,
    );
    expect(all.body.map((a) => a.severity)).toEqual(['critical', 'warning']);
    expect(all.body[0]?.objects).toHaveLength(1);
    const critical = await t.api<unknown[]>(
      'GET',
      `/v1/alerts?severity=critical&from=${t0}&to=${t0 + MINUTE}`,
    );
    expect(critical.body).toHaveLength(1);
  });

  it('refuses bad queries with codes', async () => {
    const inverted = await t.api<{ code: string }>('GET', `/v1/analytics/detections?from=${t0}&to=${t0 - 1}`);
    expect(inverted.status).toBe(400);
    expect(inverted.body.code).toBe('CS_ERR_QUERY_RANGE');
    const badBucket = await t.api<{ code: string }>('GET', '/v1/analytics/detection-counts?bucket=7s');
    expect(badBucket.status).toBe(400);
    const noAuth = await t.api<{ code: string }>('GET', '/v1/analytics/detections', undefined, null);
    expect(noAuth.status).toBe(401);
  });
});
