import { EventEmitter } from 'node:events';
import type {
  DeviceDescriptor,
  Driver,
  DriverFault,
  MetricDescriptor,
  MetricType,
  Reading,
} from '@citysense/device-drivers';
import {
  CitysenseError,
  componentLogger,
  errorMessage,
  isValidId,
  type Logger,
  rootLogger,
} from '@citysense/protocol';
import { type BackoffOptions, backoffDelay } from './backoff.ts';
import type { DriverConfig } from './config.ts';

/** What a factory gets to build one driver instance. */
export interface DriverFactoryContext {
  id: string;
  options: Readonly<Record<string, unknown>>;
  /** Parent logger; the driver makes its own component child. */
  logger: Logger;
}

/** Builds one driver instance; may load its module lazily. */
export type DriverFactory = (ctx: DriverFactoryContext) => Driver | Promise<Driver>;

/** Driver type → factory. */
export type DriverRegistry = Readonly<Record<string, DriverFactory>>;

/** Lifecycle state of one hosted driver. */
export type DriverRunState = 'stopped' | 'starting' | 'running' | 'faulted';

/** A fault as the host records it. */
export interface RecordedFault {
  code: string;
  message: string;
  device?: string | undefined;
  at: number;
}

/** One driver's state in the agent status. */
export interface DriverStatus {
  id: string;
  type: string;
  state: DriverRunState;
  /** Restarts after faults since the agent started. */
  restarts: number;
  devices: number;
  /** Faults reported by the driver or raised by the host. */
  faults: number;
  lastFault: RecordedFault | null;
}

/** Options of the driver host. */
export interface DriverHostOptions {
  drivers: readonly DriverConfig[];
  registry: DriverRegistry;
  /** Receives every batch; throwing marks the batch's driver as faulted. */
  onReadings: (batch: Reading[], driverId: string) => void;
  /** Restart backoff; defaults to 1 s growing to 60 s. */
  backoff?: BackoffOptions | undefined;
  logger?: Logger | undefined;
  /** Parent logger handed to driver factories; defaults to the root logger. */
  driverLogger?: Logger | undefined;
}

/** Events of the host. */
export interface DriverHostEvents {
  fault: [driverId: string, fault: RecordedFault];
  running: [driverId: string];
}

/** A driver that ran this long without a fault restarts from the initial delay next time. */
const STABLE_MS = 60_000;

interface Slot {
  config: DriverConfig;
  driver: Driver | null;
  detach: (() => void) | null;
  state: DriverRunState;
  /** Bumped on every (re)start; events from an older instance are ignored. */
  generation: number;
  attempt: number;
  restarts: number;
  faults: number;
  lastFault: RecordedFault | null;
  devices: DeviceDescriptor[];
  metrics: Map<string, Map<string, MetricDescriptor>>;
  startedAt: number;
  timer: NodeJS.Timeout | null;
}

/**
 * Hosts the configured drivers. Each runs in its own slot: a driver that throws in
 * its factory or `start`, emits an `error`, or sends a batch the agent cannot
 * record is logged, reported as a fault and restarted (fresh instance) with
 * backoff, while every other driver keeps running.
 */
export class DriverHost extends EventEmitter<DriverHostEvents> {
  readonly #o: DriverHostOptions;
  readonly #log: Logger;
  readonly #slots: Slot[] = [];
  #running = false;

  constructor(o: DriverHostOptions) {
    super();
    this.#o = o;
    this.#log = o.logger ?? componentLogger('driver-host');
  }

  /** Starts every driver; resolves once each has started or faulted (faulted ones retry in the background). Idempotent. */
  async start(signal?: AbortSignal): Promise<void> {
    if (this.#running) return;
    signal?.throwIfAborted();
    this.#running = true;
    this.#slots.length = 0;
    for (const config of this.#o.drivers) {
      this.#slots.push({
        config,
        driver: null,
        detach: null,
        state: 'stopped',
        generation: 0,
        attempt: 0,
        restarts: 0,
        faults: 0,
        lastFault: null,
        devices: [],
        metrics: new Map(),
        startedAt: 0,
        timer: null,
      });
    }
    await Promise.all(this.#slots.map((slot) => this.#launch(slot, signal)));
  }

  /** Stops every driver and cancels pending restarts. Idempotent. */
  async stop(): Promise<void> {
    if (!this.#running) return;
    this.#running = false;
    await Promise.all(
      this.#slots.map(async (slot) => {
        if (slot.timer) clearTimeout(slot.timer);
        slot.timer = null;
        slot.generation++;
        await this.#retire(slot);
        slot.state = 'stopped';
      }),
    );
  }

  /** Devices of every driver (the last known set for a faulted one), for births. */
  devices(): DeviceDescriptor[] {
    return this.#slots.flatMap((s) => s.devices);
  }

  /** Declared type of `metric` on `device`; asks the driver again on a miss (it may have added a metric). */
  metricType(device: string, metric: string): MetricType | undefined {
    for (const slot of this.#slots) {
      const known = slot.metrics.get(device)?.get(metric);
      if (known) return known.type;
    }
    for (const slot of this.#slots) {
      if (!slot.metrics.has(device) || !slot.driver || slot.state !== 'running') continue;
      this.#index(slot, slot.driver.devices());
      return slot.metrics.get(device)?.get(metric)?.type;
    }
    return undefined;
  }

  /** Per-driver state for the agent status. */
  status(): DriverStatus[] {
    return this.#slots.map((s) => ({
      id: s.config.id,
      type: s.config.type,
      state: s.state,
      restarts: s.restarts,
      devices: s.devices.length,
      faults: s.faults,
      lastFault: s.lastFault,
    }));
  }

  async #launch(slot: Slot, signal?: AbortSignal): Promise<void> {
    const generation = ++slot.generation;
    const { id, type, options } = slot.config;
    slot.state = 'starting';
    try {
      const factory = this.#o.registry[type];
      if (!factory) {
        throw new CitysenseError('CS_ERR_DRIVER_TYPE', `no driver registered for type "${type}"`, 400);
      }
      const driver = await factory({ id, options, logger: this.#o.driverLogger ?? rootLogger });
      if (generation !== slot.generation) {
        await stopQuietly(driver, this.#log);
        return;
      }
      slot.driver = driver;
      slot.detach = this.#attach(slot, driver, generation);
      await driver.start(signal);
      if (generation !== slot.generation) return;
      const devices = driver.devices();
      this.#checkDevices(slot, devices);
      this.#index(slot, devices);
      slot.state = 'running';
      slot.startedAt = Date.now();
      this.#log.info({ driver: id, devices: devices.length }, 'driver running');
      this.emit('running', id);
    } catch (err) {
      this.#fault(slot, generation, 'CS_ERR_DRIVER_START', err);
    }
  }

  #attach(slot: Slot, driver: Driver, generation: number): () => void {
    const onReadings = (batch: Reading[]) => {
      if (generation !== slot.generation) return;
      try {
        this.#o.onReadings(batch, slot.config.id);
      } catch (err) {
        this.#fault(slot, generation, 'CS_ERR_DRIVER_READINGS', err);
      }
    };
    const onFault = (fault: DriverFault) => {
      if (generation !== slot.generation) return;
      slot.faults++;
      slot.lastFault = { ...fault, at: Date.now() };
      this.#log.warn({ driver: slot.config.id, ...fault }, 'driver reported a fault');
      this.emit('fault', slot.config.id, slot.lastFault);
    };
    const onError = (err: unknown) => this.#fault(slot, generation, 'CS_ERR_DRIVER_ERROR', err);
    driver.on('readings', onReadings);
    driver.on('fault', onFault);
    // Drivers built on EventEmitter would crash the process on an unhandled 'error'.
    const emitter = driver instanceof EventEmitter ? driver : null;
    emitter?.on('error', onError);
    return () => {
      driver.off('readings', onReadings);
      driver.off('fault', onFault);
      emitter?.off('error', onError);
    };
  }

  #fault(slot: Slot, generation: number, code: string, err: unknown): void {
    if (generation !== slot.generation || !this.#running) return;
    const now = Date.now();
    slot.generation++;
    slot.faults++;
    slot.lastFault = {
      code: err instanceof CitysenseError ? err.code : code,
      message: errorMessage(err),
      at: now,
    };
    slot.state = 'faulted';
    if (slot.startedAt > 0 && now - slot.startedAt > STABLE_MS) slot.attempt = 0;
    const backoff = this.#o.backoff ?? { initialMs: 1000, maxMs: 60_000 };
    // Never restart at once: a driver that fails immediately must not spin the CPU.
    const delayMs = Math.round(backoff.initialMs / 2) + backoffDelay(slot.attempt++, backoff);
    this.#log.error({ driver: slot.config.id, ...slot.lastFault, delayMs }, 'driver faulted, restarting');
    this.emit('fault', slot.config.id, slot.lastFault);
    void this.#retire(slot);
    slot.timer = setTimeout(() => {
      slot.timer = null;
      if (!this.#running) return;
      slot.restarts++;
      void this.#launch(slot);
    }, delayMs);
  }

  /** Detaches and stops the slot's current driver instance; its errors are logged, not thrown. */
  async #retire(slot: Slot): Promise<void> {
    const driver = slot.driver;
    slot.detach?.();
    slot.detach = null;
    slot.driver = null;
    if (driver) await stopQuietly(driver, this.#log);
  }

  #checkDevices(slot: Slot, devices: DeviceDescriptor[]): void {
    for (const d of devices) {
      if (!isValidId(d.id)) {
        throw new CitysenseError(
          'CS_ERR_DRIVER_DEVICES_INVALID',
          `device id "${d.id}" is not a valid Sparkplug id`,
          400,
        );
      }
      const owner = this.#slots.find((s) => s !== slot && s.devices.some((x) => x.id === d.id));
      if (owner) {
        throw new CitysenseError(
          'CS_ERR_DRIVER_DEVICE_CONFLICT',
          `device id "${d.id}" is already provided by driver "${owner.config.id}": give the drivers distinct device ids`,
          409,
        );
      }
    }
  }

  #index(slot: Slot, devices: DeviceDescriptor[]): void {
    slot.devices = devices;
    slot.metrics = new Map(devices.map((d) => [d.id, new Map(d.metrics.map((m) => [m.name, m]))]));
  }
}

async function stopQuietly(driver: Driver, log: Logger): Promise<void> {
  try {
    await driver.stop();
  } catch (err) {
    log.warn({ driver: driver.id, err: errorMessage(err) }, 'driver failed to stop cleanly');
  }
}
