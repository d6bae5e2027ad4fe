/**
 * Field-driver benchmark (`npm run bench:drivers`): how many OPC UA monitored items and Modbus
 * registers one agent sustains, as readings/s delivered to the driver's consumer and the CPU the
 * agent side spends on them, next to a baseline measured in the same run against the same
 * simulated field devices:
 *  1. OPC UA: 1k, 5k and 10k monitored items sampled every 100 ms (published every 100 ms) through
 *     the OpcUaDriver, against a bare node-opcua ClientSubscription on the same items that only counts
 *     its `changed` events; once more with the driver in its own process (edge-agent
 *     `isolation: 'process'`), to show what the IPC hop costs;
 *  2. Modbus TCP: 30 to 240 units behind one gateway polled every 100 ms (then 20 ms) through the
 *     ModbusDriver, against a bare modbus-serial loop issuing the same read blocks without decoding.
 * The simulators run in a child process. On a box with 2+ cores the agent side is pinned to core 0
 * and the simulators to core 1 (taskset), so the figures are for one agent core.
 *
 *   npm run bench:drivers
 *   BENCH_OPCUA_ITEMS=1000,5000 BENCH_MODBUS_UNITS=30,240 BENCH_MEASURE_MS=4000 npm run bench:drivers
 */
import { execFileSync, fork } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { availableParallelism, cpus } from 'node:os';
import { fileURLToPath, pathToFileURL } from 'node:url';
import type { Driver, ModbusDeviceConfig, Reading } from '@citysense/device-drivers';
import ModbusSerial from 'modbus-serial';
import * as opcua from 'node-opcua';
import type { SimReply, SimRequest } from './simulators.child.ts';

process.env.CITYSENSE_LOG_LEVEL ??= 'warn';
const { ModbusDriver, OpcUaDriver, planReads } = await import('@citysense/device-drivers');
const { rootLogger } = await import('@citysense/protocol');
const { ProcessDriver, BUILTIN_REGISTRY_MODULE } = await import('../../edge-agent/src/driver-process.ts');

const list = (v: string | undefined, d: number[]) => (v ? v.split(',').map(Number) : d);
const OPCUA_ITEMS = list(process.env.BENCH_OPCUA_ITEMS, [1000, 5000, 10_000]);
const OPCUA_PROCESS_ITEMS = Number(process.env.BENCH_OPCUA_PROCESS_ITEMS ?? 5000);
const MODBUS_UNITS = list(process.env.BENCH_MODBUS_UNITS, [30, 120, 240]);
const WARMUP_MS = Number(process.env.BENCH_WARMUP_MS ?? 3000);
const MEASURE_MS = Number(process.env.BENCH_MEASURE_MS ?? 4000);
const SAMPLING_MS = 100;
const CLK_TCK = 100;

const log = rootLogger;
const tsxLoader = pathToFileURL(createRequire(import.meta.url).resolve('tsx')).href;
const canPin = availableParallelism() >= 2 && hasTaskset();

function hasTaskset(): boolean {
  try {
    execFileSync('taskset', ['-V'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

function pin(pid: number, cpu: number): void {
  if (canPin) execFileSync('taskset', ['-a', '-cp', String(cpu), String(pid)], { stdio: 'ignore' });
}

/** User+system CPU ms of another process (all its threads), from /proc. */
function childCpuMs(pid: number | undefined): number {
  if (!pid) return 0;
  try {
    const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.split(' ') ?? [];
    return ((Number(fields[11]) + Number(fields[12])) * 1000) / CLK_TCK;
  } catch {
    return 0;
  }
}

// ── simulators ──────────────────────────────────────────────────────────────

const sim = fork(fileURLToPath(new URL('./simulators.child.ts', import.meta.url)), [], {
  // node-opcua warns when one variable carries more than 5000 monitored items, which is the point here.
  execArgv: ['--import', tsxLoader, '--no-warnings'],
  serialization: 'advanced',
});
pin(process.pid, 0);
if (sim.pid) pin(sim.pid, 1);

function ask<T extends SimReply['t']>(request: SimRequest & { t: T }): Promise<Extract<SimReply, { t: T }>> {
  return new Promise((resolve) => {
    const onMessage = (m: SimReply) => {
      if (m.t !== request.t) return;
      sim.off('message', onMessage);
      resolve(m as Extract<SimReply, { t: T }>);
    };
    sim.on('message', onMessage);
    sim.send(request);
  });
}

// ── measurement ─────────────────────────────────────────────────────────────

interface Figure {
  readingsPerS: number;
  /** Agent-side CPU, % of one core. */
  cpuPct: number;
  /** Agent-side CPU ms per 1000 readings. */
  cpuMsPer1k: number;
  /** CPU of the simulated field devices, % of their core: near 100 means the field, not the agent, is the limit. */
  fieldCpuPct: number;
}

/** Counts readings for MEASURE_MS after WARMUP_MS; `extraCpuMs` adds another process's CPU (a driver process). */
async function measure(count: () => number, extraCpuMs: () => number = () => 0): Promise<Figure> {
  await new Promise((r) => setTimeout(r, WARMUP_MS));
  const n0 = count();
  const c0 = process.cpuUsage();
  const x0 = extraCpuMs();
  const f0 = childCpuMs(sim.pid);
  const t0 = performance.now();
  await new Promise((r) => setTimeout(r, MEASURE_MS));
  const ms = performance.now() - t0;
  const c = process.cpuUsage(c0);
  const cpuMs = (c.user + c.system) / 1000 + (extraCpuMs() - x0);
  const n = count() - n0;
  const fieldMs = childCpuMs(sim.pid) - f0;
  return {
    fieldCpuPct: Math.round((fieldMs / ms) * 100),
    readingsPerS: Math.round(n / (ms / 1000)),
    cpuPct: Math.round((cpuMs / ms) * 100),
    cpuMsPer1k: n > 0 ? +((cpuMs / n) * 1000).toFixed(2) : Number.NaN,
  };
}

async function runDriver(driver: Driver, extraCpuMs?: () => number): Promise<Figure> {
  let readings = 0;
  driver.on('readings', (batch: Reading[]) => {
    readings += batch.length;
  });
  driver.on('fault', (f) => log.warn({ driver: driver.id, ...f }, 'driver fault during the bench'));
  await driver.start();
  try {
    return await measure(() => readings, extraCpuMs);
  } finally {
    await driver.stop();
  }
}

// ── OPC UA ──────────────────────────────────────────────────────────────────

function opcuaDevices(nodeIds: string[], items: number) {
  const perDevice = 100;
  return Array.from({ length: Math.ceil(items / perDevice) }, (_, d) => ({
    id: `plc-${String(d).padStart(3, '0')}`,
    kind: 'bench-plc',
    nodes: Array.from({ length: Math.min(perDevice, items - d * perDevice) }, (_, i) => ({
      nodeId: nodeIds[(d * perDevice + i) % nodeIds.length] as string,
      metric: `P/${i}`,
      type: 'double' as const,
    })),
  }));
}

function opcuaOptions(endpointUrl: string, nodeIds: string[], items: number) {
  return {
    endpointUrl,
    devices: opcuaDevices(nodeIds, items),
    samplingIntervalMs: SAMPLING_MS,
    publishingIntervalMs: SAMPLING_MS,
    acceptUnknownServerCertificate: true,
    connectTimeoutMs: 60_000,
  };
}

/** The baseline: node-opcua's own client, same subscription and items, counting `changed` events. */
async function bareOpcUa(endpointUrl: string, nodeIds: string[], items: number): Promise<Figure> {
  const client = opcua.OPCUAClient.create({
    endpointMustExist: false,
    securityMode: opcua.MessageSecurityMode.None,
    securityPolicy: opcua.SecurityPolicy.None,
    connectionStrategy: { maxRetry: 0 },
  });
  await client.connect(endpointUrl);
  const session = await client.createSession();
  const subscription = await session.createSubscription2({
    requestedPublishingInterval: SAMPLING_MS,
    requestedLifetimeCount: 100,
    requestedMaxKeepAliveCount: 10,
    maxNotificationsPerPublish: 0,
    publishingEnabled: true,
    priority: 1,
  });
  let readings = 0;
  const group = await subscription.monitorItems(
    Array.from({ length: items }, (_, i) => ({
      nodeId: nodeIds[i % nodeIds.length] as string,
      attributeId: opcua.AttributeIds.Value,
    })),
    { samplingInterval: SAMPLING_MS, discardOldest: true, queueSize: 10 },
    opcua.TimestampsToReturn.Both,
  );
  group.on('changed', () => {
    readings++;
  });
  try {
    return await measure(() => readings);
  } finally {
    await subscription.terminate();
    await session.close();
    await client.disconnect();
  }
}

// ── Modbus ──────────────────────────────────────────────────────────────────

/** The baseline: modbus-serial on one connection, each unit reading its blocks every interval, no decoding. */
async function bareModbus(port: number, devices: ModbusDeviceConfig[], pollMs: number): Promise<Figure> {
  const client = new ModbusSerial.default();
  await client.connectTCP('127.0.0.1', { port });
  client.setTimeout(2000);
  let readings = 0;
  let running = true;
  const fc = { holding: 'writeFC3', input: 'writeFC4', coil: 'writeFC1', discrete: 'writeFC2' } as const;
  const loops = devices.map(async (device) => {
    const blocks = planReads(device.registers);
    while (running) {
      const started = Date.now();
      for (const block of blocks) {
        await new Promise<void>((resolve) => {
          client[fc[block.table]](device.unitId, block.address, block.count, (err: unknown) => {
            if (!err) readings += block.registers.length;
            resolve();
          });
        });
      }
      await new Promise((r) => setTimeout(r, Math.max(0, pollMs - (Date.now() - started))));
    }
  });
  try {
    return await measure(() => readings);
  } finally {
    running = false;
    await Promise.all(loops);
    await new Promise<void>((resolve) => client.close(() => resolve()));
  }
}

// ── run ─────────────────────────────────────────────────────────────────────

interface Row {
  protocol: 'opcua' | 'modbus';
  scenario: string;
  demandPerS: number;
  driver: Figure;
  baseline: Figure;
}

const rows: Row[] = [];
const fmt = (n: number) => n.toLocaleString('en-US');

function print(row: Row): void {
  const ratio = row.driver.readingsPerS / Math.max(1, row.baseline.readingsPerS);
  const cpuRatio = row.driver.cpuMsPer1k / row.baseline.cpuMsPer1k;
  console.log(
    `${row.protocol.padEnd(6)} ${row.scenario.padEnd(34)} demand ${fmt(row.demandPerS).padStart(7)}/s | driver ${fmt(row.driver.readingsPerS).padStart(7)}/s CPU ${String(row.driver.cpuPct).padStart(3)} % (${row.driver.cpuMsPer1k} ms/1k) | baseline ${fmt(row.baseline.readingsPerS).padStart(7)}/s CPU ${String(row.baseline.cpuPct).padStart(3)} % (${row.baseline.cpuMsPer1k} ms/1k) | field CPU ${row.driver.fieldCpuPct}/${row.baseline.fieldCpuPct} % | throughput ×${ratio.toFixed(2)}, CPU/reading ×${cpuRatio.toFixed(2)}`,
  );
  rows.push(row);
}

const t0 = performance.now();
console.log(
  `drivers bench: ${cpus().length} cores, ${canPin ? 'agent side pinned to core 0, simulators to core 1' : 'no pinning'}; warm-up ${WARMUP_MS} ms, measure ${MEASURE_MS} ms per run`,
);

const { endpointUrl, nodeIds } = await ask({ t: 'opcua', updateIntervalMs: 20 });
for (const items of OPCUA_ITEMS) {
  const baseline = await bareOpcUa(endpointUrl, nodeIds, items);
  const driver = await runDriver(
    new OpcUaDriver({ id: 'opcua-bench', config: opcuaOptions(endpointUrl, nodeIds, items), logger: log }),
  );
  print({
    protocol: 'opcua',
    scenario: `${fmt(items)} items @${SAMPLING_MS} ms`,
    demandPerS: (items * 1000) / SAMPLING_MS,
    driver,
    baseline,
  });
}
if (OPCUA_PROCESS_ITEMS > 0) {
  const items = OPCUA_PROCESS_ITEMS;
  const baseline = await bareOpcUa(endpointUrl, nodeIds, items);
  const proxy = new ProcessDriver({
    id: 'opcua-bench',
    type: 'opcua',
    options: opcuaOptions(endpointUrl, nodeIds, items),
    registry: BUILTIN_REGISTRY_MODULE,
    stopTimeoutMs: 10_000,
    maxQueuedReadings: 50_000,
    logger: log,
  });
  proxy.on('error', (err: Error) => log.warn({ err: err.message }, 'driver process error during the bench'));
  const driver = await runDriver(proxy, () => {
    if (proxy.pid) pin(proxy.pid, 0);
    return childCpuMs(proxy.pid);
  });
  print({
    protocol: 'opcua',
    scenario: `${fmt(items)} items, isolation process`,
    demandPerS: (items * 1000) / SAMPLING_MS,
    driver,
    baseline,
  });
}

const modbusRuns = [
  ...MODBUS_UNITS.map((units) => ({ units, pollMs: 100 })),
  { units: Math.max(...MODBUS_UNITS), pollMs: 20 },
];
for (const { units, pollMs } of modbusRuns) {
  const { port, devices: maps } = await ask({ t: 'modbus', units });
  // The simulator names devices by profile; the driver needs them unique.
  const devices = maps.map((d) => ({
    ...d,
    id: `${d.id}-${d.unitId}`,
    pollIntervalMs: pollMs,
    timeoutMs: 2000,
  }));
  const registers = devices.reduce((n, d) => n + d.registers.length, 0);
  const baseline = await bareModbus(port, devices, pollMs);
  const driver = await runDriver(
    new ModbusDriver({ id: 'modbus-bench', config: { host: '127.0.0.1', port, devices }, logger: log }),
  );
  print({
    protocol: 'modbus',
    scenario: `${units} units, ${registers} registers @${pollMs} ms`,
    demandPerS: Math.round((registers * 1000) / pollMs),
    driver,
    baseline,
  });
}

sim.send({ t: 'exit' } satisfies SimRequest);
console.log(JSON.stringify({ bench: 'drivers', seconds: Math.round((performance.now() - t0) / 1000), rows }));
