import { createRequire } from 'node:module';
import {
  DataType,
  decodePayload,
  decodeSpoolAck,
  encodePayload,
  SPOOL_ACK,
  SPOOL_ID,
} from '@citysense/protocol';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eventually } from '../testing/eventually.ts';
import { connectNode } from '../testing/node-client.ts';
import { startTestHub, type TestHub } from '../testing/test-hub.ts';

const require = createRequire(import.meta.url);
type TahuClient = {
  on(event: string, listener: (...args: unknown[]) => void): void;
  publishNodeBirth(p: unknown): void;
  publishDeviceBirth(device: string, p: unknown): void;
  publishDeviceData(device: string, p: unknown): void;
  stop(): void;
};
const tahu = require('sparkplug-client') as { newClient(config: Record<string, unknown>): TahuClient };

type Reading = { time: string; value: unknown; quality: number };

describe('Sparkplug ingest over the embedded broker', () => {
  let t: TestHub;
  beforeAll(async () => {
    t = await startTestHub({ maxPayloadBytes: 64 * 1024 });
  });
  afterAll(async () => t?.stop());

  const readings = async (node: string, device: string, metric: string) =>
    (
      await t.api<Reading[]>(
        'GET',
        `/v1/readings?node=${node}&device=${encodeURIComponent(device)}&metric=${encodeURIComponent(metric)}&from=0`,
      )
    ).body;

  it('refuses an MQTT client without enrolment credentials', async () => {
    await expect(connectNode(t.mqttUrl, 'intruder', 'guess')).rejects.toThrow(
      /Bad username or password|Not authorized/i,
    );
    const node = await t.enroll();
    await expect(connectNode(t.mqttUrl, node.nodeId, 'wrong-password')).rejects.toThrow();
  });

  it('stores births and data from Eclipse Tahu sparkplug-client (third-party interop)', async () => {
    const node = await t.enroll('tahu-node');
    const client = tahu.newClient({
      serverUrl: t.mqttUrl,
      username: node.nodeId,
      password: node.password,
      groupId: node.groupId,
      edgeNode: node.nodeId,
      clientId: 'tahu-node-client',
      version: 'spBv1.0',
    });
    const now = Date.now();
    client.on('birth', () => {
      client.publishNodeBirth({
        timestamp: now,
        metrics: [{ name: 'Node Control/Rebirth', type: 'Boolean', value: false }],
      });
      client.publishDeviceBirth('meter1', {
        timestamp: now,
        metrics: [
          { name: 'Voltage', type: 'Double', value: 229.5, timestamp: now },
          { name: 'Count', type: 'Int32', value: -3, timestamp: now },
        ],
      });
      client.publishDeviceData('meter1', {
        timestamp: now + 1000,
        metrics: [{ name: 'Voltage', type: 'Double', value: 231.25, timestamp: now + 1000 }],
      });
    });
    try {
      const rows = await eventually(async () => {
        const r = await readings('tahu-node', 'meter1', 'Voltage');
        return r.length === 2 ? r : undefined;
      });
      expect(rows.map((r) => r.value)).toEqual([229.5, 231.25]);
      expect((await readings('tahu-node', 'meter1', 'Count')).map((r) => r.value)).toEqual([-3]);
      const n = await t.api<{ status: string; devices: Array<{ id: string }> }>('GET', '/v1/nodes/tahu-node');
      expect(n.body.status).toBe('online');
      expect(n.body.devices.map((d) => d.id)).toEqual(['meter1']);
    } finally {
      client.stop();
    }
  });

  it('acks spool records after commit, requests Rebirth on unknown alias, survives garbage, refuses cross-node publish', async () => {
    const a = await t.enroll('node-a');
    const b = await t.enroll('node-b');
    const clientA = await connectNode(a.mqttUrl, a.nodeId, a.password);
    const clientB = await connectNode(b.mqttUrl, b.nodeId, b.password);
    const commands: Array<{ metrics: ReturnType<typeof decodePayload>['metrics'] }> = [];
    await clientA.subscribeAsync('spBv1.0/city/NCMD/node-a');
    clientA.on('message', (_topic, payload) => commands.push(decodePayload(payload)));
    const topic = (type: string, device?: string) =>
      `spBv1.0/city/${type}/node-a${device ? `/${device}` : ''}`;
    const t0 = Date.now() - 60_000;
    await clientA.publishAsync(
      topic('NBIRTH'),
      Buffer.from(
        encodePayload({
          seq: 0,
          timestamp: t0,
          metrics: [
            { name: 'bdSeq', datatype: DataType.UInt64, value: 0 },
            { name: SPOOL_ID, alias: 1, datatype: DataType.UInt64, value: null },
          ],
        }),
      ),
    );
    await clientA.publishAsync(
      topic('DBIRTH', 'air'),
      Buffer.from(
        encodePayload({
          seq: 1,
          timestamp: t0,
          metrics: [
            { name: 'PM2.5', alias: 2, datatype: DataType.Double, value: null },
            { name: SPOOL_ID, alias: 1, datatype: DataType.UInt64, value: null },
          ],
        }),
      ),
    );
    const data = (seq: number, spoolId: number, value: number, alias = 2) =>
      Buffer.from(
        encodePayload({
          seq,
          timestamp: t0 + seq * 1000,
          metrics: [
            { alias, timestamp: t0 + seq * 1000, datatype: DataType.Double, value },
            { alias: 1, datatype: DataType.UInt64, value: spoolId },
          ],
        }),
      );
    await clientA.publishAsync(topic('DDATA', 'air'), data(2, 41, 12.5));
    const ack = await eventually(async () =>
      commands.find((c) => c.metrics.some((m) => m.name === SPOOL_ACK)),
    );
    const ackBytes = ack.metrics.find((m) => m.name === SPOOL_ACK)?.value as Uint8Array;
    expect(decodeSpoolAck(ackBytes)).toEqual([{ first: 41, last: 41 }]);
    expect((await readings('node-a', 'air', 'PM2.5')).map((r) => r.value)).toEqual([12.5]);

    // Garbage on its own topic: rejected and counted, the connection stays up.
    await clientA.publishAsync(topic('DDATA', 'air'), Buffer.from('this is not protobuf at all'));
    // Unknown alias: the hub asks for a Rebirth and stores nothing of that message.
    await clientA.publishAsync(topic('DDATA', 'air'), data(3, 42, 99, 77));
    await eventually(async () =>
      commands.find((c) => c.metrics.some((m) => m.name === 'Node Control/Rebirth' && m.value === true)),
    );
    expect(clientA.connected).toBe(true);

    // Node B publishing as node A is refused: B is disconnected and nothing is stored.
    const closed = new Promise<void>((resolve) => clientB.once('close', () => resolve()));
    clientB.publish(topic('DDATA', 'air'), data(4, 43, 666));
    await closed;
    expect((await readings('node-a', 'air', 'PM2.5')).map((r) => r.value)).toEqual([12.5]);
    const metrics = await fetch(`${t.httpUrl}/metrics`).then((r) => r.text());
    expect(metrics).toMatch(/citysense_rejected_total\{reason="decode"\} 1/);
    expect(metrics).toMatch(/citysense_rejected_total\{reason="acl"\} [1-9]/);
    expect(metrics).toMatch(/citysense_rebirth_requests_total [1-9]/);
    await clientA.endAsync();
  });

  it('ignores births of a node that is not enrolled, even from a client allowed to publish them', async () => {
    // The hub's own privileged client may publish anywhere (an external broker may be this permissive).
    const privileged = await connectNode(t.mqttUrl, 'citysense-hub', t.adminToken);
    await privileged.publishAsync(
      'spBv1.0/city/NBIRTH/ghost-node',
      Buffer.from(
        encodePayload({
          seq: 0,
          timestamp: Date.now(),
          metrics: [{ name: 'bdSeq', datatype: DataType.UInt64, value: 0 }],
        }),
      ),
    );
    await eventually(async () => {
      const m = await fetch(`${t.httpUrl}/metrics`).then((r) => r.text());
      return /citysense_rejected_total\{reason="unknown-node"\} [1-9]/.test(m);
    });
    expect((await t.api('GET', '/v1/nodes/ghost-node')).status).toBe(404);
    await privileged.endAsync();
  });

  it('disconnects only the client that sends an oversize payload', async () => {
    const a = await t.enroll();
    const b = await t.enroll();
    const big = await connectNode(a.mqttUrl, a.nodeId, a.password);
    const good = await connectNode(b.mqttUrl, b.nodeId, b.password);
    const closed = new Promise<void>((resolve) => big.once('close', () => resolve()));
    big.publish(`spBv1.0/city/NDATA/${a.nodeId}`, Buffer.alloc(100 * 1024));
    await closed;
    expect(good.connected).toBe(true);
    await good.endAsync();
    big.end(true);
  });
});
