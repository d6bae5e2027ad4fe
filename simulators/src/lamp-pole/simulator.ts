import {
  type DeviceDescriptor,
  type Driver,
  type DriverCapabilities,
  DriverEmitter,
  type DriverFault,
  type Reading,
  throwIfStartAborted,
} from '@citysense/device-drivers';
import { componentLogger, type Logger } from '@citysense/protocol';
import { SeededRandom } from '../random.ts';
import { type LampPoleSimulatorConfig, resolveLampPoleSimulatorConfig } from './config.ts';
import { describeDevice, type LampPoleDeviceSpec, lampPoleDevices, sensorValue } from './devices.ts';
import { PoleEnvironment } from './environment.ts';
import { FaultInjector } from './faults.ts';

/** How to build a lamp-pole simulator. */
export interface LampPoleSimulatorInit {
  /** Driver instance id; default `lamp-pole-sim`. */
  id?: string;
  /** Options, validated by `start` against LampPoleSimulatorConfig (so bad options fail start-up). */
  config?: Partial<LampPoleSimulatorConfig> | Record<string, unknown>;
  /** Clock in ms since the epoch; default `Date.now`. Tests inject one. */
  now?: () => number;
  /** Parent logger; default the root logger. */
  logger?: Logger;
}

interface Running {
  config: Readonly<LampPoleSimulatorConfig>;
  devices: LampPoleDeviceSpec[];
  environment: PoleEnvironment;
  faults: FaultInjector;
}

/**
 * The sensors of one city lamp pole as a Driver: air quality, noise, weather, drain
 * water level, manhole cover, pole tilt and the lamp itself, driven by local solar time
 * at the configured longitude, with occasional realistic sensor faults. One `readings`
 * event per tick carries every sensor's values; the same seed and clock replay the
 * same readings. The start signal only cancels start-up; `stop` ends production.
 */
export class LampPoleSimulator extends DriverEmitter implements Driver {
  /** Driver instance id. */
  readonly id: string;
  /** Telemetry only; the simulated sensors accept no commands. */
  readonly capabilities: DriverCapabilities = { telemetry: true, commands: false };
  readonly #input: unknown;
  readonly #now: () => number;
  #state: Running | undefined;
  #running = false;
  #firstTick: NodeJS.Timeout | undefined;
  #interval: NodeJS.Timeout | undefined;
  #lastTime = Number.NEGATIVE_INFINITY;

  constructor(init: LampPoleSimulatorInit = {}) {
    const id = init.id ?? 'lamp-pole-sim';
    super(componentLogger('lamp-pole-sim', init.logger).child({ driver: id }));
    this.id = id;
    this.#input = init.config ?? {};
    this.#now = init.now ?? Date.now;
  }

  /** The resolved options; undefined before the first `start`. */
  get config(): Readonly<LampPoleSimulatorConfig> | undefined {
    return this.#state?.config;
  }

  /** One device per configured sensor set, e.g. `pole-0001.air`; empty before `start`. */
  devices(): DeviceDescriptor[] {
    return this.#state?.devices.map(describeDevice) ?? [];
  }

  /** Validates the options (CS_ERR_CONFIG_INVALID) and starts ticking; the first batch follows at once. */
  async start(signal?: AbortSignal): Promise<void> {
    throwIfStartAborted(this.id, signal);
    if (this.#running) return;
    // Built once: a restart after stop continues the same world instead of replaying it.
    if (!this.#state) {
      const config = resolveLampPoleSimulatorConfig(this.#input);
      const random = new SeededRandom(config.seed);
      this.#state = {
        config,
        devices: lampPoleDevices(config.poleId, config.sensors),
        environment: new PoleEnvironment(random, config.longitude),
        faults: new FaultInjector(random, config.faultRate),
      };
    }
    const { config } = this.#state;
    this.#running = true;
    this.#firstTick = setTimeout(() => this.#tick(), 0);
    this.#interval = setInterval(() => this.#tick(), config.intervalMs);
    this.log.info(
      { poleId: config.poleId, sensors: config.sensors, intervalMs: config.intervalMs },
      'lamp-pole simulator started',
    );
  }

  /** Stops ticking; no event is emitted once this resolves. */
  async stop(): Promise<void> {
    if (!this.#running) return;
    this.#running = false;
    clearTimeout(this.#firstTick);
    clearInterval(this.#interval);
    this.#firstTick = undefined;
    this.#interval = undefined;
    this.log.info('lamp-pole simulator stopped');
  }

  #tick(): void {
    const state = this.#state;
    if (!this.#running || !state) return;
    // Strictly increasing per series even if the clock stalls or steps back.
    const time = Math.max(Math.floor(this.#now() + state.config.timeOffsetMs), this.#lastTime + 1);
    this.#lastTime = time;
    const conditions = state.environment.step(time);
    const batch: Reading[] = [];
    const faults: DriverFault[] = [];
    for (const device of state.devices) {
      const healthy: Reading[] = device.metrics.map((m) => ({
        device: device.id,
        metric: m.name,
        time,
        value: sensorValue(m, conditions),
        quality: 'good',
      }));
      const { readings, fault } = state.faults.apply(device, healthy);
      batch.push(...readings);
      if (fault) faults.push(fault);
    }
    for (const fault of faults) {
      this.log.warn({ device: fault.device, code: fault.code }, fault.message);
      if (this.#running) this.emit('fault', fault);
    }
    if (batch.length > 0 && this.#running) this.emit('readings', batch);
  }
}
