import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { Agent } from './agent.ts';
import { resolveAgentConfig } from './config.ts';
import { checkDrivers } from './doctor/drivers.ts';
import {
  type CrashLoopOptions,
  DEFAULT_STOP_TIMEOUT_MS,
  DRIVER_STATUS_FILE,
  DriverHost,
  type DriverStatus,
} from './driver-host.ts';
import { TestBroker, TestEnrollServer, TestHost, waitUntil } from './testing/harness.ts';
import { testDriverStats } from './testing/test-driver.ts';
import { TEST_REGISTRY_MODULE, testDriverRegistry } from './testing/test-registry.ts';

type Drivers = ConstructorParameters<typeof DriverHost>[0]['drivers'];

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

describe('driver isolation in the host', () => {
  let host: DriverHost | null = null;
  afterEach(async () => {
    await host?.stop();
    host = null;
    testDriverStats.clear();
  });

  function start(drivers: Drivers, crashLoop?: CrashLoopOptions, statusFile?: string) {
    const batches = new Map<string, number>();
    host = new DriverHost({
      drivers,
      registry: testDriverRegistry,
      processRegistry: TEST_REGISTRY_MODULE,
      backoff: { initialMs: 50, maxMs: 200 },
      crashLoop,
      statusFile,
      onReadings: (_batch, driverId) => batches.set(driverId, (batches.get(driverId) ?? 0) + 1),
    });
    const of = (id: string) => host?.status().find((s) => s.id === id) as DriverStatus;
    return { host, batches, of };
  }

  it('a driver that throws in a timer crashes only its own process and is restarted; the others keep emitting', async () => {
    const { host, batches, of } = start([
      { type: 'lamp-pole-sim', id: 'crashy', options: { throwInTimerAfter: 5 }, isolation: 'process' },
      { type: 'lamp-pole-sim', id: 'steady', options: {} },
      { type: 'load-generator', id: 'steady-child', options: {}, isolation: 'process' },
    ]);
    await host.start();
    // On a loaded machine the first child may already have crashed while the others started.
    const firstPid: number = await waitUntil(
      () => (of('crashy').state === 'running' ? of('crashy').pid : null),
      'crashy running',
    );
    const restartsBefore = of('crashy').restarts;
    expect(firstPid).not.toBe(process.pid);

    await waitUntil(
      () => of('crashy').restarts > restartsBefore && of('crashy').state === 'running',
      'crashy restarted',
    );
    expect(of('crashy').lastFault).toMatchObject({ code: 'CS_ERR_DRIVER_CRASHED' });
    expect(of('crashy').lastFault?.message).toContain('driver bug in a timer callback');
    expect(of('crashy').pid).not.toBe(firstPid);
    expect(alive(firstPid)).toBe(false);

    const crashyBefore = batches.get('crashy') ?? 0;
    const steadyBefore = batches.get('steady') ?? 0;
    const childBefore = batches.get('steady-child') ?? 0;
    await waitUntil(
      () =>
        (batches.get('crashy') ?? 0) > crashyBefore &&
        (batches.get('steady') ?? 0) > steadyBefore + 5 &&
        (batches.get('steady-child') ?? 0) > childBefore + 5,
      'readings from the restarted driver and the others',
    );
    expect(of('steady')).toMatchObject({ state: 'running', faults: 0, restarts: 0, isolation: 'inline' });
    expect(of('steady-child')).toMatchObject({
      state: 'running',
      faults: 0,
      restarts: 0,
      isolation: 'process',
    });
  });

  it('a crash-looping driver ends up faulted with the long backoff while the others keep going', async () => {
    const loop = { faults: 3, windowMs: 30_000, backoffMs: 60_000 };
    const stateDir = await mkdtemp(join(tmpdir(), 'cs-crash-loop-'));
    const drivers: Drivers = [
      { type: 'lamp-pole-sim', id: 'looper', options: { throwInTimerAfter: 0 }, isolation: 'process' },
      { type: 'lamp-pole-sim', id: 'steady', options: {} },
    ];
    const { host, batches, of } = start(drivers, loop, join(stateDir, DRIVER_STATUS_FILE));
    await host.start();
    const looping: DriverStatus = await waitUntil(
      () => (of('looper').crashLoop ? of('looper') : null),
      'crash loop detected',
      30_000,
    );
    expect(looping).toMatchObject({ state: 'faulted', restarts: loop.faults - 1 });
    expect(looping.lastFault?.code).toBe('CS_ERR_DRIVER_CRASHED');
    // Next restart waits the crash-loop backoff, not the 200 ms ceiling of the normal one.
    expect((looping.nextRestartAt ?? 0) - (looping.lastFault?.at ?? 0)).toBeGreaterThanOrEqual(
      loop.backoffMs,
    );
    expect(looping.pid).toBeNull();
    const steadyBefore = batches.get('steady') ?? 0;
    await waitUntil(() => (batches.get('steady') ?? 0) > steadyBefore + 5, 'steady still producing');
    expect(of('steady')).toMatchObject({ state: 'running', faults: 0, crashLoop: false });
    expect(of('looper')).toMatchObject({ state: 'faulted', restarts: loop.faults - 1 });

    // `citysense doctor` reads the crash loop from the status file the host keeps in stateDir.
    await host.stop();
    const config = resolveAgentConfig({ stateDir, drivers });
    const lines = await checkDrivers(testDriverRegistry)({
      config,
      identity: null,
      signal: AbortSignal.timeout(5_000),
      timeoutMs: 5_000,
    });
    const looper = lines.find((l) => l.name === 'driver-run:looper');
    expect(looper?.verdict).toBe('fail');
    expect(looper?.detail).toContain('crash-looping');
    expect(looper?.detail).toContain('CS_ERR_DRIVER_CRASHED');
    expect(lines.find((l) => l.name === 'driver-run:steady')?.verdict).toBe('ok');
    await rm(stateDir, { recursive: true, force: true });
  });

  it('a driver whose start hangs gets CS_ERR_DRIVER_START_TIMEOUT and is retried with a fresh instance', async () => {
    const { host, of } = start([
      { type: 'lamp-pole-sim', id: 'hung', options: { hangStart: true }, startTimeoutMs: 200 },
      {
        type: 'lamp-pole-sim',
        id: 'hung-child',
        options: { hangStart: true },
        startTimeoutMs: 2_000,
        isolation: 'process',
      },
      { type: 'lamp-pole-sim', id: 'steady', options: {} },
    ]);
    await host.start();
    expect(of('steady').state).toBe('running');
    expect(of('hung').lastFault?.code).toBe('CS_ERR_DRIVER_START_TIMEOUT');
    expect(of('hung-child').lastFault?.code).toBe('CS_ERR_DRIVER_START_TIMEOUT');
    await waitUntil(() => (testDriverStats.get('hung')?.starts ?? 0) >= 3, 'hung retried twice');
    expect(of('hung').restarts).toBeGreaterThanOrEqual(2);
    await waitUntil(() => of('hung-child').restarts >= 1, 'hung child retried');
  });

  it('stops a driver process whose stop hangs within stopTimeoutMs by killing it', async () => {
    const { host, of } = start([
      {
        type: 'lamp-pole-sim',
        id: 'stubborn',
        options: { hangStop: true },
        isolation: 'process',
        stopTimeoutMs: 300,
      },
    ]);
    await host.start();
    const pid = of('stubborn').pid as number;
    expect(alive(pid)).toBe(true);
    const t0 = Date.now();
    await host.stop();
    expect(alive(pid)).toBe(false);
    // Far below the 10 s default: the configured budget was used, then SIGKILL.
    expect(Date.now() - t0).toBeLessThan(DEFAULT_STOP_TIMEOUT_MS / 2);
    expect(of('stubborn').state).toBe('stopped');
  });

  it('abandons an inline driver whose stop hangs, so the host still stops', async () => {
    const { host, of } = start([
      { type: 'lamp-pole-sim', id: 'stubborn', options: { hangStop: true }, stopTimeoutMs: 200 },
    ]);
    await host.start();
    await host.stop();
    expect(of('stubborn').state).toBe('stopped');
  });

  it('restarts a driver that goes silent for stallAfterMs', async () => {
    const { host, of } = start([
      { type: 'lamp-pole-sim', id: 'silent', options: { stallAfter: 3 }, stallAfterMs: 1000 },
      // Generous: a loaded CI box must not stall the steady one's 20 ms timer for a second.
      { type: 'lamp-pole-sim', id: 'steady', options: {}, stallAfterMs: 1000 },
    ]);
    await host.start();
    await waitUntil(() => of('silent').restarts >= 1, 'silent driver restarted');
    expect(of('silent').lastFault?.code).toBe('CS_ERR_DRIVER_STALLED');
    expect(of('steady')).toMatchObject({ state: 'running', faults: 0 });
  });
});

describe('driver isolation in the agent', () => {
  let broker: TestBroker;
  let hub: TestEnrollServer;
  const cleanups: Array<() => Promise<void>> = [];

  beforeAll(async () => {
    broker = await TestBroker.start();
    hub = new TestEnrollServer(broker);
    await hub.start();
  });
  afterEach(async () => {
    for (const c of cleanups.splice(0).reverse()) await c();
  });
  afterAll(async () => {
    await hub.close();
    await broker.close();
  });

  it('a crash-looping driver is isolated: the other driver and the uplink keep publishing', async () => {
    const h = new TestHost(broker);
    await h.start();
    await h.publishState(true);
    cleanups.push(() => h.close());
    const dir = await mkdtemp(join(tmpdir(), 'cs-isolation-'));
    cleanups.push(() => rm(dir, { recursive: true, force: true }));
    const config = resolveAgentConfig({
      hubUrl: hub.url,
      token: 'tok',
      stateDir: dir,
      healthIntervalMs: 60_000,
      spool: { maxBytes: 16 * 1024 * 1024 },
      uplink: { window: 64, ackTimeoutMs: 3000, backoff: { initialMs: 100, maxMs: 400 } },
      drivers: [
        { type: 'lamp-pole-sim', id: 'crashy', options: { throwInTimerAfter: 3 }, isolation: 'process' },
        { type: 'lamp-pole-sim', id: 'steady', options: { intervalMs: 20 } },
      ],
    });
    const agent = new Agent(config, undefined, {
      driverRegistry: testDriverRegistry,
      processDriverRegistry: TEST_REGISTRY_MODULE,
    });
    cleanups.push(() => agent.stop());
    await agent.start();
    const crashy = () => agent.status().drivers.find((d) => d.id === 'crashy') as DriverStatus;

    await waitUntil(() => crashy().faults >= 1, 'the driver process to crash', 15_000);
    expect(crashy().lastFault?.code).toBe('CS_ERR_DRIVER_CRASHED');
    const afterCrash = h.messages.length;
    // The agent (and its uplink) survived: the steady driver's data still reaches the host.
    await h.nextMessage(
      (m) => m.type === 'DDATA' && m.device === 'steady.dev' && h.messages.indexOf(m) >= afterCrash,
    );
    // The crashed driver is restarted in a fresh process and publishes again.
    await waitUntil(() => crashy().restarts >= 1, 'the crashed driver restarted', 15_000);
    const afterRestart = h.messages.length;
    await h.nextMessage(
      (m) => m.type === 'DDATA' && m.device === 'crashy.dev' && h.messages.indexOf(m) >= afterRestart,
    );
    expect(agent.status()).toMatchObject({ state: 'running', connected: true });
    expect(agent.status().drivers.find((d) => d.id === 'steady')).toMatchObject({
      state: 'running',
      faults: 0,
    });
  });
});
