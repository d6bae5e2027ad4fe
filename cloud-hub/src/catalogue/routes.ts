import { type CitysenseError, hasCode } from '@citysense/protocol';
import { type Static, type TSchema, Type } from '@sinclair/typebox';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { AuditLog } from '../audit/audit-log.ts';
import { type PersonPrincipal, requireRole, requireUser } from '../auth/access.ts';
import { DEVICE_KINDS } from '../ledger/device-codes.ts';
import { resolveRange, TimeRangeQuery } from '../telemetry/query-params.ts';
import type { CatalogueService, DataRequest } from './catalogue-service.ts';
import { AGGREGATE_BUCKETS, DATA_CATEGORIES, DATA_FORMS, DesensitisationRuleSchema } from './desensitise.ts';

const Literals = <T extends string>(values: readonly T[], options = {}) =>
  Type.Union(
    values.map((v) => Type.Literal(v)),
    options,
  );
const Nullable = <T extends TSchema>(t: T) => Type.Union([t, Type.Null()]);
const DateTime = Type.String({ format: 'date-time' });

const Code = Type.String({ pattern: '^[0-9]{20}$', description: 'unified code of a ledger device' });
const AgencyId = Type.String({ pattern: '^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$', description: 'agency id' });
const ResourceId = Type.String({
  pattern: '^[a-z0-9][a-z0-9._-]{1,63}$',
  description: 'resource id, e.g. air-quality.pm25',
});
const Form = Literals(DATA_FORMS, { description: 'raw, desensitised or analysis' });
const Purpose = Type.String({ minLength: 5, maxLength: 2000, description: 'what the data are for' });
const Comment = Type.Optional(Type.String({ maxLength: 2000 }));
const IdParams = Type.Object({ id: Type.String({ format: 'uuid' }) });
const Limit = Type.Integer({ minimum: 1, maximum: 1000, default: 100 });

const ShareSchema = Type.Object({
  id: Type.String(),
  deviceCode: Type.String(),
  ownerAgency: Type.String(),
  applicantAgency: Type.String(),
  purpose: Type.String(),
  status: Literals(['pending', 'approved', 'refused', 'revoked'] as const),
  appliedBy: Type.String(),
  appliedAt: DateTime,
  decidedBy: Nullable(Type.String()),
  decidedAt: Nullable(DateTime),
  comment: Nullable(Type.String()),
});
const ShareBody = Type.Object(
  {
    device: Code,
    purpose: Purpose,
    agency: Type.Optional(AgencyId),
  },
  { additionalProperties: false },
);
const ShareDecisionBody = Type.Object(
  { decision: Literals(['approve', 'refuse', 'revoke'] as const), comment: Comment },
  { additionalProperties: false },
);

const ResourceFields = {
  title: Type.String({ minLength: 1, maxLength: 200 }),
  deviceKind: Literals(DEVICE_KINDS),
  dataType: Literals(['reading', 'detection'] as const, {
    description: 'reading: a metric of the devices; detection: an object label of their video analytics',
  }),
  item: Type.String({ minLength: 1, maxLength: 128, description: 'metric name or detection label' }),
  ownerAgency: Type.Optional(
    Nullable({
      ...AgencyId,
      description:
        "only this agency's devices, and it decides applications; null: city-wide, the platform decides",
    }),
  ),
  grade: Type.Integer({ minimum: 1, maximum: 4, description: 'sensitivity 1 (public) … 4 (most sensitive)' }),
  category: Literals(DATA_CATEGORIES),
  forms: Type.Array(Form, { minItems: 1, maxItems: 3, uniqueItems: true }),
  rule: Type.Optional(Type.Partial(DesensitisationRuleSchema, { additionalProperties: false })),
  description: Type.Optional(Nullable(Type.String({ maxLength: 4000 }))),
};
const ResourceBody = Type.Object({ id: ResourceId, ...ResourceFields }, { additionalProperties: false });
const ResourcePatch = Type.Partial(Type.Object(ResourceFields), {
  additionalProperties: false,
  minProperties: 1,
});
const ResourceSchema = Type.Object({
  id: Type.String(),
  title: Type.String(),
  deviceKind: Type.String(),
  dataType: Type.String(),
  item: Type.String(),
  ownerAgency: Nullable(Type.String()),
  grade: Type.Integer(),
  category: Type.String(),
  forms: Type.Array(Type.String()),
  rule: DesensitisationRuleSchema,
  description: Nullable(Type.String()),
  createdAt: DateTime,
  updatedAt: DateTime,
});
const ResourceQuery = Type.Object({
  deviceKind: Type.Optional(Literals(DEVICE_KINDS)),
  category: Type.Optional(Literals(DATA_CATEGORIES)),
});

const ApplicationSchema = Type.Object({
  id: Type.String(),
  resourceId: Type.String(),
  applicantAgency: Type.String(),
  form: Type.String(),
  purpose: Type.String(),
  status: Literals(['pending', 'granted', 'refused', 'revoked'] as const),
  appliedBy: Type.String(),
  appliedAt: DateTime,
  decidedBy: Nullable(Type.String()),
  decidedAt: Nullable(DateTime),
  comment: Nullable(Type.String()),
});
const ApplicationBody = Type.Object(
  { resource: ResourceId, form: Form, purpose: Purpose, agency: Type.Optional(AgencyId) },
  { additionalProperties: false },
);
const ApplicationDecisionBody = Type.Object(
  { decision: Literals(['grant', 'refuse', 'revoke'] as const), comment: Comment },
  { additionalProperties: false },
);

const DataQueryFields = {
  resource: Type.Optional(ResourceId),
  device: Type.Optional(Code),
  form: Type.Optional(Form),
  bucket: Type.Optional(
    Literals(AGGREGATE_BUCKETS, { description: 'aggregated forms: never finer than the resource rule' }),
  ),
  limit: Type.Integer({ minimum: 1, maximum: 100_000, default: 10_000 }),
};
const ReadingDataQuery = Type.Intersect([
  TimeRangeQuery,
  Type.Object({
    ...DataQueryFields,
    metric: Type.Optional(Type.String({ minLength: 1, maxLength: 128, description: 'with `device` only' })),
  }),
]);
const DetectionDataQuery = Type.Intersect([
  TimeRangeQuery,
  Type.Object({
    ...DataQueryFields,
    label: Type.Optional(Type.String({ minLength: 1, maxLength: 128, description: 'with `device` only' })),
  }),
]);

const err = { $ref: 'Error#' };
const errors = { 400: err, 401: err, 403: err, 404: err, 409: err };
const security: Array<Record<string, string[]>> = [{ admin: [] }, { user: [] }];
const config = { auth: 'user' } as const;
const tags = ['data catalogue'];

/** Dependencies of the catalogue routes. */
export interface CatalogueRouteDeps {
  catalogue: CatalogueService;
  audit: AuditLog;
}

/**
 * Device sharing (`/v1/catalogue/shares`), the data catalogue (`/v1/catalogue/resources`),
 * access applications (`/v1/catalogue/applications`) and the delivery of granted data
 * (`/v1/catalogue/data/*`). Every write is audited with before/after; every refused data
 * access answers 403 CS_ERR_DATA_NOT_GRANTED and is audited as `catalogue.data.refused`.
 */
export async function catalogueRoutes(app: FastifyInstance, deps: CatalogueRouteDeps): Promise<void> {
  const { catalogue, audit } = deps;

  app.post<{ Body: Static<typeof ShareBody> }>(
    '/v1/catalogue/shares',
    {
      config,
      schema: {
        tags,
        summary: "Apply to share another agency's ledger device (reuse before build)",
        security,
        body: ShareBody,
        response: { 201: ShareSchema, ...errors },
      },
    },
    async (request, reply) => {
      const who = requireUser(request);
      const share = await catalogue.applyForShare(who, request.body);
      audit.recordRequest(request, {
        action: 'catalogue.share.apply',
        targetType: 'catalogue-share',
        targetId: share.id,
        after: share,
      });
      return reply.status(201).send(share);
    },
  );

  app.get<{ Querystring: { status?: 'pending' | 'approved' | 'refused' | 'revoked'; limit: number } }>(
    '/v1/catalogue/shares',
    {
      config,
      schema: {
        tags,
        summary:
          "Shares the caller's agency owns or applied for (every share for the platform), newest first",
        security,
        querystring: Type.Object({
          status: Type.Optional(Literals(['pending', 'approved', 'refused', 'revoked'] as const)),
          limit: Limit,
        }),
        response: { 200: Type.Array(ShareSchema), ...errors },
      },
    },
    async (request) => catalogue.shares(requireUser(request), request.query.status, request.query.limit),
  );

  app.get<{ Params: Static<typeof IdParams> }>(
    '/v1/catalogue/shares/:id',
    {
      config,
      schema: {
        tags,
        summary: 'One share',
        security,
        params: IdParams,
        response: { 200: ShareSchema, ...errors },
      },
    },
    async (request) => catalogue.share(requireUser(request), request.params.id),
  );

  app.post<{ Params: Static<typeof IdParams>; Body: Static<typeof ShareDecisionBody> }>(
    '/v1/catalogue/shares/:id/decision',
    {
      config,
      schema: {
        tags,
        summary:
          'The device owner approves or refuses a pending share, or revokes an approved one; 409 when decided',
        security,
        params: IdParams,
        body: ShareDecisionBody,
        response: { 200: ShareSchema, ...errors },
      },
    },
    async (request) => {
      const who = requireUser(request);
      const { before, after } = await catalogue.decideShare(
        who,
        request.params.id,
        request.body.decision,
        request.body.comment,
      );
      audit.recordRequest(request, {
        action: `catalogue.share.${request.body.decision}`,
        targetType: 'catalogue-share',
        targetId: after.id,
        before,
        after,
      });
      return after;
    },
  );

  app.get<{ Querystring: Static<typeof ResourceQuery> }>(
    '/v1/catalogue/resources',
    {
      config,
      schema: {
        tags,
        summary: 'The sensing data catalogue: resources with grade, category and offered forms',
        security,
        querystring: ResourceQuery,
        response: { 200: Type.Array(ResourceSchema), ...errors },
      },
    },
    async (request) => {
      requireUser(request);
      return catalogue.resources(request.query);
    },
  );

  app.get<{ Params: { id: string } }>(
    '/v1/catalogue/resources/:id',
    {
      config,
      schema: {
        tags,
        summary: 'One resource',
        security,
        params: Type.Object({ id: ResourceId }),
        response: { 200: ResourceSchema, ...errors },
      },
    },
    async (request) => {
      requireUser(request);
      return catalogue.resource(request.params.id);
    },
  );

  app.post<{ Body: Static<typeof ResourceBody> }>(
    '/v1/catalogue/resources',
    {
      config,
      schema: {
        tags,
        summary: 'Add a data resource (platform-admin); its forms must suit its grade',
        security,
        body: ResourceBody,
        response: { 201: ResourceSchema, ...errors },
      },
    },
    async (request, reply) => {
      requireRole(request, 'platform-admin');
      const resource = await catalogue.createResource({
        ...request.body,
        grade: request.body.grade as 1 | 2 | 3 | 4,
      });
      audit.recordRequest(request, {
        action: 'catalogue.resource.create',
        targetType: 'catalogue-resource',
        targetId: resource.id,
        after: resource,
      });
      return reply.status(201).send(resource);
    },
  );

  app.patch<{ Params: { id: string }; Body: Static<typeof ResourcePatch> }>(
    '/v1/catalogue/resources/:id',
    {
      config,
      schema: {
        tags,
        summary: 'Change a data resource (platform-admin); a withdrawn form stops being delivered',
        security,
        params: Type.Object({ id: ResourceId }),
        body: ResourcePatch,
        response: { 200: ResourceSchema, ...errors },
      },
    },
    async (request) => {
      requireRole(request, 'platform-admin');
      const { grade, ...rest } = request.body;
      const { before, after } = await catalogue.updateResource(request.params.id, {
        ...rest,
        ...(grade === undefined ? {} : { grade: grade as 1 | 2 | 3 | 4 }),
      });
      audit.recordRequest(request, {
        action: 'catalogue.resource.update',
        targetType: 'catalogue-resource',
        targetId: after.id,
        before,
        after,
      });
      return after;
    },
  );

  app.post<{ Body: Static<typeof ApplicationBody> }>(
    '/v1/catalogue/applications',
    {
      config,
      schema: {
        tags,
        summary: 'Apply for access to a resource in one offered form',
        security,
        body: ApplicationBody,
        response: { 201: ApplicationSchema, ...errors },
      },
    },
    async (request, reply) => {
      const who = requireUser(request);
      const application = await catalogue.applyForAccess(who, request.body);
      audit.recordRequest(request, {
        action: 'catalogue.application.apply',
        targetType: 'catalogue-application',
        targetId: application.id,
        after: application,
      });
      return reply.status(201).send(application);
    },
  );

  app.get<{ Querystring: { status?: 'pending' | 'granted' | 'refused' | 'revoked'; limit: number } }>(
    '/v1/catalogue/applications',
    {
      config,
      schema: {
        tags,
        summary:
          "Applications the caller's agency filed or decides (every one for the platform), newest first",
        security,
        querystring: Type.Object({
          status: Type.Optional(Literals(['pending', 'granted', 'refused', 'revoked'] as const)),
          limit: Limit,
        }),
        response: { 200: Type.Array(ApplicationSchema), ...errors },
      },
    },
    async (request) =>
      catalogue.applications(requireUser(request), request.query.status, request.query.limit),
  );

  app.post<{ Params: Static<typeof IdParams>; Body: Static<typeof ApplicationDecisionBody> }>(
    '/v1/catalogue/applications/:id/decision',
    {
      config,
      schema: {
        tags,
        summary: 'The resource owner (or the platform) grants or refuses an application, or revokes a grant',
        security,
        params: IdParams,
        body: ApplicationDecisionBody,
        response: { 200: ApplicationSchema, ...errors },
      },
    },
    async (request) => {
      const who = requireUser(request);
      const { before, after } = await catalogue.decideApplication(
        who,
        request.params.id,
        request.body.decision,
        request.body.comment,
      );
      audit.recordRequest(request, {
        action: `catalogue.application.${request.body.decision}`,
        targetType: 'catalogue-application',
        targetId: after.id,
        before,
        after,
      });
      return after;
    },
  );

  /** Resolves access, audits a refusal or a delivery, and delivers. */
  const deliver = async <T extends { form: string }>(
    request: FastifyRequest,
    q: DataRequest,
    dataType: 'reading' | 'detection',
    read: (who: PersonPrincipal) => Promise<T>,
  ): Promise<T> => {
    const target = q.resource ?? q.device ?? null;
    const who = requireUser(request);
    try {
      const answer = await read(who);
      audit.recordRequest(request, {
        action: `catalogue.data.${dataType}s`,
        targetType: q.resource ? 'catalogue-resource' : 'ledger-device',
        targetId: target ?? undefined,
        after: { form: answer.form, from: q.from.toISOString(), to: q.to.toISOString() },
      });
      return answer;
    } catch (error) {
      if (hasCode(error, 'CS_ERR_DATA_NOT_GRANTED'))
        audit.recordRequest(request, {
          action: 'catalogue.data.refused',
          targetType: q.resource ? 'catalogue-resource' : 'ledger-device',
          targetId: target ?? undefined,
          after: {
            dataType,
            form: q.form ?? null,
            message: (error as CitysenseError).message,
          },
          outcome: 'refused',
          reason: 'CS_ERR_DATA_NOT_GRANTED',
        });
      throw error;
    }
  };

  app.get<{ Querystring: Static<typeof ReadingDataQuery> }>(
    '/v1/catalogue/data/readings',
    {
      config,
      schema: {
        tags,
        summary:
          'Readings of a granted resource (in the granted form) or of a device one owns or shares (raw)',
        security,
        querystring: ReadingDataQuery,
        response: { ...errors },
      },
    },
    async (request) => {
      const q = request.query;
      const data: DataRequest = { ...q, ...resolveRange(q), item: q.metric };
      return deliver(request, data, 'reading', async (who) =>
        catalogue.readings(await catalogue.access(who, data, 'reading'), data),
      );
    },
  );

  app.get<{ Querystring: Static<typeof DetectionDataQuery> }>(
    '/v1/catalogue/data/detections',
    {
      config,
      schema: {
        tags,
        summary:
          'Detections of a granted resource (in the granted form: boxes only when raw) or of a device one owns or shares',
        security,
        querystring: DetectionDataQuery,
        response: { ...errors },
      },
    },
    async (request) => {
      const q = request.query;
      const data: DataRequest = { ...q, ...resolveRange(q), item: q.label };
      return deliver(request, data, 'detection', async (who) =>
        catalogue.detections(await catalogue.access(who, data, 'detection'), data),
      );
    },
  );
}
