import type { DriverFault, Reading } from '@citysense/device-drivers';
import type { SeededRandom } from '../random.ts';
import type { LampPoleDeviceSpec, LampPoleMetricSpec } from './devices.ts';

/** Fault codes the lamp-pole simulator reports in `fault` events. */
export const LAMP_POLE_FAULT_CODES = {
  /** The sensor repeats its last value (quality still `good`: the sensor does not know). */
  stuck: 'SENSOR_STUCK',
  /** The device sends nothing for a while (RS-485 / LoRa link lost). */
  dropout: 'SENSOR_DROPOUT',
  /** One reading far outside the sensor's range, reported with quality `bad`. */
  spike: 'SENSOR_OUT_OF_RANGE',
  /** The gateway lost the sensor and republishes its last value with quality `uncertain`. */
  offline: 'SENSOR_OFFLINE',
} as const;

type FaultKind = keyof typeof LAMP_POLE_FAULT_CODES;

interface ActiveFault {
  kind: FaultKind;
  /** Ticks left, this one included. */
  ticksLeft: number;
  /** The metric a spike hits. */
  metric?: string | undefined;
}

interface FaultChoice {
  kind: FaultKind;
  weight: number;
  ticks: readonly [number, number];
}

/** Relative likelihood of each fault kind, and how many ticks it lasts. */
const FAULT_KINDS: readonly [FaultChoice, ...FaultChoice[]] = [
  { kind: 'stuck', weight: 0.3, ticks: [12, 120] },
  { kind: 'dropout', weight: 0.25, ticks: [6, 60] },
  { kind: 'spike', weight: 0.3, ticks: [1, 1] },
  { kind: 'offline', weight: 0.15, ticks: [12, 120] },
];

const FAULT_MESSAGES: Record<FaultKind, (device: string, metric?: string) => string> = {
  stuck: (d) => `sensor ${d} repeats its last value; check it for fouling or a frozen firmware`,
  dropout: (d) => `sensor ${d} stopped reporting; readings are missing until its link recovers`,
  spike: (d, m) => `sensor ${d} reported ${m ?? 'a value'} outside its range; the reading is marked bad`,
  offline: (d) => `sensor ${d} is offline; its last value is republished with quality uncertain`,
};

/** What one device reports this tick after faults are applied. */
export interface FaultedReadings {
  readings: Reading[];
  /** A fault that started this tick. */
  fault?: DriverFault | undefined;
}

/**
 * Injects realistic sensor faults into one pole's healthy readings. Each reading starts
 * a fault on its device with probability `faultRate`; a device has at most one fault
 * at a time. The physical world keeps moving underneath: only what is reported changes.
 */
export class FaultInjector {
  readonly #random: SeededRandom;
  readonly #faultRate: number;
  readonly #active = new Map<string, ActiveFault>();
  /** Last value reported with quality good, per `${device}\0${metric}`. */
  readonly #lastGood = new Map<string, Reading['value']>();

  constructor(random: SeededRandom, faultRate: number) {
    this.#random = random;
    this.#faultRate = faultRate;
  }

  /** Applies the device's current fault (starting one by chance) to its healthy readings. */
  apply(device: LampPoleDeviceSpec, healthy: Reading[]): FaultedReadings {
    let fault: DriverFault | undefined;
    let active = this.#active.get(device.id);
    if (!active) {
      // Roll once per reading so the fault rate is per reading, as configured.
      let hit: string | undefined;
      for (const r of healthy) if (this.#random.chance(this.#faultRate) && hit === undefined) hit = r.metric;
      if (hit !== undefined) {
        active = this.#start(device, hit);
        fault = {
          device: device.id,
          code: LAMP_POLE_FAULT_CODES[active.kind],
          message: FAULT_MESSAGES[active.kind](device.id, active.metric),
        };
      }
    }
    const readings = active ? this.#distort(device, active, healthy) : healthy;
    if (active) {
      active.ticksLeft -= 1;
      if (active.ticksLeft <= 0) this.#active.delete(device.id);
    }
    for (const r of readings)
      if (r.quality === 'good') this.#lastGood.set(`${r.device}\u0000${r.metric}`, r.value);
    return { readings, fault };
  }

  #start(device: LampPoleDeviceSpec, hitMetric: string): ActiveFault {
    const r = this.#random;
    const choice = r.pickWeighted(FAULT_KINDS);
    const numeric = device.metrics.filter((m) => m.type === 'double');
    const spikeMetric = numeric.find((m) => m.name === hitMetric) ?? numeric[0];
    // A spike needs a numeric metric; a device without one gets stuck instead.
    const kind: FaultKind = choice.kind === 'spike' && !spikeMetric ? 'stuck' : choice.kind;
    const active: ActiveFault = { kind, ticksLeft: r.int(choice.ticks[0], choice.ticks[1]) };
    if (kind === 'spike') active.metric = spikeMetric?.name;
    this.#active.set(device.id, active);
    return active;
  }

  #distort(device: LampPoleDeviceSpec, active: ActiveFault, healthy: Reading[]): Reading[] {
    switch (active.kind) {
      case 'dropout':
        return [];
      case 'stuck':
        return healthy.map((r) => ({ ...r, value: this.#lastValue(r) }));
      case 'offline':
        return healthy.map((r) => ({ ...r, value: this.#lastValue(r), quality: 'uncertain' }));
      case 'spike':
        return healthy.map((r) => {
          const spec = device.metrics.find((m) => m.name === r.metric);
          if (r.metric !== active.metric || spec?.type !== 'double') return r;
          return { ...r, value: this.#outOfRange(spec), quality: 'bad' };
        });
    }
  }

  #lastValue(r: Reading): Reading['value'] {
    return this.#lastGood.get(`${r.device}\u0000${r.metric}`) ?? r.value;
  }

  /** A value the sensor cannot physically report: above its range or a negative sentinel below it. */
  #outOfRange(spec: Extract<LampPoleMetricSpec, { type: 'double' }>): number {
    const [min, max] = spec.range;
    const span = max - min;
    const value = this.#random.chance(0.7) ? max + span * this.#random.uniform(0.5, 3) : min - span;
    const scale = 10 ** spec.digits;
    return Math.round(value * scale) / scale;
  }
}
