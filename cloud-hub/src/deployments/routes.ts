import {
  AlertRuleSchema,
  type AssignmentStatus,
  AssignmentStatusSchema,
  AssignmentsDocumentSchema,
  CitysenseError,
  InferenceStatsSchema,
  VideoSourceSchema,
} from '@citysense/protocol';
import { type Static, Type } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import { openToRoles } from '../algorithms/open-to-roles.ts';
import { CENTRE_ROLES } from '../algorithms/routes.ts';
import { can, requireRole } from '../auth/access.ts';
import type { HttpPrincipal } from '../http/server.ts';
import {
  DEFAULT_CANARY_SHARE,
  DEFAULT_GATE,
  DEPLOYMENT_STATES,
  NODE_ROLLOUT_STATES,
} from '../rollouts/rollout.ts';
import {
  DateTime,
  EntityId,
  Nullable,
  reportReplySchema,
  rolloutActionRoutes,
  rolloutCountFields,
  rolloutEventSchema,
  rolloutIdSchema,
  rolloutNodeSchema,
  rolloutStateFields,
} from '../rollouts/rollout-routes.ts';
import { DEPLOYMENT_ACTIONS, type DeploymentAction, type DeploymentService } from './deployment-service.ts';

const AlgorithmId = Type.String({ pattern: '^[a-z0-9][a-z0-9._-]{1,63}$', description: 'algorithm id' });
const Version = Type.String({
  pattern: '^(0|[1-9]\\d*)\\.(0|[1-9]\\d*)\\.(0|[1-9]\\d*)(-[0-9A-Za-z.-]+)?$',
  description: 'semantic version',
});
const DeploymentId = rolloutIdSchema('deployment id');
const DeploymentStateSchema = Type.Union(DEPLOYMENT_STATES.map((s) => Type.Literal(s)));
const NodeStateSchema = Type.Union(NODE_ROLLOUT_STATES.map((s) => Type.Literal(s)));
const Sources = Type.Array(VideoSourceSchema, { maxItems: 64 });

const Gate = Type.Object(
  {
    minActiveShare: Type.Number({
      minimum: 0,
      maximum: 1,
      default: DEFAULT_GATE.minActiveShare,
      description: 'share of canary nodes that must report active',
    }),
    maxFailed: Type.Integer({
      minimum: 0,
      default: DEFAULT_GATE.maxFailed,
      description: 'failed nodes tolerated; one more pauses the deployment',
    }),
    timeoutMs: Type.Integer({
      minimum: 1000,
      maximum: 7 * 24 * 3_600_000,
      default: DEFAULT_GATE.timeoutMs,
      description: 'the canary must pass the gate within this time, or the deployment pauses',
    }),
  },
  { additionalProperties: false },
);

const CreateBody = Type.Object(
  {
    algorithmId: AlgorithmId,
    version: Version,
    targets: Type.Object(
      {
        nodes: Type.Optional(Type.Array(EntityId, { maxItems: 10_000, description: 'node ids' })),
        agencies: Type.Optional(
          Type.Array(EntityId, { maxItems: 1000, description: 'agencies: all their enrolled nodes' }),
        ),
      },
      { additionalProperties: false },
    ),
    sources: Type.Array(VideoSourceSchema, {
      maxItems: 64,
      description: 'video sources every target node runs the algorithm on',
    }),
    sourcesByNode: Type.Optional(
      Type.Record(Type.String({ pattern: '^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$' }), Sources, {
        description: 'per-node sources instead of `sources`',
      }),
    ),
    rules: Type.Optional(
      Type.Array(AlertRuleSchema, {
        maxItems: 64,
        description: 'local alert rules every node evaluates on its analysed frames',
      }),
    ),
    rollout: Type.Optional(
      Type.Object(
        {
          canaryShare: Type.Number({
            minimum: 0,
            maximum: 1,
            default: DEFAULT_CANARY_SHARE,
            description: 'share of the eligible nodes in the canary (rounded up, at least one)',
          }),
          gate: Type.Optional(Gate),
        },
        { additionalProperties: false },
      ),
    ),
  },
  { additionalProperties: false },
);

const NodeView = rolloutNodeSchema(NodeStateSchema, {
  activeVersion: Nullable(Type.String()),
  stats: Nullable(InferenceStatsSchema),
});

const Event = rolloutEventSchema('admin, hub (the rollout itself) or node:<id>');

const DeploymentSummary = Type.Object({
  id: Type.String(),
  algorithmId: Type.String(),
  version: Type.String(),
  ...rolloutStateFields(DeploymentStateSchema),
  rollout: Type.Object({
    canaryShare: Type.Number(),
    gate: Type.Object({
      minActiveShare: Type.Number(),
      maxFailed: Type.Integer(),
      timeoutMs: Type.Integer(),
    }),
  }),
  targets: Type.Object({ nodes: Type.Array(Type.String()), agencies: Type.Array(Type.String()) }),
  sources: Type.Array(VideoSourceSchema),
  sourcesByNode: Type.Record(Type.String(), Type.Array(VideoSourceSchema)),
  rules: Type.Array(AlertRuleSchema),
  ...rolloutCountFields,
});

const DeploymentDetail = Type.Object({
  ...DeploymentSummary.properties,
  nodes: Type.Array(NodeView),
  stats: Type.Object(
    {
      nodesReporting: Type.Integer(),
      frames: Type.Integer(),
      fps: Type.Number({ description: 'sum over the active nodes' }),
      inferP50Ms: Nullable(Type.Number({ description: 'median of the nodes’ p50' })),
      inferP95Ms: Nullable(Type.Number({ description: 'the worst node’s p95' })),
      errors: Type.Integer(),
      droppedFrames: Type.Integer(),
    },
    { description: 'inference figures of the active nodes' },
  ),
  history: Type.Array(Event, { description: 'transitions of the deployment itself' }),
});

const NodeInferenceSchema = Type.Object({
  nodeId: Type.String(),
  online: Type.Boolean(),
  revision: Type.Integer(),
  algorithms: Type.Array(
    Type.Object({
      algorithmId: Type.String(),
      deploymentId: Type.String(),
      version: Type.String({ description: 'the version assigned' }),
      state: NodeStateSchema,
      activeVersion: Nullable(Type.String({ description: 'the version the node says it runs' })),
      progress: Nullable(Type.Number()),
      reason: Nullable(Type.String()),
      code: Nullable(Type.String()),
      stats: Nullable(InferenceStatsSchema),
      reportedAt: Nullable(DateTime),
    }),
  ),
});

const ReportReply = reportReplySchema(NodeStateSchema, { deploymentState: DeploymentStateSchema });

const IdParam = Type.Object({ id: DeploymentId });
const NodeParam = Type.Object({ id: EntityId });
const ReportParams = Type.Object({ id: EntityId, deploymentId: DeploymentId });

const err = { $ref: 'Error#' };
const errors = { 400: err, 401: err, 404: err, 409: err };
const TAG = 'deployments';
/** Nodes as well as the admin: OpenAPI `security` of routes with `config.auth: 'admin-or-node'`. */
const ADMIN_OR_NODE: Array<Record<string, string[]>> = [{ admin: [] }, { node: [] }];

/** Dependencies of the deployment routes. */
export interface DeploymentRouteDeps {
  deployments: DeploymentService;
}

/** Deployments with staged rollout, and the assignments API the edge agents use. */
export async function deploymentRoutes(app: FastifyInstance, deps: DeploymentRouteDeps): Promise<void> {
  const { deployments } = deps;
  await app.register(async (scope) => {
    // Algorithm-centre admins deploy from the console; the node routes keep `admin-or-node`.
    openToRoles(scope, CENTRE_ROLES);
    deploymentRoutesIn(scope, deployments);
  });
}

function deploymentRoutesIn(app: FastifyInstance, deployments: DeploymentService): void {
  app.post<{ Body: Static<typeof CreateBody> }>(
    '/v1/deployments',
    {
      schema: {
        tags: [TAG],
        summary: 'Deploy a published algorithm version onto nodes, canary first',
        description:
          'Targets are nodes and/or agencies (all their enrolled nodes). A node without the grant of the ' +
          'algorithm, or whose hardware lacks the manifest requirements, is listed as `refused`. The canary ' +
          '(canaryShare of the eligible nodes, at least one) gets the assignment at once; the rest when ' +
          'minActiveShare of the canary reports active with at most maxFailed failures. Failures beyond ' +
          'maxFailed, or no pass within timeoutMs, pause the deployment. A node runs one deployment per ' +
          'algorithm: a newer deployment of the algorithm takes the node over when it reaches it (upgrade). ' +
          '409 CS_ERR_DEPLOY_VERSION_STATE when the version is not published; 409 ' +
          'CS_ERR_DEPLOY_NO_ELIGIBLE_NODE when every target is refused.',
        body: CreateBody,
        response: { 201: DeploymentDetail, ...errors },
      },
    },
    async (request, reply) => {
      const b = request.body;
      const created = await deployments.create(
        {
          algorithmId: b.algorithmId,
          version: b.version,
          targets: b.targets,
          sources: b.sources,
          sourcesByNode: b.sourcesByNode,
          rules: b.rules,
          rollout: b.rollout,
        },
        'admin',
      );
      return reply.status(201).send(created);
    },
  );

  app.get<{
    Querystring: { algorithmId?: string; state?: Static<typeof DeploymentStateSchema>; limit?: number };
  }>(
    '/v1/deployments',
    {
      schema: {
        tags: [TAG],
        summary: 'Deployments, newest first, with target nodes counted per state',
        querystring: Type.Object({
          algorithmId: Type.Optional(AlgorithmId),
          state: Type.Optional(DeploymentStateSchema),
          limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 1000, default: 100 })),
        }),
        response: { 200: Type.Array(DeploymentSummary), ...errors },
      },
    },
    async (request) => deployments.list(request.query),
  );

  app.get<{ Params: Static<typeof IdParam> }>(
    '/v1/deployments/:id',
    {
      schema: {
        tags: [TAG],
        summary: 'One deployment: every target node’s status and figures, counts per state, history',
        params: IdParam,
        response: { 200: DeploymentDetail, ...errors },
      },
    },
    async (request) => deployments.get(request.params.id),
  );

  app.get<{ Params: Static<typeof IdParam>; Querystring: { nodeId?: string } }>(
    '/v1/deployments/:id/events',
    {
      schema: {
        tags: [TAG],
        summary: 'Every transition of a deployment and of its nodes: when, who, why',
        params: IdParam,
        querystring: Type.Object({ nodeId: Type.Optional(EntityId) }),
        response: { 200: Type.Array(Event), ...errors },
      },
    },
    async (request) => deployments.events(request.params.id, request.query.nodeId),
  );

  const summaries: Record<DeploymentAction, string> = {
    pause: 'Pause: no node gets the assignment until resumed; nodes that have it keep it',
    resume:
      'Resume a paused deployment where it was: failures so far are acknowledged (they no longer count ' +
      'against maxFailed), the gate clock restarts and the gate is evaluated again',
    rollback:
      'Roll back: withdraw the assignment everywhere; nodes that ran an earlier deployment of the ' +
      'algorithm get it back',
    cancel: 'Cancel: nodes waiting for their stage never get it; nodes that have it keep it',
  };
  rolloutActionRoutes(app, {
    base: '/v1/deployments',
    actions: DEPLOYMENT_ACTIONS,
    summaries,
    noun: 'deployment',
    stateCode: 'CS_ERR_DEPLOY_STATE',
    tag: TAG,
    params: IdParam,
    detail: DeploymentDetail,
    errors,
    act: (request, action) =>
      deployments.act(request.params.id, action, 'admin', request.body.reason ?? null),
  });

  app.get<{ Params: Static<typeof NodeParam> }>(
    '/v1/nodes/:id/assignments',
    {
      config: { auth: 'admin-or-node' },
      schema: {
        tags: [TAG],
        summary: 'What a node must run (AssignmentsDocument); the node polls it, nudged by NCMD',
        description:
          'Nodes authenticate with HTTP Basic `<node id>:<MQTT password>` and read only their own ' +
          '(403 CS_ERR_DEPLOY_OTHER_NODE). `revision` increases whenever the assignments change; the hub ' +
          'then sends NCMD metric `citysense/Assignments Revision` (Int64).',
        security: ADMIN_OR_NODE,
        params: NodeParam,
        response: { 200: AssignmentsDocumentSchema, 403: err, ...errors },
      },
    },
    async (request) => {
      mustBeSelfOrAdmin(request.principal, request.params.id);
      return deployments.document(request.params.id);
    },
  );

  app.put<{ Params: Static<typeof ReportParams>; Body: AssignmentStatus }>(
    '/v1/nodes/:id/assignments/:deploymentId/status',
    {
      config: { auth: 'admin-or-node' },
      schema: {
        tags: [TAG],
        summary: 'A node reports where it is with one assignment (AssignmentStatus)',
        description:
          'Only the node itself reports (HTTP Basic); another node or the admin gets 403. A report about ' +
          'an older revision than the node already reported, or about an assignment the node no longer ' +
          'has, is accepted (200, applied false) and changes nothing. `failed` or `rolled-back` withdraws ' +
          'the assignment from the node: it gets back the deployment it ran before, if any.',
        security: [{ node: [] }],
        params: ReportParams,
        body: AssignmentStatusSchema,
        response: { 200: ReportReply, 403: err, ...errors },
      },
    },
    async (request) => {
      const principal = mustBeSelfOrAdmin(request.principal, request.params.id);
      if (principal.kind === 'admin')
        throw new CitysenseError(
          'CS_ERR_DEPLOY_NODE_ONLY',
          'only the node itself reports its status (HTTP Basic <node id>:<MQTT password>)',
          403,
        );
      return deployments.report(request.params.id, request.params.deploymentId, request.body);
    },
  );

  app.get<{ Params: Static<typeof NodeParam> }>(
    '/v1/nodes/:id/inference',
    {
      // Field engineers read it for their agency's nodes (the console's fleet), centre admins for all.
      config: { auth: 'user-or-node' },
      schema: {
        tags: [TAG],
        summary:
          'What a node runs now: per algorithm its assignment, the version it runs, fps, latency, errors',
        security: ADMIN_OR_NODE,
        params: NodeParam,
        response: { 200: NodeInferenceSchema, 403: err, ...errors },
      },
    },
    async (request) => {
      const principal = mustBeSelfOrAdmin(request.principal, request.params.id);
      if (principal.kind === 'user') {
        requireRole(request, [...CENTRE_ROLES, 'field-engineer']);
        if (!can(principal, CENTRE_ROLES)) {
          const agencyId = await deployments.nodeAgency(request.params.id);
          requireRole(request, 'field-engineer', { agencyId: agencyId ?? undefined });
        }
      }
      return deployments.inference(request.params.id);
    },
  );
}

/** The admin, or the node `nodeId` itself (403 CS_ERR_DEPLOY_OTHER_NODE for another node). */
function mustBeSelfOrAdmin(principal: HttpPrincipal | null, nodeId: string): HttpPrincipal {
  if (!principal) throw new CitysenseError('CS_ERR_AUTH_REQUIRED', 'authentication required', 401);
  if (principal.kind === 'node' && principal.nodeId !== nodeId)
    throw new CitysenseError(
      'CS_ERR_DEPLOY_OTHER_NODE',
      `node ${principal.nodeId} cannot act for node ${nodeId}: use the node's own credentials`,
      403,
    );
  return principal;
}
