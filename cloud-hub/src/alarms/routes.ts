/**
 * Routes of the rules engine: rule CRUD, alarm list/filter, acknowledge and clear, and
 * webhook delivery state. Operators (`agency-operator`) see and act on the alarms of
 * their agency's rules and on platform-wide ones; rules without an agency are managed
 * by platform admins. Every write is audited by the HTTP layer (`onAudit`).
 */
import { CitysenseError } from '@citysense/protocol';
import { type Static, Type } from '@sinclair/typebox';
import type { FastifyError, FastifyInstance, FastifyRequest, FastifySchemaValidationError } from 'fastify';
import { can, type PersonPrincipal, requireRole } from '../auth/access.ts';
import type { Role } from '../auth/roles.ts';
import type { AlarmActor, AlarmService } from './alarm-service.ts';
import { ALARM_STATES, alarmNotFound } from './alarm-store.ts';
import { AlarmRuleSchema, checkRuleInput, RuleInputSchema, SEVERITIES } from './rules.ts';

/** Roles that run operations: see alarms, acknowledge and clear them, manage their agency's rules. */
const OPS_ROLES: readonly Role[] = ['platform-admin', 'agency-operator'];
const config = { auth: 'user' } as const;
const tags = ['alarms'];
const err = { $ref: 'Error#' };
const errors = { 400: err, 401: err, 403: err, 404: err, 409: err };
const Literals = <T extends string>(values: readonly T[]) => Type.Union(values.map((v) => Type.Literal(v)));
const DateTime = Type.String({ format: 'date-time' });
const Nullable = <T extends ReturnType<typeof Type.String>>(t: T) => Type.Union([t, Type.Null()]);

const AlarmSchema = Type.Object({
  id: Type.String({ format: 'uuid' }),
  ruleId: Type.String(),
  ruleName: Type.String(),
  node: Type.String(),
  device: Type.String({ description: "'' for node-level metrics" }),
  metric: Type.String(),
  severity: Literals(SEVERITIES),
  agencyId: Nullable(Type.String()),
  state: Literals(ALARM_STATES),
  message: Nullable(Type.String()),
  count: Type.Integer({ description: 'times the condition was seen while the alarm was open' }),
  firstValue: Type.Union([Type.Number(), Type.Null()]),
  lastValue: Type.Union([Type.Number(), Type.Null()]),
  raisedAt: DateTime,
  lastAt: DateTime,
  acknowledgedAt: Nullable(DateTime),
  acknowledgedBy: Nullable(Type.String()),
  ackComment: Nullable(Type.String()),
  clearedAt: Nullable(DateTime),
  clearedBy: Nullable(Type.String()),
  clearReason: Nullable(
    Type.String({ description: 'condition | manual | rule-deleted | rule-disabled | rule-changed' }),
  ),
});
const DeliverySchema = Type.Object({
  id: Type.Integer(),
  eventId: Type.Integer(),
  alarmId: Type.String(),
  target: Type.String(),
  state: Literals(['pending', 'delivered', 'failed'] as const),
  attempts: Type.Integer(),
  nextAttemptAt: Nullable(DateTime),
  lastError: Nullable(Type.String()),
  deliveredAt: Nullable(DateTime),
});
const AlarmDetailSchema = Type.Intersect([
  AlarmSchema,
  Type.Object({
    history: Type.Array(
      Type.Object({
        id: Type.Integer(),
        time: DateTime,
        transition: Literals(['raised', 'acknowledged', 'cleared'] as const),
        actor: Nullable(Type.String()),
        comment: Nullable(Type.String()),
        value: Type.Union([Type.Number(), Type.Null()]),
      }),
    ),
    deliveries: Type.Array(DeliverySchema),
  }),
]);
const AlarmQuery = Type.Object({
  state: Type.Optional(Literals([...ALARM_STATES, 'open'] as const)),
  severity: Type.Optional(Literals(SEVERITIES)),
  node: Type.Optional(Type.String({ minLength: 1, maxLength: 64 })),
  rule: Type.Optional(Type.String({ minLength: 1, maxLength: 64 })),
  since: Type.Optional(Type.String({ description: 'raised at or after: ISO 8601 or epoch ms' })),
  limit: Type.Integer({ minimum: 1, maximum: 10_000, default: 500 }),
});
const AlarmParams = Type.Object({ id: Type.String({ minLength: 1, maxLength: 64 }) });
const RuleParams = Type.Object({ id: Type.String({ minLength: 1, maxLength: 64 }) });
const ActionBody = Type.Object(
  { comment: Type.Optional(Type.String({ maxLength: 2000 })) },
  { additionalProperties: false },
);

/** Dependencies of the alarm routes. */
export interface AlarmRouteDeps {
  alarms: AlarmService;
}

function actorOf(p: PersonPrincipal): AlarmActor {
  return { name: p.kind === 'user' ? p.username : 'admin' };
}

/** Agency whose alarms a reader may see: undefined = every agency. */
function readableAgency(p: PersonPrincipal): string | undefined {
  return p.kind === 'admin' || can(p, 'platform-admin') ? undefined : p.agencyId;
}

/** Whoever may change rules of `agencyId` (null = platform-wide: platform admins only). */
function requireRuleWriter(request: FastifyRequest, agencyId: string | null | undefined): PersonPrincipal {
  return agencyId == null
    ? requireRole(request, 'platform-admin')
    : requireRole(request, OPS_ROLES, { agencyId });
}

function parseSince(text: string | undefined): Date | undefined {
  if (text === undefined) return undefined;
  const d = /^\d+$/.test(text) ? new Date(Number(text)) : new Date(text);
  if (Number.isNaN(d.getTime()))
    throw new CitysenseError(
      'CS_ERR_QUERY_TIME',
      `since="${text.slice(0, 40)}" is not a time: use ISO 8601 or epoch milliseconds`,
      400,
    );
  return d;
}

/** A rule body checked by its schema and meaning; CS_ERR_RULE_INVALID (400) otherwise. */
function ruleBody(request: FastifyRequest) {
  if (request.validationError)
    throw new CitysenseError(
      'CS_ERR_RULE_INVALID',
      `the rule is not valid: ${request.validationError.message}; see GET /docs for the rule schema`,
      400,
      (request.validationError as FastifyError).validation?.map((v: FastifySchemaValidationError) => ({
        path: v.instancePath,
        message: v.message,
      })),
    );
  return checkRuleInput(request.body);
}

/** Rule CRUD and alarm operations under /v1/alarm-rules and /v1/alarms. */
export async function alarmRoutes(app: FastifyInstance, deps: AlarmRouteDeps): Promise<void> {
  const { alarms } = deps;

  app.get(
    '/v1/alarm-rules',
    {
      config,
      schema: {
        tags,
        summary: 'Alarm rules (operators see their agency’s and platform-wide ones)',
        response: { 200: Type.Array(AlarmRuleSchema), 401: err, 403: err },
      },
    },
    async (request) => {
      const who = requireRole(request, OPS_ROLES);
      const agency = readableAgency(who);
      return alarms
        .listRules()
        .filter((r) => agency === undefined || r.agencyId === null || r.agencyId === agency);
    },
  );

  app.get<{ Params: Static<typeof RuleParams> }>(
    '/v1/alarm-rules/:id',
    {
      config,
      schema: {
        tags,
        summary: 'One alarm rule',
        params: RuleParams,
        response: { 200: AlarmRuleSchema, ...errors },
      },
    },
    async (request) => {
      requireRole(request, OPS_ROLES);
      const rule = alarms.getRule(request.params.id);
      requireRole(request, OPS_ROLES, { agencyId: rule.agencyId ?? undefined });
      return rule;
    },
  );

  app.post(
    '/v1/alarm-rules',
    {
      config,
      attachValidation: true,
      schema: {
        tags,
        summary: 'Create an alarm rule (threshold, rate-of-change, absence or duration)',
        body: RuleInputSchema,
        response: { 201: AlarmRuleSchema, ...errors },
      },
    },
    async (request, reply) => {
      requireRole(request, OPS_ROLES);
      const input = ruleBody(request);
      requireRuleWriter(request, input.agencyId);
      const rule = await alarms.createRule(input);
      return reply.status(201).send(rule);
    },
  );

  app.put<{ Params: Static<typeof RuleParams> }>(
    '/v1/alarm-rules/:id',
    {
      config,
      attachValidation: true,
      schema: {
        tags,
        summary: 'Replace an alarm rule (disabling it clears its open alarms)',
        params: RuleParams,
        body: RuleInputSchema,
        response: { 200: AlarmRuleSchema, ...errors },
      },
    },
    async (request) => {
      requireRole(request, OPS_ROLES);
      const input = ruleBody(request);
      const existing = alarms.getRule(request.params.id);
      if (input.id !== undefined && input.id !== existing.id)
        throw new CitysenseError(
          'CS_ERR_RULE_INVALID',
          `the body's id ${input.id} is not the rule's id ${existing.id}`,
          400,
        );
      requireRuleWriter(request, existing.agencyId);
      requireRuleWriter(request, input.agencyId);
      return alarms.replaceRule(existing.id, input);
    },
  );

  app.delete<{ Params: Static<typeof RuleParams> }>(
    '/v1/alarm-rules/:id',
    {
      config,
      schema: {
        tags,
        summary: 'Delete an alarm rule; its open alarms are cleared (reason rule-deleted)',
        params: RuleParams,
        response: { 204: Type.Null(), ...errors },
      },
    },
    async (request, reply) => {
      requireRole(request, OPS_ROLES);
      const rule = alarms.getRule(request.params.id);
      const who = requireRuleWriter(request, rule.agencyId);
      await alarms.deleteRule(rule.id, actorOf(who));
      return reply.status(204).send();
    },
  );

  app.get<{ Querystring: Static<typeof AlarmQuery> }>(
    '/v1/alarms',
    {
      config,
      schema: {
        tags,
        summary:
          'Alarms, most severe first then newest; filter by state (open = not cleared), severity, node, rule, since',
        querystring: AlarmQuery,
        response: { 200: Type.Array(AlarmSchema), 400: err, 401: err, 403: err },
      },
    },
    async (request) => {
      const who = requireRole(request, OPS_ROLES);
      const q = request.query;
      return alarms.list({
        state: q.state,
        severity: q.severity,
        node: q.node,
        rule: q.rule,
        since: parseSince(q.since),
        agencyId: readableAgency(who),
        limit: q.limit,
      });
    },
  );

  app.get<{ Params: Static<typeof AlarmParams> }>(
    '/v1/alarms/:id',
    {
      config,
      schema: {
        tags,
        summary: 'One alarm with its full history and webhook deliveries',
        params: AlarmParams,
        response: { 200: AlarmDetailSchema, ...errors },
      },
    },
    async (request) => {
      requireRole(request, OPS_ROLES);
      const alarm = await alarms.get(request.params.id);
      requireRole(request, OPS_ROLES, { agencyId: alarm.agencyId ?? undefined });
      return alarm;
    },
  );

  const action = (verb: 'ack' | 'clear', summary: string) =>
    app.post<{ Params: Static<typeof AlarmParams>; Body: Static<typeof ActionBody> | undefined }>(
      `/v1/alarms/:id/${verb}`,
      {
        config,
        schema: {
          tags,
          summary,
          params: AlarmParams,
          body: ActionBody,
          response: { 200: AlarmSchema, ...errors },
        },
      },
      async (request) => {
        requireRole(request, OPS_ROLES);
        const alarm = await alarms.store.get(request.params.id);
        if (!alarm) throw alarmNotFound(request.params.id);
        const who = requireRole(request, OPS_ROLES, { agencyId: alarm.agencyId ?? undefined });
        const comment = request.body?.comment ?? null;
        return verb === 'ack'
          ? alarms.acknowledge(alarm.id, actorOf(who), comment)
          : alarms.clearManually(alarm.id, actorOf(who), comment);
      },
    );
  action('ack', 'Acknowledge an active alarm (409 unless active)');
  action('clear', 'Clear an open alarm by hand (409 when already cleared)');

  app.get(
    '/v1/alarm-webhooks',
    {
      config,
      schema: {
        tags,
        summary: 'Alarm webhook delivery: counts per state and the latest failures',
        response: {
          200: Type.Object({
            url: Nullable(Type.String()),
            counts: Type.Object({
              pending: Type.Integer(),
              delivered: Type.Integer(),
              failed: Type.Integer(),
            }),
            recentFailures: Type.Array(DeliverySchema),
          }),
          401: err,
          403: err,
        },
      },
    },
    async (request) => {
      requireRole(request, 'platform-admin');
      return alarms.webhookStatus();
    },
  );
}
