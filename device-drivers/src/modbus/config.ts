/**
 * Options of the Modbus driver as one TypeBox schema. Register maps are data: each device (one unit id
 * behind the connection) lists its registers with table, address, type, byte order, scale and unit, so a
 * new meter is a config change, not code. What the schema cannot say (overlaps, address range, a float on
 * a coil) is checked here too, and every problem is reported at once.
 */
import { type Static, Type } from '@sinclair/typebox';
import { type DriverConfigProblem, resolveDriverConfig } from '../config.ts';
import { BIT_TABLES, MODBUS_BYTE_ORDERS, MODBUS_TABLES, MODBUS_VALUE_TYPES, registerCount } from './codec.ts';

const literals = <T extends string>(values: readonly T[], description: string, fallback?: T) =>
  Type.Union(
    values.map((v) => Type.Literal(v)),
    fallback === undefined ? { description } : { description, default: fallback },
  );

/** Highest address of every Modbus table (Modbus Application Protocol v1.1b3 §4.4: 0x0000–0xFFFF). */
export const MODBUS_MAX_ADDRESS = 0xffff;

/** One value in a unit's register map. */
export const ModbusRegisterConfig = Type.Object(
  {
    metric: Type.String({
      minLength: 1,
      maxLength: 128,
      description: 'Sparkplug metric name, e.g. `Power/Voltage`',
    }),
    table: literals(MODBUS_TABLES, 'holding (FC3), input (FC4), coil (FC1) or discrete (FC2)'),
    address: Type.Integer({
      minimum: 0,
      maximum: MODBUS_MAX_ADDRESS,
      description: 'Zero-based protocol address of the first register or bit (40001 in a datasheet is 0)',
    }),
    type: literals(
      MODBUS_VALUE_TYPES,
      'How the registers encode the value; coils and discrete inputs are bool',
    ),
    byteOrder: literals(
      MODBUS_BYTE_ORDERS,
      'ABCD big-endian, CDAB word-swapped, BADC byte-swapped, DCBA little-endian; 16-bit types use the byte swap only',
      'ABCD',
    ),
    scale: Type.Number({
      default: 1,
      description: 'Multiplier applied to the raw value: value = raw * scale + offset',
    }),
    offset: Type.Number({ default: 0, description: 'Added after scaling' }),
    unit: Type.Optional(Type.String({ minLength: 1, description: 'UCUM-style unit, e.g. `V`, `kW.h`, `m`' })),
  },
  { additionalProperties: false },
);

/** One Modbus unit (slave) behind the connection, as one Sparkplug device. */
export const ModbusDeviceConfig = Type.Object(
  {
    id: Type.String({
      pattern: '^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$',
      description: 'Sparkplug device id',
    }),
    kind: Type.String({ minLength: 1, default: 'modbus', description: 'What it is, e.g. `power-meter`' }),
    unitId: Type.Integer({
      minimum: 0,
      maximum: 255,
      default: 1,
      description: 'Modbus unit identifier (MBAP header); 255 or 0 for a device addressed by IP alone',
    }),
    pollIntervalMs: Type.Integer({
      minimum: 10,
      default: 1000,
      description: 'Time between polls of this unit',
    }),
    timeoutMs: Type.Integer({
      minimum: 10,
      default: 1000,
      description: 'How long one request to this unit may take before the unit counts as silent',
    }),
    registers: Type.Array(ModbusRegisterConfig, { minItems: 1, description: 'The register map' }),
  },
  { additionalProperties: false },
);

/** Options of a ModbusDriver. */
export const ModbusDriverConfig = Type.Object(
  {
    transport: literals(
      ['tcp', 'rtu'] as const,
      'tcp, or rtu for a serial line (needs a serial port)',
      'tcp',
    ),
    host: Type.String({ minLength: 1, default: '127.0.0.1', description: 'Modbus TCP server or gateway' }),
    port: Type.Integer({ minimum: 1, maximum: 65535, default: 502, description: 'Modbus TCP port' }),
    serialPort: Type.Optional(
      Type.String({ minLength: 1, description: 'Serial device for transport rtu, e.g. /dev/ttyUSB0' }),
    ),
    connectTimeoutMs: Type.Integer({
      minimum: 10,
      default: 3000,
      description: 'Longest wait for a TCP connect',
    }),
    reconnect: Type.Object(
      {
        initialDelayMs: Type.Integer({
          minimum: 0,
          default: 500,
          description: 'First wait before reconnecting; doubles while the server stays unreachable',
        }),
        maxDelayMs: Type.Integer({
          minimum: 0,
          default: 30_000,
          description: 'Longest wait between attempts',
        }),
      },
      { additionalProperties: false, default: {} },
    ),
    devices: Type.Array(ModbusDeviceConfig, { minItems: 1, description: 'Units to poll' }),
  },
  { additionalProperties: false },
);

/** One value in a register map, resolved. */
export type ModbusRegisterConfig = Static<typeof ModbusRegisterConfig>;
/** One polled unit, resolved. */
export type ModbusDeviceConfig = Static<typeof ModbusDeviceConfig>;
/** Resolved options of a ModbusDriver. */
export type ModbusDriverConfig = Static<typeof ModbusDriverConfig>;

/** Applies defaults and validates; throws CS_ERR_CONFIG_INVALID listing every problem at once. */
export function resolveModbusConfig(input: unknown): Readonly<ModbusDriverConfig> {
  return resolveDriverConfig(ModbusDriverConfig, input, 'Modbus driver options', registerMapProblems);
}

/** What the schema cannot say: unique ids and metrics, types that fit their table, no overlaps, in range. */
function registerMapProblems(config: ModbusDriverConfig): DriverConfigProblem[] {
  const problems: DriverConfigProblem[] = [];
  if (config.transport === 'rtu' && config.serialPort === undefined)
    problems.push({ path: '/serialPort', message: 'transport rtu needs a serial port, e.g. /dev/ttyUSB0' });
  const ids = new Set<string>();
  config.devices.forEach((device, d) => {
    const at = `/devices/${d}`;
    if (ids.has(device.id))
      problems.push({ path: `${at}/id`, message: `device id "${device.id}" is used twice` });
    ids.add(device.id);
    const metrics = new Set<string>();
    /** Occupied [first, last] address spans per table, with the register that holds them. */
    const spans: Array<{ table: string; first: number; last: number; index: number }> = [];
    device.registers.forEach((register, r) => {
      const path = `${at}/registers/${r}`;
      if (metrics.has(register.metric))
        problems.push({ path: `${path}/metric`, message: `metric "${register.metric}" is mapped twice` });
      metrics.add(register.metric);
      const bitTable = BIT_TABLES.has(register.table);
      if (bitTable && register.type !== 'bool')
        problems.push({
          path: `${path}/type`,
          message: `a ${register.table} holds one bit: type must be bool, not ${register.type}`,
        });
      if (register.type === 'bool' && (register.scale !== 1 || register.offset !== 0))
        problems.push({ path, message: 'scale and offset do not apply to a bool' });
      const count = bitTable ? 1 : registerCount(register.type);
      const last = register.address + count - 1;
      if (last > MODBUS_MAX_ADDRESS) {
        problems.push({
          path: `${path}/address`,
          message: `${register.type} at ${register.address} needs ${count} registers and runs past ${MODBUS_MAX_ADDRESS}`,
        });
        return;
      }
      for (const span of spans) {
        if (span.table !== register.table || last < span.first || register.address > span.last) continue;
        problems.push({
          path: `${path}/address`,
          message: `${register.table} ${register.address}–${last} overlaps registers/${span.index} (${span.first}–${span.last})`,
        });
      }
      spans.push({ table: register.table, first: register.address, last, index: r });
    });
  });
  return problems;
}
