import type { IncomingMessage } from 'node:http';
import { CitysenseError } from '@citysense/protocol';
import { type Static, type TSchema, Type } from '@sinclair/typebox';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { readCsv } from './csv.ts';
import { DEVICE_KINDS } from './device-codes.ts';
import { checkDeviceInput, DeviceInputSchema } from './device-input.ts';
import type { LedgerActor, LedgerService } from './ledger-service.ts';
import { DEVICE_STATES } from './ledger-store.ts';
import type { LedgerWebhook } from './webhook.ts';

const Nullable = <T extends TSchema>(t: T) => Type.Union([t, Type.Null()]);
const Code = Type.String({ pattern: '^[0-9]{20}$', description: 'unified code (GB/T 28181 20-digit ID)' });
const CodeParams = Type.Object({ code: Code });
const State = Type.Union(
  DEVICE_STATES.map((s) => Type.Literal(s)),
  { description: DEVICE_STATES.join(' → ') },
);

const DeviceSchema = Type.Object({
  code: Type.String(),
  kind: Type.String(),
  model: Nullable(Type.String()),
  vendor: Nullable(Type.String()),
  ownerAgency: Type.String(),
  poleId: Nullable(Type.String()),
  longitude: Type.Number(),
  latitude: Type.Number(),
  installedOn: Nullable(Type.String()),
  gb35114Level: Nullable(Type.String()),
  network: Nullable(Type.String()),
  dataItems: Type.Array(Type.String()),
  state: Type.String(),
  stateTimes: Type.Record(Type.String(), Type.String(), {
    description: 'latest time each state was reached',
  }),
  duplicates: Type.Array(Type.String(), { description: 'standing devices flagged when it was proposed' }),
  resolution: Nullable(Type.String()),
  reuseOf: Nullable(Type.String()),
  justification: Nullable(Type.String()),
  changeSeq: Type.Integer({ description: 'seq of the chain entry that filed this content' }),
});
const NearbySchema = Type.Object({
  code: Type.String(),
  kind: Type.String(),
  ownerAgency: Type.String(),
  poleId: Nullable(Type.String()),
  state: Type.String(),
  longitude: Type.Number(),
  latitude: Type.Number(),
  distanceM: Type.Number(),
});
const ReportSchema = Type.Object({
  rows: Type.Integer(),
  applied: Type.Integer(),
  failed: Type.Integer(),
  flagged: Type.Integer({ description: 'applied rows flagged as possible duplicate builds' }),
  errors: Type.Array(
    Type.Object({ row: Type.Integer(), column: Type.String(), code: Type.String(), message: Type.String() }),
  ),
  errorsTruncated: Type.Boolean(),
});
const EntrySchema = Type.Object({
  seq: Type.Integer(),
  time: Type.String(),
  action: Type.String(),
  deviceCode: Type.String(),
  content: Type.String({ description: 'canonical JSON, exactly as hashed' }),
  prevHash: Type.String(),
  hash: Type.String(),
  signature: Type.Object({ algorithm: Type.String(), keyFingerprint: Type.String(), value: Type.String() }),
});
const BrokenSchema = Type.Object({
  seq: Type.Integer(),
  reason: Type.String(),
  deviceCode: Type.Optional(Type.String()),
  message: Type.String(),
});
const Head = Type.Object({ seq: Type.Integer(), hash: Type.String() });

const ListQuery = Type.Object({
  kind: Type.Optional(Type.Union(DEVICE_KINDS.map((k) => Type.Literal(k)))),
  state: Type.Optional(State),
  owner: Type.Optional(Type.String({ maxLength: 64 })),
  after: Type.Optional(Code),
  limit: Type.Integer({ minimum: 1, maximum: 10_000, default: 1000 }),
});
const SinceQuery = Type.Object({
  since: Type.Integer({ minimum: 0, default: 0, description: 'seq already seen; 0 from the start' }),
  limit: Type.Integer({ minimum: 1, maximum: 10_000, default: 1000 }),
});
const TransitionBody = Type.Object(
  {
    to: State,
    from: Type.Optional(State),
    note: Type.Optional(Type.String({ maxLength: 1000 })),
  },
  { additionalProperties: false },
);
const ResolutionBody = Type.Union([
  Type.Object({ reuse: Code }, { additionalProperties: false }),
  Type.Object({ justify: Type.String({ minLength: 10, maxLength: 4000 }) }, { additionalProperties: false }),
]);
const ImportQuery = Type.Object({
  rowOffset: Type.Integer({
    minimum: 0,
    default: 0,
    description: 'added to line numbers in the report (a part of a larger file)',
  }),
});

/** Dependencies of the ledger routes. */
export interface LedgerRouteDeps {
  ledger: LedgerService;
  webhook?: LedgerWebhook | undefined;
}

/** The actor behind a request; admin-only until users and roles land. */
export function actorOf(request: FastifyRequest): LedgerActor {
  if (request.principal?.kind !== 'admin')
    throw new CitysenseError('CS_ERR_LEDGER_FORBIDDEN', 'the ledger is open to the platform admin only', 403);
  return { kind: 'admin', id: 'admin' };
}

/** The sensor ledger: registration, lifecycle, duplicates, change feed, filing chain, CSV import. */
export async function ledgerRoutes(app: FastifyInstance, deps: LedgerRouteDeps): Promise<void> {
  const tags = ['sensor ledger'];
  const { ledger } = deps;
  // The body stays a stream: rows are applied while the file is still arriving.
  app.addContentTypeParser('text/csv', (_request, payload, done) => done(null, payload));

  app.post<{ Body: Static<typeof DeviceInputSchema> }>(
    '/v1/ledger/devices',
    {
      schema: {
        tags,
        summary: 'Register a device; it gets a unified code and is flagged when it duplicates a standing one',
        body: DeviceInputSchema,
        response: {
          201: Type.Object({
            ...DeviceSchema.properties,
            duplicates: Type.Array(NearbySchema, { description: 'standing devices to reuse instead' }),
          }),
        },
      },
    },
    async (request, reply) => {
      const { device, duplicates } = await ledger.register(request.body, actorOf(request));
      reply.code(201);
      return { ...device, duplicates };
    },
  );
  app.post<{ Body: unknown[] }>(
    '/v1/ledger/devices/bulk',
    {
      schema: {
        tags,
        summary: 'Register up to 1000 devices; each item is applied or reported on its own',
        body: Type.Array(Type.Unknown(), { maxItems: 1000 }),
        response: { 200: ReportSchema },
      },
    },
    async (request) =>
      ledger.registerMany(
        request.body.map((item) => checkDeviceInput(item)),
        actorOf(request),
      ),
  );
  app.get<{ Querystring: Static<typeof ListQuery> }>(
    '/v1/ledger/devices',
    {
      schema: {
        tags,
        summary: 'Devices in code order (page with ?after=<last code>)',
        querystring: ListQuery,
        response: { 200: Type.Array(DeviceSchema) },
      },
    },
    async (request) => {
      actorOf(request);
      const q = request.query;
      return ledger.list({
        kind: q.kind,
        state: q.state,
        ownerAgency: q.owner,
        after: q.after,
        limit: q.limit,
      });
    },
  );
  app.get<{ Params: Static<typeof CodeParams> }>(
    '/v1/ledger/devices/:code',
    { schema: { tags, summary: 'One device', params: CodeParams, response: { 200: DeviceSchema } } },
    async (request) => {
      actorOf(request);
      return ledger.device(request.params.code);
    },
  );
  app.get<{ Params: Static<typeof CodeParams> }>(
    '/v1/ledger/devices/:code/duplicates',
    {
      schema: {
        tags,
        summary:
          'Standing devices of the same kind within the duplicate radius, nearest first: reuse one of these',
        params: CodeParams,
        response: {
          200: Type.Object({
            code: Type.String(),
            kind: Type.String(),
            radiusM: Type.Number(),
            duplicates: Type.Array(NearbySchema),
            flagged: Type.Array(Type.String()),
            resolution: Nullable(Type.String()),
            reuseOf: Nullable(Type.String()),
            justification: Nullable(Type.String()),
          }),
        },
      },
    },
    async (request) => {
      actorOf(request);
      const { device, radiusM, duplicates } = await ledger.duplicatesOf(request.params.code);
      return {
        code: device.code,
        kind: device.kind,
        radiusM,
        duplicates,
        flagged: device.duplicates,
        resolution: device.resolution,
        reuseOf: device.reuseOf,
        justification: device.justification,
      };
    },
  );
  app.post<{ Params: Static<typeof CodeParams>; Body: Static<typeof ResolutionBody> }>(
    '/v1/ledger/devices/:code/resolution',
    {
      schema: {
        tags,
        summary:
          'Answer a duplicate flag: {"reuse": "<code>"} links the existing device, {"justify": "<why>"} explains',
        params: CodeParams,
        body: ResolutionBody,
        response: { 200: DeviceSchema },
      },
    },
    async (request) => ledger.resolve(request.params.code, request.body, actorOf(request)),
  );
  app.post<{ Params: Static<typeof CodeParams>; Body: Static<typeof TransitionBody> }>(
    '/v1/ledger/devices/:code/transitions',
    {
      schema: {
        tags,
        summary:
          'Move a device along proposed → in-review → approved → installed → active ⇄ maintenance → retired',
        params: CodeParams,
        body: TransitionBody,
        response: { 200: DeviceSchema },
      },
    },
    async (request) =>
      ledger.transition(request.params.code, request.body.to, actorOf(request), {
        from: request.body.from,
        note: request.body.note,
      }),
  );
  app.get<{ Querystring: Static<typeof SinceQuery> }>(
    '/v1/ledger/changes',
    {
      schema: {
        tags,
        summary:
          'Incremental change feed: changes after ?since=<seq>, oldest first; pass `next` back as since',
        querystring: SinceQuery,
        response: {
          200: Type.Object({
            changes: Type.Array(
              Type.Object({
                seq: Type.Integer(),
                time: Type.String(),
                action: Type.String(),
                deviceCode: Type.String(),
                actor: Nullable(
                  Type.Object({
                    kind: Type.String(),
                    id: Type.String(),
                    agencyId: Type.Optional(Type.String()),
                  }),
                ),
                device: Nullable(DeviceSchema),
                detail: Type.Record(Type.String(), Type.Unknown()),
              }),
            ),
            next: Type.Integer(),
          }),
        },
      },
    },
    async (request) => {
      actorOf(request);
      const { changes, next } = await ledger.changes(request.query.since, request.query.limit);
      // The response schema wants changeSeq on devices: the feed's device is the one filed at that seq.
      return {
        changes: changes.map((c) => ({ ...c, device: c.device ? { ...c.device, changeSeq: c.seq } : null })),
        next,
      };
    },
  );
  app.get<{ Querystring: Static<typeof SinceQuery> }>(
    '/v1/ledger/chain',
    {
      schema: {
        tags,
        summary:
          'Export of the filing chain (format citysense.ledger.chain/1, see cloud-hub/src/ledger/README.md)',
        querystring: SinceQuery,
        response: {
          200: Type.Object({
            format: Type.String(),
            algorithm: Type.String(),
            publicKey: Type.String(),
            keyFingerprint: Type.String(),
            head: Head,
            entries: Type.Array(EntrySchema),
            next: Type.Integer(),
          }),
        },
      },
    },
    async (request) => {
      actorOf(request);
      return ledger.chain(request.query.since, request.query.limit);
    },
  );
  app.get(
    '/v1/ledger/verify',
    {
      schema: {
        tags,
        summary: 'Verify the chain and the device table against it; reports the first broken link',
        response: {
          200: Type.Object({
            ok: Type.Boolean(),
            entries: Type.Integer(),
            devices: Type.Integer(),
            head: Head,
            firstBroken: Nullable(BrokenSchema),
            problems: Type.Array(BrokenSchema),
            ms: Type.Integer(),
          }),
        },
      },
    },
    async (request) => {
      actorOf(request);
      return ledger.verify();
    },
  );
  app.post<{ Querystring: Static<typeof ImportQuery> }>(
    '/v1/ledger/import',
    {
      schema: {
        tags,
        summary: 'Import devices from CSV (text/csv, header row of field names); each row applied on its own',
        querystring: ImportQuery,
        response: { 200: ReportSchema },
      },
    },
    async (request) => {
      const actor = actorOf(request);
      if (!request.headers['content-type']?.startsWith('text/csv'))
        throw new CitysenseError('CS_ERR_LEDGER_CSV_TYPE', 'send the file as Content-Type: text/csv', 415);
      return ledger.importCsv(readCsv(request.body as IncomingMessage), actor, request.query.rowOffset);
    },
  );
  app.get(
    '/v1/ledger/webhook',
    {
      schema: {
        tags,
        summary: 'Delivery of the chain to the configured webhook (ledger.webhookUrl, --ledger-webhook-url)',
        response: {
          200: Type.Object({
            url: Type.String(),
            deliveredSeq: Type.Integer(),
            pending: Type.Integer(),
            attempts: Type.Integer(),
            nextAttemptAt: Nullable(Type.String()),
            lastError: Nullable(Type.String()),
          }),
        },
      },
    },
    async (request) => {
      actorOf(request);
      if (!deps.webhook)
        throw new CitysenseError(
          'CS_ERR_LEDGER_WEBHOOK_OFF',
          'no ledger.webhookUrl is configured (--ledger-webhook-url)',
          404,
        );
      return deps.webhook.status();
    },
  );
}
