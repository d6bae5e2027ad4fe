/**
 * The field side of `npm run bench:drivers`, in a process of its own so that the
 * simulated PLCs do not share the event loop (or, pinned, the core) of the drivers
 * being measured. Driven over IPC by drivers.bench.ts.
 */
import type { ModbusDeviceConfig } from '@citysense/device-drivers';
import { MODBUS_SIM_PROFILES, ModbusSimulator, OpcUaSimulator } from '@citysense/simulators';

/** Bench → simulators. */
export type SimRequest =
  | { t: 'opcua'; updateIntervalMs: number }
  | { t: 'modbus'; units: number }
  | { t: 'stop-modbus' }
  | { t: 'exit' };

/** Simulators → bench. */
export type SimReply =
  | { t: 'opcua'; endpointUrl: string; nodeIds: string[] }
  | { t: 'modbus'; port: number; devices: ModbusDeviceConfig[] };

let opcua: OpcUaSimulator | null = null;
let modbus: ModbusSimulator | null = null;
const profiles = Object.keys(MODBUS_SIM_PROFILES) as (keyof typeof MODBUS_SIM_PROFILES)[];

process.on('disconnect', () => process.exit(0));
process.on('message', async (m: SimRequest) => {
  if (m.t === 'opcua') {
    opcua ??= new OpcUaSimulator({ config: { updateIntervalMs: m.updateIntervalMs, hostname: '127.0.0.1' } });
    await opcua.start();
    // The cabinet temperature carries sensor noise at 0.01 °C resolution: nearly every sample of
    // every monitored item is a data change the server must send (energy moves too slowly).
    const nodeIds = [opcua.nodeId('cabinetTemperature')];
    process.send?.({ t: 'opcua', endpointUrl: opcua.endpointUrl, nodeIds } satisfies SimReply);
  } else if (m.t === 'modbus') {
    await modbus?.stop();
    const units = Array.from({ length: m.units }, (_, i) => ({
      unitId: i + 1,
      profile: profiles[i % profiles.length] as keyof typeof MODBUS_SIM_PROFILES,
    }));
    modbus = new ModbusSimulator({ config: { units } });
    await modbus.start();
    process.send?.({ t: 'modbus', port: modbus.port, devices: modbus.registerMaps() } satisfies SimReply);
  } else if (m.t === 'stop-modbus') {
    await modbus?.stop();
    modbus = null;
  } else {
    await modbus?.stop();
    await opcua?.stop();
    process.exit(0);
  }
});
