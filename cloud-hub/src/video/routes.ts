import { CitysenseError } from '@citysense/protocol';
import { type Static, Type } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import { openToRoles } from '../algorithms/open-to-roles.ts';
import type { Role } from '../auth/roles.ts';
import { resolveRange, TimeRangeQuery } from '../telemetry/query-params.ts';
import type { VideoService } from './video-service.ts';
import type { VideoStore } from './video-store.ts';

const GbId = Type.String({ pattern: '^[0-9]{20}$', description: '20-digit GB/T 28181 ID' });
const DeviceParams = Type.Object({ id: GbId });
const Nullable = <T extends ReturnType<typeof Type.String>>(t: T) => Type.Union([t, Type.Null()]);
const NullableNumber = Type.Union([Type.Number(), Type.Null()]);
const NullableTime = Type.Union([Type.String({ format: 'date-time' }), Type.Null()]);

const DeviceSchema = Type.Object({
  deviceId: Type.String(),
  admitted: Type.Boolean({ description: 'may register (ledger admission or auto-accept)' }),
  name: Nullable(Type.String()),
  manufacturer: Nullable(Type.String()),
  model: Nullable(Type.String()),
  firmware: Nullable(Type.String()),
  channelCount: NullableNumber,
  transport: Nullable(Type.String()),
  address: Nullable(Type.String()),
  port: NullableNumber,
  userAgent: Nullable(Type.String()),
  online: Type.Boolean(),
  registeredAt: NullableTime,
  expiresAt: NullableTime,
  lastKeepaliveAt: NullableTime,
});
const ChannelSchema = Type.Object({
  deviceId: Type.String(),
  channelId: Type.String(),
  name: Nullable(Type.String()),
  manufacturer: Nullable(Type.String()),
  model: Nullable(Type.String()),
  owner: Nullable(Type.String()),
  civilCode: Nullable(Type.String()),
  address: Nullable(Type.String()),
  parentId: Nullable(Type.String()),
  status: Nullable(Type.String()),
  longitude: NullableNumber,
  latitude: NullableNumber,
  updatedAt: Type.String({ format: 'date-time' }),
});
const AlarmSchema = Type.Object({
  time: Type.String({ format: 'date-time' }),
  deviceId: Type.String(),
  priority: Type.Integer({ description: '1 (most severe) … 4' }),
  method: Type.Integer({ description: '1 phone, 2 device, 3 SMS, 4 GPS, 5 video, 6 device fault, 7 other' }),
  alarmType: Nullable(Type.String()),
  description: Type.String(),
  alarmTime: Type.String({ description: 'as the device sent it' }),
  longitude: NullableNumber,
  latitude: NullableNumber,
});
const StatusSchema = Type.Object({
  time: Type.String({ format: 'date-time' }),
  deviceId: Type.String(),
  online: Type.Boolean(),
  reason: Type.String(),
});
const AdmitBody = Type.Object(
  { deviceId: GbId, name: Type.Optional(Type.String({ minLength: 1, maxLength: 128 })) },
  { additionalProperties: false },
);
const AlarmQuery = Type.Intersect([
  TimeRangeQuery,
  Type.Object({
    device: Type.Optional(GbId),
    limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 100_000, default: 1000 })),
  }),
]);

const ChannelParams = Type.Object({ id: GbId });
const LiveBody = Type.Object(
  {
    transport: Type.Optional(
      Type.Union([Type.Literal('udp'), Type.Literal('tcp')], {
        default: 'udp',
        description: 'RTP transport from the camera: UDP, or TCP with the hub listening (passive)',
      }),
    ),
  },
  { additionalProperties: false },
);
const LiveSchema = Type.Object({
  id: Type.String({ description: 'SIP Call-ID of the INVITE dialog' }),
  deviceId: Type.String(),
  channelId: Type.String(),
  transport: Type.String(),
  ssrc: Type.String(),
  startedAt: Type.String({ format: 'date-time' }),
  rtmpUrl: Type.String({ description: 'read it with any RTMP player, or as an inference video source' }),
  flvUrl: Type.String({ description: 'HTTP-FLV for browser players (flv.js)' }),
  packets: Type.Integer(),
  lost: Type.Integer(),
  accessUnits: Type.Integer(),
  codec: Type.Union([Type.String(), Type.Null()]),
});
const StreamSchema = Type.Object({
  path: Type.String(),
  protocol: Type.String(),
  publisher: Type.String(),
  startedAt: Type.String(),
  players: Type.Integer(),
  bytesIn: Type.Integer(),
  flvUrl: Type.String({ description: 'HTTP-FLV for browser players (mpegts.js, flv.js)' }),
});

/** The HTTP-FLV URL of a relay stream path `app/stream`. */
function flvUrlOf(service: VideoService, path: string): string {
  const [app = '', ...rest] = path.split('/');
  return service.relay.flvUrl(app, rest.join('/'));
}

function notFound(id: string): CitysenseError {
  return new CitysenseError(
    'CS_ERR_VIDEO_DEVICE_UNKNOWN',
    `video device ${id} is not known to this hub`,
    404,
  );
}

/** GB/T 28181 devices, channels, alarms and admissions. */
export async function videoRoutes(
  app: FastifyInstance,
  deps: { service: VideoService; store: VideoStore },
): Promise<void> {
  await app.register(async (scope) => {
    // Field engineers watch video in the console; admitting devices stays with admins.
    openToRoles(scope, VIDEO_ROLES, (route) => route.method === 'GET' || route.method === 'HEAD');
    videoReadRoutes(scope, deps);
  });
}

/** Who watches video besides the admin token. */
export const VIDEO_ROLES: readonly Role[] = ['field-engineer', 'platform-admin'];

function videoReadRoutes(app: FastifyInstance, deps: { service: VideoService; store: VideoStore }): void {
  const tags = ['video access'];
  app.get(
    '/v1/video/devices',
    {
      schema: {
        tags,
        summary: 'GB/T 28181 devices: admitted or registered, with online state',
        response: { 200: Type.Array(DeviceSchema) },
      },
    },
    async () => deps.store.listDevices(),
  );
  app.post<{ Body: Static<typeof AdmitBody> }>(
    '/v1/video/devices',
    {
      schema: {
        tags,
        summary: 'Admit a device to register (the video ledger); idempotent',
        body: AdmitBody,
        response: { 201: DeviceSchema },
      },
    },
    async (request, reply) => {
      await deps.service.admit(request.body.deviceId, request.body.name);
      reply.code(201);
      return deps.store.device(request.body.deviceId);
    },
  );
  app.get<{ Params: Static<typeof DeviceParams> }>(
    '/v1/video/devices/:id',
    { schema: { tags, summary: 'One device', params: DeviceParams, response: { 200: DeviceSchema } } },
    async (request) => {
      const device = await deps.store.device(request.params.id);
      if (!device) throw notFound(request.params.id);
      return device;
    },
  );
  app.delete<{ Params: Static<typeof DeviceParams> }>(
    '/v1/video/devices/:id/admission',
    {
      schema: {
        tags,
        summary: 'Withdraw admission: the device is refused at its next REGISTER',
        params: DeviceParams,
        response: { 204: Type.Null() },
      },
    },
    async (request, reply) => {
      if (!(await deps.service.revoke(request.params.id))) throw notFound(request.params.id);
      reply.code(204);
    },
  );
  app.get<{ Params: Static<typeof DeviceParams> }>(
    '/v1/video/devices/:id/channels',
    {
      schema: {
        tags,
        summary: 'Channels of a device from its last Catalog answer',
        params: DeviceParams,
        response: { 200: Type.Array(ChannelSchema) },
      },
    },
    async (request) => {
      if (!(await deps.store.device(request.params.id))) throw notFound(request.params.id);
      return deps.store.listChannels(request.params.id);
    },
  );
  app.post<{ Params: Static<typeof DeviceParams> }>(
    '/v1/video/devices/:id/catalog',
    {
      schema: {
        tags,
        summary: 'Query the Catalog of a registered device now and replace its stored channels',
        params: DeviceParams,
        response: { 200: Type.Object({ channels: Type.Integer() }) },
      },
    },
    async (request) => ({ channels: await deps.service.refreshCatalog(request.params.id) }),
  );
  app.get<{ Params: Static<typeof DeviceParams> }>(
    '/v1/video/devices/:id/status-history',
    {
      schema: {
        tags,
        summary: 'Online/offline changes of a device, newest first',
        params: DeviceParams,
        response: { 200: Type.Array(StatusSchema) },
      },
    },
    async (request) => deps.store.statusHistory(request.params.id, 1000),
  );
  app.get<{ Querystring: Static<typeof AlarmQuery> }>(
    '/v1/video/alarms',
    {
      schema: {
        tags,
        summary: 'Alarms raised by GB/T 28181 devices, newest first',
        querystring: AlarmQuery,
        response: { 200: Type.Array(AlarmSchema) },
      },
    },
    async (request) => {
      const q = request.query;
      return deps.store.listAlarms({ ...resolveRange(q), deviceId: q.device, limit: q.limit ?? 1000 });
    },
  );
}

/** Live GB/T 28181 video relayed to RTMP / HTTP-FLV, and the streams the relay carries. */
export async function liveRoutes(app: FastifyInstance, deps: { service: VideoService }): Promise<void> {
  await app.register(async (scope) => {
    openToRoles(scope, VIDEO_ROLES);
    liveRoutesIn(scope, deps);
  });
}

function liveRoutesIn(app: FastifyInstance, deps: { service: VideoService }): void {
  const tags = ['video access'];
  app.post<{ Params: Static<typeof ChannelParams>; Body: Static<typeof LiveBody> }>(
    '/v1/video/channels/:id/live',
    {
      schema: {
        tags,
        summary: 'Start live video of a channel (INVITE); an open session of the channel is shared',
        params: ChannelParams,
        body: LiveBody,
        response: { 200: LiveSchema },
      },
    },
    async (request) => deps.service.live.start(request.params.id, request.body?.transport ?? 'udp'),
  );
  app.get(
    '/v1/video/live',
    { schema: { tags, summary: 'Open live sessions', response: { 200: Type.Array(LiveSchema) } } },
    async () => deps.service.live.list(),
  );
  app.delete<{ Params: Static<typeof ChannelParams> }>(
    '/v1/video/channels/:id/live',
    {
      schema: {
        tags,
        summary: 'Stop live video of a channel (BYE)',
        params: ChannelParams,
        response: { 204: Type.Null() },
      },
    },
    async (request, reply) => {
      if (!(await deps.service.live.stop(request.params.id)))
        throw new CitysenseError(
          'CS_ERR_VIDEO_LIVE_UNKNOWN',
          `channel ${request.params.id} has no live session`,
          404,
        );
      reply.code(204);
    },
  );
  app.get(
    '/v1/video/streams',
    {
      schema: {
        tags,
        summary: 'Streams the RTMP / HTTP-FLV relay carries (RTMP ingest and GB/T 28181 relays)',
        response: { 200: Type.Array(StreamSchema) },
      },
    },
    async () =>
      deps.service.relay.streams().map((s) => ({
        path: s.path,
        protocol: s.protocol,
        publisher: s.remoteAddress,
        startedAt: new Date(s.startedAt).toISOString(),
        players: s.players,
        bytesIn: s.bytesIn,
        flvUrl: flvUrlOf(deps.service, s.path),
      })),
  );
}
