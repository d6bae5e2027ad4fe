import { type Static, Type } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
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

const TokenSchema = Type.Object({
  id: Type.String(),
  name: Type.Union([Type.String(), Type.Null()]),
  replacesNode: Type.Union([Type.String(), Type.Null()]),
  createdAt: Type.String({ format: 'date-time' }),
  expiresAt: Type.String({ format: 'date-time' }),
  usedAt: Type.Union([Type.String({ format: 'date-time' }), Type.Null()]),
  usedByNode: Type.Union([Type.String(), Type.Null()]),
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
});

const errors = {
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
  /** MQTT URL handed to nodes; null derives `mqtt://<host the node used>:<port>`. */
  publicMqttUrl: string | null;
  mqttPort: number;
}

/** Enrolment tokens, node enrolment, the node registry and node health. */
export async function registryRoutes(app: FastifyInstance, deps: RegistryRouteDeps): Promise<void> {
  app.post<{ Body: Static<typeof TokenCreateBody> }>(
    '/v1/enrollment-tokens',
    {
      schema: {
        tags: ['enrolment'],
        summary: 'Create a one-time enrolment token',
        body: TokenCreateBody,
        response: { 201: Type.Intersect([TokenSchema, Type.Object({ token: Type.String() })]), ...errors },
      },
    },
    async (request, reply) => {
      const created = await deps.tokens.create({
        name: request.body.name,
        ttlMs: parseDuration(request.body.expires ?? '24h'),
      });
      return reply.status(201).send(created);
    },
  );

  app.get(
    '/v1/enrollment-tokens',
    {
      schema: {
        tags: ['enrolment'],
        summary: 'List enrolment tokens (secrets are never shown again)',
        response: { 200: Type.Array(TokenSchema) },
      },
    },
    async () => deps.tokens.list(),
  );

  app.post<{ Body: Static<typeof EnrollBody> }>(
    '/v1/nodes/enroll',
    {
      schema: {
        tags: ['enrolment'],
        summary: 'Enrol a node with a one-time token',
        security: [],
        body: EnrollBody,
        response: { 201: EnrollReply, ...errors },
      },
    },
    async (request, reply) => {
      const result = await deps.enrollment.enroll(request.body);
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

  app.get<{ Querystring: { includeDeregistered?: boolean } }>(
    '/v1/nodes',
    {
      schema: {
        tags: ['registry'],
        summary: 'List edge nodes with status, last seen and latest health',
        querystring: Type.Object({ includeDeregistered: Type.Optional(Type.Boolean()) }),
        response: { 200: Type.Array(NodeSchema) },
      },
    },
    async (request) => {
      const nodes = await deps.registry.list({
        includeDeregistered: request.query.includeDeregistered === true,
      });
      return nodes.map(present);
    },
  );

  app.get<{ Params: Static<typeof NodeIdParam> }>(
    '/v1/nodes/:id',
    {
      schema: {
        tags: ['registry'],
        summary: 'One node',
        params: NodeIdParam,
        response: { 200: NodeSchema, ...errors },
      },
    },
    async (request) => present(await deps.registry.get(request.params.id)),
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
      await deps.registry.deregister(request.params.id);
      deps.host.forget(request.params.id);
      deps.bus.disconnectNode(request.params.id);
      return reply.status(204).send();
    },
  );

  app.post<{ Params: Static<typeof NodeIdParam>; Body: { expires?: string } }>(
    '/v1/nodes/:id/replace',
    {
      schema: {
        tags: ['registry'],
        summary:
          'Create a replacement token: a new box enrolled with it takes over this node id and its history',
        params: NodeIdParam,
        body: Type.Object(
          { expires: Type.Optional(Type.String({ default: '24h' })) },
          { additionalProperties: false },
        ),
        response: { 201: Type.Intersect([TokenSchema, Type.Object({ token: Type.String() })]), ...errors },
      },
    },
    async (request, reply) => {
      const node = await deps.registry.get(request.params.id);
      const created = await deps.tokens.create({
        name: node.name ?? undefined,
        ttlMs: parseDuration(request.body?.expires ?? '24h'),
        replacesNode: node.id,
      });
      return reply.status(201).send(created);
    },
  );

  app.get<{
    Params: Static<typeof NodeIdParam>;
    Querystring: Static<typeof TimeRangeQuery> & { bucket?: Static<typeof BucketSchema> };
  }>(
    '/v1/nodes/:id/health',
    {
      schema: {
        tags: ['registry'],
        summary:
          'Health time series of a node (CPU, memory, disk, temperature, uptime, spool, dropped, link RTT)',
        params: NodeIdParam,
        querystring: Type.Intersect([TimeRangeQuery, Type.Object({ bucket: Type.Optional(BucketSchema) })]),
      },
    },
    async (request) => {
      await deps.registry.get(request.params.id);
      const range = resolveRange(request.query);
      return deps.store.queryHealth({ node: request.params.id, ...range, bucket: request.query.bucket });
    },
  );
}
