/**
 * Delivery forms of the sensing data catalogue (001 Art. 48: data shared as raw,
 * desensitised or analysis results) and the rules that turn stored data into them.
 * The rules are data: each resource carries a `DesensitisationRule`, so a more
 * sensitive resource can get a coarser grid or a wider bucket without new code.
 */
import { createHmac } from 'node:crypto';
import { type Static, Type } from '@sinclair/typebox';

/** How a resource is delivered: as stored, desensitised, or aggregates only. */
export const DATA_FORMS = ['raw', 'desensitised', 'analysis'] as const;
/** One of `DATA_FORMS`. */
export type DataForm = (typeof DATA_FORMS)[number];

/** Most detailed first: a default pick among the forms one holds. */
export const FORM_DETAIL: Readonly<Record<DataForm, number>> = { raw: 3, desensitised: 2, analysis: 1 };

/**
 * Forms a resource of each sensitivity grade may offer: the higher the grade, the less
 * detail leaves the owner (grade 1 public … grade 4 most sensitive).
 */
export const FORMS_BY_GRADE: Readonly<Record<1 | 2 | 3 | 4, readonly DataForm[]>> = {
  1: ['raw', 'desensitised', 'analysis'],
  2: ['raw', 'desensitised', 'analysis'],
  3: ['desensitised', 'analysis'],
  4: ['analysis'],
};

/** Classification of data resources (what the data is about). */
export const DATA_CATEGORIES = [
  'environment',
  'traffic',
  'public-safety',
  'urban-operations',
  'hazard-monitoring',
  'infrastructure',
] as const;
/** One of `DATA_CATEGORIES`. */
export type DataCategory = (typeof DATA_CATEGORIES)[number];

/** Buckets the desensitised and analysis forms aggregate into. */
export const AGGREGATE_BUCKETS = ['15m', '1h', '1d'] as const;
/** One of `AGGREGATE_BUCKETS`. */
export type AggregateBucket = (typeof AGGREGATE_BUCKETS)[number];

/** Seconds of each aggregate bucket. */
export const BUCKET_SECONDS: Readonly<Record<AggregateBucket, number>> = {
  '15m': 900,
  '1h': 3600,
  '1d': 86_400,
};

/** How a resource is desensitised. */
export const DesensitisationRuleSchema = Type.Object(
  {
    positionStepDeg: Type.Number({
      exclusiveMinimum: 0,
      maximum: 1,
      default: 0.01,
      description: 'positions are rounded to this grid, degrees (0.01° ≈ 1 km)',
    }),
    bucket: Type.Union(
      AGGREGATE_BUCKETS.map((b) => Type.Literal(b)),
      {
        default: '15m',
        description: 'values are aggregated to buckets of this width; also the finest analysis bucket',
      },
    ),
  },
  { additionalProperties: false },
);
/** A desensitisation rule. */
export type DesensitisationRule = Static<typeof DesensitisationRuleSchema>;

/** The rule of a resource created without one. */
export const DEFAULT_RULE: Readonly<DesensitisationRule> = Object.freeze({
  positionStepDeg: 0.01,
  bucket: '15m',
});

/** A WGS84 coordinate rounded to the rule's grid (a grid point, not the true position). */
export function coarsen(degrees: number, rule: DesensitisationRule): number {
  const snapped = Math.round(degrees / rule.positionStepDeg) * rule.positionStepDeg;
  // toFixed drops the binary noise of the multiplication (0.01 * 3991 = 39.910000000000004).
  return Number(snapped.toFixed(9));
}

/** Derives stable pseudonyms of device codes: HMAC-SHA-256 under the hub's pseudonym key. */
export class Pseudonymiser {
  readonly #key: Buffer;

  constructor(key: Buffer) {
    this.#key = key;
  }

  /** `anon-` and 16 hex digits: stable for a code, unlinkable to it without the key. */
  of(code: string): string {
    return `anon-${createHmac('sha256', this.#key).update(`device\n${code}`).digest('hex').slice(0, 16)}`;
  }
}
