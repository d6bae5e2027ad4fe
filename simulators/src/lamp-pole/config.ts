import { resolveDriverConfig } from '@citysense/device-drivers';
import { type Static, Type } from '@sinclair/typebox';

/** Sensor sets a lamp pole can carry; each becomes one Sparkplug device `${poleId}.${sensor}`. */
export const LAMP_POLE_SENSORS = ['air', 'noise', 'weather', 'water', 'manhole', 'pole', 'lamp'] as const;
/** One sensor set of a lamp pole. */
export type LampPoleSensor = (typeof LAMP_POLE_SENSORS)[number];

/** Options of the lamp-pole simulator; every field has a default. */
export const LampPoleSimulatorConfig = Type.Object(
  {
    poleId: Type.String({
      // Leaves room for the `.manhole` suffix inside the 64-character Sparkplug id limit.
      pattern: '^[A-Za-z0-9][A-Za-z0-9_.:-]{0,55}$',
      default: 'pole-0001',
      description: 'Pole id; device ids are <poleId>.air, <poleId>.lamp, ...',
    }),
    seed: Type.Integer({
      default: 1,
      description: 'PRNG seed; the same seed and clock replay the same readings',
    }),
    intervalMs: Type.Integer({ minimum: 1, default: 5000, description: 'Time between reading batches' }),
    faultRate: Type.Number({
      minimum: 0,
      maximum: 1,
      default: 0.002,
      description: 'Probability per reading that the sensor starts a fault',
    }),
    longitude: Type.Number({
      minimum: -180,
      maximum: 180,
      default: 116.4,
      description: 'Degrees east; sets local solar time, so day and night fall right in UTC',
    }),
    timeOffsetMs: Type.Integer({
      default: 0,
      description: 'Added to the clock, e.g. -43200000 to see night at noon; reading times include it',
    }),
    sensors: Type.Array(
      Type.Union(
        LAMP_POLE_SENSORS.map((s) => Type.Literal(s)),
        { description: 'Sensor set' },
      ),
      {
        minItems: 1,
        uniqueItems: true,
        default: [...LAMP_POLE_SENSORS],
        description: 'Sensor sets to simulate',
      },
    ),
  },
  { additionalProperties: false },
);
/** Resolved lamp-pole simulator options. */
export type LampPoleSimulatorConfig = Static<typeof LampPoleSimulatorConfig>;

/** Applies defaults and validates; throws CS_ERR_CONFIG_INVALID listing every problem. */
export function resolveLampPoleSimulatorConfig(input: unknown = {}): Readonly<LampPoleSimulatorConfig> {
  return resolveDriverConfig(LampPoleSimulatorConfig, input, 'lamp-pole simulator options');
}
