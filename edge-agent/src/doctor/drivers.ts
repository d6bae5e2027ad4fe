import { join } from 'node:path';
import { errorMessage, rootLogger } from '@citysense/protocol';
import type { DriverConfig } from '../config.ts';
import {
  DRIVER_STATUS_FILE,
  type DriverRegistry,
  type DriverStatus,
  type DriverStatusFile,
} from '../driver-host.ts';
import { builtinDrivers } from '../drivers.ts';
import { readFileIfExists } from '../state-file.ts';
import { type CheckContext, type CheckResult, result } from './report.ts';

type Resolver = (input: unknown) => unknown;

/** Option resolvers of the driver types that have one (device-drivers exports them). */
async function resolverFor(type: DriverConfig['type']): Promise<Resolver | null> {
  const m = await import('@citysense/device-drivers');
  const byType: Partial<Record<DriverConfig['type'], Resolver>> = {
    gb28181: m.resolveGb28181DriverConfig,
    modbus: m.resolveModbusConfig,
    'mqtt-sensors': m.resolveMqttSensorConfig,
    opcua: m.resolveOpcUaConfig,
    'video-quality': m.resolveVideoQualityConfig,
  };
  return byType[type] ?? null;
}

/**
 * Each configured driver: its module loads, its factory builds it (constructors only
 * assign, so nothing starts), and its options pass the driver's own resolver where one exists.
 */
export function checkDrivers(registry: DriverRegistry = builtinDrivers) {
  return async (ctx: CheckContext): Promise<CheckResult[]> => {
    const lines = await Promise.all(ctx.config.drivers.map((d) => checkDriver(registry, d)));
    return [...lines, ...(await checkDriverRuns(ctx))];
  };
}

/**
 * How each configured driver ran, from the status file the agent's driver host keeps
 * in stateDir (`driver-run:<id>` lines): a crash loop fails, a pending restart warns.
 * No lines when the agent has not run yet.
 */
async function checkDriverRuns(ctx: CheckContext): Promise<CheckResult[]> {
  const file = join(ctx.config.stateDir, DRIVER_STATUS_FILE);
  let doc: DriverStatusFile;
  try {
    const text = await readFileIfExists(file);
    if (text === null) return [];
    doc = JSON.parse(text) as DriverStatusFile;
    if (!Array.isArray(doc.drivers)) throw new Error('no drivers list');
  } catch (err) {
    return [
      result(
        'driver-run',
        'warn',
        `${file} is unreadable (${errorMessage(err)}): delete it, the agent rewrites it`,
      ),
    ];
  }
  const byId = new Map(doc.drivers.map((s) => [s.id, s]));
  return ctx.config.drivers.flatMap((d) => {
    const s = byId.get(d.id);
    return s ? [runLine(s, doc.at)] : [];
  });
}

function runLine(s: DriverStatus, at: string): CheckResult {
  const name = `driver-run:${s.id}`;
  const fault = s.lastFault ? `${s.lastFault.code}: ${s.lastFault.message}` : 'no fault recorded';
  const next = s.nextRestartAt ? `, next restart ${new Date(s.nextRestartAt).toISOString()}` : '';
  if (s.crashLoop) {
    return result(
      name,
      'fail',
      `crash-looping as of ${at} (${s.restarts} restarts, last ${fault}${next}): fix the cause above; the agent keeps retrying with the long backoff`,
    );
  }
  if (s.state === 'faulted') {
    return result(name, 'warn', `faulted as of ${at} (${fault}${next}): restarting with backoff`);
  }
  return result(
    name,
    'ok',
    `${s.state} as of ${at}, ${s.isolation ?? 'inline'}, ${s.restarts} restarts, ${s.faults} faults`,
  );
}

async function checkDriver(registry: DriverRegistry, d: DriverConfig): Promise<CheckResult> {
  const name = `driver:${d.id}`;
  const factory = registry[d.type];
  if (!factory)
    return result(name, 'fail', `no driver type "${d.type}" in this agent build: fix drivers[].type`);
  try {
    await factory({ id: d.id, options: d.options, logger: rootLogger.child({ component: 'doctor' }) });
  } catch (err) {
    return result(
      name,
      'fail',
      `${d.type} driver cannot be loaded (${errorMessage(err)}): reinstall the agent or fix its options`,
    );
  }
  try {
    const resolve = await resolverFor(d.type);
    if (!resolve) return result(name, 'ok', `${d.type} loads; its options are checked when it starts`);
    resolve(d.options);
    return result(name, 'ok', `${d.type} loads and its options are valid`);
  } catch (err) {
    return result(name, 'fail', `${d.type} options invalid: ${errorMessage(err)}`);
  }
}
