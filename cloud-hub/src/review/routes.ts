import { CitysenseError } from '@citysense/protocol';
import { type Static, type TSchema, Type } from '@sinclair/typebox';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { type AuditLog, actorOf as auditActorOf } from '../audit/audit-log.ts';
import { can, type PersonPrincipal, requireRole } from '../auth/access.ts';
import { REVIEW_CATEGORIES, type ReviewCategory, type Role } from '../auth/roles.ts';
import { LEDGER_WRITERS, actorOf as ledgerActorOf } from '../ledger/routes.ts';
import type { ProjectView, ReviewCaller, ReviewService } from './review-service.ts';
import { PROJECT_STATES, type ReviewProject } from './review-store.ts';

const Nullable = <T extends TSchema>(t: T) => Type.Union([t, Type.Null()]);
const Literals = <T extends string>(values: readonly T[]) => Type.Union(values.map((v) => Type.Literal(v)));
const Category = Literals(REVIEW_CATEGORIES);
const ProjectStateSchema = Literals(PROJECT_STATES);
const Code = Type.String({ pattern: '^[0-9]{20}$', description: 'ledger unified code' });
const IdParams = Type.Object({ id: Type.String({ minLength: 1, maxLength: 64 }) });
const Actor = Type.Object({
  kind: Type.String(),
  id: Nullable(Type.String()),
  username: Nullable(Type.String()),
  agencyId: Nullable(Type.String()),
});

const ProjectSchema = Type.Object({
  id: Type.String(),
  name: Type.String(),
  agencyId: Type.String(),
  purpose: Type.String(),
  requestedCategories: Type.Array(Type.String()),
  state: Type.String({ description: PROJECT_STATES.join(' → ') }),
  createdBy: Type.String(),
  createdAt: Type.String(),
  updatedAt: Type.String(),
  decidedAt: Nullable(Type.String()),
});
const ProjectViewSchema = Type.Object({
  ...ProjectSchema.properties,
  devices: Type.Array(
    Type.Object({
      code: Type.String(),
      purpose: Nullable(Type.String()),
      kind: Nullable(Type.String()),
      state: Nullable(Type.String()),
      ownerAgency: Nullable(Type.String()),
      poleId: Nullable(Type.String()),
      longitude: Nullable(Type.Number()),
      latitude: Nullable(Type.Number()),
      gb35114Level: Nullable(Type.String()),
      category: Nullable(Type.String()),
    }),
  ),
  neededCategories: Type.Array(Type.String(), {
    description: 'categories the device kinds and the applicant ask for',
  }),
  categories: Type.Array(
    Type.Object({
      category: Type.String(),
      source: Type.String({ description: 'devices, applicant or coordinator' }),
      state: Type.String({ description: 'pending, approved or rejected' }),
      routedAt: Type.String(),
      decidedBy: Nullable(Type.Object({ id: Nullable(Type.String()), username: Nullable(Type.String()) })),
      decidedAt: Nullable(Type.String()),
      comment: Nullable(Type.String()),
    }),
  ),
  flags: Type.Array(
    Type.Object({
      device: Type.String(),
      code: Type.String({ description: 'GB35114_LEVEL_LOW: a camera below GB 35114 level B' }),
      level: Type.String(),
      message: Type.String(),
    }),
  ),
  history: Type.Array(
    Type.Object({
      id: Type.Integer(),
      at: Type.String(),
      actor: Actor,
      action: Type.String(),
      category: Nullable(Type.String()),
      decision: Nullable(Type.String()),
      comment: Nullable(Type.String()),
      detail: Type.Unknown(),
    }),
  ),
});

const CreateBody = Type.Object(
  {
    name: Type.String({ minLength: 1, maxLength: 200 }),
    purpose: Type.String({ minLength: 1, maxLength: 4000 }),
    agencyId: Type.Optional(
      Type.String({ minLength: 1, maxLength: 64, description: "building agency; default the caller's" }),
    ),
    categories: Type.Optional(
      Type.Array(Category, { maxItems: 3, description: 'categories asked for beyond the device kinds' }),
    ),
    devices: Type.Array(
      Type.Object(
        { code: Code, purpose: Type.Optional(Type.String({ minLength: 1, maxLength: 1000 })) },
        { additionalProperties: false },
      ),
      { minItems: 1, maxItems: 500, description: 'proposed ledger devices of the agency' },
    ),
  },
  { additionalProperties: false },
);
const RouteBody = Type.Object(
  {
    add: Type.Optional(
      Type.Array(Category, { maxItems: 3, description: 'categories beyond the derived ones' }),
    ),
    comment: Type.Optional(Type.String({ maxLength: 4000 })),
  },
  { additionalProperties: false },
);
const DecisionBody = Type.Object(
  {
    category: Category,
    decision: Type.Union([Type.Literal('approve'), Type.Literal('reject')]),
    comment: Type.Optional(Type.String({ minLength: 1, maxLength: 4000, description: 'needed to reject' })),
  },
  { additionalProperties: false },
);
const ListQuery = Type.Object({
  state: Type.Optional(ProjectStateSchema),
  category: Type.Optional(Category),
  limit: Type.Integer({ minimum: 1, maximum: 1000, default: 100 }),
});
const InboxQuery = Type.Object({ limit: Type.Integer({ minimum: 1, maximum: 1000, default: 100 }) });

const err = { $ref: 'Error#' };
const errors = { 400: err, 401: err, 403: err, 404: err, 409: err };
const config = { auth: 'user' } as const;
const security: Array<Record<string, string[]>> = [{ admin: [] }, { user: [] }];
const tags = ['joint review'];
const VIEWERS: readonly Role[] = ['platform-admin', 'agency-operator', 'reviewer'];

/** Dependencies of the joint-review routes. */
export interface ReviewRouteDeps {
  review: ReviewService;
  audit: AuditLog;
}

/** Review categories a person reviews; null for the admin token (all). */
function reviewedCategories(who: PersonPrincipal): ReviewCategory[] | null {
  if (who.kind === 'admin') return null;
  return who.roles.flatMap((g) => (g.role === 'reviewer' && g.category ? [g.category] : []));
}

/** Whether `who` may see `project`: platform admin, its agency's operators, reviewers of a routed category. */
function canView(who: PersonPrincipal, project: ReviewProject, routed: readonly ReviewCategory[]): boolean {
  return (
    can(who, ['platform-admin', 'agency-operator'], { agencyId: project.agencyId }) ||
    routed.some((category) => can(who, 'reviewer', { category }))
  );
}

function caller(request: FastifyRequest): ReviewCaller {
  return { person: auditActorOf(request.principal), ledger: ledgerActorOf(request) };
}

/** The audited summary of a project: state and routed decisions. */
const summary = (v: ProjectView) => ({
  state: v.state,
  devices: v.devices.map((d) => ({ code: d.code, state: d.state })),
  categories: v.categories.map((c) => ({ category: c.category, state: c.state })),
});

/** Joint review (联审): projects, routing, reviewer decisions, inbox. */
export async function reviewRoutes(app: FastifyInstance, deps: ReviewRouteDeps): Promise<void> {
  const { review, audit } = deps;

  app.post<{ Body: Static<typeof CreateBody> }>(
    '/v1/review/projects',
    {
      config,
      schema: {
        tags,
        summary: 'Create a construction project listing proposed ledger devices (draft)',
        security,
        body: CreateBody,
        response: { 201: ProjectViewSchema, ...errors },
      },
    },
    async (request, reply) => {
      const who = requireRole(request, LEDGER_WRITERS);
      const agencyId = request.body.agencyId ?? (who.kind === 'user' ? who.agencyId : undefined);
      if (agencyId === undefined)
        throw new CitysenseError('CS_ERR_REVIEW_AGENCY', 'name the building agency: {"agencyId": "…"}', 400);
      requireRole(request, LEDGER_WRITERS, { agencyId });
      const view = await review.create({ ...request.body, agencyId }, caller(request));
      audit.recordRequest(request, {
        action: 'review.project.create',
        targetType: 'review-project',
        targetId: view.id,
        before: null,
        after: { ...summary(view), name: view.name, agencyId },
      });
      reply.code(201);
      return view;
    },
  );

  app.get<{ Querystring: Static<typeof ListQuery> }>(
    '/v1/review/projects',
    {
      config,
      schema: {
        tags,
        summary:
          'Projects the caller may see, newest first; ?category= matches routed or requested categories',
        security,
        querystring: ListQuery,
        response: { 200: Type.Array(ProjectSchema), ...errors },
      },
    },
    async (request) => {
      const who = requireRole(request, VIEWERS);
      const q = request.query;
      return review.list({
        state: q.state,
        category: q.category,
        all: can(who, 'platform-admin'),
        visibleAgencies: who.kind === 'user' && can(who, 'agency-operator') ? [who.agencyId] : [],
        visibleCategories: reviewedCategories(who) ?? [],
        limit: q.limit,
      });
    },
  );

  app.get<{ Params: Static<typeof IdParams> }>(
    '/v1/review/projects/:id',
    {
      config,
      schema: {
        tags,
        summary: 'One project: devices, needed and routed categories, decisions, flags, full history',
        security,
        params: IdParams,
        response: { 200: ProjectViewSchema, ...errors },
      },
    },
    async (request) => {
      const who = requireRole(request, VIEWERS);
      const view = await review.view(request.params.id);
      if (
        !canView(
          who,
          view,
          view.categories.map((c) => c.category as ReviewCategory),
        )
      )
        throw new CitysenseError(
          'CS_ERR_AUTH_FORBIDDEN',
          `project ${view.id} is open to agency ${view.agencyId}, the platform admin and reviewers of its routed categories`,
          403,
        );
      return view;
    },
  );

  app.post<{ Params: Static<typeof IdParams> }>(
    '/v1/review/projects/:id/submit',
    {
      config,
      schema: {
        tags,
        summary: 'Submit a draft for review: its devices go proposed → in-review in the ledger',
        security,
        params: IdParams,
        response: { 200: ProjectViewSchema, ...errors },
      },
    },
    async (request) => {
      requireRole(request, LEDGER_WRITERS);
      const before = await review.view(request.params.id);
      requireRole(request, LEDGER_WRITERS, { agencyId: before.agencyId });
      const after = await review.submit(before.id, caller(request));
      audit.recordRequest(request, {
        action: 'review.project.submit',
        targetType: 'review-project',
        targetId: after.id,
        before: summary(before),
        after: summary(after),
      });
      return after;
    },
  );

  app.post<{ Params: Static<typeof IdParams>; Body: Static<typeof RouteBody> }>(
    '/v1/review/projects/:id/route',
    {
      config,
      schema: {
        tags,
        summary:
          'Coordinator: route a submitted project to the categories its devices need plus `add` ' +
          '(video → police, urban-operations → city management, hazard-monitoring → emergency management)',
        security,
        params: IdParams,
        body: RouteBody,
        response: { 200: ProjectViewSchema, ...errors },
      },
    },
    async (request) => {
      requireRole(request, 'platform-admin');
      const before = await review.view(request.params.id);
      const after = await review.route(
        before.id,
        request.body.add ?? [],
        request.body.comment,
        caller(request),
      );
      audit.recordRequest(request, {
        action: 'review.project.route',
        targetType: 'review-project',
        targetId: after.id,
        before: summary(before),
        after: summary(after),
      });
      return after;
    },
  );

  app.post<{ Params: Static<typeof IdParams>; Body: Static<typeof DecisionBody> }>(
    '/v1/review/projects/:id/decisions',
    {
      config,
      schema: {
        tags,
        summary: 'Reviewer: approve or reject the routed category you review, with a comment',
        description:
          'Needs a reviewer grant of that category. The project is approved when every routed category is, ' +
          'rejected when one is; of concurrent decisions on a category one is recorded, the others get 409 CS_ERR_REVIEW_DECIDED.',
        security,
        params: IdParams,
        body: DecisionBody,
        response: { 200: ProjectViewSchema, ...errors },
      },
    },
    async (request) => {
      const { category, decision, comment } = request.body;
      requireRole(request, 'reviewer', { category });
      if (decision === 'reject' && !comment)
        throw new CitysenseError('CS_ERR_REVIEW_COMMENT', 'say why in "comment" when rejecting', 400);
      const before = await review.view(request.params.id);
      const after = await review.decide(
        before.id,
        category,
        decision === 'approve' ? 'approved' : 'rejected',
        comment,
        caller(request),
      );
      audit.recordRequest(request, {
        action: 'review.project.decide',
        targetType: 'review-project',
        targetId: after.id,
        before: summary(before),
        after: { ...summary(after), category, decision, comment: comment ?? null },
      });
      return after;
    },
  );

  app.get<{ Querystring: Static<typeof InboxQuery> }>(
    '/v1/review/inbox',
    {
      config,
      schema: {
        tags,
        summary: "Reviewer inbox: routed categories waiting for the caller's decision, oldest first",
        security,
        querystring: InboxQuery,
        response: {
          200: Type.Array(
            Type.Object({ project: ProjectSchema, category: Type.String(), routedAt: Type.String() }),
          ),
          ...errors,
        },
      },
    },
    async (request) => {
      const who = requireRole(request, 'reviewer');
      return review.inbox(reviewedCategories(who), request.query.limit);
    },
  );
}
