import { type Static, type TSchema, Type } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import { can, requireRole } from '../auth/access.ts';
import type { Role } from '../auth/roles.ts';
import type { AuditLog } from './audit-log.ts';

const Nullable = <T extends TSchema>(schema: T) => Type.Union([schema, Type.Null()]);
const Outcome = Type.Union([Type.Literal('success'), Type.Literal('failure'), Type.Literal('refused')]);

const AuditQuerySchema = Type.Object(
  {
    since: Type.Optional(Type.String({ format: 'date-time', description: 'entries at or after this time' })),
    until: Type.Optional(Type.String({ format: 'date-time', description: 'entries before this time' })),
    actor: Type.Optional(Type.String({ maxLength: 128, description: 'actor id or username' })),
    action: Type.Optional(
      Type.String({ maxLength: 128, description: 'exact action, or a prefix ending in * (user.*)' }),
    ),
    target: Type.Optional(Type.String({ maxLength: 256, description: 'target id' })),
    targetType: Type.Optional(Type.String({ maxLength: 64 })),
    outcome: Type.Optional(Outcome),
    after: Type.Optional(Type.Integer({ minimum: 0, description: '`next` of the previous page' })),
    limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 1000, default: 100 })),
  },
  { additionalProperties: false },
);

const AuditEntrySchema = Type.Object({
  id: Type.Integer(),
  at: Type.String({ format: 'date-time' }),
  actor: Type.Object({
    kind: Type.Union([
      Type.Literal('admin'),
      Type.Literal('user'),
      Type.Literal('node'),
      Type.Literal('anonymous'),
    ]),
    id: Nullable(Type.String()),
    username: Nullable(Type.String()),
    agencyId: Nullable(Type.String()),
  }),
  action: Type.String(),
  targetType: Nullable(Type.String()),
  targetId: Nullable(Type.String()),
  before: Type.Unknown(),
  after: Type.Unknown(),
  requestId: Nullable(Type.String()),
  ip: Nullable(Type.String()),
  outcome: Outcome,
  reason: Nullable(Type.String()),
});

/** Dependencies of the audit routes. */
export interface AuditRouteDeps {
  audit: AuditLog;
}

/**
 * Who reads the audit trail: platform admins all of it; agency operators and field
 * engineers the entries of their own agency's people (what they and their colleagues
 * did, e.g. an alarm acknowledgement), never other agencies' or the platform's.
 */
const AUDIT_READERS: readonly Role[] = ['platform-admin', 'agency-operator', 'field-engineer'];

/** `GET /v1/audit`: the audit trail, filtered and paged (platform-admin; others: their agency's). */
export async function auditRoutes(app: FastifyInstance, deps: AuditRouteDeps): Promise<void> {
  app.get<{ Querystring: Static<typeof AuditQuerySchema> }>(
    '/v1/audit',
    {
      config: { auth: 'user' },
      schema: {
        tags: ['audit'],
        summary:
          "Audit trail: writes, logins and refused accesses, oldest first; page with ?after=<next> (agency operators and field engineers: their agency's actors only)",
        security: [{ admin: [] }, { user: [] }],
        querystring: AuditQuerySchema,
        response: {
          200: Type.Object({ entries: Type.Array(AuditEntrySchema), next: Nullable(Type.Integer()) }),
          400: { $ref: 'Error#' },
          401: { $ref: 'Error#' },
          403: { $ref: 'Error#' },
        },
      },
    },
    async (request) => {
      const who = requireRole(request, AUDIT_READERS);
      const q = request.query;
      const agencyId = who.kind === 'user' && !can(who, 'platform-admin') ? who.agencyId : undefined;
      return deps.audit.query({
        ...q,
        agencyId,
        since: q.since ? new Date(q.since) : undefined,
        until: q.until ? new Date(q.until) : undefined,
      });
    },
  );
}
