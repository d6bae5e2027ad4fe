import { once } from 'node:events';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DataType, encodePayload } from '@citysense/protocol';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eventually } from '../testing/eventually.ts';
import { connectNode } from '../testing/node-client.ts';
import { startTestHub, type TestHub } from '../testing/test-hub.ts';
import type { AlarmView } from './alarm-store.ts';

type Detail = AlarmView & { deliveries: Array<{ target: string; state: string; attempts: number }> };

describe('alarms across a hub restart', () => {
  /** `/up` answers 503 while `down` is set; `/never` always does. */
  let down = true;
  const accepted: Array<{ event: string; alarm: AlarmView }> = [];
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      if (req.url === '/never' || down) {
        res.writeHead(503).end();
        return;
      }
      accepted.push(JSON.parse(Buffer.concat(chunks).toString('utf8')) as (typeof accepted)[number]);
      res.writeHead(200).end();
    });
  });
  let url: string;
  let dataDir: string;
  let t: TestHub | undefined;
  beforeAll(async () => {
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    dataDir = await mkdtemp(join(tmpdir(), 'citysense-alarms-restart-'));
  });
  afterAll(async () => {
    await t?.stop();
    server.close();
    await rm(dataDir, { recursive: true, force: true });
  });

  const start = (webhookMaxAttempts: number) =>
    startTestHub(
      {
        alarms: {
          webhookUrl: `${url}/up`,
          webhookBackoffMs: 20,
          webhookMaxBackoffMs: 100,
          webhookMaxAttempts,
          tickMs: 25,
          flushMs: 5,
        },
      },
      dataDir,
    );
  /** Connects the gateway, sends its births, then DDATA `level` values. */
  const gateway = async (hub: TestHub, creds: { nodeId: string; password: string }, values: number[]) => {
    const client = await connectNode(hub.mqttUrl, creds.nodeId, creds.password);
    const topic = (type: string, device?: string) =>
      `spBv1.0/city/${type}/${creds.nodeId}${device ? `/${device}` : ''}`;
    const send = (
      type: string,
      seq: number,
      metrics: Parameters<typeof encodePayload>[0]['metrics'],
      device?: string,
    ) =>
      client.publishAsync(
        topic(type, device),
        Buffer.from(encodePayload({ seq, timestamp: Date.now(), metrics })),
        {
          qos: 1,
        },
      );
    await send('NBIRTH', 0, [{ name: 'bdSeq', datatype: DataType.UInt64, value: 0 }]);
    await send('DBIRTH', 1, [{ name: 'Level', alias: 1, datatype: DataType.Double, value: null }], 'tank');
    let seq = 2;
    for (const value of values)
      await send(
        'DDATA',
        seq++,
        [{ alias: 1, timestamp: Date.now(), datatype: DataType.Double, value }],
        'tank',
      );
    return client;
  };

  it('keeps an open alarm and its undelivered notification through a restart, then clears and delivers', async () => {
    t = await start(1000);
    const creds = await t.enroll('tank-pole');
    const rule = await t.api('POST', '/v1/alarm-rules', {
      id: 'tank-high',
      name: 'Tank level high',
      severity: 'critical',
      scope: { device: 'tank', metric: 'Level' },
      condition: { kind: 'threshold', op: '>', value: 5 },
      webhookUrl: `${url}/never`,
    });
    expect(rule.status).toBe(201);
    let client = await gateway(t, creds, [9, 9.5]);
    const alarm = await eventually(async () => {
      const [a] = (await t?.api<AlarmView[]>('GET', '/v1/alarms?rule=tank-high'))?.body ?? [];
      return a?.count === 2 ? a : undefined;
    });
    // Both targets are down: their notifications wait, retried with backoff.
    await eventually(async () => {
      const d = (await t?.api<Detail>('GET', `/v1/alarms/${alarm.id}`))?.body;
      return (
        d?.deliveries.length === 2 && d.deliveries.every((x) => x.state === 'pending' && x.attempts >= 3)
      );
    });
    await client.endAsync();
    await t.stop();
    t = undefined;

    down = false;
    t = await start(3);
    await eventually(async () => accepted.some((h) => h.alarm.id === alarm.id && h.event === 'alarm.raised'));
    // The rule's own target still refuses: past webhookMaxAttempts its notification is `failed`, the alarm stands.
    const detail = await eventually(async () => {
      const d = (await t?.api<Detail>('GET', `/v1/alarms/${alarm.id}`))?.body;
      const state = (target: string) => d?.deliveries.find((x) => x.target === `${url}${target}`)?.state;
      return state('/never') === 'failed' && state('/up') === 'delivered' ? d : undefined;
    });
    expect(detail.state).toBe('active');
    expect(detail.deliveries.find((x) => x.target === `${url}/up`)?.state).toBe('delivered');
    const open = (await t.api<AlarmView[]>('GET', '/v1/alarms?state=open')).body;
    expect(open.map((a) => [a.id, a.count])).toEqual([[alarm.id, 2]]);
    // The restarted hub knows the series is raised: a value below the threshold clears the same alarm.
    client = await gateway(t, creds, [1]);
    await eventually(async () =>
      accepted.some((h) => h.alarm.id === alarm.id && h.event === 'alarm.cleared'),
    );
    expect((await t.api<AlarmView>('GET', `/v1/alarms/${alarm.id}`)).body).toMatchObject({
      state: 'cleared',
      clearReason: 'condition',
      lastValue: 1,
    });
    await client.endAsync();
  });
});
