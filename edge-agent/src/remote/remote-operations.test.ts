import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { LogTailResult } from '@citysense/protocol';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eventually } from '../../../cloud-hub/src/testing/eventually.ts';
import { startTestHub, type TestHub } from '../../../cloud-hub/src/testing/test-hub.ts';
import { Agent } from '../agent.ts';
import { resolveAgentConfig } from '../config.ts';
import type { DoctorReport } from '../doctor/report.ts';
import type { DriverRegistry } from '../driver-host.ts';
import { waitUntil } from '../testing/harness.ts';
import { TestDriver, testDriverStats } from '../testing/test-driver.ts';

interface OperationView {
  id: string;
  kind: string;
  state: string;
  code: string | null;
  message: string | null;
  result: unknown;
}

/** Drivers this node's build knows: no opcua, modbus, … so a config naming them passes the hub and fails here. */
const registry: DriverRegistry = {
  'lamp-pole-sim': ({ id, options }) => new TestDriver({ id, intervalMs: 200, ...(options as object) }),
};

const TERMINAL = new Set(['succeeded', 'failed', 'rolled-back', 'expired']);

describe('remote operations from the hub to a real agent', () => {
  let t: TestHub;
  let dir: string;
  let agent: Agent;
  let nodeId: string;

  beforeAll(async () => {
    t = await startTestHub();
    dir = await mkdtemp(join(tmpdir(), 'cs-remote-ops-'));
    const { body } = await t.api<{ token: string }>('POST', '/v1/enrollment-tokens', { name: 'gw-remote' });
    agent = new Agent(
      resolveAgentConfig({
        hubUrl: t.httpUrl,
        token: body.token,
        stateDir: join(dir, 'state'),
        healthIntervalMs: 60_000,
        uplink: { backoff: { initialMs: 100, maxMs: 500 } },
        inference: { enabled: false },
        drivers: [{ type: 'lamp-pole-sim', id: 'pole', options: {} }],
      }),
      undefined,
      { driverRegistry: registry },
    );
    await agent.start();
    await waitUntil(() => agent.status().connected, 'agent connected');
    nodeId = agent.status().nodeId as string;
  }, 30_000);

  afterAll(async () => {
    await agent?.stop();
    await t?.stop();
    testDriverStats.clear();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  /** Asks for an operation and waits for its end. */
  async function run(kind: string, params?: unknown): Promise<OperationView> {
    const created = await t.api<OperationView>('POST', `/v1/nodes/${nodeId}/operations`, { kind, params });
    expect(created.status, JSON.stringify(created.body)).toBe(201);
    return finished(created.body.id);
  }

  function finished(id: string): Promise<OperationView> {
    return eventually(
      async () => {
        const res = await t.api<OperationView>('GET', `/v1/nodes/${nodeId}/operations/${id}`);
        return TERMINAL.has(res.body.state) ? res.body : undefined;
      },
      20_000,
      `operation ${id} to finish`,
    );
  }

  const driverIds = () =>
    agent
      .status()
      .drivers.map((d) => d.id)
      .sort();

  it('returns the node’s own doctor report', async () => {
    const op = await run('doctor', { timeoutMs: 3000 });
    expect(op.state).toBe('succeeded');
    const report = op.result as DoctorReport;
    expect(report.nodeId).toBe(nodeId);
    expect(report.checks.find((c) => c.name === 'hub')?.verdict).toBe('ok');
    expect(report.checks.find((c) => c.name === 'driver:pole')?.verdict).toBe('ok');
  }, 20_000);

  it('restarts one driver: its restart counter goes up and it runs again', async () => {
    const before = agent.status().drivers.find((d) => d.id === 'pole')?.restarts ?? -1;
    const op = await run('driver-restart', { driverId: 'pole' });
    expect(op.state).toBe('succeeded');
    expect(op.result).toMatchObject({ driverId: 'pole', state: 'running', restarts: before + 1 });
    expect(agent.status().drivers.find((d) => d.id === 'pole')).toMatchObject({
      state: 'running',
      restarts: before + 1,
    });
    const unknown = await run('driver-restart', { driverId: 'nope' });
    expect(unknown).toMatchObject({ state: 'failed', code: 'CS_ERR_DRIVER_NOT_FOUND' });
  }, 20_000);

  it('tails the agent log, filters by level and follows with the cursor', async () => {
    const first = await run('log-tail', { lines: 50 });
    expect(first.state).toBe('succeeded');
    const tail = first.result as LogTailResult;
    expect(tail.lines.length).toBeGreaterThan(0);
    expect(tail.lines.some((l) => l.msg === 'agent running')).toBe(true);

    // Something new happens on the node; following from the cursor returns only that.
    await run('driver-restart', { driverId: 'pole' });
    const next = (await run('log-tail', { since: tail.next })).result as LogTailResult;
    expect(next.lines.length).toBeGreaterThan(0);
    expect(next.lines.every((l) => l.seq > tail.next)).toBe(true);
    expect(next.lines.some((l) => l.msg === 'driver running' && l.component === 'driver-host')).toBe(true);

    const warnings = (await run('log-tail', { level: 'warn', lines: 1000 })).result as LogTailResult;
    expect(
      warnings.lines.every((l) => l.level === 'warn' || l.level === 'error' || l.level === 'fatal'),
    ).toBe(true);
  }, 20_000);

  it('refuses bad requests with codes before they reach the node', async () => {
    const kind = await t.api<{ code: string }>('POST', `/v1/nodes/${nodeId}/operations`, { kind: 'reboot' });
    expect(kind).toMatchObject({ status: 400, body: { code: 'CS_ERR_OPERATION_KIND' } });
    const params = await t.api<{ code: string }>('POST', `/v1/nodes/${nodeId}/operations`, {
      kind: 'log-tail',
      params: { lines: 0 },
    });
    expect(params).toMatchObject({ status: 400, body: { code: 'CS_ERR_OPERATION_INVALID' } });
    const config = await t.api<{ code: string }>('PUT', `/v1/nodes/${nodeId}/config`, {
      config: { drivers: [{ type: 'toaster', id: 'x' }] },
    });
    expect(config).toMatchObject({ status: 400, body: { code: 'CS_ERR_CONFIG_INVALID' } });
  });

  it('applies a valid configuration (a driver added), persists its version and reports it', async () => {
    const pushed = await t.api<{ version: number; operation: OperationView }>(
      'PUT',
      `/v1/nodes/${nodeId}/config`,
      {
        config: {
          drivers: [
            { type: 'lamp-pole-sim', id: 'pole', options: {} },
            { type: 'lamp-pole-sim', id: 'extra', options: {} },
          ],
        },
        comment: 'add the extra sensor',
        healthTimeoutMs: 5000,
      },
    );
    expect(pushed.status, JSON.stringify(pushed.body)).toBe(201);
    expect(pushed.body.version).toBe(1);
    const op = await finished(pushed.body.operation.id);
    expect(op.state, op.message ?? '').toBe('succeeded');
    expect(driverIds()).toEqual(['extra', 'pole']);
    expect(agent.status().drivers.every((d) => d.state === 'running')).toBe(true);
    expect(agent.status().configVersion).toBe(1);
    const stored = JSON.parse(await readFile(join(dir, 'state', 'remote-config.json'), 'utf8'));
    expect(stored).toMatchObject({ current: { version: 1 }, applying: false });
    const history = await t.api<{
      activeVersion: number;
      versions: Array<{ version: number; state: string; comment: string }>;
    }>('GET', `/v1/nodes/${nodeId}/config/versions`);
    expect(history.body.activeVersion).toBe(1);
    expect(history.body.versions[0]).toMatchObject({
      version: 1,
      state: 'applied',
      comment: 'add the extra sensor',
    });
  }, 20_000);

  it('refuses on the node a configuration its build cannot run; the old one keeps running', async () => {
    const pushed = await t.api<{ version: number; operation: OperationView }>(
      'PUT',
      `/v1/nodes/${nodeId}/config`,
      {
        config: { drivers: [{ type: 'opcua', id: 'plc', options: {} }] },
      },
    );
    expect(pushed.status).toBe(201);
    const op = await finished(pushed.body.operation.id);
    expect(op).toMatchObject({ state: 'failed', code: 'CS_ERR_CONFIG_INVALID' });
    expect(op.message).toMatch(/no driver "opcua"/);
    expect(driverIds()).toEqual(['extra', 'pole']);
    expect(agent.status().configVersion).toBe(1);
    const history = await t.api<{
      activeVersion: number;
      versions: Array<{ version: number; state: string }>;
    }>('GET', `/v1/nodes/${nodeId}/config/versions`);
    expect(history.body.versions[0]).toMatchObject({ version: pushed.body.version, state: 'refused' });
    expect(history.body.activeVersion).toBe(1);
  }, 20_000);

  it('rolls back on its own a configuration that leaves the node unhealthy', async () => {
    const pushed = await t.api<{ version: number; operation: OperationView }>(
      'PUT',
      `/v1/nodes/${nodeId}/config`,
      {
        config: {
          drivers: [
            { type: 'lamp-pole-sim', id: 'pole', options: {} },
            { type: 'lamp-pole-sim', id: 'broken', options: { failStarts: 1000 } },
          ],
        },
        healthTimeoutMs: 1500,
      },
    );
    const op = await finished(pushed.body.operation.id);
    expect(op).toMatchObject({ state: 'rolled-back', code: 'CS_ERR_CONFIG_UNHEALTHY' });
    expect(op.message).toMatch(/driver broken/);
    expect(driverIds()).toEqual(['extra', 'pole']);
    await waitUntil(() => agent.status().drivers.every((d) => d.state === 'running'), 'old drivers running');
    expect(agent.status().configVersion).toBe(1);
    const stored = JSON.parse(await readFile(join(dir, 'state', 'remote-config.json'), 'utf8'));
    expect(stored).toMatchObject({ current: { version: 1 }, applying: false });
  }, 20_000);

  it('expires an operation for a node that never answers', async () => {
    const offline = await t.enroll('gw-offline');
    const created = await t.api<OperationView>('POST', `/v1/nodes/${offline.nodeId}/operations`, {
      kind: 'doctor',
      timeoutMs: 1000,
    });
    expect(created.body.state).toBe('pending');
    const op = await eventually(async () => {
      const res = await t.api<OperationView>(
        'GET',
        `/v1/nodes/${offline.nodeId}/operations/${created.body.id}`,
      );
      return res.body.state === 'expired' ? res.body : undefined;
    }, 10_000);
    expect(op.code).toBe('CS_ERR_OPERATION_EXPIRED');
  });

  it('puts every operation, its outcome and who asked in the audit log', async () => {
    const { body } = await t.api<{
      entries: Array<{
        action: string;
        actor: { kind: string };
        targetId: string;
        outcome: string;
        after: { kind: string };
      }>;
    }>('GET', `/v1/audit?action=node-operation.*&target=${nodeId}&limit=1000`);
    const actions = body.entries.map((e) => `${e.action}:${e.after.kind}`);
    for (const expected of [
      'node-operation.request:doctor',
      'node-operation.succeeded:doctor',
      'node-operation.request:driver-restart',
      'node-operation.failed:driver-restart',
      'node-operation.succeeded:log-tail',
      'node-operation.succeeded:config-apply',
      'node-operation.failed:config-apply',
      'node-operation.rolled-back:config-apply',
    ])
      expect(actions).toContain(expected);
    expect(body.entries.every((e) => e.actor.kind === 'admin' && e.targetId === nodeId)).toBe(true);
    const pushes = await t.api<{ entries: unknown[] }>(
      'GET',
      `/v1/audit?action=node-config.push&target=${nodeId}`,
    );
    expect(pushes.body.entries.length).toBe(3);
    const expired = await t.api<{ entries: Array<{ outcome: string; reason: string }> }>(
      'GET',
      '/v1/audit?action=node-operation.expired',
    );
    expect(expired.body.entries[0]).toMatchObject({ outcome: 'failure', reason: 'CS_ERR_OPERATION_EXPIRED' });
  });
});
