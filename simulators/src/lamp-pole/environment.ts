import { ouStep, type SeededRandom } from '../random.ts';
import { hourDistance, localDayOfYear, localSolarHour } from './solar-time.ts';

const MINUTE_MS = 60_000;
const HOUR_MS = 60 * MINUTE_MS;
const DAY_MS = 24 * HOUR_MS;

/** True physical conditions at one pole at one instant, before any sensor fault. */
export interface PoleConditions {
  /** µg/m³ */
  pm25: number;
  /** µg/m³ */
  pm10: number;
  /** A-weighted equivalent sound level, dB(A). */
  laeq: number;
  /** °C */
  temperature: number;
  /** %RH */
  humidity: number;
  /** Water level in the drain under the pole, m. */
  waterLevel: number;
  /** Manhole cover tilt, degrees. */
  manholeTilt: number;
  manholeOpen: boolean;
  /** Pole tilt from vertical, degrees. */
  poleTilt: number;
  /** Lamp input power, W. */
  lampPower: number;
  lampOn: boolean;
}

interface RainEvent {
  start: number;
  peakM: number;
  riseMs: number;
  decayMs: number;
}

/** Traffic intensity in [0, ~1]: rush-hour peaks at 08:00 and 18:00 local time. */
export function rushHour(hour: number): number {
  const morning = Math.exp(-(hourDistance(hour, 8) ** 2) / (2 * 1.2 ** 2));
  const evening = 0.9 * Math.exp(-(hourDistance(hour, 18) ** 2) / (2 * 1.5 ** 2));
  return morning + evening;
}

/** City activity in [0, 1]: rises around 06:00, falls around 22:30. */
export function dayActivity(hour: number): number {
  return 1 / (1 + Math.exp(-(hour - 6) * 2)) / (1 + Math.exp((hour - 22.5) * 2));
}

/** Diurnal temperature shape in [-1, 1]: minimum at 05:00, maximum at 14:00 (asymmetric). */
export function diurnalTemperature(hour: number): number {
  if (hour >= 5 && hour < 14) return -Math.cos((Math.PI * (hour - 5)) / 9);
  return Math.cos((Math.PI * ((hour - 14 + 24) % 24)) / 15);
}

/** True when the street lamp is lit: dusk at ~18:30, dawn at ~06:00 local time. */
export function lampLit(hour: number): boolean {
  return hour >= 18.5 || hour < 6;
}

/**
 * The weather, traffic and street around one lamp pole, stepped through time. Slow
 * random walks are Ornstein-Uhlenbeck processes so any tick interval works; rain
 * storms and manhole displacements are Poisson events.
 */
export class PoleEnvironment {
  readonly #random: SeededRandom;
  readonly #longitude: number;
  #last: number | undefined;
  #pmLog = 0;
  #pmRatio = 1.6;
  #tempWalk = 0;
  #humidityWalk = 0;
  #noiseWalk = 0;
  #wind = 0;
  #waterBase = 0.35;
  #rain: RainEvent[] = [];
  #manholeUntil = 0;
  #manholeTilt = 0;

  constructor(random: SeededRandom, longitude: number) {
    this.#random = random;
    this.#longitude = longitude;
  }

  /** Advances to `time` (ms since the epoch, not before the previous step) and returns the conditions. */
  step(time: number): PoleConditions {
    const r = this.#random;
    // The first step draws the drifts from (about) their long-run spread; events need elapsed time.
    const dt = this.#last === undefined ? DAY_MS : Math.max(0, time - this.#last);
    const eventDt = this.#last === undefined ? 0 : dt;
    this.#last = time;
    const hour = localSolarHour(time, this.#longitude);

    // Slow drifts: air mass, weather fronts, gusts.
    this.#pmLog = ouStep(this.#pmLog, 0, 0.3, 3 * HOUR_MS, dt, r);
    this.#pmRatio = clamp(ouStep(this.#pmRatio, 1.6, 0.12, 6 * HOUR_MS, dt, r), 1.3, 2);
    this.#tempWalk = ouStep(this.#tempWalk, 0, 2.5, 2 * DAY_MS, dt, r);
    this.#humidityWalk = ouStep(this.#humidityWalk, 0, 6, 12 * HOUR_MS, dt, r);
    this.#noiseWalk = ouStep(this.#noiseWalk, 0, 1.5, 10 * MINUTE_MS, dt, r);
    this.#wind = ouStep(this.#wind, 0, 1, 15 * MINUTE_MS, dt, r);
    this.#waterBase = ouStep(this.#waterBase, 0.35, 0.02, 2 * DAY_MS, dt, r);

    const rainRise = this.#stepRain(time, eventDt);
    const raining = rainRise > 0.05;
    const rush = rushHour(hour);

    // Rush hour traffic raises particulates; rain washes them out.
    const pm25 = Math.max(1, (22 + 45 * rush) * Math.exp(this.#pmLog) * (raining ? 0.6 : 1) + r.gaussian());
    const pm10 = pm25 * this.#pmRatio;

    const laeq = 40 + 16 * dayActivity(hour) + 8 * rush + this.#noiseWalk + r.gaussian();

    const doy = localDayOfYear(time, this.#longitude);
    const seasonalMean = 12.5 - 15 * Math.cos((2 * Math.PI * (doy - 15)) / 365.25); // Beijing: -2.5 Jan, 27.5 Jul
    const diurnal = 5 * diurnalTemperature(hour);
    const temperature = seasonalMean + diurnal + this.#tempWalk + 0.1 * r.gaussian();
    const humidity = clamp(
      55 - 3.5 * (diurnal + 0.5 * this.#tempWalk) + this.#humidityWalk + (raining ? 25 : 0) + r.gaussian(),
      5,
      100,
    );

    const waterLevel = Math.max(0, this.#waterBase + rainRise + 0.002 * r.gaussian());

    const { manholeTilt, manholeOpen } = this.#stepManhole(time, eventDt);
    const poleTilt = Math.max(0, 0.12 + 0.05 * Math.abs(this.#wind) + 0.01 * r.gaussian());

    const lampOn = lampLit(hour);
    const dimmed = hour >= 23 || hour < 5; // late-night dimming to 60 %
    const lampPower = lampOn
      ? (dimmed ? 72 : 120) + 0.8 * r.gaussian()
      : Math.max(0, 0.4 + 0.05 * r.gaussian());

    return {
      pm25,
      pm10,
      laeq,
      temperature,
      humidity,
      waterLevel,
      manholeTilt,
      manholeOpen,
      poleTilt,
      lampPower,
      lampOn,
    };
  }

  /** Storms about every two days: the drain level rises over 20-60 min, then drains over hours. */
  #stepRain(time: number, dt: number): number {
    const r = this.#random;
    if (r.chance(1 - Math.exp(-dt / (2 * DAY_MS)))) {
      this.#rain.push({
        start: time,
        peakM: r.uniform(0.2, 1.2),
        riseMs: r.uniform(20, 60) * MINUTE_MS,
        decayMs: r.uniform(2, 6) * HOUR_MS,
      });
    }
    let rise = 0;
    this.#rain = this.#rain.filter((e) => {
      const age = time - e.start;
      const h =
        age < e.riseMs ? (e.peakM * age) / e.riseMs : e.peakM * Math.exp(-(age - e.riseMs) / e.decayMs);
      rise += h;
      return age < e.riseMs || h > 0.001;
    });
    return rise;
  }

  /** A cover knocked loose by traffic about every ten days, for 10-60 min. */
  #stepManhole(time: number, dt: number): { manholeTilt: number; manholeOpen: boolean } {
    const r = this.#random;
    if (time >= this.#manholeUntil && r.chance(1 - Math.exp(-dt / (10 * DAY_MS)))) {
      this.#manholeUntil = time + r.uniform(10, 60) * MINUTE_MS;
      this.#manholeTilt = r.uniform(6, 25);
    }
    if (time < this.#manholeUntil) {
      return { manholeTilt: this.#manholeTilt + 0.2 * r.gaussian(), manholeOpen: true };
    }
    return { manholeTilt: Math.abs(0.3 + 0.05 * r.gaussian()), manholeOpen: false };
  }
}

function clamp(x: number, min: number, max: number): number {
  return Math.min(max, Math.max(min, x));
}
