import {
  CitysenseError,
  OPERATION_KINDS,
  OPERATION_STATES,
  type OperationResult,
  OperationResultSchema,
  OperationsDocumentSchema,
  type RemoteConfig,
  RemoteConfigSchema,
} from '@citysense/protocol';
import { type Static, type TSchema, Type } from '@sinclair/typebox';
import { Value } from '@sinclair/typebox/value';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { actorOf } from '../audit/audit-log.ts';
import { requireRole } from '../auth/access.ts';
import type { Role } from '../auth/roles.ts';
import type { HttpPrincipal } from '../http/server.ts';
import type { OperationService } from './operation-service.ts';

const Nullable = <T extends TSchema>(schema: T) => Type.Union([schema, Type.Null()]);
const DateTime = Type.String({ format: 'date-time' });
const NodeId = Type.String({ pattern: '^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$', description: 'node id' });
const OperationId = Type.String({ pattern: '^op-[0-9a-f]{16}$', description: 'operation id' });
const StateSchema = Type.Union(OPERATION_STATES.map((s) => Type.Literal(s)));
const Actor = Type.Object({
  kind: Type.String(),
  id: Nullable(Type.String()),
  username: Nullable(Type.String()),
  agencyId: Type.Optional(Nullable(Type.String())),
});

const OperationView = Type.Object({
  id: Type.String(),
  nodeId: Type.String(),
  kind: Type.String(),
  params: Type.Unknown(),
  state: StateSchema,
  code: Nullable(Type.String()),
  message: Nullable(Type.String()),
  result: Type.Unknown({ description: 'what the node reported: doctor report, log lines, …' }),
  requestedBy: Actor,
  createdAt: DateTime,
  deadline: DateTime,
  startedAt: Nullable(DateTime),
  finishedAt: Nullable(DateTime),
});

const CreateBody = Type.Object(
  {
    kind: Type.String({
      description: `one of ${OPERATION_KINDS.join(', ')} (config-apply: use PUT /config)`,
    }),
    params: Type.Optional(Type.Unknown({ description: 'parameters of the kind' })),
    timeoutMs: Type.Optional(
      Type.Integer({
        minimum: 1000,
        maximum: 86_400_000,
        description: 'the operation expires when the node has not answered within this time',
      }),
    ),
  },
  { additionalProperties: false },
);

const ConfigBody = Type.Object(
  {
    config: Type.Unknown({ description: 'RemoteConfig: { drivers: [{ type, id, options }] }' }),
    comment: Type.Optional(Type.String({ maxLength: 500 })),
    healthTimeoutMs: Type.Optional(Type.Integer({ minimum: 500, maximum: 600_000 })),
  },
  { additionalProperties: false },
);

const ConfigVersionView = Type.Object({
  version: Type.Integer(),
  state: Type.String({ description: 'pending, applied, refused, rolled-back, expired or superseded' }),
  reason: Nullable(Type.String()),
  comment: Nullable(Type.String()),
  author: Actor,
  createdAt: DateTime,
  operationId: Nullable(Type.String()),
  config: RemoteConfigSchema,
});

const NodeParam = Type.Object({ id: NodeId });
const OpParams = Type.Object({ id: NodeId, opId: OperationId });
const err = { $ref: 'Error#' };
const errors = { 400: err, 401: err, 403: err, 404: err, 409: err };
const TAG = 'operations';
const USER: Array<Record<string, string[]>> = [{ admin: [] }, { user: [] }];

/** Who may operate a node remotely: its agency's field engineers, and platform admins. */
const OPERATORS: readonly Role[] = ['field-engineer', 'platform-admin'];
/** Scope of a node without an agency: no agency-bound role matches it, only platform admins. */
const NO_AGENCY = '(no agency)';

/** Dependencies of the operation routes. */
export interface OperationRouteDeps {
  operations: OperationService;
}

/** Remote operations on nodes and their versioned remote configuration. */
export async function operationRoutes(app: FastifyInstance, deps: OperationRouteDeps): Promise<void> {
  const { operations } = deps;

  /** Field engineer of the node's agency or platform admin; returns the audit actor. */
  const mustOperate = async (request: FastifyRequest, nodeId: string) => {
    const agency = await operations.nodeAgency(nodeId);
    requireRole(request, OPERATORS, { agencyId: agency ?? NO_AGENCY });
    // The operation's own audit entries say more than the generic write record.
    request.auditRecorded = true;
    return actorOf(request.principal);
  };

  app.post<{ Params: Static<typeof NodeParam>; Body: Static<typeof CreateBody> }>(
    '/v1/nodes/:id/operations',
    {
      config: { auth: 'user' },
      schema: {
        tags: [TAG],
        summary: 'Ask a node for an operation: doctor, log-tail, driver-restart, config-rollback',
        description:
          'Field engineers of the node’s agency and platform admins. Parameters are validated per kind ' +
          '(400 CS_ERR_OPERATION_KIND, CS_ERR_OPERATION_INVALID). The node is nudged by NCMD ' +
          '`citysense/Operations Revision` and fetches it; its result lands in GET …/operations/:opId. ' +
          'An operation the node does not answer by its deadline becomes `expired`.',
        security: USER,
        params: NodeParam,
        body: CreateBody,
        response: { 201: OperationView, ...errors },
      },
    },
    async (request, reply) => {
      const actor = await mustOperate(request, request.params.id);
      const created = await operations.create(
        request.params.id,
        request.body.kind,
        request.body.params,
        actor,
        {
          timeoutMs: request.body.timeoutMs,
          requestId: request.id,
          ip: request.ip,
        },
      );
      return reply.status(201).send(created);
    },
  );

  app.get<{ Params: Static<typeof NodeParam> }>(
    '/v1/nodes/:id/operations',
    {
      config: { auth: 'admin-or-node' },
      schema: {
        tags: [TAG],
        summary: 'The node’s pending operations (OperationsDocument); the node polls it, nudged by NCMD',
        description:
          'Nodes authenticate with HTTP Basic `<node id>:<MQTT password>` and read only their own ' +
          '(403 CS_ERR_OPERATION_OTHER_NODE). Operators list operations with GET /v1/operations?node=.',
        security: [{ admin: [] }, { node: [] }],
        params: NodeParam,
        response: { 200: OperationsDocumentSchema, ...errors },
      },
    },
    async (request) => {
      mustBeSelfOrAdmin(request.principal, request.params.id);
      return operations.document(request.params.id);
    },
  );

  app.put<{ Params: Static<typeof OpParams>; Body: OperationResult }>(
    '/v1/nodes/:id/operations/:opId/result',
    {
      config: { auth: 'admin-or-node' },
      schema: {
        tags: [TAG],
        summary: 'A node reports an operation: running, then succeeded, failed or rolled-back',
        description:
          'Only the node itself (HTTP Basic). A repeated terminal report is accepted and changes nothing ' +
          '(applied false); any other report after the end is 409 CS_ERR_OPERATION_STATE. `result` is at ' +
          'most 128 KiB of JSON (413 CS_ERR_OPERATION_RESULT_TOO_LARGE).',
        security: [{ node: [] }],
        params: OpParams,
        body: OperationResultSchema,
        response: {
          200: Type.Object({ applied: Type.Boolean(), state: StateSchema }),
          413: err,
          ...errors,
        },
      },
    },
    async (request) => {
      const principal = mustBeSelfOrAdmin(request.principal, request.params.id);
      if (principal.kind !== 'node')
        throw new CitysenseError(
          'CS_ERR_OPERATION_NODE_ONLY',
          'only the node itself reports results (HTTP Basic <node id>:<MQTT password>)',
          403,
        );
      return operations.report(request.params.id, request.params.opId, request.body);
    },
  );

  app.get<{ Params: Static<typeof OpParams> }>(
    '/v1/nodes/:id/operations/:opId',
    {
      config: { auth: 'user' },
      schema: {
        tags: [TAG],
        summary: 'One operation: state, code, message and the node’s result',
        security: USER,
        params: OpParams,
        response: { 200: OperationView, ...errors },
      },
    },
    async (request) => {
      await mustOperate(request, request.params.id);
      return operations.get(request.params.id, request.params.opId);
    },
  );

  const ListQuery = Type.Object(
    {
      node: Type.Optional(NodeId),
      kind: Type.Optional(Type.String({ maxLength: 64 })),
      state: Type.Optional(StateSchema),
      limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 1000, default: 100 })),
    },
    { additionalProperties: false },
  );
  app.get<{ Querystring: Static<typeof ListQuery> }>(
    '/v1/operations',
    {
      config: { auth: 'user' },
      schema: {
        tags: [TAG],
        summary: 'Operations, newest first; without `node` platform admins only',
        security: USER,
        querystring: ListQuery,
        response: { 200: Type.Array(OperationView), ...errors },
      },
    },
    async (request) => {
      const { node, kind, state, limit } = request.query;
      if (node) await mustOperate(request, node);
      else requireRole(request, 'platform-admin');
      return operations.list({
        ...(node ? { nodeId: node } : {}),
        ...(kind ? { kind } : {}),
        ...(state ? { state } : {}),
        ...(limit ? { limit } : {}),
      });
    },
  );

  app.put<{ Params: Static<typeof NodeParam>; Body: Static<typeof ConfigBody> }>(
    '/v1/nodes/:id/config',
    {
      config: { auth: 'user' },
      schema: {
        tags: [TAG],
        summary: 'Push a new configuration version to a node (validated, applied, rolled back if unhealthy)',
        description:
          'The document is checked against the agent’s configuration schema (RemoteConfig, in ' +
          '@citysense/protocol): 400 CS_ERR_CONFIG_INVALID with every problem. It is stored as version ' +
          'n+1 with its author and comment and sent to the node as a `config-apply` operation. The node ' +
          'validates it again (driver types of its build, driver options), keeps its current config as ' +
          'last-good, applies it and must be healthy within healthTimeoutMs, or it restores the last-good ' +
          'config and reports `rolled-back`.',
        security: USER,
        params: NodeParam,
        body: ConfigBody,
        response: {
          201: Type.Object({ version: Type.Integer(), operation: OperationView }),
          ...errors,
        },
      },
    },
    async (request, reply) => {
      const actor = await mustOperate(request, request.params.id);
      const config = checkRemoteConfig(request.body.config);
      const pushed = await operations.pushConfig(
        request.params.id,
        { config, comment: request.body.comment, healthTimeoutMs: request.body.healthTimeoutMs },
        actor,
        { requestId: request.id, ip: request.ip },
      );
      return reply.status(201).send(pushed);
    },
  );

  app.get<{ Params: Static<typeof NodeParam> }>(
    '/v1/nodes/:id/config/versions',
    {
      config: { auth: 'user' },
      schema: {
        tags: [TAG],
        summary: 'Configuration versions of a node, newest first, and the version it last said it runs',
        security: USER,
        params: NodeParam,
        response: {
          200: Type.Object({
            nodeId: Type.String(),
            activeVersion: Nullable(Type.Integer()),
            reportedAt: Nullable(DateTime),
            versions: Type.Array(ConfigVersionView),
          }),
          ...errors,
        },
      },
    },
    async (request) => {
      await mustOperate(request, request.params.id);
      return operations.configVersions(request.params.id);
    },
  );
}

/** Validates a pushed configuration against the agent's schema; every problem at once (CS_ERR_CONFIG_INVALID). */
function checkRemoteConfig(input: unknown): RemoteConfig {
  const value = Value.Default(RemoteConfigSchema, structuredClone(input ?? null));
  const problems = [...Value.Errors(RemoteConfigSchema, value)].map((e) => ({
    path: e.path || '/',
    message: e.message,
  }));
  if (problems.length > 0)
    throw new CitysenseError(
      'CS_ERR_CONFIG_INVALID',
      `configuration has ${problems.length} problem(s): ${problems
        .slice(0, 10)
        .map((p) => `${p.path}: ${p.message}`)
        .join('; ')}`,
      400,
      problems,
    );
  return value as RemoteConfig;
}

/** The admin, or the node `nodeId` itself (403 CS_ERR_OPERATION_OTHER_NODE for another node). */
function mustBeSelfOrAdmin(principal: HttpPrincipal | null, nodeId: string): HttpPrincipal {
  if (!principal) throw new CitysenseError('CS_ERR_AUTH_REQUIRED', 'authentication required', 401);
  if (principal.kind === 'node' && principal.nodeId !== nodeId)
    throw new CitysenseError(
      'CS_ERR_OPERATION_OTHER_NODE',
      `node ${principal.nodeId} cannot act for node ${nodeId}: use the node's own credentials`,
      403,
    );
  return principal;
}
