import { errorMessage, rootLogger } from '@citysense/protocol';
import type { DriverConfig } from '../config.ts';
import type { DriverRegistry } from '../driver-host.ts';
import { builtinDrivers } from '../drivers.ts';
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
  return async (ctx: CheckContext): Promise<CheckResult[]> =>
    Promise.all(ctx.config.drivers.map((d) => checkDriver(registry, d)));
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
