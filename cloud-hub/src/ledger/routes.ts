import type { IncomingMessage } from 'node:http';
import { CitysenseError } from '@citysense/protocol';
import { type Static, type TSchema, Type } from '@sinclair/typebox';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { AuditLog } from '../audit/audit-log.ts';
import { can, type PersonPrincipal, requireRole, requireUser } from '../auth/access.ts';
import type { Role } from '../auth/roles.ts';
import type { HttpPrincipal } from '../http/server.ts';
import { readCsv } from './csv.ts';
import { DEVICE_KINDS } from './device-codes.ts';
import { checkDeviceInput, DeviceInputSchema } from './device-input.ts';
import type { LedgerActor, LedgerService, RowAdmission } from './ledger-service.ts';
import { DEVICE_STATES, type DeviceState, type LedgerDevice } from './ledger-store.ts';
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
  q: Type.Optional(
    Type.String({ minLength: 1, maxLength: 64, description: 'part of the code, model, vendor or pole id' }),
  ),
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
  audit: AuditLog;
}

/** Roles that write devices: operators for their own agency, the platform admin for any. */
export const LEDGER_WRITERS: readonly Role[] = ['agency-operator', 'platform-admin'];
/** Roles that read every device city-wide (reviewers judge, field engineers deploy). */
export const LEDGER_READERS: readonly Role[] = ['platform-admin', 'reviewer', 'field-engineer'];
/** Everyone with some view of the ledger. */
const ANY_LEDGER_ROLE: readonly Role[] = [...LEDGER_READERS, 'agency-operator'];
/** Moves that belong to the joint review (`/v1/review`); only the platform admin makes them by hand. */
const REVIEW_MOVES: readonly DeviceState[] = ['in-review', 'approved'];

/** The actor behind a request as the chain records it; nodes are refused. */
export function actorOf(request: FastifyRequest): LedgerActor {
  const p = requireUser(request);
  return p.kind === 'admin'
    ? { kind: 'admin', id: 'admin' }
    : { kind: 'user', id: p.userId, agencyId: p.agencyId };
}

/** Whether `principal` may see `device`: city-wide readers, or the owner agency's operators. */
export function canReadDevice(
  principal: HttpPrincipal | null,
  device: Pick<LedgerDevice, 'ownerAgency'>,
): boolean {
  return can(principal, LEDGER_READERS) || can(principal, LEDGER_WRITERS, { agencyId: device.ownerAgency });
}

/** Throws CS_ERR_AUTH_FORBIDDEN unless the caller may read `device`. */
function requireRead(request: FastifyRequest, device: LedgerDevice): void {
  if (!canReadDevice(request.principal, device))
    requireRole(request, LEDGER_READERS, { agencyId: device.ownerAgency });
}

/** Bulk registration: a row of another agency, or filed as inventory by a non-admin, is refused on its own. */
function admission(who: PersonPrincipal): RowAdmission {
  return (input) => {
    if (!can(who, LEDGER_WRITERS, { agencyId: input.ownerAgency }))
      return {
        column: 'ownerAgency',
        message: `you may register devices of your own agency only, not ${input.ownerAgency}`,
      };
    if ((input.state ?? 'proposed') !== 'proposed' && !can(who, 'platform-admin'))
      return { column: 'state', message: 'only a platform admin files existing inventory (state active)' };
    return undefined;
  };
}

const config = { auth: 'user' } as const;
const security: Array<Record<string, string[]>> = [{ admin: [] }, { user: [] }];

/** The sensor ledger: registration, lifecycle, duplicates, change feed, filing chain, CSV import. */
export async function ledgerRoutes(app: FastifyInstance, deps: LedgerRouteDeps): Promise<void> {
  const tags = ['sensor ledger'];
  const { ledger, audit } = deps;
  // The body stays a stream: rows are applied while the file is still arriving.
  app.addContentTypeParser('text/csv', (_request, payload, done) => done(null, payload));

  app.post<{ Body: Static<typeof DeviceInputSchema> }>(
    '/v1/ledger/devices',
    {
      config,
      schema: {
        tags,
        summary: 'Register a device; it gets a unified code and is flagged when it duplicates a standing one',
        description:
          'Agency operators register devices of their own agency as proposed; a platform admin may also file existing inventory (state active).',
        security,
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
      requireRole(request, LEDGER_WRITERS, { agencyId: request.body.ownerAgency });
      if ((request.body.state ?? 'proposed') !== 'proposed') requireRole(request, 'platform-admin');
      const { device, duplicates } = await ledger.register(request.body, actorOf(request));
      audit.recordRequest(request, {
        action: 'ledger.device.register',
        targetType: 'ledger-device',
        targetId: device.code,
        before: null,
        after: device,
      });
      reply.code(201);
      return { ...device, duplicates };
    },
  );
  app.post<{ Body: unknown[] }>(
    '/v1/ledger/devices/bulk',
    {
      config,
      schema: {
        tags,
        summary: 'Register up to 1000 devices; each item is applied or reported on its own',
        description:
          "Items of an agency other than the caller's are refused one by one (CS_ERR_AUTH_FORBIDDEN).",
        security,
        body: Type.Array(Type.Unknown(), { maxItems: 1000 }),
        response: { 200: ReportSchema },
      },
    },
    async (request) => {
      const who = requireRole(request, LEDGER_WRITERS);
      const report = await ledger.registerMany(
        request.body.map((item) => checkDeviceInput(item)),
        actorOf(request),
        admission(who),
      );
      audit.recordRequest(request, {
        action: 'ledger.device.bulk',
        targetType: 'ledger-device',
        before: null,
        after: { rows: report.rows, applied: report.applied, failed: report.failed, flagged: report.flagged },
      });
      return report;
    },
  );
  app.get<{ Querystring: Static<typeof ListQuery> }>(
    '/v1/ledger/devices',
    {
      config,
      schema: {
        tags,
        summary:
          'Devices in code order (page with ?after=<last code>; ?q= matches code, model, vendor, pole)',
        description:
          'Reviewers, field engineers and platform admins see every device; agency operators their own.',
        security,
        querystring: ListQuery,
        response: { 200: Type.Array(DeviceSchema) },
      },
    },
    async (request) => {
      const who = requireRole(request, ANY_LEDGER_ROLE);
      const q = request.query;
      // An operator's list is their agency's: filter in SQL so that pages stay full.
      const own = can(who, LEDGER_READERS) || who.kind !== 'user' ? undefined : who.agencyId;
      if (own !== undefined && q.owner !== undefined && q.owner !== own) return [];
      const devices = await ledger.list({
        kind: q.kind,
        state: q.state,
        ownerAgency: own ?? q.owner,
        after: q.after,
        text: q.q,
        limit: q.limit,
      });
      return devices.filter((d) => canReadDevice(who, d));
    },
  );
  app.get<{ Params: Static<typeof CodeParams> }>(
    '/v1/ledger/devices/:code',
    {
      config,
      schema: { tags, summary: 'One device', security, params: CodeParams, response: { 200: DeviceSchema } },
    },
    async (request) => {
      requireRole(request, ANY_LEDGER_ROLE);
      const device = await ledger.device(request.params.code);
      requireRead(request, device);
      return device;
    },
  );
  app.get<{ Params: Static<typeof CodeParams> }>(
    '/v1/ledger/devices/:code/duplicates',
    {
      config,
      schema: {
        tags,
        summary:
          'Standing devices of the same kind within the duplicate radius, nearest first: reuse one of these',
        security,
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
      requireRole(request, ANY_LEDGER_ROLE);
      const { device, radiusM, duplicates } = await ledger.duplicatesOf(request.params.code);
      requireRead(request, device);
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
  app.get<{ Params: Static<typeof CodeParams> }>(
    '/v1/ledger/devices/:code/history',
    {
      config,
      schema: {
        tags,
        summary: 'Lifecycle history of one device from the filing chain, oldest first',
        security,
        params: CodeParams,
        response: {
          200: Type.Array(
            Type.Object({
              seq: Type.Integer(),
              time: Type.String(),
              action: Type.String(),
              actor: Nullable(
                Type.Object({
                  kind: Type.String(),
                  id: Type.String(),
                  agencyId: Type.Optional(Type.String()),
                }),
              ),
              state: Nullable(Type.String({ description: 'state of the device after the change' })),
              detail: Type.Record(Type.String(), Type.Unknown(), { description: 'from, to, note, reuse …' }),
            }),
          ),
        },
      },
    },
    async (request) => {
      requireRole(request, ANY_LEDGER_ROLE);
      const device = await ledger.device(request.params.code);
      requireRead(request, device);
      const history = await ledger.history(device.code);
      return history.map((c) => ({
        seq: c.seq,
        time: c.time,
        action: c.action,
        actor: c.actor,
        state: c.device?.state ?? null,
        detail: c.detail,
      }));
    },
  );
  app.post<{ Params: Static<typeof CodeParams>; Body: Static<typeof ResolutionBody> }>(
    '/v1/ledger/devices/:code/resolution',
    {
      config,
      schema: {
        tags,
        summary:
          'Answer a duplicate flag: {"reuse": "<code>"} links the existing device, {"justify": "<why>"} explains',
        security,
        params: CodeParams,
        body: ResolutionBody,
        response: { 200: DeviceSchema },
      },
    },
    async (request) => {
      requireRole(request, LEDGER_WRITERS);
      const before = await ledger.device(request.params.code);
      requireRole(request, LEDGER_WRITERS, { agencyId: before.ownerAgency });
      const after = await ledger.resolve(request.params.code, request.body, actorOf(request));
      audit.recordRequest(request, {
        action: 'ledger.device.resolve',
        targetType: 'ledger-device',
        targetId: after.code,
        before,
        after,
      });
      return after;
    },
  );
  app.post<{ Params: Static<typeof CodeParams>; Body: Static<typeof TransitionBody> }>(
    '/v1/ledger/devices/:code/transitions',
    {
      config,
      schema: {
        tags,
        summary:
          'Move a device along proposed → in-review → approved → installed → active ⇄ maintenance → retired',
        description:
          'Operators move devices of their own agency. Review moves (→ in-review, → approved, in-review → proposed) ' +
          'are made by the joint review (/v1/review); → approved and installed → active need an approved project ' +
          '(409 CS_ERR_LEDGER_NOT_REVIEWED) unless the device was filed as existing inventory.',
        security,
        params: CodeParams,
        body: TransitionBody,
        response: { 200: DeviceSchema },
      },
    },
    async (request) => {
      requireRole(request, LEDGER_WRITERS);
      const before = await ledger.device(request.params.code);
      const who = requireRole(request, LEDGER_WRITERS, { agencyId: before.ownerAgency });
      const to = request.body.to;
      if ((REVIEW_MOVES.includes(to) || before.state === 'in-review') && !can(who, 'platform-admin'))
        throw new CitysenseError(
          'CS_ERR_LEDGER_REVIEW_MOVE',
          `device ${before.code} moves ${before.state} → ${to} through the joint review: ` +
            'list it in a project (POST /v1/review/projects) and submit that',
          409,
          { code: before.code, from: before.state, to },
        );
      const after = await ledger.transition(request.params.code, to, actorOf(request), {
        from: request.body.from,
        note: request.body.note,
      });
      audit.recordRequest(request, {
        action: 'ledger.device.transition',
        targetType: 'ledger-device',
        targetId: after.code,
        before,
        after,
      });
      return after;
    },
  );
  app.get<{ Querystring: Static<typeof SinceQuery> }>(
    '/v1/ledger/changes',
    {
      config,
      schema: {
        tags,
        summary:
          'Incremental change feed: changes after ?since=<seq>, oldest first; pass `next` back as since',
        description:
          'Agency operators see the changes of their own devices only; `next` still advances past the others.',
        security,
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
      const who = requireRole(request, ANY_LEDGER_ROLE);
      const { changes: all, next } = await ledger.changes(request.query.since, request.query.limit);
      const changes = all.filter((c) => c.device !== null && canReadDevice(who, c.device));
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
      config,
      schema: {
        tags,
        summary: 'Verify the chain and the device table against it; reports the first broken link',
        security,
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
      // Filing is meant to be checked by anyone: every ledger role may run the verification.
      requireRole(request, ANY_LEDGER_ROLE);
      return ledger.verify();
    },
  );
  app.post<{ Querystring: Static<typeof ImportQuery> }>(
    '/v1/ledger/import',
    {
      config,
      schema: {
        tags,
        summary: 'Import devices from CSV (text/csv, header row of field names); each row applied on its own',
        description:
          "Rows of an agency other than the caller's are refused row by row (CS_ERR_AUTH_FORBIDDEN).",
        security,
        querystring: ImportQuery,
        response: { 200: ReportSchema },
      },
    },
    async (request) => {
      const who = requireRole(request, LEDGER_WRITERS);
      const actor = actorOf(request);
      if (!request.headers['content-type']?.startsWith('text/csv'))
        throw new CitysenseError('CS_ERR_LEDGER_CSV_TYPE', 'send the file as Content-Type: text/csv', 415);
      const report = await ledger.importCsv(
        readCsv(request.body as IncomingMessage),
        actor,
        request.query.rowOffset,
        admission(who),
      );
      audit.recordRequest(request, {
        action: 'ledger.device.import',
        targetType: 'ledger-device',
        before: null,
        after: { rows: report.rows, applied: report.applied, failed: report.failed, flagged: report.flagged },
      });
      return report;
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
