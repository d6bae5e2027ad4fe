import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  DataType,
  decodePayload,
  decodeSpoolAck,
  encodePayload,
  SPOOL_ACK,
  SPOOL_ID,
} from '@citysense/protocol';
import mqtt from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { postgresUnavailableReason, startTestPostgres, type TestPostgres } from '../storage/test-postgres.ts';
import { freeTcpPort, waitForPort } from '../testing/ports.ts';
import { startTestHub, type TestHub } from '../testing/test-hub.ts';

const MOSQUITTO = ['/usr/sbin/mosquitto', '/usr/bin/mosquitto'].find((p) => existsSync(p));
const missing = !MOSQUITTO
  ? 'mosquitto is not installed (apt-get install mosquitto)'
  : postgresUnavailableReason();
if (missing && process.env.CI) throw new Error(`CI must run the external-broker test: ${missing}`);

/**
 * External mode: two hub replicas on Debian's mosquitto (MQTT 5 shared
 * subscriptions) writing to one PostgreSQL server. Births reach both replicas,
 * data is split between them, and every record is stored and acked once.
 */
describe.skipIf(missing !== undefined)(
  `two hub replicas on an external broker${missing ? ` (skipped: ${missing})` : ''}`,
  () => {
    let broker: ChildProcess;
    let pg: TestPostgres;
    let dir: string;
    let hubs: TestHub[] = [];
    let brokerUrl = '';

    beforeAll(async () => {
      dir = await mkdtemp(join(tmpdir(), 'citysense-mosq-'));
      const port = await freeTcpPort();
      await writeFile(
        join(dir, 'mosquitto.conf'),
        `listener ${port} 127.0.0.1\nallow_anonymous true\npersistence false\n`,
      );
      broker = spawn(MOSQUITTO ?? 'mosquitto', ['-c', join(dir, 'mosquitto.conf')], { stdio: 'ignore' });
      await waitForPort(port);
      brokerUrl = `mqtt://127.0.0.1:${port}`;
      pg = await startTestPostgres();
      const adminToken = 'replica-admin-token-0123456789';
      // Sequential: the first applies the migrations, the second finds them applied.
      hubs.push(await startTestHub({ databaseUrl: pg.url, mqttUrl: brokerUrl, adminToken }));
      hubs.push(await startTestHub({ databaseUrl: pg.url, mqttUrl: brokerUrl, adminToken }));
    }, 120_000);

    afterAll(async () => {
      for (const h of hubs) await h.stop();
      hubs = [];
      broker?.kill('SIGTERM');
      await pg?.stop();
      if (dir) await rm(dir, { recursive: true, force: true });
    });

    it('splits data between replicas and stores and acks every record once', async () => {
      const [a, b] = hubs;
      if (!a || !b) throw new Error('hubs not started');
      const node = await a.enroll('ext-node');
      const client = await mqtt.connectAsync(brokerUrl, { clientId: 'ext-node', reconnectPeriod: 0 });
      const acked = new Set<number>();
      await client.subscribeAsync('spBv1.0/city/NCMD/ext-node');
      client.on('message', (_t, payload) => {
        for (const m of decodePayload(payload).metrics) {
          if (m.name === SPOOL_ACK)
            for (const r of decodeSpoolAck(m.value as Uint8Array))
              for (let i = r.first; i <= r.last; i++) acked.add(i);
        }
      });
      const t0 = Date.now() - 100_000;
      await client.publishAsync(
        `spBv1.0/city/NBIRTH/${node.nodeId}`,
        Buffer.from(
          encodePayload({
            seq: 0,
            metrics: [
              { name: 'bdSeq', datatype: DataType.UInt64, value: 1 },
              { name: SPOOL_ID, alias: 1, datatype: DataType.UInt64, value: null },
            ],
          }),
        ),
        { qos: 1 },
      );
      await client.publishAsync(
        `spBv1.0/city/DBIRTH/${node.nodeId}/meter`,
        Buffer.from(
          encodePayload({
            seq: 1,
            metrics: [
              { name: 'kWh', alias: 2, datatype: DataType.Double, value: null },
              { name: SPOOL_ID, alias: 1, datatype: DataType.UInt64, value: null },
            ],
          }),
        ),
        { qos: 1 },
      );
      // Both replicas must have the birth before data arrives at either of them.
      await new Promise((r) => setTimeout(r, 500));
      const N = 200;
      for (let i = 0; i < N; i++) {
        const payload = encodePayload({
          seq: (i + 2) % 256,
          metrics: [
            { alias: 2, timestamp: t0 + i * 100, datatype: DataType.Double, value: i },
            { alias: 1, datatype: DataType.UInt64, value: i + 1 },
          ],
        });
        await client.publishAsync(`spBv1.0/city/DDATA/${node.nodeId}/meter`, Buffer.from(payload), {
          qos: 1,
        });
      }
      const deadline = Date.now() + 20_000;
      while (acked.size < N && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
      expect(acked.size).toBe(N);
      const rows = await a.api<Array<{ value: number }>>(
        'GET',
        `/v1/readings?node=ext-node&device=meter&metric=kWh&from=0&limit=1000`,
      );
      expect(rows.body.map((r) => r.value)).toEqual(Array.from({ length: N }, (_, i) => i));
      const committedA = a.hub.metrics.readingsCommitted.get();
      const committedB = b.hub.metrics.readingsCommitted.get();
      expect(committedA).toBeGreaterThan(0);
      expect(committedB).toBeGreaterThan(0);
      expect(committedA + committedB).toBeGreaterThanOrEqual(N);
      const health = await b.api<{
        database: { engine: string; timescale: boolean };
        mqtt: { mode: string };
      }>('GET', '/health');
      expect(health.body.mqtt.mode).toBe('external');
      expect(health.body.database.engine).toBe('postgresql');
      await client.endAsync();
    }, 60_000);
  },
);
