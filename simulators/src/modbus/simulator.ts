import { createServer } from 'node:net';
import {
  BIT_TABLES,
  decodeValue,
  encodeValue,
  type ModbusDeviceConfig,
  type ModbusRegisterConfig,
  type ModbusTable,
  registerCount,
  resolveDriverConfig,
  throwIfStartAborted,
} from '@citysense/device-drivers';
import { CitysenseError, componentLogger, errorMessage, type Logger } from '@citysense/protocol';
import { type Static, Type } from '@sinclair/typebox';
import ModbusSerial, { type IServiceVector } from 'modbus-serial';
import { SeededRandom } from '../random.ts';
import {
  cabinetUnit,
  powerMeterUnit,
  type SimulatedPoint,
  type SimulatedUnit,
  waterLevelUnit,
} from './units.ts';

/** Device profiles the simulator can play. */
export const MODBUS_SIM_PROFILES = {
  'power-meter': powerMeterUnit,
  'water-level': waterLevelUnit,
  cabinet: cabinetUnit,
} as const;

/** Options of the Modbus simulator; every field has a default. */
export const ModbusSimulatorConfig = Type.Object(
  {
    host: Type.String({ default: '127.0.0.1', description: 'Address to listen on' }),
    port: Type.Integer({
      minimum: 0,
      maximum: 65535,
      default: 0,
      description: 'TCP port; 0 picks a free one',
    }),
    seed: Type.Integer({ default: 1, description: 'PRNG seed of the simulated physics' }),
    units: Type.Array(
      Type.Object(
        {
          unitId: Type.Integer({ minimum: 1, maximum: 247 }),
          profile: Type.Union(Object.keys(MODBUS_SIM_PROFILES).map((p) => Type.Literal(p))),
        },
        { additionalProperties: false },
      ),
      {
        minItems: 1,
        default: [
          { unitId: 1, profile: 'power-meter' },
          { unitId: 2, profile: 'water-level' },
          { unitId: 3, profile: 'cabinet' },
        ],
        description: 'Units behind the server; an unconfigured unit id gets no answer, as behind a gateway',
      },
    ),
  },
  { additionalProperties: false },
);
/** Resolved Modbus simulator options. */
export type ModbusSimulatorConfig = Static<typeof ModbusSimulatorConfig>;

/** How to build a Modbus simulator. */
export interface ModbusSimulatorInit {
  /** Options, validated by `start` (CS_ERR_CONFIG_INVALID). */
  config?: Partial<ModbusSimulatorConfig> | Record<string, unknown>;
  /** Parent logger; default the root logger. */
  logger?: Logger;
}

/** Exception code Modbus uses for an address the device does not have (MBAP v1.1b3 §7). */
const ILLEGAL_DATA_ADDRESS = 2;
const SERVER_DEVICE_FAILURE = 4;

interface Injected {
  table: ModbusTable;
  first: number;
  last: number;
  exceptionCode: number;
}

interface UnitState {
  unit: SimulatedUnit;
  silent: boolean;
  failures: Injected[];
  /** Which point holds each address, per table. */
  index: Map<ModbusTable, Map<number, SimulatedPoint>>;
}

type Callback<T> = (err: Error | null, value: T) => void;
type Done = (err: Error | null) => void;

const ServerTCP = ModbusSerial.ServerTCP;
type ServerTCP = InstanceType<typeof ServerTCP>;

/**
 * A Modbus TCP server (modbus-serial ServerTCP) playing the devices of a lamp pole, one unit id each,
 * for tests and the demo. Values change with time as the real devices' do. Faults on demand: `silence`
 * a unit (it stops answering, so a driver times out) and `failRange` (answers an exception for an
 * address range, as a device does for an address it lacks). Addresses outside a unit's map answer
 * exception 2, illegal data address. Constructor only assigns; `start`/`stop` are idempotent, and a
 * restart listens on the same port again.
 */
export class ModbusSimulator {
  readonly #input: unknown;
  readonly #log: Logger;
  #config: Readonly<ModbusSimulatorConfig> | undefined;
  #units = new Map<number, UnitState>();
  #server: ServerTCP | undefined;
  #port = 0;
  #starting: Promise<void> | undefined;

  constructor(init: ModbusSimulatorInit = {}) {
    this.#input = init.config ?? {};
    this.#log = componentLogger('modbus-sim', init.logger);
  }

  /** The port it listens on; 0 before the first `start`. */
  get port(): number {
    return this.#port;
  }

  /** The address it listens on. */
  get host(): string {
    return this.#config?.host ?? '127.0.0.1';
  }

  /** Whether the server is listening. */
  get listening(): boolean {
    return this.#server !== undefined;
  }

  /** Starts listening; on the configured port, else a free one, and on the same port after a restart. */
  start(signal?: AbortSignal): Promise<void> {
    throwIfStartAborted('modbus-sim', signal);
    if (this.#server) return Promise.resolve();
    this.#starting ??= this.#listen().finally(() => {
      this.#starting = undefined;
    });
    return this.#starting;
  }

  /** Stops listening and drops every connection; idempotent. */
  async stop(): Promise<void> {
    if (this.#starting) await this.#starting.catch(() => undefined);
    const server = this.#server;
    this.#server = undefined;
    if (!server) return;
    await new Promise<void>((resolve) => server.close(() => resolve()));
    this.#log.info({ port: this.#port }, 'modbus simulator stopped');
  }

  /** Makes `unitId` stop answering (or answer again with `silent` false). */
  silence(unitId: number, silent = true): void {
    const state = this.#unit(unitId);
    state.silent = silent;
  }

  /** Makes reads and writes touching `table` addresses first–last of `unitId` answer `exceptionCode`. */
  failRange(unitId: number, table: ModbusTable, first: number, last: number, exceptionCode = 2): void {
    this.#unit(unitId).failures.push({ table, first, last, exceptionCode });
  }

  /** Undoes every `silence` and `failRange`. */
  clearFaults(): void {
    for (const state of this.#units.values()) {
      state.silent = false;
      state.failures = [];
    }
  }

  /** The engineering value of `metric` on `unitId` now, e.g. to check a write. */
  value(unitId: number, metric: string): number | boolean | undefined {
    return this.#unit(unitId)
      .unit.points.find((p) => p.metric === metric)
      ?.read();
  }

  /**
   * Driver device entries (ModbusDriverConfig `devices`) that match the simulated units' register maps;
   * `overrides` apply to every device, e.g. `{ pollIntervalMs: 50 }`.
   */
  registerMaps(
    overrides: Partial<Omit<ModbusDeviceConfig, 'registers' | 'unitId'>> = {},
  ): ModbusDeviceConfig[] {
    this.#build();
    return [...this.#units.values()].map(({ unit }) => ({
      id: unit.id,
      kind: unit.kind,
      unitId: unit.unitId,
      pollIntervalMs: 1000,
      timeoutMs: 1000,
      ...overrides,
      registers: unit.points.map(mapEntry),
    }));
  }

  #build(): void {
    if (this.#config) return;
    const config = resolveDriverConfig(ModbusSimulatorConfig, this.#input, 'Modbus simulator options', (c) =>
      c.units.flatMap((u, i) =>
        c.units.findIndex((o) => o.unitId === u.unitId) === i
          ? []
          : [{ path: `/units/${i}/unitId`, message: `unit id ${u.unitId} is used twice` }],
      ),
    );
    const random = new SeededRandom(config.seed);
    for (const { unitId, profile } of config.units) {
      const unit = MODBUS_SIM_PROFILES[profile as keyof typeof MODBUS_SIM_PROFILES](unitId, random);
      const index = new Map<ModbusTable, Map<number, SimulatedPoint>>();
      for (const point of unit.points) {
        const table = index.get(point.table) ?? new Map<number, SimulatedPoint>();
        const width = BIT_TABLES.has(point.table) ? 1 : registerCount(point.type);
        for (let a = point.address; a < point.address + width; a++) table.set(a, point);
        index.set(point.table, table);
      }
      this.#units.set(unitId, { unit, silent: false, failures: [], index });
    }
    this.#config = config;
  }

  #unit(unitId: number): UnitState {
    this.#build();
    const state = this.#units.get(unitId);
    if (!state)
      throw new CitysenseError('CS_ERR_MODBUS_SIM_UNIT', `the simulator has no unit ${unitId}`, 404);
    return state;
  }

  async #listen(): Promise<void> {
    this.#build();
    const config = this.#config;
    if (!config) return;
    // modbus-serial treats port 0 as "502", so a free port is found first and kept across restarts.
    if (this.#port === 0) this.#port = config.port === 0 ? await freePort(config.host) : config.port;
    const server = new ServerTCP(this.#vector(), { host: config.host, port: this.#port, unitID: 255 });
    await new Promise<void>((resolve, reject) => {
      server.on('initialized', () => resolve());
      server.on('serverError', (err: unknown) =>
        reject(
          new CitysenseError(
            'CS_ERR_MODBUS_SIM_LISTEN',
            `the Modbus simulator cannot listen on ${config.host}:${this.#port}: ${errorMessage(err)}`,
            500,
          ),
        ),
      );
    });
    server.on('socketError', (err: unknown) =>
      this.#log.debug({ err: errorMessage(err) }, 'client socket error'),
    );
    server.on('error', (err: unknown) => this.#log.debug({ err: errorMessage(err) }, 'modbus server error'));
    this.#server = server;
    this.#log.info(
      { host: config.host, port: this.#port, units: [...this.#units.keys()] },
      'modbus simulator listening',
    );
  }

  /** Resolves a request on `table` first–last: the unit's state, or undefined when it stays silent. */
  #serve(
    unitId: number,
    table: ModbusTable,
    first: number,
    last: number,
  ): UnitState | { exception: number } | undefined {
    const state = this.#units.get(unitId);
    if (!state || state.silent) return undefined;
    const injected = state.failures.find((f) => f.table === table && first <= f.last && last >= f.first);
    if (injected) return { exception: injected.exceptionCode };
    const points = state.index.get(table);
    for (let a = first; a <= last; a++) if (!points?.has(a)) return { exception: ILLEGAL_DATA_ADDRESS };
    state.unit.step(Date.now());
    return state;
  }

  #readWords(
    unitId: number,
    table: 'holding' | 'input',
    address: number,
    length: number,
    cb: Callback<number[]>,
  ): void {
    const served = this.#serve(unitId, table, address, address + length - 1);
    if (served === undefined) return;
    if ('exception' in served) {
      cb(exception(served.exception), []);
      return;
    }
    try {
      const words: number[] = [];
      for (let a = address; a < address + length; a++) {
        const point = served.index.get(table)?.get(a);
        if (!point) {
          cb(exception(ILLEGAL_DATA_ADDRESS), []);
          return;
        }
        const encoded = encodeValue(mapEntry(point), point.read());
        words.push(encoded[a - point.address] ?? 0);
      }
      cb(null, words);
    } catch (err) {
      this.#log.warn(
        { err: errorMessage(err), unitId, table, address },
        'simulated value does not fit its register',
      );
      cb(exception(SERVER_DEVICE_FAILURE), []);
    }
  }

  #readBit(unitId: number, table: 'coil' | 'discrete', address: number, cb: Callback<boolean>): void {
    const served = this.#serve(unitId, table, address, address);
    if (served === undefined) return;
    if ('exception' in served) {
      cb(exception(served.exception), false);
      return;
    }
    cb(null, served.index.get(table)?.get(address)?.read() === true);
  }

  #writeWords(unitId: number, address: number, words: number[], cb: Done): void {
    const served = this.#serve(unitId, 'holding', address, address + words.length - 1);
    if (served === undefined) return;
    if ('exception' in served) {
      cb(exception(served.exception));
      return;
    }
    const points = new Set<SimulatedPoint>();
    for (let a = address; a < address + words.length; a++) {
      const point = served.index.get('holding')?.get(a);
      if (!point?.write) {
        cb(exception(ILLEGAL_DATA_ADDRESS));
        return;
      }
      points.add(point);
    }
    for (const point of points) {
      const entry = mapEntry(point);
      const current = encodeValue(entry, point.read());
      const merged = current.map((word, i) => words[point.address + i - address] ?? word);
      point.write?.(decodeValue(entry, merged));
    }
    cb(null);
  }

  #writeBit(unitId: number, address: number, value: boolean, cb: Done): void {
    const served = this.#serve(unitId, 'coil', address, address);
    if (served === undefined) return;
    if ('exception' in served) {
      cb(exception(served.exception));
      return;
    }
    const point = served.index.get('coil')?.get(address);
    if (!point?.write) {
      cb(exception(ILLEGAL_DATA_ADDRESS));
      return;
    }
    point.write(value);
    cb(null);
  }

  /** The modbus-serial service vector; callback forms, so a silent unit simply never calls back. */
  #vector(): IServiceVector {
    return {
      getHoldingRegister: (addr: number, unitID: number, cb: Callback<number>) =>
        this.#readWords(unitID, 'holding', addr, 1, (err, words) => cb(err, words[0] ?? 0)),
      getMultipleHoldingRegisters: (addr: number, length: number, unitID: number, cb: Callback<number[]>) =>
        this.#readWords(unitID, 'holding', addr, length, cb),
      getInputRegister: (addr: number, unitID: number, cb: Callback<number>) =>
        this.#readWords(unitID, 'input', addr, 1, (err, words) => cb(err, words[0] ?? 0)),
      getMultipleInputRegisters: (addr: number, length: number, unitID: number, cb: Callback<number[]>) =>
        this.#readWords(unitID, 'input', addr, length, cb),
      getCoil: (addr: number, unitID: number, cb: Callback<boolean>) =>
        this.#readBit(unitID, 'coil', addr, cb),
      getDiscreteInput: (addr: number, unitID: number, cb: Callback<boolean>) =>
        this.#readBit(unitID, 'discrete', addr, cb),
      setRegister: (addr: number, value: number, unitID: number, cb: Done) =>
        this.#writeWords(unitID, addr, [value], cb),
      setRegisterArray: (addr: number, values: number[], unitID: number, cb: Done) =>
        this.#writeWords(unitID, addr, values, cb),
      setCoil: (addr: number, value: boolean, unitID: number, cb: Done) =>
        this.#writeBit(unitID, addr, value, cb),
    };
  }
}

/** The driver's map entry of a simulated point. */
function mapEntry(point: SimulatedPoint): ModbusRegisterConfig {
  const entry: ModbusRegisterConfig = {
    metric: point.metric,
    table: point.table,
    address: point.address,
    type: point.type,
    byteOrder: point.byteOrder ?? 'ABCD',
    scale: point.scale ?? 1,
    offset: point.offset ?? 0,
  };
  if (point.unit !== undefined) entry.unit = point.unit;
  return entry;
}

/** What modbus-serial's server turns into an exception response: an error carrying `modbusErrorCode`. */
function exception(code: number): Error {
  return Object.assign(new Error(`Modbus exception ${code}`), { modbusErrorCode: code });
}

/** A TCP port nobody listens on right now. */
function freePort(host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = createServer();
    probe.once('error', reject);
    probe.listen({ host, port: 0 }, () => {
      const address = probe.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      probe.close(() => resolve(port));
    });
  });
}
