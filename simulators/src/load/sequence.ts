import type { DeviceDescriptor, Reading } from '@citysense/device-drivers';
import { CitysenseError } from '@citysense/protocol';
import { SeededRandom } from '../random.ts';
import { type LoadShape, resolveLoadShape } from './config.ts';

/** Device ids of a load shape: `${devicePrefix}-0000` ... */
export function loadDeviceIds(shape: Pick<LoadShape, 'devicePrefix' | 'devices'>): string[] {
  return Array.from(
    { length: shape.devices },
    (_, i) => `${shape.devicePrefix}-${String(i).padStart(4, '0')}`,
  );
}

/** Device descriptors of a load shape: D devices of kind `load`, each with M double metrics M0... */
export function loadDevices(
  shape: Pick<LoadShape, 'devicePrefix' | 'devices' | 'metrics'>,
): DeviceDescriptor[] {
  const metrics = Array.from({ length: shape.metrics }, (_, j) => ({
    name: `M${j}`,
    type: 'double' as const,
  }));
  return loadDeviceIds(shape).map((id) => ({ id, kind: 'load', metrics: metrics.map((m) => ({ ...m })) }));
}

/**
 * An endless, deterministic stream of synthetic readings: round-robin over every
 * (device, metric) series, each a bounded random walk (so it compresses like real
 * telemetry). Round r of the series is stamped startTime + max(r, floor(r * D * M * 1000 /
 * rate)): strictly increasing and unique per series, and close to wall-clock spacing
 * as long as D * M >= rate / 1000.
 */
export class ReadingSequence {
  readonly #devices: string[];
  readonly #metrics: string[];
  readonly #startTime: number;
  readonly #roundMs: number;
  readonly #random: SeededRandom;
  readonly #values: Float64Array;
  #index = 0;

  constructor(shape: LoadShape & { startTime: number }) {
    this.#devices = loadDeviceIds(shape);
    this.#metrics = Array.from({ length: shape.metrics }, (_, j) => `M${j}`);
    this.#startTime = shape.startTime;
    const series = shape.devices * shape.metrics;
    this.#roundMs = shape.ratePerSecond > 0 ? (series * 1000) / shape.ratePerSecond : 1;
    this.#random = new SeededRandom(shape.seed);
    this.#values = new Float64Array(series);
  }

  /** Readings produced so far. */
  get produced(): number {
    return this.#index;
  }

  /** The next `count` readings. */
  next(count: number): Reading[] {
    assertReadingCount(count);
    const out: Reading[] = new Array(count);
    const metricCount = this.#metrics.length;
    const series = this.#values.length;
    for (let k = 0; k < count; k++) {
      const i = this.#index++;
      const s = i % series;
      const round = (i - s) / series;
      const time = this.#startTime + (this.#roundMs >= 1 ? Math.floor(round * this.#roundMs) : round);
      const previous = this.#values[s] ?? 0;
      const walk = previous * 0.98 + (this.#random.next() - 0.5);
      this.#values[s] = walk;
      out[k] = {
        device: this.#devices[Math.floor(s / metricCount)] ?? '',
        metric: this.#metrics[s % metricCount] ?? '',
        time,
        // A per-series level so the series look like distinct sensors.
        value: 20 + (s % 10) * 5 + walk,
        quality: 'good',
      };
    }
    return out;
  }
}

/**
 * `count` synthetic readings, generated synchronously as fast as possible, for
 * benchmarks. Options as LoadShape (validated); pass `startTime` for a repeatable run.
 */
export function generateReadings(count: number, options: Partial<LoadShape> = {}): Reading[] {
  const shape = resolveLoadShape(options);
  return new ReadingSequence({ ...shape, startTime: shape.startTime ?? Date.now() }).next(count);
}

/** Throws CS_ERR_LOAD_COUNT_INVALID unless `count` is a non-negative safe integer. */
export function assertReadingCount(count: number): void {
  if (!Number.isSafeInteger(count) || count < 0) {
    throw new CitysenseError(
      'CS_ERR_LOAD_COUNT_INVALID',
      `reading count ${count} is not valid: pass a whole number of readings, 0 or more`,
      400,
    );
  }
}
