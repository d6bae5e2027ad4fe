import { CitysenseError } from '@citysense/protocol';
import { type Static, Type } from '@sinclair/typebox';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { type AuditLog, actorOf } from '../audit/audit-log.ts';
import { can, requireRole } from '../auth/access.ts';
import type { Role } from '../auth/roles.ts';
import type { MessageBus } from '../broker/message-bus.ts';
import { BucketSchema, resolveRange, TimeRangeQuery } from '../telemetry/query-params.ts';
import type { ReadingStore } from '../telemetry/reading-store.ts';
import type { SparkplugHost } from '../telemetry/sparkplug-host.ts';
import type { EnrollmentService } from './enrollment.ts';
import type { EdgeNode, NodeRegistry } from './node-registry.ts';
import { parseDuration, type TokenStore } from './token-store.ts';

const NodeIdParam = Type.Object({ id: Type.String({ minLength: 1, maxLength: 64 }) });

const TokenCreateBody = Type.Object(
  {
    name: Type.Optional(
      Type.String({
        pattern: '^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$',
        description: 'node id the enrolled box will get',
      }),
    ),
    expires: Type.Optional(Type.String({ default: '24h', description: 'lifetime, e.g. 30m, 24h, 7d' })),
  },
  { additionalProperties: false },
);

const ActorSchema = Type.Object({
  kind: Type.String(),
  id: Type.Union([Type.String(), Type.Null()]),
  username: Type.Union([Type.String(), Type.Null()]),
  agencyId: Type.Union([Type.String(), Type.Null()]),
});

const TokenSchema = Type.Object({
  id: Type.String(),
  name: Type.Union([Type.String(), Type.Null()]),
  replacesNode: Type.Union([Type.String(), Type.Null()]),
  createdAt: Type.String({ format: 'date-time' }),
  expiresAt: Type.String({ format: 'date-time' }),
  usedAt: Type.Union([Type.String({ format: 'date-time' }), Type.Null()]),
  usedByNode: Type.Union([Type.String(), Type.Null()]),
  issuedBy: Type.Union([ActorSchema, Type.Null()]),
});

const ReplacementTokenBody = Type.Object(
  {
    ttl: Type.Optional(
      Type.String({ description: 'lifetime, e.g. 30m, 24h, 7d (default 24h)', examples: ['24h'] }),
    ),
    expires: Type.Optional(Type.String({ description: 'alias of ttl' })),
  },
  { additionalProperties: false },
);

const NodeEventSchema = Type.Object({
  id: Type.Integer(),
  nodeId: Type.String(),
  at: Type.String({ format: 'date-time' }),
  kind: Type.Union([Type.Literal('enrolled'), Type.Literal('replaced'), Type.Literal('deregistered')]),
  actor: Type.Union([ActorSchema, Type.Null()]),
  details: Type.Object({}, { additionalProperties: true }),
});

const EnrollBody = Type.Object(
  {
    token: Type.String({ minLength: 8, maxLength: 256 }),
    publicKey: Type.String({ minLength: 40, maxLength: 1024 }),
    signature: Type.String({ minLength: 16, maxLength: 256 }),
    name: Type.Optional(Type.String({ maxLength: 128 })),
    agentVersion: Type.Optional(Type.String({ maxLength: 64 })),
    hardware: Type.Optional(
      Type.Object({
        arch: Type.Optional(Type.String({ maxLength: 32 })),
        platform: Type.Optional(Type.String({ maxLength: 32 })),
        cpuModel: Type.Optional(Type.String({ maxLength: 256 })),
        cpuCores: Type.Optional(Type.Integer({ minimum: 0, maximum: 4096 })),
        memoryBytes: Type.Optional(Type.Number({ minimum: 0 })),
        diskBytes: Type.Optional(Type.Number({ minimum: 0 })),
        executionProviders: Type.Optional(Type.Array(Type.String({ maxLength: 64 }), { maxItems: 32 })),
      }),
    ),
    location: Type.Optional(
      Type.Object({
        lon: Type.Number({ minimum: -180, maximum: 180, description: 'WGS84 longitude' }),
        lat: Type.Number({ minimum: -90, maximum: 90, description: 'WGS84 latitude' }),
      }),
    ),
    poleId: Type.Optional(Type.String({ maxLength: 64 })),
    nodeId: Type.Optional(
      Type.String({
        maxLength: 64,
        description:
          'node id this box expects to get; with a replacement token it must be the replaced node (else 409 CS_ERR_TOKEN_NODE_MISMATCH)',
      }),
    ),
  },
  { additionalProperties: false },
);

const EnrollReply = Type.Object({
  nodeId: Type.String(),
  groupId: Type.String(),
  hubId: Type.String(),
  replaced: Type.Boolean(),
  mqtt: Type.Object({
    url: Type.String(),
    username: Type.String(),
    password: Type.String(),
    clientId: Type.String(),
  }),
});

const NodeSchema = Type.Object({
  id: Type.String(),
  groupId: Type.String(),
  name: Type.Union([Type.String(), Type.Null()]),
  agentVersion: Type.Union([Type.String(), Type.Null()]),
  hardware: Type.Object({}, { additionalProperties: true }),
  location: Type.Union([Type.Object({ lon: Type.Number(), lat: Type.Number() }), Type.Null()]),
  poleId: Type.Union([Type.String(), Type.Null()]),
  enrolledAt: Type.String({ format: 'date-time' }),
  replacedAt: Type.Union([Type.String({ format: 'date-time' }), Type.Null()]),
  deregisteredAt: Type.Union([Type.String({ format: 'date-time' }), Type.Null()]),
  status: Type.Union([Type.Literal('online'), Type.Literal('offline'), Type.Literal('deregistered')]),
  lastSeen: Type.Union([Type.String({ format: 'date-time' }), Type.Null()]),
  lastBirthAt: Type.Union([Type.String({ format: 'date-time' }), Type.Null()]),
  lastDeathAt: Type.Union([Type.String({ format: 'date-time' }), Type.Null()]),
  health: Type.Union([Type.Object({}, { additionalProperties: true }), Type.Null()]),
  devices: Type.Array(Type.Object({ id: Type.String(), online: Type.Boolean() })),
  agencyId: Type.Optional(
    Type.Union([Type.String(), Type.Null()], { description: 'agency the node belongs to (agency_nodes)' }),
  ),
});

/**
 * Who reads the fleet: platform admins, and field engineers for the nodes of their own
 * agency plus nodes of no agency yet (a box they just enrolled, before an admin gives
 * it to an agency; the same rule as replacement tokens).
 */
const FLEET_READERS: readonly Role[] = ['field-engineer', 'platform-admin'];
/** Who issues enrolment tokens: field engineers enrol boxes on poles, platform admins too. */
const ENROLLERS: readonly Role[] = ['field-engineer', 'platform-admin'];

const errors = {
  403: { $ref: 'Error#' },
  400: { $ref: 'Error#' },
  401: { $ref: 'Error#' },
  404: { $ref: 'Error#' },
  409: { $ref: 'Error#' },
};

/** Dependencies of the registry routes. */
export interface RegistryRouteDeps {
  tokens: TokenStore;
  registry: NodeRegistry;
  enrollment: EnrollmentService;
  host: SparkplugHost;
  store: ReadingStore;
  bus: MessageBus;
  audit: AuditLog;
  /** MQTT URL handed to nodes; null derives `mqtt://<host the node used>:<port>`. */
  publicMqttUrl: string | null;
  mqttPort: number;
}

/** Enrolment tokens, node enrolment, the node registry and node health. */
export async function registryRoutes(app: FastifyInstance, deps: RegistryRouteDeps): Promise<void> {
  app.post<{ Body: Static<typeof TokenCreateBody> }>(
    '/v1/enrollment-tokens',
    {
      config: { auth: 'user' },
      schema: {
        tags: ['enrolment'],
        summary: 'Create a one-time enrolment token (field engineers and platform admins)',
        body: TokenCreateBody,
        response: { 201: Type.Intersect([TokenSchema, Type.Object({ token: Type.String() })]), ...errors },
      },
    },
    async (request, reply) => {
      requireRole(request, ENROLLERS);
      const created = await deps.tokens.create({
        name: request.body.name,
        ttlMs: parseDuration(request.body.expires ?? '24h'),
        issuedBy: actorOf(request.principal),
      });
      return reply.status(201).send(created);
    },
  );

  app.get(
    '/v1/enrollment-tokens',
    {
      config: { auth: 'user' },
      schema: {
        tags: ['enrolment'],
        summary: 'List enrolment tokens (secrets are never shown again)',
        response: { 200: Type.Array(TokenSchema), 401: { $ref: 'Error#' }, 403: { $ref: 'Error#' } },
      },
    },
    async (request) => {
      requireRole(request, ENROLLERS);
      return deps.tokens.list();
    },
  );

  app.post<{ Body: Static<typeof EnrollBody> }>(
    '/v1/nodes/enroll',
    {
      schema: {
        tags: ['enrolment'],
        summary:
          'Enrol a node with a one-time token; a replacement token makes this box take over its node (same id and history, new credentials)',
        security: [],
        body: EnrollBody,
        response: { 201: EnrollReply, ...errors },
      },
    },
    async (request, reply) => {
      const result = await deps.enrollment.enroll(request.body);
      const swap = result.replacement;
      if (swap) {
        // The old box's credential is void now; close its live sessions before the new box can connect.
        deps.host.forget(result.nodeId);
        deps.bus.disconnectNode(result.nodeId);
        deps.audit.recordRequest(request, {
          actor: swap.issuedBy ?? actorOf({ kind: 'node', nodeId: result.nodeId }),
          action: 'node.replace',
          targetType: 'node',
          targetId: result.nodeId,
          before: swap.previous,
          after: { ...swap.current, tokenId: swap.tokenId, performedBy: 'replacement box' },
        });
      }
      const url = deps.publicMqttUrl ?? `mqtt://${request.hostname.replace(/:\d+$/, '')}:${deps.mqttPort}`;
      return reply.status(201).send({
        nodeId: result.nodeId,
        groupId: result.groupId,
        hubId: result.hubId,
        replaced: result.replaced,
        mqtt: { url, username: result.username, password: result.password, clientId: result.nodeId },
      });
    },
  );

  const present = (node: EdgeNode) => {
    return {
      ...node,
      status: node.deregisteredAt ? 'deregistered' : node.online ? 'online' : 'offline',
      health: deps.host.latestHealth().get(node.id) ?? null,
      devices: deps.host.devicesOf(node.id),
    };
  };

  /** Refuses people who may not read the node (before saying whether it exists); returns its agency. */
  const mayReadNode = async (request: FastifyRequest, nodeId: string): Promise<string | null> => {
    requireRole(request, FLEET_READERS);
    const agencyId = await deps.registry.agencyOf(nodeId);
    requireRole(request, FLEET_READERS, { agencyId: agencyId ?? undefined });
    return agencyId;
  };

  app.get<{ Querystring: { includeDeregistered?: boolean } }>(
    '/v1/nodes',
    {
      config: { auth: 'user' },
      schema: {
        tags: ['registry'],
        summary:
          "List edge nodes with status, last seen, latest health and agency (field engineers: their agency's nodes and nodes of no agency)",
        querystring: Type.Object({ includeDeregistered: Type.Optional(Type.Boolean()) }),
        response: { 200: Type.Array(NodeSchema), 401: { $ref: 'Error#' }, 403: { $ref: 'Error#' } },
      },
    },
    async (request) => {
      const who = requireRole(request, FLEET_READERS);
      const [nodes, agencies] = await Promise.all([
        deps.registry.list({ includeDeregistered: request.query.includeDeregistered === true }),
        deps.registry.agencies(),
      ]);
      return nodes
        .map((n) => ({ ...present(n), agencyId: agencies.get(n.id) ?? null }))
        .filter((n) => can(who, FLEET_READERS, { agencyId: n.agencyId ?? undefined }));
    },
  );

  app.get<{ Params: Static<typeof NodeIdParam> }>(
    '/v1/nodes/:id',
    {
      config: { auth: 'user' },
      schema: {
        tags: ['registry'],
        summary: 'One node (field engineers: of their agency or of none)',
        params: NodeIdParam,
        response: { 200: NodeSchema, ...errors },
      },
    },
    async (request) => {
      const agencyId = await mayReadNode(request, request.params.id);
      return { ...present(await deps.registry.get(request.params.id)), agencyId };
    },
  );

  app.delete<{ Params: Static<typeof NodeIdParam> }>(
    '/v1/nodes/:id',
    {
      schema: {
        tags: ['registry'],
        summary: 'Deregister a node: its credentials stop working, its history stays',
        params: NodeIdParam,
        response: { 204: Type.Null(), ...errors },
      },
    },
    async (request, reply) => {
      await deps.registry.deregister(request.params.id, actorOf(request.principal));
      deps.host.forget(request.params.id);
      deps.bus.disconnectNode(request.params.id);
      return reply.status(204).send();
    },
  );

  const issueReplacementToken = async (
    request: FastifyRequest<{
      Params: Static<typeof NodeIdParam>;
      Body: Static<typeof ReplacementTokenBody>;
    }>,
    reply: FastifyReply,
  ) => {
    const roles = ['field-engineer', 'platform-admin'] as const;
    // Hold the role somewhere first, so that people without it learn nothing about nodes.
    requireRole(request, roles);
    const node = await deps.registry.get(request.params.id);
    if (node.deregisteredAt)
      throw new CitysenseError(
        'CS_ERR_NODE_UNKNOWN',
        `node ${node.id} was deregistered at ${node.deregisteredAt.toISOString()}: a box cannot take it over; enrol the box with a new enrolment token (citysense token create)`,
        404,
      );
    const agencyId = (await deps.registry.agencyOf(node.id)) ?? undefined;
    const who = requireRole(request, roles, { agencyId });
    const created = await deps.tokens.create({
      name: node.id,
      ttlMs: parseDuration(request.body?.ttl ?? request.body?.expires ?? '24h'),
      replacesNode: node.id,
      issuedBy: actorOf(who),
    });
    deps.audit.recordRequest(request, {
      action: 'node.replacement-token.create',
      targetType: 'node',
      targetId: node.id,
      after: { tokenId: created.id, expiresAt: created.expiresAt, agencyId: agencyId ?? null },
    });
    return reply.status(201).send(created);
  };

  const replacementTokenSchema = {
    tags: ['registry'],
    params: NodeIdParam,
    body: ReplacementTokenBody,
    response: {
      201: Type.Intersect([TokenSchema, Type.Object({ token: Type.String() })]),
      ...errors,
    },
  };

  app.post<{ Params: Static<typeof NodeIdParam>; Body: Static<typeof ReplacementTokenBody> }>(
    '/v1/nodes/:id/replacement-tokens',
    {
      config: { auth: 'user' },
      schema: {
        ...replacementTokenSchema,
        summary:
          "Issue a one-time replacement token (field engineer of the node's agency, or platform admin): the box enrolled with it takes over this node id and its history, and the old box's credentials stop working",
      },
    },
    issueReplacementToken,
  );

  app.post<{ Params: Static<typeof NodeIdParam>; Body: Static<typeof ReplacementTokenBody> }>(
    '/v1/nodes/:id/replace',
    {
      config: { auth: 'user' },
      schema: {
        ...replacementTokenSchema,
        summary: 'Deprecated alias of POST /v1/nodes/{id}/replacement-tokens',
        deprecated: true,
      },
    },
    issueReplacementToken,
  );

  app.get<{ Params: Static<typeof NodeIdParam> }>(
    '/v1/nodes/:id/events',
    {
      config: { auth: 'user' },
      schema: {
        tags: ['registry'],
        summary:
          'Identity history of a node: enrolment, box replacements (old → new hardware, who), deregistration',
        params: NodeIdParam,
        response: { 200: Type.Array(NodeEventSchema), ...errors },
      },
    },
    async (request) => {
      const roles = ['field-engineer', 'agency-operator', 'platform-admin'] as const;
      requireRole(request, roles);
      const events = await deps.registry.events(request.params.id);
      requireRole(request, roles, {
        agencyId: (await deps.registry.agencyOf(request.params.id)) ?? undefined,
      });
      return events;
    },
  );

  app.get<{
    Params: Static<typeof NodeIdParam>;
    Querystring: Static<typeof TimeRangeQuery> & { bucket?: Static<typeof BucketSchema> };
  }>(
    '/v1/nodes/:id/health',
    {
      config: { auth: 'user' },
      schema: {
        tags: ['registry'],
        summary:
          'Health time series of a node (CPU, memory, disk, temperature, uptime, spool, dropped, link RTT)',
        params: NodeIdParam,
        querystring: Type.Intersect([TimeRangeQuery, Type.Object({ bucket: Type.Optional(BucketSchema) })]),
      },
    },
    async (request) => {
      await mayReadNode(request, request.params.id);
      await deps.registry.get(request.params.id);
      const range = resolveRange(request.query);
      return deps.store.queryHealth({ node: request.params.id, ...range, bucket: request.query.bucket });
    },
  );
}
