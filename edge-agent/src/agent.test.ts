import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DataType, HEALTH_METRICS, NODE_PROPERTIES, REBIRTH, SPOOL_ID } from '@citysense/protocol';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { Agent } from './agent.ts';
import { type AgentConfigInput, resolveAgentConfig } from './config.ts';
import type { DriverRegistry } from './driver-host.ts';
import { builtinDrivers } from './drivers.ts';
import { type SeenMessage, TestBroker, TestEnrollServer, TestHost, waitUntil } from './testing/harness.ts';
import { TestDriver } from './testing/test-driver.ts';

const NODE = 'gw-test-1';

describe('edge agent against a real broker', () => {
  let broker: TestBroker;
  let hub: TestEnrollServer;
  const cleanups: Array<() => Promise<void>> = [];
  const drivers: TestDriver[] = [];
  /** The tiny test driver stands in for both built-in types. */
  const registry: DriverRegistry = {
    'lamp-pole-sim': ({ id, options }) => {
      const d = new TestDriver({ id, ...(options as object) });
      drivers.push(d);
      return d;
    },
  };

  beforeAll(async () => {
    broker = await TestBroker.start();
    hub = new TestEnrollServer(broker);
    await hub.start();
  });
  afterEach(async () => {
    for (const c of cleanups.splice(0).reverse()) await c();
    drivers.length = 0;
    hub.answer = null;
    hub.requests.length = 0;
  });
  afterAll(async () => {
    await hub.close();
    await broker.close();
  });

  async function stateDir(): Promise<string> {
    const dir = await mkdtemp(join(tmpdir(), 'cs-agent-'));
    cleanups.push(() => rm(dir, { recursive: true, force: true }));
    return dir;
  }

  async function host(): Promise<TestHost> {
    const h = new TestHost(broker);
    await h.start();
    await h.publishState(true);
    cleanups.push(() => h.close());
    return h;
  }

  function agent(dir: string, over: AgentConfigInput = {}, driverRegistry: DriverRegistry = registry): Agent {
    const config = resolveAgentConfig({
      hubUrl: hub.url,
      token: 'tok',
      stateDir: dir,
      healthIntervalMs: 60_000,
      spool: { maxBytes: 16 * 1024 * 1024 },
      uplink: { window: 64, ackTimeoutMs: 3000, backoff: { initialMs: 100, maxMs: 400 } },
      drivers: [{ type: 'lamp-pole-sim', id: 'd1', options: { intervalMs: 20 } }],
      ...over,
    });
    const a = new Agent(config, undefined, { driverRegistry });
    cleanups.push(() => a.stop());
    return a;
  }

  const dataAfter = (h: TestHost, from: number) =>
    h.messages.slice(from).filter((m) => m.type === 'DDATA' || m.type === 'NDATA');

  it('enrols, births with aliases and bdSeq, sends data in spool order, and empties the spool on acks', async () => {
    const h = await host();
    const dir = await stateDir();
    const a = agent(dir);
    await a.start();
    expect(hub.requests).toHaveLength(1);

    const nbirth = await waitUntil(() => h.ofType('NBIRTH')[0], 'NBIRTH');
    expect(nbirth.payload.seq).toBe(0);
    expect(TestHost.bdSeqOf(nbirth)).toBe(0);
    const names = nbirth.payload.metrics.map((m) => m.name);
    expect(names).toEqual(
      expect.arrayContaining([
        'bdSeq',
        REBIRTH,
        NODE_PROPERTIES.agentVersion,
        SPOOL_ID,
        ...Object.values(HEALTH_METRICS),
      ]),
    );
    expect(nbirth.payload.metrics.find((m) => m.name === REBIRTH)?.value).toBe(false);

    const dbirth = await waitUntil(() => h.ofType('DBIRTH').find((m) => m.device === 'd1.dev'), 'DBIRTH');
    const temp = dbirth.payload.metrics.find((m) => m.name === 'Temp');
    expect(temp).toMatchObject({ datatype: DataType.Double, properties: { engUnit: 'Cel' } });
    expect(dbirth.payload.metrics.find((m) => m.name === 'Count')?.datatype).toBe(DataType.Int64);
    const aliases = [...nbirth.payload.metrics, ...dbirth.payload.metrics].map((m) => m.alias);
    expect(aliases.every((x) => typeof x === 'number' && x > 0)).toBe(true);
    expect(new Set(aliases).size).toBe(aliases.length);

    await waitUntil(() => h.ofType('DDATA').length >= 20, '20 DDATA');
    const ddata = h.ofType('DDATA');
    const ids = ddata.map((m) => m.spoolId as number);
    expect(ids.every((id, i) => i === 0 || id > (ids[i - 1] as number))).toBe(true);
    const first = ddata[0] as SeenMessage;
    expect(first.payload.metrics.every((m) => !m.name && (m.alias ?? 0) > 0)).toBe(true);
    expect(first.values.get('Temp')?.timestamp).toBeTypeOf('number');
    expect(ddata.find((m) => m.values.get('Count')?.properties?.Quality === 64)).toBeDefined();
    // seq continues from the births and wraps at 256
    const seqs = h.messages.filter((m) => m.type !== 'NDEATH').map((m) => m.payload.seq as number);
    expect(seqs.every((s, i) => i === 0 || s === ((seqs[i - 1] as number) + 1) % 256)).toBe(true);

    const lastSeen = ids[ids.length - 1] as number;
    await waitUntil(
      () => (a.status().spool?.firstId ?? Number.POSITIVE_INFINITY) > lastSeen,
      'acked records to leave the spool',
    );
    const status = a.status();
    expect(status).toMatchObject({ state: 'running', nodeId: NODE, connected: true, hubOnline: true });
    expect(status.rttMs).toBeTypeOf('number');
    expect(status.drivers).toMatchObject([{ id: 'd1', state: 'running' }]);

    await a.stop();
    const ndeath = await waitUntil(() => h.ofType('NDEATH')[0], 'NDEATH on stop');
    expect(TestHost.bdSeqOf(ndeath)).toBe(0);

    // A restart uses the stored identity: no second enrolment, next bdSeq.
    const b = agent(dir);
    await b.start();
    expect(hub.requests).toHaveLength(1);
    const rebirth = await waitUntil(() => h.ofType('NBIRTH')[1], 'NBIRTH after restart');
    expect(TestHost.bdSeqOf(rebirth)).toBe(1);
  });

  it('fails start with the hub code when enrolment is refused', async () => {
    hub.answer = () => ({ status: 410, body: { code: 'CS_ERR_TOKEN_EXPIRED', message: 'expired' } });
    const a = agent(await stateDir());
    await expect(a.start()).rejects.toMatchObject({ code: 'CS_ERR_TOKEN_EXPIRED' });
    expect(a.status().state).toBe('stopped');
  });

  it('answers a Rebirth with births and resends from the oldest unacked record', async () => {
    const h = await host();
    h.autoAck = false;
    const a = agent(await stateDir());
    await a.start();
    await waitUntil(() => h.ofType('DDATA').length >= 5, 'unacked data');
    const oldest = Math.min(...h.spoolIds());
    const mark = h.messages.length;
    await h.rebirth();
    const nbirth = await waitUntil(() => h.messages.slice(mark).find((m) => m.type === 'NBIRTH'), 'NBIRTH');
    expect(nbirth.payload.seq).toBe(0);
    expect(TestHost.bdSeqOf(nbirth)).toBe(TestHost.bdSeqOf(h.ofType('NBIRTH')[0] as SeenMessage));
    const after = h.messages.slice(h.messages.indexOf(nbirth));
    await waitUntil(
      () => h.messages.slice(h.messages.indexOf(nbirth)).some((m) => m.spoolId !== undefined),
      'resend',
    );
    const types = h.messages.slice(h.messages.indexOf(nbirth)).map((m) => m.type);
    expect(types[1]).toBe('DBIRTH');
    const firstResent = h.messages.slice(h.messages.indexOf(nbirth)).find((m) => m.spoolId !== undefined);
    expect(firstResent?.spoolId).toBe(oldest);
    expect(after.length).toBeGreaterThan(0);
    expect(a.status().uplink?.rewinds).toBeGreaterThanOrEqual(1);
  });

  it('resends from the oldest unacked record when acks stop coming', async () => {
    const h = await host();
    h.autoAck = false;
    const a = agent(await stateDir(), {
      uplink: { window: 16, ackTimeoutMs: 300, backoff: { initialMs: 100, maxMs: 400 } },
    });
    await a.start();
    await waitUntil(() => a.status().uplink?.ackTimeouts, 'an ack timeout');
    await waitUntil(() => {
      const ids = h.spoolIds();
      return new Set(ids).size < ids.length;
    }, 'a resent record');
    // The window held: no more than 16 distinct records went out before the resend.
    expect(new Set(h.spoolIds()).size).toBeLessThanOrEqual(32);
    h.autoAck = true;
    await h.ack([...new Set(h.spoolIds())]);
    const seen = Math.max(...h.spoolIds());
    await waitUntil(
      () => (a.status().spool?.firstId ?? Number.POSITIVE_INFINITY) > seen,
      'spool drained after acks resumed',
    );
  });

  it('keeps spooling while the broker is down, then drains the backlog in order while live data flows', async () => {
    const h = await host();
    const a = agent(await stateDir(), { healthIntervalMs: 200 });
    await a.start();
    await waitUntil(() => h.ofType('DDATA').length >= 5, 'first data');
    await broker.goOffline();
    await waitUntil(() => !a.status().connected, 'agent to notice the broker is gone');
    const lastBefore = Math.max(...h.spoolIds());
    await waitUntil(() => (a.status().spool?.lastId ?? 0) >= lastBefore + 60, 'records to pile up');
    expect(a.status().spool?.records).toBeGreaterThanOrEqual(60);
    const mark = h.messages.length;
    await broker.listen();
    await waitUntil(() => a.status().connected && h.connected, 'reconnect');
    const boundary = a.status().uplink?.liveBoundary as number;
    expect(boundary).toBeGreaterThanOrEqual(lastBefore + 60);
    await waitUntil(() => Math.max(...h.spoolIds()) > boundary + 10, 'live data after the backlog', 15_000);
    await waitUntil(
      () => {
        const got = new Set(h.spoolIds());
        for (let id = lastBefore + 1; id <= boundary; id++) if (!got.has(id)) return false;
        return true;
      },
      'every spooled record',
      15_000,
    );

    // In the new session each lane is in id order.
    const ids = dataAfter(h, mark).map((m) => m.spoolId as number);
    const backlog = ids.filter((id) => id <= boundary);
    const live = ids.filter((id) => id > boundary);
    const firstPass = backlog.slice(0, backlog.indexOf(boundary) + 1);
    expect(firstPass.every((id, i) => i === 0 || id > (firstPass[i - 1] as number))).toBe(true);
    expect(live.slice(0, 10).every((id, i) => i === 0 || id > (live[i - 1] as number))).toBe(true);
    // Health went through the spool too, as NDATA.
    const health = h.ofType('NDATA').find((m) => m.values.has(HEALTH_METRICS.cpuPercent));
    expect(health?.values.get(HEALTH_METRICS.spoolRecords)?.value).toBeTypeOf('number');
    const drained = Math.max(...h.spoolIds());
    await waitUntil(
      () => (a.status().spool?.firstId ?? Number.POSITIVE_INFINITY) > drained - 5,
      'backlog acked',
    );
  });

  it('publishes the Will (NDEATH with the session bdSeq) when its socket dies, then comes back with bdSeq+1', async () => {
    const h = await host();
    const a = agent(await stateDir());
    await a.start();
    const birth = await waitUntil(() => h.ofType('NBIRTH')[0], 'NBIRTH');
    await waitUntil(() => broker.clients.has(NODE), 'agent client on the broker');
    broker.dropClient(NODE);
    const death = await waitUntil(() => h.ofType('NDEATH')[0], 'NDEATH from the Will');
    expect(TestHost.bdSeqOf(death)).toBe(TestHost.bdSeqOf(birth));
    const second = await waitUntil(() => h.ofType('NBIRTH')[1], 'NBIRTH after reconnect');
    expect(TestHost.bdSeqOf(second)).toBe(((TestHost.bdSeqOf(birth) as number) + 1) % 256);
  });

  it('publishes a fresh DBIRTH before data carrying a metric the driver added', async () => {
    const h = await host();
    const a = agent(await stateDir());
    await a.start();
    await waitUntil(() => h.ofType('DDATA').length >= 3, 'data');
    drivers[0]?.addMetric({ name: 'Humidity', type: 'double', unit: '%' });
    const data = await waitUntil(
      () => h.ofType('DDATA').find((m) => m.values.has('Humidity')),
      'data with Humidity',
    );
    const births = h.messages.slice(0, h.messages.indexOf(data)).filter((m) => m.type === 'DBIRTH');
    const last = births[births.length - 1];
    expect(last?.payload.metrics.find((m) => m.name === 'Humidity')).toMatchObject({
      properties: { engUnit: '%' },
    });
  });

  it('runs the lamp-pole simulator from the default driver config', async () => {
    const h = await host();
    const a = agent(
      await stateDir(),
      {
        drivers: [{ type: 'lamp-pole-sim', id: 'lamp-pole-sim', options: { poleId: 'P-1', intervalMs: 50 } }],
      },
      builtinDrivers,
    );
    await a.start();
    await waitUntil(() => h.ofType('DDATA').length >= 3, 'simulator data');
    const born = h.ofType('DBIRTH').map((m) => m.device);
    expect(born).toEqual(expect.arrayContaining(['P-1.air', 'P-1.lamp']));
    const air = h.ofType('DBIRTH').find((m) => m.device === 'P-1.air');
    expect(air?.payload.metrics.some((m) => m.properties?.engUnit)).toBe(true);
    expect(a.status().drivers).toMatchObject([{ id: 'lamp-pole-sim', state: 'running' }]);
  });
});
