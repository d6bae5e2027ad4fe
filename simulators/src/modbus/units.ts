/**
 * The field devices the Modbus simulator plays, each one unit id with a register map and values that
 * change like the real thing: a pole's power meter (float32, ABCD and CDAB mixed, as meters ship them),
 * a drain water-level sensor (int16 scaled, a uint32 sample counter little-endian) and a street cabinet
 * (door and flood contacts, fan relay coil, temperature).
 */
import type { ModbusRegisterConfig } from '@citysense/device-drivers';
import { ouStep, type SeededRandom } from '../random.ts';

/** One simulated register map entry: the map as the driver sees it, plus where its value comes from. */
export interface SimulatedPoint extends Omit<ModbusRegisterConfig, 'scale' | 'offset' | 'byteOrder'> {
  byteOrder?: ModbusRegisterConfig['byteOrder'];
  scale?: number;
  offset?: number;
  /** Engineering value now. */
  read: () => number | boolean;
  /** Accepts a write (holding registers, coils); read-only without it. */
  write?: (value: number | boolean) => void;
}

/** One simulated unit behind the Modbus server. */
export interface SimulatedUnit {
  unitId: number;
  /** Suggested Sparkplug device id and kind for a driver polling it. */
  id: string;
  kind: string;
  points: SimulatedPoint[];
  /** Advances the physics to `time` (ms since the epoch). */
  step: (time: number) => void;
}

const HOUR_MS = 3_600_000;

/** Lamp lit from ~18:30 to ~06:00 UTC+8, the longitude of the default pole. */
function lampLit(time: number): boolean {
  const hour = ((((time + 8 * HOUR_MS) % (24 * HOUR_MS)) + 24 * HOUR_MS) % (24 * HOUR_MS)) / HOUR_MS;
  return hour >= 18.5 || hour < 6;
}

/** Power meter of a lamp pole: lamp, camera and sensors on one single-phase feed. */
export function powerMeterUnit(unitId: number, random: SeededRandom): SimulatedUnit {
  let last: number | undefined;
  let voltage = 230;
  let frequency = 50;
  let load = 0.4;
  let current = 0.4;
  let powerFactor = 0.95;
  let energyKwh = 1234.5;
  let currentLimit = 6;
  const power = () => voltage * current * powerFactor;
  return {
    unitId,
    id: 'pole-meter',
    kind: 'power-meter',
    step(time) {
      const dt = last === undefined ? 0 : Math.max(0, time - last);
      last = time;
      if (dt === 0) return;
      voltage = ouStep(voltage, 230, 3, 60_000, dt, random);
      frequency = ouStep(frequency, 50, 0.03, 30_000, dt, random);
      // LED lamp (~120 W) at night; camera, sensors and router (~40 W) always.
      const target = (lampLit(time) ? 160 : 40) / 230;
      load = ouStep(load, target, 0.02, 5_000, dt, random);
      current = Math.max(0.01, load);
      powerFactor = Math.min(0.99, Math.max(0.85, ouStep(powerFactor, 0.95, 0.01, 60_000, dt, random)));
      energyKwh += (power() * dt) / HOUR_MS / 1000;
    },
    points: [
      {
        metric: 'Power/Voltage',
        table: 'input',
        address: 0,
        type: 'float32',
        unit: 'V',
        read: () => voltage,
      },
      {
        metric: 'Power/Current',
        table: 'input',
        address: 2,
        type: 'float32',
        unit: 'A',
        read: () => current,
      },
      { metric: 'Power/Active', table: 'input', address: 4, type: 'float32', unit: 'W', read: power },
      {
        metric: 'Power/Frequency',
        table: 'input',
        address: 6,
        type: 'float32',
        unit: 'Hz',
        read: () => frequency,
      },
      {
        metric: 'Power/Energy',
        table: 'holding',
        address: 100,
        type: 'float32',
        byteOrder: 'CDAB',
        unit: 'kW.h',
        read: () => energyKwh,
      },
      {
        metric: 'Power/Factor',
        table: 'holding',
        address: 102,
        type: 'float32',
        byteOrder: 'CDAB',
        read: () => powerFactor,
      },
      {
        metric: 'Power/EnergyWh',
        table: 'holding',
        address: 104,
        type: 'float64',
        byteOrder: 'DCBA',
        unit: 'W.h',
        read: () => energyKwh * 1000,
      },
      {
        metric: 'Config/CurrentLimit',
        table: 'holding',
        address: 200,
        type: 'uint16',
        scale: 0.01,
        unit: 'A',
        read: () => currentLimit,
        write: (value) => {
          currentLimit = Number(value);
        },
      },
    ],
  };
}

/** Ultrasonic water-level sensor in the drain under the pole. */
export function waterLevelUnit(unitId: number, random: SeededRandom): SimulatedUnit {
  let last: number | undefined;
  let level = 0.35;
  let temperature = 18;
  let samples = 4_000_000_000;
  let battery = 3.6;
  return {
    unitId,
    id: 'drain-level',
    kind: 'water-level',
    step(time) {
      const dt = last === undefined ? 0 : Math.max(0, time - last);
      last = time;
      if (dt === 0) return;
      level = Math.min(1.8, Math.max(0.05, ouStep(level, 0.35, 0.05, 120_000, dt, random)));
      temperature = ouStep(temperature, 18, 1, 600_000, dt, random);
      battery = Math.max(3.0, battery - dt * 1e-12);
      // Counts past 2^32 so a driver sees the unsigned wrap, as the real counter does.
      samples = (samples + Math.max(1, Math.round(dt / 100))) % 2 ** 32;
    },
    points: [
      {
        metric: 'Water/Level',
        table: 'holding',
        address: 0,
        type: 'int16',
        scale: 0.001,
        unit: 'm',
        read: () => level,
      },
      {
        metric: 'Water/Temperature',
        table: 'holding',
        address: 1,
        type: 'int16',
        byteOrder: 'BADC',
        scale: 0.1,
        unit: 'Cel',
        read: () => temperature,
      },
      {
        metric: 'Battery/Voltage',
        table: 'input',
        address: 0,
        type: 'uint16',
        scale: 0.001,
        unit: 'V',
        read: () => battery,
      },
      {
        metric: 'Sensor/Samples',
        table: 'input',
        address: 10,
        type: 'uint32',
        byteOrder: 'DCBA',
        read: () => samples,
      },
      {
        metric: 'Sensor/Offset',
        table: 'input',
        address: 12,
        type: 'int32',
        byteOrder: 'CDAB',
        unit: 'mm',
        read: () => -125,
      },
    ],
  };
}

/** Street cabinet at the pole: door and flood contacts, a fan relay driven by temperature. */
export function cabinetUnit(unitId: number, random: SeededRandom): SimulatedUnit {
  let last: number | undefined;
  let temperature = 28;
  let doorOpen = false;
  let fanForced = false;
  const fanOn = () => fanForced || temperature > 35;
  return {
    unitId,
    id: 'cabinet',
    kind: 'cabinet',
    step(time) {
      const dt = last === undefined ? 0 : Math.max(0, time - last);
      last = time;
      if (dt === 0) return;
      temperature = ouStep(temperature, fanOn() ? 30 : 34, 1.5, 300_000, dt, random);
      // A technician opens the door about once a day, for some ten minutes.
      if (doorOpen) doorOpen = !random.chance(1 - Math.exp(-dt / 600_000));
      else doorOpen = random.chance(1 - Math.exp(-dt / 86_400_000));
    },
    points: [
      { metric: 'Cabinet/DoorOpen', table: 'discrete', address: 0, type: 'bool', read: () => doorOpen },
      { metric: 'Cabinet/Flooded', table: 'discrete', address: 1, type: 'bool', read: () => false },
      {
        metric: 'Cabinet/Fan',
        table: 'coil',
        address: 0,
        type: 'bool',
        read: fanOn,
        write: (value) => {
          fanForced = value === true;
        },
      },
      {
        metric: 'Cabinet/Temperature',
        table: 'holding',
        address: 0,
        type: 'int16',
        scale: 0.1,
        unit: 'Cel',
        read: () => temperature,
      },
    ],
  };
}
