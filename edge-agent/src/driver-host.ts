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
import type { DriverRegistryModule } from './driver-ipc.ts';
import { BUILTIN_REGISTRY_MODULE, ProcessDriver } from './driver-process.ts';
import { writeFileAtomic } from './state-file.ts';

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
  /** Where the driver runs: in the agent process or in a child process of its own. */
  isolation: DriverIsolation;
  /** Too many faults in the crash-loop window: restarts wait the long crash-loop backoff until it runs stable. */
  crashLoop: boolean;
  /** When the next restart is due (ms since the epoch) while faulted; null otherwise. */
  nextRestartAt: number | null;
  /** Pid of the driver process while an isolated driver runs. */
  pid: number | null;
}

/** Where a driver runs. */
export type DriverIsolation = 'inline' | 'process';

/** The file (in the agent's stateDir) where the host keeps its last driver status, for `citysense doctor`. */
export const DRIVER_STATUS_FILE = 'driver-status.json';

/** Contents of the driver status file. */
export interface DriverStatusFile {
  /** ISO time of the last change. */
  at: string;
  drivers: DriverStatus[];
}

/** Crash-loop detection: `faults` restarts within `windowMs` switch the driver to `backoffMs` between restarts. */
export interface CrashLoopOptions {
  faults: number;
  windowMs: number;
  backoffMs: number;
}

/**
 * Isolation default: inline. A driver process costs a Node.js runtime of its own:
 * the lamp-pole simulator measured 150 MB RSS in its child (Node.js, the TypeScript
 * loader and the driver packages, see edge-agent/README.md), which a 1 GB lamp-pole
 * box with eight drivers cannot spare, plus about 1.5 s per (re)start. Inline
 * drivers are already guarded by start/stop timeouts, the stall watchdog, `error`
 * events and crash-loop backoff; only a throw from a timer or socket callback or a
 * native crash escapes those, so `isolation: 'process'` is opt-in for drivers with
 * native code or third-party stacks (OPC UA, ONVIF, vendor SDKs).
 */
export const DEFAULT_ISOLATION: DriverIsolation = 'inline';
/** Default budget for building and starting a driver. */
export const DEFAULT_START_TIMEOUT_MS = 30_000;
/** Default budget for stopping a driver. */
export const DEFAULT_STOP_TIMEOUT_MS = 10_000;
/** Default crash-loop detection: 5 faults within a minute → 5 minutes between restarts. */
export const DEFAULT_CRASH_LOOP: CrashLoopOptions = { faults: 5, windowMs: 60_000, backoffMs: 300_000 };

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
  /** Registry module a driver process loads (`isolation: 'process'`); defaults to the built-in drivers. */
  processRegistry?: DriverRegistryModule | undefined;
  /** Crash-loop detection; defaults to DEFAULT_CRASH_LOOP. */
  crashLoop?: CrashLoopOptions | undefined;
  /** Bound of each driver process's outgoing reading queue; defaults to 50 000 readings. */
  maxQueuedReadings?: number | undefined;
  /** Where to keep the driver status for `citysense doctor` (rewritten on every state change); none when unset. */
  statusFile?: string | undefined;
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
  /** Times of recent restart-causing faults, for crash-loop detection. */
  recentFaults: number[];
  crashLoop: boolean;
  nextRestartAt: number | null;
  lastReadingAt: number;
  stallTimer: NodeJS.Timeout | null;
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
  #statusWrite: Promise<void> = Promise.resolve();
  #statusDirty = false;

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
        recentFaults: [],
        crashLoop: false,
        nextRestartAt: null,
        lastReadingAt: 0,
        stallTimer: null,
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
        slot.nextRestartAt = null;
        await this.#retire(slot);
        slot.state = 'stopped';
      }),
    );
    this.#saveStatus();
    await this.#statusWrite;
  }

  /**
   * Restarts one driver now with a fresh instance (operator request): a pending backoff
   * restart is cancelled; resolves once it runs or faulted again. CS_ERR_DRIVER_NOT_FOUND (404).
   */
  async restart(id: string): Promise<void> {
    const slot = this.#running ? this.#slots.find((s) => s.config.id === id) : undefined;
    if (!slot)
      throw new CitysenseError(
        'CS_ERR_DRIVER_NOT_FOUND',
        `no driver "${id}" is running here: see the agent status`,
        404,
      );
    if (slot.timer) clearTimeout(slot.timer);
    slot.timer = null;
    slot.generation++;
    await this.#retire(slot);
    slot.restarts++;
    slot.attempt = 0;
    // An operator restart (after fixing the cause) leaves the crash loop's long backoff.
    slot.crashLoop = false;
    slot.recentFaults = [];
    await this.#launch(slot);
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
      isolation: s.config.isolation ?? DEFAULT_ISOLATION,
      crashLoop: s.crashLoop && !(s.state === 'running' && Date.now() - s.startedAt > STABLE_MS),
      nextRestartAt: s.nextRestartAt,
      pid: s.driver instanceof ProcessDriver ? (s.driver.pid ?? null) : null,
    }));
  }

  async #launch(slot: Slot, signal?: AbortSignal): Promise<void> {
    const generation = ++slot.generation;
    const { id, startTimeoutMs = DEFAULT_START_TIMEOUT_MS } = slot.config;
    slot.state = 'starting';
    slot.nextRestartAt = null;
    // Aborted when the budget runs out, so a driver that honours its signal gives up too
    // (a driver process is killed with SIGKILL on it).
    const budget = new AbortController();
    const startSignal = signal ? AbortSignal.any([signal, budget.signal]) : budget.signal;
    let timer: NodeJS.Timeout | undefined;
    const overrun = new Promise<'overrun'>((resolve) => {
      timer = setTimeout(() => resolve('overrun'), startTimeoutMs);
    });
    try {
      const outcome = await Promise.race([this.#startInstance(slot, generation, startSignal), overrun]);
      if (outcome === 'overrun') {
        budget.abort();
        // The hung instance is abandoned: #fault retires it and a fresh one starts after the backoff.
        throw new CitysenseError(
          'CS_ERR_DRIVER_START_TIMEOUT',
          `driver "${id}" did not start within ${startTimeoutMs} ms: check that its devices are reachable, or raise drivers[].startTimeoutMs`,
          504,
        );
      }
    } catch (err) {
      this.#fault(slot, generation, 'CS_ERR_DRIVER_START', err);
    } finally {
      clearTimeout(timer);
    }
  }

  /** Builds and starts one instance of the slot's driver; `#launch` abandons it when it overruns. */
  async #startInstance(slot: Slot, generation: number, signal: AbortSignal): Promise<void> {
    const driver = await this.#create(slot);
    if (generation !== slot.generation) {
      await this.#stopWithin(slot, driver);
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
    slot.lastReadingAt = slot.startedAt;
    this.#watchStall(slot, generation);
    this.#log.info(
      {
        driver: slot.config.id,
        devices: devices.length,
        isolation: slot.config.isolation ?? DEFAULT_ISOLATION,
      },
      'driver running',
    );
    this.emit('running', slot.config.id);
    this.#saveStatus();
  }

  /** A fresh driver instance: from the registry (inline) or a proxy of a new driver process. */
  #create(slot: Slot): Driver | Promise<Driver> {
    const { id, type, options } = slot.config;
    if ((slot.config.isolation ?? DEFAULT_ISOLATION) === 'process') {
      return new ProcessDriver({
        id,
        type,
        options,
        registry: this.#o.processRegistry ?? BUILTIN_REGISTRY_MODULE,
        stopTimeoutMs: slot.config.stopTimeoutMs ?? DEFAULT_STOP_TIMEOUT_MS,
        maxQueuedReadings: this.#o.maxQueuedReadings ?? 50_000,
        logger: this.#log,
      });
    }
    const factory = this.#o.registry[type];
    if (!factory) {
      throw new CitysenseError('CS_ERR_DRIVER_TYPE', `no driver registered for type "${type}"`, 400);
    }
    return factory({ id, options, logger: this.#o.driverLogger ?? rootLogger });
  }

  /** Faults the slot when a running driver sends no readings for `stallAfterMs`. */
  #watchStall(slot: Slot, generation: number): void {
    const stallAfterMs = slot.config.stallAfterMs;
    if (!stallAfterMs) return;
    const check = () => {
      slot.stallTimer = null;
      if (generation !== slot.generation) return;
      const silentMs = Date.now() - slot.lastReadingAt;
      if (silentMs < stallAfterMs) {
        slot.stallTimer = setTimeout(check, stallAfterMs - silentMs);
        return;
      }
      const err = new CitysenseError(
        'CS_ERR_DRIVER_STALLED',
        `driver "${slot.config.id}" sent no readings for ${silentMs} ms: restarting it; check its devices, or raise drivers[].stallAfterMs`,
        504,
      );
      this.#fault(slot, generation, err.code, err);
    };
    slot.stallTimer = setTimeout(check, stallAfterMs);
  }

  #attach(slot: Slot, driver: Driver, generation: number): () => void {
    const onReadings = (batch: Reading[]) => {
      if (generation !== slot.generation) return;
      slot.lastReadingAt = Date.now();
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
    if (slot.startedAt > 0 && now - slot.startedAt > STABLE_MS) {
      slot.attempt = 0;
      slot.recentFaults = [];
      slot.crashLoop = false;
    }
    // Only a run that began after this fault may count as stable again.
    slot.startedAt = 0;
    const loop = this.#o.crashLoop ?? DEFAULT_CRASH_LOOP;
    slot.recentFaults = slot.recentFaults.filter((t) => now - t < loop.windowMs);
    slot.recentFaults.push(now);
    const entersLoop = !slot.crashLoop && slot.recentFaults.length >= loop.faults;
    if (entersLoop) slot.crashLoop = true;
    const backoff = this.#o.backoff ?? { initialMs: 1000, maxMs: 60_000 };
    // Never restart at once: a driver that fails immediately must not spin the CPU.
    // A crash-looping one waits the long backoff (with 10 % jitter) until it has run stable.
    const delayMs = slot.crashLoop
      ? loop.backoffMs + Math.round(Math.random() * loop.backoffMs * 0.1)
      : Math.round(backoff.initialMs / 2) + backoffDelay(slot.attempt++, backoff);
    slot.nextRestartAt = now + delayMs;
    if (entersLoop) {
      this.#log.error(
        { driver: slot.config.id, ...slot.lastFault, faults: slot.recentFaults.length, delayMs },
        'driver is crash-looping, restarting it with the long backoff',
      );
    } else {
      this.#log.error({ driver: slot.config.id, ...slot.lastFault, delayMs }, 'driver faulted, restarting');
    }
    this.emit('fault', slot.config.id, slot.lastFault);
    void this.#retire(slot, slot.lastFault.code === 'CS_ERR_DRIVER_START_TIMEOUT');
    this.#saveStatus();
    slot.timer = setTimeout(() => {
      slot.timer = null;
      if (!this.#running) return;
      slot.restarts++;
      void this.#launch(slot);
    }, delayMs);
  }

  /**
   * Detaches and stops the slot's current driver instance within its stop budget; errors are
   * logged, not thrown. `kill`: a hung driver process is killed at once (SIGKILL).
   */
  async #retire(slot: Slot, kill = false): Promise<void> {
    const driver = slot.driver;
    slot.detach?.();
    slot.detach = null;
    slot.driver = null;
    if (slot.stallTimer) clearTimeout(slot.stallTimer);
    slot.stallTimer = null;
    if (!driver) return;
    if (kill && driver instanceof ProcessDriver) await driver.kill();
    else await this.#stopWithin(slot, driver);
  }

  /** Stops `driver`; an inline driver that overruns `stopTimeoutMs` is abandoned (a driver process is killed). */
  async #stopWithin(slot: Slot, driver: Driver): Promise<void> {
    const stopTimeoutMs = slot.config.stopTimeoutMs ?? DEFAULT_STOP_TIMEOUT_MS;
    // A driver process kills its child itself once stopTimeoutMs is up; allow for the exit to arrive.
    const budgetMs = driver instanceof ProcessDriver ? stopTimeoutMs + 2_000 : stopTimeoutMs;
    let timer: NodeJS.Timeout | undefined;
    const overran = await Promise.race([
      stopQuietly(driver, this.#log).then(() => false),
      new Promise<boolean>((resolve) => {
        timer = setTimeout(() => resolve(true), budgetMs);
      }),
    ]);
    clearTimeout(timer);
    if (overran) {
      this.#log.warn(
        { driver: slot.config.id, stopTimeoutMs },
        'driver did not stop in time and was abandoned: its resources are released when the agent restarts; consider isolation "process"',
      );
    }
  }

  /** Rewrites the status file after the current write (changes in between coalesce into one write). */
  #saveStatus(): void {
    const file = this.#o.statusFile;
    if (!file || this.#statusDirty) return;
    this.#statusDirty = true;
    this.#statusWrite = this.#statusWrite.then(async () => {
      this.#statusDirty = false;
      const doc: DriverStatusFile = { at: new Date().toISOString(), drivers: this.status() };
      try {
        await writeFileAtomic(file, `${JSON.stringify(doc, null, 2)}\n`, 0o644);
      } catch (err) {
        this.#log.warn({ file, err: errorMessage(err) }, 'cannot write the driver status file');
      }
    });
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
