/**
 * The lamp-pole PLC the OPC UA simulator exposes: lamp, cabinet and energy meter of one pole, stepped
 * through local solar time. Pure state and arithmetic; the server in `opcua-simulator.ts` publishes it.
 */

import { diurnalTemperature, lampLit } from '../lamp-pole/environment.ts';
import { localDayOfYear, localSolarHour } from '../lamp-pole/solar-time.ts';
import { ouStep, type SeededRandom } from '../random.ts';

const MINUTE_MS = 60_000;
const HOUR_MS = 60 * MINUTE_MS;

/** Variables of the simulated PLC, by their path below the `Pole` object (also their string NodeIds). */
export const OPCUA_SIM_POINTS = {
  lampPower: { path: 'Pole/Lamp/Power', dataType: 'Double', unit: 'W', range: [0, 250] },
  lampOn: { path: 'Pole/Lamp/On', dataType: 'Boolean' },
  cabinetTemperature: { path: 'Pole/Cabinet/Temperature', dataType: 'Double', unit: '°C', range: [-40, 85] },
  cabinetDoorOpen: { path: 'Pole/Cabinet/DoorOpen', dataType: 'Boolean' },
  meterEnergy: { path: 'Pole/Meter/Energy', dataType: 'Double', unit: 'kWh', range: [0, 1e9] },
} as const;

/** One variable of the simulated PLC. */
export type OpcUaSimPoint = keyof typeof OPCUA_SIM_POINTS;

/** Values of every point at one instant. */
export type PlcValues = {
  [P in OpcUaSimPoint]: (typeof OPCUA_SIM_POINTS)[P]['dataType'] extends 'Boolean' ? boolean : number;
};

/** Rated input power of the LED luminaire, W. */
const RATED_W = 120;
/** Driver and controller draw while the lamp is off, W. */
const STANDBY_W = 1.5;

/**
 * The physics of one pole's cabinet: the lamp lit from dusk to dawn (dimmed to 60 % from 01:00 to
 * 05:00 local time, a common energy-saving schedule), supply-voltage noise on its power, cabinet
 * temperature following the air plus the driver's heat, a rare maintenance visit opening the door,
 * and the energy meter integrating power, so it never decreases.
 */
export class LampPolePlc {
  readonly #random: SeededRandom;
  readonly #longitude: number;
  #last: number | undefined;
  #energyKWh: number;
  #supply = 0;
  #airWalk = 0;
  #cabinet: number | undefined;
  #doorUntil = 0;

  constructor(random: SeededRandom, longitude: number) {
    this.#random = random;
    this.#longitude = longitude;
    this.#energyKWh = Math.round(random.uniform(800, 4000) * 1000) / 1000;
  }

  /** Advances to `time` (ms since the epoch, not before the previous step) and returns the values. */
  step(time: number): PlcValues {
    const r = this.#random;
    const dt = this.#last === undefined ? 0 : Math.max(0, time - this.#last);
    this.#last = time;
    const hour = localSolarHour(time, this.#longitude);

    const on = lampLit(hour);
    const dimmed = hour >= 1 && hour < 5;
    this.#supply = ouStep(this.#supply, 0, 0.01, 5 * MINUTE_MS, dt, r);
    const power = on
      ? RATED_W * (dimmed ? 0.6 : 1) * (1 + this.#supply) + 0.4 * r.gaussian()
      : STANDBY_W + 0.05 * r.gaussian();

    const doy = localDayOfYear(time, this.#longitude);
    this.#airWalk = ouStep(this.#airWalk, 0, 2, 24 * HOUR_MS, dt, r);
    const air =
      12.5 -
      15 * Math.cos((2 * Math.PI * (doy - 15)) / 365.25) +
      5 * diurnalTemperature(hour) +
      this.#airWalk;
    // The cabinet follows air plus driver heat with a thermal time constant of about 20 minutes.
    const target = air + 4 + 0.06 * power;
    this.#cabinet =
      this.#cabinet === undefined
        ? target
        : target + (this.#cabinet - target) * Math.exp(-dt / (20 * MINUTE_MS));
    const temperature = this.#cabinet + 0.05 * r.gaussian();

    // A maintenance visit about once in ten days, the door open for about 15 minutes.
    if (time >= this.#doorUntil && r.chance(1 - Math.exp(-dt / (240 * HOUR_MS)))) {
      this.#doorUntil = time + r.uniform(5, 25) * MINUTE_MS;
    }

    this.#energyKWh += (Math.max(0, power) * dt) / 3_600_000_000;
    return {
      lampPower: round(Math.max(0, power), 1),
      lampOn: on,
      cabinetTemperature: round(temperature, 2),
      cabinetDoorOpen: time < this.#doorUntil,
      meterEnergy: round(this.#energyKWh, 4),
    };
  }
}

function round(value: number, digits: number): number {
  const scale = 10 ** digits;
  return Math.round(value * scale) / scale;
}
