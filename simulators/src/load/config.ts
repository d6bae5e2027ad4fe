import { type DriverConfigProblem, resolveDriverConfig } from '@citysense/device-drivers';
import { isValidId } from '@citysense/protocol';
import { type Static, Type } from '@sinclair/typebox';

/** Shape of the synthetic load: which devices and metrics, and how timestamps advance. */
export const LoadShape = Type.Object(
  {
    devicePrefix: Type.String({
      pattern: '^[A-Za-z0-9][A-Za-z0-9_.:-]{0,40}$',
      default: 'load',
      description: 'Device ids are <devicePrefix>-0000, <devicePrefix>-0001, ...',
    }),
    devices: Type.Integer({ minimum: 1, maximum: 100_000, default: 100, description: 'Number of devices D' }),
    metrics: Type.Integer({
      minimum: 1,
      maximum: 1000,
      default: 10,
      description: 'Double metrics per device M, named M0 ... M(M-1)',
    }),
    ratePerSecond: Type.Number({
      minimum: 0,
      maximum: 10_000_000,
      default: 20_000,
      description: 'Readings per second; 0 emits only on burst(). Also spaces the timestamps',
    }),
    seed: Type.Integer({ default: 1, description: 'PRNG seed of the values' }),
    startTime: Type.Optional(
      Type.Integer({ minimum: 0, description: 'Time of the first reading, ms since the epoch; default now' }),
    ),
  },
  { additionalProperties: false },
);
/** Resolved load shape. */
export type LoadShape = Static<typeof LoadShape>;

/** Options of the load generator driver; every field has a default. */
export const LoadGeneratorConfig = Type.Composite(
  [
    LoadShape,
    Type.Object({
      batchSize: Type.Integer({
        minimum: 1,
        maximum: 1_000_000,
        default: 500,
        description: 'Readings per event',
      }),
      limit: Type.Integer({
        minimum: 0,
        default: 0,
        description: 'Stop producing after this many readings; 0 means no limit',
      }),
    }),
  ],
  { additionalProperties: false },
);
/** Resolved load generator options. */
export type LoadGeneratorConfig = Static<typeof LoadGeneratorConfig>;

function idProblems(shape: { devicePrefix: string; devices: number }): DriverConfigProblem[] {
  const lastId = `${shape.devicePrefix}-${String(shape.devices - 1).padStart(4, '0')}`;
  return isValidId(lastId)
    ? []
    : [{ path: '/devicePrefix', message: `device id "${lastId}" would exceed the 64-character id limit` }];
}

/** Applies defaults and validates load-generator options; throws CS_ERR_CONFIG_INVALID listing every problem. */
export function resolveLoadGeneratorConfig(input: unknown = {}): Readonly<LoadGeneratorConfig> {
  return resolveDriverConfig(LoadGeneratorConfig, input, 'load generator options', idProblems);
}

/** Applies defaults and validates a load shape; throws CS_ERR_CONFIG_INVALID listing every problem. */
export function resolveLoadShape(input: unknown = {}): Readonly<LoadShape> {
  return resolveDriverConfig(LoadShape, input, 'load shape options', idProblems);
}
