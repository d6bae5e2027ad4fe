import {
  type DeviceDescriptor,
  type Driver,
  type DriverCapabilities,
  DriverEmitter,
  type Reading,
  throwIfStartAborted,
} from '@citysense/device-drivers';
import { CitysenseError, componentLogger, type Logger } from '@citysense/protocol';
import { type LoadGeneratorConfig, resolveLoadGeneratorConfig } from './config.ts';
import { loadDevices, ReadingSequence } from './sequence.ts';

/** Fault code when the consumer is too slow for ratePerSecond and the backlog is dropped. */
export const LOAD_GENERATOR_BEHIND = 'LOAD_GENERATOR_BEHIND';

/** How to build a load generator. */
export interface LoadGeneratorInit {
  /** Driver instance id; default `load-generator`. */
  id?: string;
  /** Options, validated by `start` against LoadGeneratorConfig. */
  config?: Partial<LoadGeneratorConfig> | Record<string, unknown>;
  /** Clock in ms since the epoch; default `Date.now`. */
  now?: () => number;
  /** Parent logger; default the root logger. */
  logger?: Logger;
}

/** Counters of a load generator run. */
export interface LoadGeneratorStats {
  readings: number;
  batches: number;
  /** Readings skipped because the consumer could not keep up. */
  dropped: number;
}

interface Running {
  config: Readonly<LoadGeneratorConfig>;
  devices: DeviceDescriptor[];
  sequence: ReadingSequence;
}

/** Longest pump period, so the generator reacts to stop and keeps batches flowing. */
const MAX_TICK_MS = 100;

/**
 * A Driver that emits synthetic load for the ingest benchmark: ratePerSecond readings
 * spread over D devices x M double metrics, in `readings` events of batchSize, with
 * strictly increasing unique timestamps per (device, metric). `burst(n)` emits n more
 * at once. If the consumer blocks for over a second the backlog is dropped and a
 * LOAD_GENERATOR_BEHIND fault reported, so a slow sink shows up instead of a pile-up.
 */
export class LoadGenerator extends DriverEmitter implements Driver {
  /** Driver instance id. */
  readonly id: string;
  /** Telemetry only. */
  readonly capabilities: DriverCapabilities = { telemetry: true, commands: false };
  readonly #input: unknown;
  readonly #now: () => number;
  #state: Running | undefined;
  #running = false;
  #timer: NodeJS.Timeout | undefined;
  /** Schedule origin: readings due = (now - #since) * rate / 1000. */
  #since = 0;
  #scheduled = 0;
  #stats: LoadGeneratorStats = { readings: 0, batches: 0, dropped: 0 };

  constructor(init: LoadGeneratorInit = {}) {
    const id = init.id ?? 'load-generator';
    super(componentLogger('load-generator', init.logger).child({ driver: id }));
    this.id = id;
    this.#input = init.config ?? {};
    this.#now = init.now ?? Date.now;
  }

  /** The resolved options; undefined before the first `start`. */
  get config(): Readonly<LoadGeneratorConfig> | undefined {
    return this.#state?.config;
  }

  /** Counters since the first start. */
  stats(): LoadGeneratorStats {
    return { ...this.#stats };
  }

  /** D devices `${devicePrefix}-0000`... with metrics M0...; empty before `start`. */
  devices(): DeviceDescriptor[] {
    return structuredClone(this.#state?.devices ?? []);
  }

  /** Validates the options (CS_ERR_CONFIG_INVALID) and starts the schedule. */
  async start(signal?: AbortSignal): Promise<void> {
    throwIfStartAborted(this.id, signal);
    if (this.#running) return;
    if (!this.#state) {
      const config = resolveLoadGeneratorConfig(this.#input);
      this.#state = {
        config,
        devices: loadDevices(config),
        sequence: new ReadingSequence({ ...config, startTime: config.startTime ?? this.#now() }),
      };
    }
    const { config } = this.#state;
    this.#running = true;
    this.#since = this.#now();
    this.#scheduled = 0;
    if (config.ratePerSecond > 0) {
      const tickMs = Math.min(MAX_TICK_MS, Math.max(1, (config.batchSize * 1000) / config.ratePerSecond));
      this.#timer = setInterval(() => this.#pump(), tickMs);
    }
    this.log.info(
      { devices: config.devices, metrics: config.metrics, ratePerSecond: config.ratePerSecond },
      'load generator started',
    );
  }

  /** Stops the schedule; no event is emitted once this resolves. */
  async stop(): Promise<void> {
    if (!this.#running) return;
    this.#running = false;
    clearInterval(this.#timer);
    this.#timer = undefined;
    this.log.info({ ...this.#stats }, 'load generator stopped');
  }

  /**
   * Emits `count` readings now, in batches of batchSize, on top of the schedule, and
   * returns how many were emitted (fewer once `limit` is reached). Throws
   * CS_ERR_DRIVER_NOT_RUNNING unless started.
   */
  burst(count: number): number {
    if (!this.#running || !this.#state) {
      throw new CitysenseError(
        'CS_ERR_DRIVER_NOT_RUNNING',
        `load generator "${this.id}" is not running: await start() before burst()`,
        409,
      );
    }
    return this.#emitReadings(this.#state, count);
  }

  #pump(): void {
    const state = this.#state;
    if (!this.#running || !state) return;
    const { ratePerSecond } = state.config;
    const due = Math.floor(((this.#now() - this.#since) * ratePerSecond) / 1000) - this.#scheduled;
    if (due <= 0) return;
    if (due > ratePerSecond) {
      this.#stats.dropped += due;
      this.#scheduled += due;
      this.emit('fault', {
        code: LOAD_GENERATOR_BEHIND,
        message: `load generator "${this.id}" fell ${due} readings behind ${ratePerSecond}/s and dropped them: the consumer is slower than the rate; lower ratePerSecond or speed up the sink`,
      });
      return;
    }
    this.#scheduled += due;
    this.#emitReadings(state, due);
  }

  #emitReadings(state: Running, count: number): number {
    const { batchSize, limit } = state.config;
    const allowed = limit > 0 ? Math.max(0, Math.min(count, limit - this.#stats.readings)) : count;
    let left = allowed;
    while (left > 0 && this.#running) {
      const batch: Reading[] = state.sequence.next(Math.min(batchSize, left));
      left -= batch.length;
      this.#stats.readings += batch.length;
      this.#stats.batches += 1;
      this.emit('readings', batch);
    }
    return allowed - left;
  }
}
