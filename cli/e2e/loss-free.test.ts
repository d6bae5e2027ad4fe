import type { ChildProcess } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { decodeRecord, Spool } from '@citysense/edge-agent';
import { afterAll, describe, expect, it, onTestFailed } from 'vitest';
import { eventually, freePort, kill9, spawnCli, terminate } from './processes.ts';

/**
 * The loss-free promise, end to end with real processes: an agent killed with
 * SIGKILL mid-stream and a hub killed with SIGKILL while agents run must not lose
 * or duplicate a single reading that the agent had accepted into its spool.
 */
const ADMIN = 'e2e-admin-token-0123456789';
const SERIES = ['load-0000/M0', 'load-0000/M1', 'load-0001/M0', 'load-0001/M1'];
const RATE = 400; // readings/s over 4 series: one round every 10 ms per series
const ROUND_MS = 10;
const LIMIT = 4000; // 10 s of production per agent life

describe('loss-free telemetry across kill -9', () => {
  const children: ChildProcess[] = [];
  let dir = '';
  afterAll(async () => {
    await Promise.all(children.map((c) => kill9(c)));
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('stores every spooled reading exactly once after an agent and then the hub are killed', async () => {
    dir = await mkdtemp(join(tmpdir(), 'citysense-e2e-'));
    const logDir = dir;
    onTestFailed(async () => {
      console.error(
        children.map((c) => `pid ${c.pid}: exit ${c.exitCode} signal ${c.signalCode}`).join('\n'),
      );
      for (const name of ['hub.log', 'agent.log']) {
        const text = await readFile(join(logDir, name), 'utf8').catch(() => '');
        console.error(`--- last lines of ${name}\n${text.split('\n').slice(-40).join('\n')}`);
      }
    });
    const httpPort = await freePort();
    const mqttPort = await freePort();
    const hubUrl = `http://127.0.0.1:${httpPort}`;
    const hubArgs = [
      'hub',
      '--data-dir',
      join(dir, 'hub'),
      '--http-host',
      '127.0.0.1',
      '--http-port',
      String(httpPort),
      '--mqtt-host',
      '127.0.0.1',
      '--mqtt-port',
      String(mqttPort),
      '--ingest-flush-ms',
      '20',
      '--sip-host',
      '127.0.0.1',
      '--sip-port',
      '0',
      '--media-host',
      '127.0.0.1',
      '--media-rtmp-port',
      '0',
      '--media-http-port',
      '0',
    ];
    const startHub = () => {
      const c = spawnCli(hubArgs, join(dir, 'hub.log'), { CITYSENSE_ADMIN_TOKEN: ADMIN });
      children.push(c);
      return c;
    };
    const api = async <T>(method: string, path: string, body?: unknown): Promise<T> => {
      const res = await fetch(`${hubUrl}${path}`, {
        method,
        headers: {
          authorization: `Bearer ${ADMIN}`,
          ...(body ? { 'content-type': 'application/json' } : {}),
        },
        body: body ? JSON.stringify(body) : undefined,
      });
      if (!res.ok) throw new Error(`${method} ${path}: ${res.status} ${await res.text()}`);
      return (await res.json()) as T;
    };
    const times = async (series: string, from: number, to: number): Promise<number[]> => {
      const [device, metric] = series.split('/');
      const rows = await api<Array<{ time: string }>>(
        'GET',
        `/v1/readings?node=gw-e2e&device=${device}&metric=${metric}&from=${from}&to=${to}&limit=100000`,
      );
      return rows.map((r) => new Date(r.time).getTime());
    };
    const grid = (start: number, rounds: number) =>
      Array.from({ length: rounds }, (_, r) => start + r * ROUND_MS);

    let hub = startHub();
    await eventually(() => fetch(`${hubUrl}/health`).then((r) => r.ok), 30_000, 'hub up');
    const { token } = await api<{ token: string }>('POST', '/v1/enrollment-tokens', { name: 'gw-e2e' });

    const stateDir = join(dir, 'agent');
    await mkdir(stateDir, { recursive: true });
    const life1 = Date.now() - 3_600_000; // first life's readings: one hour ago, on a 10 ms grid
    const life2 = life1 + 1_000_000;
    const agentConfig = async (startTime: number) => {
      const file = join(dir, `agent-${startTime}.json`);
      await writeFile(
        file,
        JSON.stringify({
          hubUrl,
          stateDir,
          healthIntervalMs: 500,
          uplink: { ackTimeoutMs: 2000, backoff: { initialMs: 100, maxMs: 500 } },
          drivers: [
            {
              type: 'load-generator',
              id: 'load',
              options: {
                devices: 2,
                metrics: 2,
                ratePerSecond: RATE,
                batchSize: 20,
                limit: LIMIT,
                startTime,
              },
            },
          ],
        }),
      );
      return file;
    };
    const startAgent = async (startTime: number, withToken: boolean) => {
      const c = spawnCli(
        ['agent', '--config', await agentConfig(startTime), ...(withToken ? ['--token', token] : [])],
        join(dir, 'agent.log'),
      );
      children.push(c);
      return c;
    };

    // Life 1: stream, then SIGKILL the agent mid-stream.
    let agent = await startAgent(life1, true);
    await eventually(
      async () => (await times('load-0000/M0', life1, life2)).length >= 150,
      30_000,
      'first readings stored',
    );
    await kill9(agent);

    // What the dead agent had accepted: everything stored so far plus its unacked spool.
    const spool = new Spool({
      dir: join(stateDir, 'spool'),
      maxBytes: 256 * 1024 * 1024,
      policy: 'drop-oldest',
    });
    await spool.open();
    const lastAccepted = new Map<string, number>();
    for (const s of SERIES) lastAccepted.set(s, Math.max(0, ...(await times(s, life1, life2))));
    const unacked = await spool.read(spool.firstUnackedId() ?? Number.MAX_SAFE_INTEGER, 1_000_000, 1 << 30);
    for (const rec of unacked) {
      const r = decodeRecord(rec.payload);
      for (const m of r.metrics) {
        const key = `${r.device}/${m.name}`;
        if (lastAccepted.has(key) && m.timestamp !== undefined)
          lastAccepted.set(key, Math.max(lastAccepted.get(key) ?? 0, m.timestamp));
      }
    }
    await spool.close();

    // Life 2: restart without a token (identity is on disk); SIGKILL the hub mid-stream and restart it.
    agent = await startAgent(life2, false);
    await eventually(
      async () => (await times('load-0000/M0', life2, life2 + 1_000_000)).length >= 200,
      30_000,
      'second life streaming',
    );
    await kill9(hub);
    await new Promise((r) => setTimeout(r, 1500));
    hub = startHub();

    // Everything accepted in life 1 arrives, with no hole and no duplicate.
    for (const s of SERIES) {
      const last = lastAccepted.get(s) ?? 0;
      const rounds = (last - life1) / ROUND_MS + 1;
      const stored = await eventually(
        async () => {
          const t = await times(s, life1, last + 1); // `to` is exclusive
          return t.length >= rounds ? t : undefined;
        },
        60_000,
        `life-1 backlog of ${s}`,
      );
      expect(stored).toEqual(grid(life1, rounds));
    }
    // Life 2 produced exactly LIMIT readings; all of them arrive despite the hub's death.
    for (const s of SERIES) {
      const stored = await eventually(
        async () => {
          const t = await times(s, life2, life2 + 1_000_000);
          return t.length >= LIMIT / SERIES.length ? t : undefined;
        },
        90_000,
        `life-2 readings of ${s}`,
      );
      expect(stored).toEqual(grid(life2, LIMIT / SERIES.length));
    }
    const node = await api<{ status: string }>('GET', '/v1/nodes/gw-e2e');
    expect(node.status).toBe('online');
    expect(await terminate(agent)).toBe(0);
    expect(await terminate(hub)).toBe(0);
  }, 240_000);
});
