/**
 * Per-camera thresholds of the video quality diagnosis rules, as one TypeBox schema with defaults. Every
 * field is optional in the input; defaults suit a daytime street camera and were checked against the
 * sample images in the tests. Luma is on the 0–255 scale, durations in seconds.
 */
import { CitysenseError } from '@citysense/protocol';
import { type Static, type TProperties, type TSchema, Type } from '@sinclair/typebox';
import { Value } from '@sinclair/typebox/value';

const luma = (description: string, value: number) =>
  Type.Number({ minimum: 0, maximum: 255, default: value, description });
const tier = <T extends TSchema, E extends TProperties = Record<never, never>>(
  warning: T,
  critical: T,
  extra?: E,
) =>
  Type.Object({ warning, critical, ...extra } as { warning: T; critical: T } & E, {
    default: {},
    additionalProperties: false,
  });

/** Schema of the per-camera quality thresholds; every field has a default. */
export const QualityThresholdsSchema = Type.Object(
  {
    tooDark: tier(luma('mean luma below this: warning', 40), luma('mean luma below this: critical', 20)),
    tooBright: tier(luma('mean luma above this: warning', 200), luma('mean luma above this: critical', 235)),
    blur: tier(
      Type.Number({ minimum: 0, default: 40, description: 'Laplacian variance below this: warning' }),
      Type.Number({ minimum: 0, default: 10, description: 'Laplacian variance below this: critical' }),
    ),
    colourCast: tier(
      Type.Number({ minimum: 0, default: 2, description: 'equivalent-circle factor K above this: warning' }),
      Type.Number({ minimum: 0, default: 3, description: 'equivalent-circle factor K above this: critical' }),
      {
        minChroma: Type.Number({
          minimum: 0,
          default: 8,
          description: 'no cast is reported while the mean CIELAB chroma D is below this',
        }),
      },
    ),
    frozen: tier(
      Type.Number({ exclusiveMinimum: 0, default: 10, description: 'seconds unchanged before a warning' }),
      Type.Number({ exclusiveMinimum: 0, default: 60, description: 'seconds unchanged before critical' }),
      {
        difference: Type.Number({
          minimum: 0,
          maximum: 255,
          default: 0.2,
          description: 'thumbnail mean absolute luma difference below which two frames count as the same',
        }),
      },
    ),
    signalLoss: Type.Object(
      { lumaStdDev: luma('a frame whose luma std-dev is at most this carries no picture', 3) },
      { default: {}, additionalProperties: false },
    ),
    occlusion: tier(
      Type.Number({
        minimum: 0,
        maximum: 1,
        default: 0.5,
        description: 'dark flat share above this: warning',
      }),
      Type.Number({
        minimum: 0,
        maximum: 1,
        default: 0.75,
        description: 'dark flat share above this: critical',
      }),
    ),
    escalateAfter: Type.Number({
      exclusiveMinimum: 0,
      default: 300,
      description: 'seconds after which a warning still present is raised to critical',
    }),
  },
  { additionalProperties: false },
);

/** Resolved per-camera thresholds. */
export type QualityThresholds = Static<typeof QualityThresholdsSchema>;

/** Fills defaults into `overrides` (any subset), validates and freezes them; throws CS_ERR_QUALITY_THRESHOLDS. */
export function resolveQualityThresholds(overrides: unknown = {}): Readonly<QualityThresholds> {
  if (typeof overrides !== 'object' || overrides === null || Array.isArray(overrides))
    throw new CitysenseError('CS_ERR_QUALITY_THRESHOLDS', 'quality thresholds must be a JSON object', 400);
  const t = Value.Default(QualityThresholdsSchema, structuredClone(overrides));
  const problems = [...Value.Errors(QualityThresholdsSchema, t)].map((e) => `${e.path || '/'}: ${e.message}`);
  if (problems.length === 0) problems.push(...orderProblems(t as QualityThresholds));
  if (problems.length > 0)
    throw new CitysenseError(
      'CS_ERR_QUALITY_THRESHOLDS',
      `invalid quality thresholds: ${problems.join('; ')}`,
      400,
      { problems },
    );
  return deepFreeze(t as QualityThresholds);
}

/** Critical must lie beyond warning, in the direction the rule fires. */
function orderProblems(t: QualityThresholds): string[] {
  const problems: string[] = [];
  const below = (name: string, { warning, critical }: { warning: number; critical: number }) => {
    if (critical > warning)
      problems.push(`/${name}: critical (${critical}) must not exceed warning (${warning})`);
  };
  const above = (name: string, { warning, critical }: { warning: number; critical: number }) => {
    if (critical < warning)
      problems.push(`/${name}: critical (${critical}) must not be below warning (${warning})`);
  };
  below('tooDark', t.tooDark);
  above('tooBright', t.tooBright);
  below('blur', t.blur);
  above('colourCast', t.colourCast);
  above('frozen', t.frozen);
  above('occlusion', t.occlusion);
  if (t.tooDark.warning >= t.tooBright.warning)
    problems.push(
      `/tooDark/warning (${t.tooDark.warning}) must be below /tooBright/warning (${t.tooBright.warning})`,
    );
  return problems;
}

function deepFreeze<T extends object>(o: T): Readonly<T> {
  for (const v of Object.values(o)) if (typeof v === 'object' && v !== null) deepFreeze(v);
  return Object.freeze(o);
}
