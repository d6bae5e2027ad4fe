/**
 * Alarm rules as data: one TypeBox schema serves request validation, the OpenAPI
 * document and the stored definition. A rule watches readings (or node health) that
 * match its scope and raises a tiered alarm when its condition holds.
 */
import { CitysenseError, HEALTH_PREFIX } from '@citysense/protocol';
import { type Static, Type } from '@sinclair/typebox';
import { Value } from '@sinclair/typebox/value';

/** Alarm severities, most severe first (ITU-T X.733 perceived severity, as ThingsBoard and EMQX use). */
export const SEVERITIES = ['critical', 'major', 'minor', 'warning'] as const;
/** One alarm severity. */
export type Severity = (typeof SEVERITIES)[number];
/** Rank of a severity: 0 is the most severe. */
export const SEVERITY_RANK: Readonly<Record<Severity, number>> = {
  critical: 0,
  major: 1,
  minor: 2,
  warning: 3,
};

/** Comparison operators of threshold and duration rules. */
export const OPERATORS = ['>', '>=', '<', '<=', '==', '!='] as const;
/** One comparison operator. */
export type Operator = (typeof OPERATORS)[number];

/**
 * Synthetic node-health metric (device `''`): 1 while the node has a live Sparkplug
 * session, 0 after its NDEATH (Sparkplug 3.0 §7.4). Other health metrics keep the names
 * agents report, e.g. `Health/CPU Percent`, `Health/Spool Records`.
 */
export const NODE_ONLINE_METRIC = `${HEALTH_PREFIX}Online`;

const ID = '^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$';
const Literals = <T extends string>(values: readonly T[], description: string) =>
  Type.Union(
    values.map((v) => Type.Literal(v)),
    { description },
  );
const Seconds = (description: string) =>
  Type.Number({ exclusiveMinimum: 0, maximum: 30 * 86_400, description });

/** Which series a rule watches. */
export const RuleScopeSchema = Type.Object(
  {
    nodes: Type.Optional(
      Type.Array(Type.String({ pattern: ID }), {
        maxItems: 10_000,
        uniqueItems: true,
        description: 'edge node ids; absent or empty = every node',
      }),
    ),
    device: Type.Optional(
      Type.String({
        maxLength: 128,
        description: "Sparkplug device id; '' = node-level metrics (health); absent = any device",
      }),
    ),
    metric: Type.String({
      minLength: 1,
      maxLength: 256,
      description: `metric name, or a pattern with * (e.g. PM*, Health/*); ${NODE_ONLINE_METRIC} is 1/0 with the node session`,
    }),
  },
  { additionalProperties: false },
);

const ThresholdSchema = Type.Object(
  {
    kind: Type.Literal('threshold'),
    op: Literals(OPERATORS, 'raise while `value op threshold` holds'),
    value: Type.Number({ description: 'the threshold' }),
    clearValue: Type.Optional(
      Type.Number({
        description:
          'hysteresis: the alarm clears only once `value op clearValue` no longer holds (e.g. > 80, clear at 70)',
      }),
    ),
  },
  { additionalProperties: false },
);
const RateSchema = Type.Object(
  {
    kind: Type.Literal('rate-of-change'),
    delta: Type.Number({ exclusiveMinimum: 0, description: 'change that raises, in the metric unit' }),
    windowS: Seconds('within this many seconds (sample time)'),
    direction: Type.Optional(Literals(['up', 'down', 'any'] as const, 'rise, fall or either (default any)')),
  },
  { additionalProperties: false },
);
const AbsenceSchema = Type.Object(
  {
    kind: Type.Literal('absence'),
    forS: Seconds(
      'raise when nothing matching arrived for this long (hub clock; covers nodes going offline)',
    ),
  },
  { additionalProperties: false },
);
const DurationSchema = Type.Object(
  {
    kind: Type.Literal('duration'),
    op: Literals(OPERATORS, 'the condition'),
    value: Type.Number(),
    forS: Seconds('raise once the condition held this long without a contrary sample (hub clock)'),
  },
  { additionalProperties: false },
);

/** What makes a rule raise. */
export const RuleConditionSchema = Type.Union([ThresholdSchema, RateSchema, AbsenceSchema, DurationSchema]);

/** Body of `POST /v1/alarm-rules` (and `PUT /v1/alarm-rules/:id` without `id`). */
export const RuleInputSchema = Type.Object(
  {
    id: Type.Optional(Type.String({ pattern: ID, description: 'rule id; generated when absent' })),
    name: Type.String({ minLength: 1, maxLength: 200 }),
    enabled: Type.Optional(Type.Boolean({ default: true })),
    severity: Literals(SEVERITIES, 'tier of the alarms this rule raises'),
    agencyId: Type.Optional(
      Type.Union([Type.String({ pattern: ID }), Type.Null()], {
        description: 'agency that owns the rule and sees its alarms; null = platform-wide',
      }),
    ),
    scope: RuleScopeSchema,
    condition: RuleConditionSchema,
    message: Type.Optional(Type.String({ maxLength: 500, description: 'text carried by the alarm' })),
    webhookUrl: Type.Optional(
      Type.Union([Type.String({ pattern: '^https?://', maxLength: 2000 }), Type.Null()], {
        description: "this rule's alarm transitions are POSTed here too (besides alarms.webhookUrl)",
      }),
    ),
  },
  { additionalProperties: false },
);
/** A rule as submitted. */
export type RuleInput = Static<typeof RuleInputSchema>;

/** A stored rule as the API returns it. */
export const AlarmRuleSchema = Type.Object({
  id: Type.String(),
  name: Type.String(),
  enabled: Type.Boolean(),
  severity: Literals(SEVERITIES, 'alarm tier'),
  agencyId: Type.Union([Type.String(), Type.Null()]),
  scope: RuleScopeSchema,
  condition: RuleConditionSchema,
  message: Type.Union([Type.String(), Type.Null()]),
  webhookUrl: Type.Union([Type.String(), Type.Null()]),
  createdAt: Type.String({ format: 'date-time' }),
  updatedAt: Type.String({ format: 'date-time' }),
});
/** A stored rule. */
export type AlarmRule = Static<typeof AlarmRuleSchema>;
/** A rule's condition. */
export type RuleCondition = Static<typeof RuleConditionSchema>;
/** A rule's scope. */
export type RuleScope = Static<typeof RuleScopeSchema>;

/** Whether `a op b` holds. */
export function compare(op: Operator, a: number, b: number): boolean {
  switch (op) {
    case '>':
      return a > b;
    case '>=':
      return a >= b;
    case '<':
      return a < b;
    case '<=':
      return a <= b;
    case '==':
      return a === b;
    case '!=':
      return a !== b;
  }
}

/** A metric pattern as a matcher; exact names (no `*`) match themselves only. */
export function metricMatcher(pattern: string): (metric: string) => boolean {
  if (!pattern.includes('*')) return (m) => m === pattern;
  const re = new RegExp(`^${pattern.split('*').map(escapeRegExp).join('.*')}$`);
  return (m) => re.test(m);
}

function escapeRegExp(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

const invalid = (message: string, details?: unknown) =>
  new CitysenseError('CS_ERR_RULE_INVALID', message, 400, details);

/**
 * Checks a submitted rule: shape (every problem at once) and meaning (hysteresis on
 * the clearing side of the threshold). Throws CS_ERR_RULE_INVALID (400).
 */
export function checkRuleInput(input: unknown): RuleInput {
  if (!Value.Check(RuleInputSchema, input)) {
    const problems = [...Value.Errors(RuleInputSchema, input)]
      .slice(0, 20)
      .map((e) => ({ path: e.path, message: e.message }));
    throw invalid(
      `the rule is not valid: ${problems.map((p) => `${p.path || '/'} ${p.message}`).join('; ')}; see GET /docs for the rule schema`,
      problems,
    );
  }
  const rule = input;
  const c = rule.condition;
  if (c.kind === 'threshold' && c.clearValue !== undefined) {
    const raisesAbove = c.op === '>' || c.op === '>=';
    const raisesBelow = c.op === '<' || c.op === '<=';
    if (!raisesAbove && !raisesBelow)
      throw invalid(`clearValue needs an ordering operator (> >= < <=), not ${c.op}`, [
        { path: '/condition/clearValue', message: 'hysteresis needs > >= < <=' },
      ]);
    if ((raisesAbove && c.clearValue > c.value) || (raisesBelow && c.clearValue < c.value))
      throw invalid(
        `clearValue ${c.clearValue} must be on the clearing side of ${c.op} ${c.value} (hysteresis)`,
        [{ path: '/condition/clearValue', message: 'on the wrong side of the threshold' }],
      );
  }
  if (rule.scope.metric.includes('**'))
    throw invalid('metric pattern: use a single * as wildcard', [{ path: '/scope/metric', message: '**' }]);
  return rule;
}
