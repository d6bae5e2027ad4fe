/** A tiny Driver for tests: one device, readings on a timer, knobs to misbehave. Test support only. */
import { EventEmitter } from 'node:events';
import type {
  DeviceDescriptor,
  Driver,
  DriverCapabilities,
  DriverEvents,
  MetricDescriptor,
  Reading,
} from '@citysense/device-drivers';

/** Knobs of the test driver. */
export interface TestDriverOptions {
  id: string;
  device?: string;
  intervalMs?: number;
  /** Throw from `start` this many times before starting. */
  failStarts?: number;
  /** Emit a batch with an invalid device id once, after this many good batches. */
  badBatchAfter?: number;
  /** Throw from a timer callback (an uncaught exception) after this many batches. */
  throwInTimerAfter?: number;
  /** `start` never resolves. */
  hangStart?: boolean;
  /** `stop` never resolves. */
  hangStop?: boolean;
  /** Go silent (no more batches, no fault) after this many batches. */
  stallAfter?: number;
}

/** Shared across instances so a test can see restarts of a fresh instance. */
export const testDriverStats = new Map<string, { starts: number; failedStarts: number; batches: number }>();

/** A driver emitting `Temp` (double, Cel) and `Count` (int) for one device. */
export class TestDriver extends EventEmitter implements Driver {
  readonly id: string;
  readonly capabilities: DriverCapabilities = { telemetry: true, commands: false };
  readonly #o: TestDriverOptions;
  readonly #metrics: MetricDescriptor[] = [
    { name: 'Temp', type: 'double', unit: 'Cel' },
    { name: 'Count', type: 'int' },
  ];
  #timer: NodeJS.Timeout | null = null;
  #count = 0;

  constructor(o: TestDriverOptions) {
    super();
    this.id = o.id;
    this.#o = o;
  }

  get #device(): string {
    return this.#o.device ?? `${this.id}.dev`;
  }

  devices(): DeviceDescriptor[] {
    return [{ id: this.#device, kind: 'test', metrics: [...this.#metrics] }];
  }

  /** Adds a metric at runtime, as a driver discovering a new sensor would. */
  addMetric(m: MetricDescriptor): void {
    this.#metrics.push(m);
  }

  async start(): Promise<void> {
    const stats = testDriverStats.get(this.id) ?? { starts: 0, failedStarts: 0, batches: 0 };
    testDriverStats.set(this.id, stats);
    stats.starts++;
    if (stats.failedStarts < (this.#o.failStarts ?? 0)) {
      stats.failedStarts++;
      throw new Error('sensor bus not ready');
    }
    if (this.#o.hangStart) await new Promise(() => {});
    if (this.#timer) return;
    this.#timer = setInterval(() => this.#tick(stats), this.#o.intervalMs ?? 20);
  }

  async stop(): Promise<void> {
    if (this.#o.hangStop) await new Promise(() => {});
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = null;
  }

  #tick(stats: { batches: number }): void {
    if (this.#o.stallAfter !== undefined && this.#count >= this.#o.stallAfter) return;
    if (this.#o.throwInTimerAfter !== undefined && this.#count === this.#o.throwInTimerAfter) {
      setTimeout(() => {
        throw new Error('driver bug in a timer callback');
      }, 0);
    }
    stats.batches++;
    const n = ++this.#count;
    const time = Date.now();
    const batch: Reading[] = this.#metrics.map((m) => ({
      device: this.#device,
      metric: m.name,
      time,
      value:
        m.type === 'int' ? n : m.type === 'bool' ? n % 2 === 0 : m.type === 'string' ? `s${n}` : 20 + n / 10,
      quality: n % 5 === 0 ? 'uncertain' : 'good',
    }));
    if (this.#o.badBatchAfter !== undefined && n === this.#o.badBatchAfter + 1) {
      batch[0] = { device: 'bad/device', metric: 'Temp', time, value: 1, quality: 'good' };
    }
    this.emit('readings', batch);
  }

  override on<E extends keyof DriverEvents>(event: E, listener: DriverEvents[E]): this {
    return super.on(event, listener);
  }

  override off<E extends keyof DriverEvents>(event: E, listener: DriverEvents[E]): this {
    return super.off(event, listener);
  }
}
