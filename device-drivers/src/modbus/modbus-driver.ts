/**
 * Modbus TCP as a Driver: one connection to a server or gateway, several units behind it, each a
 * Sparkplug device whose register map comes from the options. Every unit polls on its own schedule with
 * its own timeout; its registers are read in as few requests as the map allows and decoded per the map.
 *
 * Faults, each reported once per episode (and logged), never stopping the driver:
 * - CS_ERR_MODBUS_UNREACHABLE (no device): connect refused or connection lost. Polls pause and the
 *   driver reconnects with exponential backoff; readings resume on their own.
 * - CS_ERR_MODBUS_TIMEOUT (device): the unit does not answer. The rest of its poll is skipped; the other
 *   units keep polling on the same connection.
 * - CS_ERR_MODBUS_EXCEPTION (device): the unit answers a read block with a Modbus exception, i.e. the
 *   register map does not fit the device. Decided: one fault per failing block, and no readings for its
 *   metrics (a value made up for a `bad` reading would be plotted and alarmed on as if measured); the
 *   unit's other blocks keep reporting, so a wrong address costs only its own block.
 * Readings carry the poll's time and quality `good`. Floats that decode to NaN or ±Infinity (a meter's
 * "not available") are left out.
 */
import { setMaxListeners } from 'node:events';
import { existsSync } from 'node:fs';
import { CitysenseError, componentLogger, errorMessage, hasCode, type Logger } from '@citysense/protocol';
import type { DeviceDescriptor, Driver, DriverCapabilities, Reading } from '../driver.ts';
import { throwIfStartAborted } from '../lifecycle.ts';
import { DriverEmitter } from '../typed-emitter.ts';
import { decodeValue, encodeValue, metricTypeOf } from './codec.ts';
import { type ModbusDeviceConfig, type ModbusDriverConfig, resolveModbusConfig } from './config.ts';
import { MODBUS_ERRORS } from './errors.ts';
import { ModbusLink } from './link.ts';
import { planReads, type ReadBlock, sliceOf } from './read-plan.ts';

/** How to build a Modbus driver. */
export interface ModbusDriverInit {
  /** Driver instance id; default `modbus`. */
  id?: string;
  /** Options, validated by `start` against ModbusDriverConfig (CS_ERR_CONFIG_INVALID). */
  config?: unknown;
  /** Parent logger; default the root logger. */
  logger?: Logger;
}

interface BlockState {
  block: ReadBlock;
  /** Exception code of the episode under way; undefined while the block reads fine. */
  exception: number | undefined;
}

interface DeviceState {
  config: Readonly<ModbusDeviceConfig>;
  blocks: BlockState[];
  /** The unit has stopped answering and that has been reported. */
  silent: boolean;
  lastTime: number;
}

interface Deferred {
  promise: Promise<void>;
  resolve: () => void;
}

function deferred(): Deferred {
  let resolve: () => void = () => undefined;
  const promise = new Promise<void>((r) => {
    resolve = r;
  });
  return { promise, resolve };
}

/** Polls the units behind one Modbus TCP server; one device per unit, register maps as data. */
export class ModbusDriver extends DriverEmitter implements Driver {
  /** Driver instance id. */
  readonly id: string;
  /** Telemetry, and commands through `write` (holding registers and coils). */
  readonly capabilities: DriverCapabilities = { telemetry: true, commands: true };
  readonly #input: unknown;
  #config: Readonly<ModbusDriverConfig> | undefined;
  #devices: DeviceState[] = [];
  #link: ModbusLink | undefined;
  #running = false;
  #abort: AbortController | undefined;
  #loops: Promise<void>[] = [];
  #stopping: Promise<void> | undefined;
  /** Resolves once connected; replaced when the connection is lost. */
  #up: Deferred = deferred();
  /** Resolves when the connection is lost; replaced once connected. */
  #lost: Deferred = deferred();
  /** An unreachable fault has been reported for the outage under way. */
  #outageReported = false;

  constructor(init: ModbusDriverInit = {}) {
    const id = init.id ?? 'modbus';
    super(componentLogger('modbus', init.logger).child({ driver: id }));
    this.id = id;
    this.#input = init.config ?? {};
  }

  /** One device per configured unit; empty before the first `start`. */
  devices(): DeviceDescriptor[] {
    return this.#devices.map(({ config }) => ({
      id: config.id,
      kind: config.kind,
      metrics: config.registers.map((r) => ({ name: r.metric, type: metricTypeOf(r), unit: r.unit })),
    }));
  }

  /**
   * Validates the options (CS_ERR_CONFIG_INVALID; CS_ERR_MODBUS_RTU_UNAVAILABLE for a serial line) and
   * starts connecting and polling. Resolves at once: an unreachable server is a fault, not a failed start.
   */
  async start(signal?: AbortSignal): Promise<void> {
    throwIfStartAborted(this.id, signal);
    if (this.#running) return;
    if (this.#stopping) await this.#stopping;
    if (this.#running) return;
    throwIfStartAborted(this.id, signal);
    if (!this.#config) {
      const config = resolveModbusConfig(this.#input);
      if (config.transport === 'rtu') throw rtuUnavailable(config.serialPort ?? '');
      this.#devices = config.devices.map((device) => ({
        config: device,
        blocks: planReads(device.registers).map((block) => ({ block, exception: undefined })),
        silent: false,
        lastTime: Number.NEGATIVE_INFINITY,
      }));
      this.#config = config;
    }
    const config = this.#config;
    const abort = new AbortController();
    // Every unit's poll loop waits on this one signal: hundreds of listeners are expected, not a leak.
    setMaxListeners(0, abort.signal);
    this.#abort = abort;
    this.#running = true;
    this.#up = deferred();
    this.#lost = deferred();
    this.#outageReported = false;
    const link = new ModbusLink({
      host: config.host,
      port: config.port,
      connectTimeoutMs: config.connectTimeoutMs,
      log: this.log,
      onLost: (reason) => this.#connectionLost(reason, abort.signal),
    });
    this.#link = link;
    const guard = (what: string) => (err: unknown) =>
      this.log.error({ err: errorMessage(err), what }, 'modbus loop failed');
    this.#loops = [
      this.#maintain(link, config, abort.signal).catch(guard('connection')),
      ...this.#devices.map((device) => this.#poll(link, device, abort.signal).catch(guard(device.config.id))),
    ];
    this.log.info(
      { host: config.host, port: config.port, devices: this.#devices.map((d) => d.config.id) },
      'modbus driver started',
    );
  }

  /** Stops polling and closes the connection; no event is emitted once this resolves. Idempotent. */
  stop(): Promise<void> {
    if (!this.#running) return this.#stopping ?? Promise.resolve();
    this.#running = false;
    this.#abort?.abort(new Error('driver stopping'));
    this.#abort = undefined;
    const link = this.#link;
    this.#link = undefined;
    const loops = this.#loops;
    this.#loops = [];
    // Closing fails the requests in flight, so no loop waits out a unit's timeout.
    this.#stopping = Promise.all([link?.close(), ...loops]).then(() => {
      this.#stopping = undefined;
      this.log.info('modbus driver stopped');
    });
    return this.#stopping;
  }

  /**
   * Writes engineering value `value` to `metric` of `device`: a holding register (scaled back and encoded
   * per the map) or a coil. Rejects with CS_ERR_MODBUS_WRITE (unknown metric, read-only table, value out
   * of range) or the coded error of the request (unreachable, timeout, exception).
   */
  async write(device: string, metric: string, value: number | boolean): Promise<void> {
    const state = this.#devices.find((d) => d.config.id === device);
    const register = state?.config.registers.find((r) => r.metric === metric);
    if (!state || !register)
      throw new CitysenseError(
        MODBUS_ERRORS.write,
        `no metric "${metric}" on Modbus device "${device}"`,
        404,
      );
    if (register.table === 'input' || register.table === 'discrete')
      throw new CitysenseError(
        MODBUS_ERRORS.write,
        `"${device}/${metric}" is in the ${register.table} table, which Modbus makes read-only; map it to a holding register or coil to write it`,
        400,
      );
    const link = this.#link;
    if (!link) throw new CitysenseError(MODBUS_ERRORS.unreachable, `driver "${this.id}" is not running`, 503);
    const { unitId, timeoutMs } = state.config;
    if (register.table === 'coil') {
      if (typeof value !== 'boolean')
        throw new CitysenseError(
          MODBUS_ERRORS.write,
          `"${device}/${metric}" is a coil: write true or false`,
          400,
        );
      await link.writeCoil(unitId, register.address, value, timeoutMs);
      return;
    }
    let words: number[];
    try {
      words = encodeValue(register, value);
    } catch (err) {
      throw new CitysenseError(
        MODBUS_ERRORS.write,
        `${String(value)} does not fit "${device}/${metric}" (${register.type}, scale ${register.scale}, offset ${register.offset}): ${errorMessage(err)}`,
        400,
      );
    }
    await link.writeRegisters(unitId, register.address, words, timeoutMs);
  }

  /** Keeps the connection open: connects, waits for a loss, reconnects with backoff. */
  async #maintain(
    link: ModbusLink,
    config: Readonly<ModbusDriverConfig>,
    signal: AbortSignal,
  ): Promise<void> {
    const stopped = aborted(signal);
    let failures = 0;
    while (!signal.aborted) {
      try {
        await link.connect(signal);
      } catch (err) {
        if (signal.aborted) return;
        failures++;
        this.#reportUnreachable(errorMessage(err), signal);
        await sleep(backoff(config, failures), signal);
        continue;
      }
      if (signal.aborted) {
        await link.close();
        return;
      }
      if (this.#outageReported) this.log.info({ after: failures }, 'modbus server reachable again');
      failures = 0;
      this.#outageReported = false;
      const lost = this.#lost;
      this.#up.resolve();
      await Promise.race([lost.promise, stopped]);
      // A lost connection is retried at once: the server may just have restarted.
    }
  }

  #connectionLost(reason: string, signal: AbortSignal): void {
    if (signal.aborted) return;
    this.#up = deferred();
    const lost = this.#lost;
    this.#lost = deferred();
    const config = this.#config;
    this.#reportUnreachable(
      `Modbus server ${config?.host}:${config?.port}: ${reason}; the driver reconnects`,
      signal,
    );
    lost.resolve();
  }

  #reportUnreachable(message: string, signal: AbortSignal): void {
    if (this.#outageReported) return;
    this.#outageReported = true;
    this.log.warn({ code: MODBUS_ERRORS.unreachable }, message);
    if (this.#running && !signal.aborted) this.emit('fault', { code: MODBUS_ERRORS.unreachable, message });
  }

  /** Polls one unit every pollIntervalMs while connected, until `signal` aborts. */
  async #poll(link: ModbusLink, device: DeviceState, signal: AbortSignal): Promise<void> {
    const { pollIntervalMs } = device.config;
    const stopped = aborted(signal);
    while (!signal.aborted) {
      await Promise.race([this.#up.promise, stopped]);
      if (signal.aborted) return;
      const started = Date.now();
      await this.#pollOnce(link, device, signal);
      await sleep(Math.max(0, pollIntervalMs - (Date.now() - started)), signal);
    }
  }

  /** Reads every block of one unit and emits what decoded; faults for silence and exceptions. */
  async #pollOnce(link: ModbusLink, device: DeviceState, signal: AbortSignal): Promise<void> {
    const { id, unitId, timeoutMs } = device.config;
    const time = Math.max(Date.now(), device.lastTime + 1);
    const batch: Reading[] = [];
    let answered = false;
    for (const state of device.blocks) {
      const { block } = state;
      let data: number[] | boolean[];
      try {
        data = await link.read(unitId, block.table, block.address, block.count, timeoutMs);
      } catch (err) {
        if (signal.aborted || hasCode(err, MODBUS_ERRORS.unreachable)) break;
        if (hasCode(err, MODBUS_ERRORS.timeout)) {
          // A silent unit would only time out again on its next block.
          this.#reportSilent(device, err, signal);
          break;
        }
        answered = true;
        this.#reportException(device, state, err, signal);
        continue;
      }
      answered = true;
      if (state.exception !== undefined) {
        this.log.info({ device: id, table: block.table, address: block.address }, 'modbus block reads again');
        state.exception = undefined;
      }
      for (const register of block.registers) {
        const value = decodeValue(register, sliceOf(block, register, data));
        if (typeof value === 'number' && !Number.isFinite(value)) continue;
        batch.push({ device: id, metric: register.metric, time, value, quality: 'good' });
      }
    }
    if (answered && device.silent) {
      device.silent = false;
      this.log.info({ device: id, unitId }, 'modbus unit answers again');
    }
    if (batch.length === 0 || !this.#running || signal.aborted) return;
    device.lastTime = time;
    this.emit('readings', batch);
  }

  #reportSilent(device: DeviceState, err: unknown, signal: AbortSignal): void {
    if (device.silent) return;
    device.silent = true;
    const { id, unitId } = device.config;
    const message = `Modbus unit ${unitId} (${id}) does not answer: ${errorMessage(err)}`;
    this.log.warn({ device: id, unitId, code: MODBUS_ERRORS.timeout }, message);
    if (this.#running && !signal.aborted)
      this.emit('fault', { device: id, code: MODBUS_ERRORS.timeout, message });
  }

  #reportException(device: DeviceState, state: BlockState, err: unknown, signal: AbortSignal): void {
    const code = (err as { exceptionCode?: unknown }).exceptionCode;
    const exception = typeof code === 'number' ? code : -1;
    if (state.exception === exception) return;
    state.exception = exception;
    const { id } = device.config;
    const metrics = state.block.registers.map((r) => r.metric).join(', ');
    const message = `${errorMessage(err)}; no readings for ${metrics} until it reads again`;
    this.log.warn({ device: id, code: MODBUS_ERRORS.exception, exception }, message);
    if (this.#running && !signal.aborted)
      this.emit('fault', { device: id, code: MODBUS_ERRORS.exception, message });
  }
}

/** Modbus RTU is asked for: say clearly what is missing. */
function rtuUnavailable(serialPort: string): CitysenseError {
  const missing = !existsSync(serialPort);
  return new CitysenseError(
    MODBUS_ERRORS.rtuUnavailable,
    missing
      ? `Modbus RTU needs a serial port, and ${serialPort} does not exist on this node: plug in the RS-485 adapter, or put a Modbus TCP gateway in front of the bus and use transport tcp`
      : `Modbus RTU over ${serialPort} is not supported by this build (the serialport binding is not built): put a Modbus TCP gateway in front of the bus and use transport tcp`,
    501,
  );
}

function backoff(config: Readonly<ModbusDriverConfig>, failures: number): number {
  const { initialDelayMs, maxDelayMs } = config.reconnect;
  return Math.min(maxDelayMs, initialDelayMs * 2 ** Math.min(failures - 1, 30));
}

/** Resolves when `signal` aborts; never rejects. */
function aborted(signal: AbortSignal): Promise<void> {
  if (signal.aborted) return Promise.resolve();
  return new Promise((resolve) => signal.addEventListener('abort', () => resolve(), { once: true }));
}

/** Waits `ms`, or less when `signal` aborts; never rejects. */
function sleep(ms: number, signal: AbortSignal): Promise<void> {
  if (signal.aborted) return Promise.resolve();
  return new Promise((resolve) => {
    const done = (): void => {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal.addEventListener('abort', done, { once: true });
  });
}
