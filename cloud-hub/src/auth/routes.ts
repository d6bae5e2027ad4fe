import { CitysenseError } from '@citysense/protocol';
import { type Static, type TSchema, Type } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import type { AuditLog } from '../audit/audit-log.ts';
import { parseDuration } from '../registry/token-store.ts';
import { can, requireRole, requireUser } from './access.ts';
import type { ApiTokenStore } from './api-tokens.ts';
import type { AuthService } from './auth-service.ts';
import type { UserDirectory } from './directory.ts';
import { AGENCY_KINDS, REVIEW_CATEGORIES, ROLES, type RoleGrant } from './roles.ts';

const Nullable = <T extends TSchema>(schema: T) => Type.Union([schema, Type.Null()]);
const DateTime = Type.String({ format: 'date-time' });
const Literals = <T extends string>(values: readonly T[]) => Type.Union(values.map((v) => Type.Literal(v)));

const Username = Type.String({
  pattern: '^[a-z0-9][a-z0-9._-]{1,63}$',
  description: 'lower-case login name',
});
const Password = Type.String({ minLength: 10, maxLength: 256, description: 'at least 10 characters' });
const AgencyId = Type.String({
  pattern: '^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$',
  description: 'agency id, e.g. haidian-police',
});
const RoleSchema = Literals(ROLES);
const CategorySchema = Literals(REVIEW_CATEGORIES);
const RoleGrantSchema = Type.Object(
  { role: RoleSchema, category: Type.Optional(CategorySchema) },
  { additionalProperties: false, description: 'a role; reviewers need a review category' },
);

const AgencySchema = Type.Object({
  id: Type.String(),
  name: Type.String(),
  kind: Literals(AGENCY_KINDS),
  parentId: Nullable(Type.String()),
  createdAt: DateTime,
  updatedAt: DateTime,
});

const UserSchema = Type.Object({
  id: Type.String(),
  username: Type.String(),
  displayName: Type.String(),
  agencyId: Type.String(),
  disabled: Type.Boolean(),
  roles: Type.Array(RoleGrantSchema),
  createdAt: DateTime,
  updatedAt: DateTime,
});

const ApiTokenSchema = Type.Object({
  id: Type.String(),
  name: Type.String(),
  userId: Type.String(),
  createdAt: DateTime,
  expiresAt: DateTime,
  lastUsedAt: Nullable(DateTime),
});

const LoginBody = Type.Object(
  {
    username: Type.String({ minLength: 1, maxLength: 64 }),
    password: Type.String({ minLength: 1, maxLength: 256 }),
  },
  { additionalProperties: false },
);
const AgencyBody = Type.Object(
  {
    name: Type.String({ minLength: 1, maxLength: 200 }),
    kind: Literals(AGENCY_KINDS),
    parentId: Type.Optional(Nullable(AgencyId)),
  },
  { additionalProperties: false },
);
const AgencyParam = Type.Object({ agency: AgencyId });
const UserBody = Type.Object(
  {
    username: Username,
    displayName: Type.String({ minLength: 1, maxLength: 200 }),
    agencyId: AgencyId,
    password: Password,
    roles: Type.Optional(Type.Array(RoleGrantSchema, { maxItems: 16 })),
  },
  { additionalProperties: false },
);
const UserPatch = Type.Object(
  {
    displayName: Type.Optional(Type.String({ minLength: 1, maxLength: 200 })),
    agencyId: Type.Optional(AgencyId),
    disabled: Type.Optional(Type.Boolean()),
  },
  { additionalProperties: false, minProperties: 1 },
);
const PasswordBody = Type.Object(
  {
    password: Password,
    currentPassword: Type.Optional(
      Type.String({ maxLength: 256, description: 'needed when users change their own password' }),
    ),
  },
  { additionalProperties: false },
);
const TokenBody = Type.Object(
  {
    name: Type.String({
      pattern: '^[A-Za-z0-9][A-Za-z0-9 _.:-]{0,63}$',
      description: 'what the token is for',
    }),
    expires: Type.Optional(
      Type.String({ default: '90d', description: 'lifetime, e.g. 24h, 90d (at most 365d)' }),
    ),
  },
  { additionalProperties: false },
);
const IdParam = Type.Object({ id: Type.String({ minLength: 1, maxLength: 64 }) });
const RoleParams = Type.Object({ id: Type.String({ minLength: 1, maxLength: 64 }), role: RoleSchema });

const err = { $ref: 'Error#' };
const errors = { 400: err, 401: err, 403: err, 404: err, 409: err };
const PEOPLE: Array<Record<string, string[]>> = [{ admin: [] }, { user: [] }];
const config = { auth: 'user' } as const;

/** Dependencies of the auth, agency and user routes. */
export interface AuthRouteDeps {
  auth: AuthService;
  directory: UserDirectory;
  tokens: ApiTokenStore;
  audit: AuditLog;
}

/** Login, the caller's profile and API tokens, agencies, users and role grants. */
export async function authRoutes(app: FastifyInstance, deps: AuthRouteDeps): Promise<void> {
  const { auth, directory, tokens, audit } = deps;

  app.post<{ Body: Static<typeof LoginBody> }>(
    '/v1/auth/login',
    {
      schema: {
        tags: ['auth'],
        summary: 'Log in with username and password; answers a session token (JWT, 12 h)',
        description:
          'Five failed attempts lock the username for a minute, doubling on each further lock (429).',
        security: [],
        body: LoginBody,
        response: {
          200: Type.Object({
            token: Type.String(),
            tokenType: Type.Literal('Bearer'),
            expiresAt: DateTime,
            user: UserSchema,
          }),
          400: err,
          401: err,
          429: err,
        },
      },
    },
    async (request, reply) => {
      const { username, password } = request.body;
      const anonymous = { kind: 'anonymous' as const, id: null, username, agencyId: null };
      try {
        const result = await auth.login(username, password);
        const u = result.user;
        audit.recordRequest(request, {
          actor: { kind: 'user', id: u.id, username: u.username, agencyId: u.agencyId },
          action: 'auth.login',
          targetType: 'user',
          targetId: u.id,
        });
        return { token: result.token, tokenType: 'Bearer' as const, expiresAt: result.expiresAt, user: u };
      } catch (e) {
        if (!(e instanceof CitysenseError)) throw e;
        const why = (e.details as { reason?: string } | undefined)?.reason;
        audit.recordRequest(request, {
          actor: anonymous,
          action: 'auth.login',
          targetType: 'user',
          targetId: username,
          outcome: 'failure',
          reason: why ? `${e.code}:${why}` : e.code,
        });
        if (e.code === 'CS_ERR_AUTH_LOCKED') {
          void reply.header(
            'retry-after',
            String((e.details as { retryAfterSeconds: number }).retryAfterSeconds),
          );
          throw e;
        }
        // The reason (unknown user, wrong password, disabled) stays in the audit log only.
        throw e.code === 'CS_ERR_AUTH_LOGIN_FAILED' ? new CitysenseError(e.code, e.message, e.statusCode) : e;
      }
    },
  );

  app.get(
    '/v1/auth/me',
    {
      config,
      schema: {
        tags: ['auth'],
        summary: 'Who the caller is: the user with agency and roles (null for the admin token)',
        security: PEOPLE,
        response: {
          200: Type.Object({ kind: Literals(['admin', 'user'] as const), user: Nullable(UserSchema) }),
          401: err,
        },
      },
    },
    async (request) => {
      const who = requireUser(request);
      return who.kind === 'admin'
        ? { kind: 'admin' as const, user: null }
        : { kind: 'user' as const, user: await directory.getUser(who.userId) };
    },
  );

  const callerUserId = (request: Parameters<typeof requireUser>[0]): string => {
    const who = requireUser(request);
    if (who.kind !== 'user')
      throw new CitysenseError(
        'CS_ERR_AUTH_USER_ONLY',
        'the admin token belongs to no user: log in as a user (POST /v1/auth/login) to manage API tokens',
        400,
      );
    return who.userId;
  };

  app.post<{ Body: Static<typeof TokenBody> }>(
    '/v1/auth/tokens',
    {
      config,
      schema: {
        tags: ['auth'],
        summary: 'Create a personal API token (csu_…) acting with your roles; the secret is shown once',
        security: PEOPLE,
        body: TokenBody,
        response: { 201: Type.Intersect([ApiTokenSchema, Type.Object({ token: Type.String() })]), ...errors },
      },
    },
    async (request, reply) => {
      const userId = callerUserId(request);
      const created = await tokens.create(
        userId,
        request.body.name,
        parseDuration(request.body.expires ?? '90d'),
      );
      const { token: _secret, ...shown } = created;
      audit.recordRequest(request, {
        action: 'auth.token-create',
        targetType: 'api-token',
        targetId: created.id,
        after: shown,
      });
      return reply.status(201).send(created);
    },
  );

  app.get(
    '/v1/auth/tokens',
    {
      config,
      schema: {
        tags: ['auth'],
        summary: 'Your API tokens (secrets are never shown again)',
        security: PEOPLE,
        response: { 200: Type.Array(ApiTokenSchema), ...errors },
      },
    },
    async (request) => tokens.list(callerUserId(request)),
  );

  app.delete<{ Params: Static<typeof IdParam> }>(
    '/v1/auth/tokens/:id',
    {
      config,
      schema: {
        tags: ['auth'],
        summary: 'Revoke one of your API tokens (the admin token revokes anyone’s)',
        security: PEOPLE,
        params: IdParam,
        response: { 204: Type.Null(), ...errors },
      },
    },
    async (request, reply) => {
      const who = requireUser(request);
      const revoked = await tokens.revoke(request.params.id, who.kind === 'user' ? who.userId : null);
      audit.recordRequest(request, {
        action: 'auth.token-revoke',
        targetType: 'api-token',
        targetId: revoked.id,
        before: revoked,
      });
      return reply.status(204).send();
    },
  );

  // Agencies: the algorithm centre registers them (POST/GET /v1/agencies, id and name);
  // the people directory sets their kind and parent, and deletes them.

  app.put<{ Params: Static<typeof AgencyParam>; Body: Static<typeof AgencyBody> }>(
    '/v1/agencies/:agency',
    {
      config,
      schema: {
        tags: ['agencies'],
        summary: 'Create an agency or set its name, kind and parent (platform-admin); 201 when created',
        security: PEOPLE,
        params: AgencyParam,
        body: AgencyBody,
        response: { 200: AgencySchema, 201: AgencySchema, ...errors },
      },
    },
    async (request, reply) => {
      requireRole(request, 'platform-admin');
      const { before, after } = await directory.putAgency(request.params.agency, request.body);
      audit.recordRequest(request, {
        action: before ? 'agency.update' : 'agency.create',
        targetType: 'agency',
        targetId: after.id,
        before,
        after,
      });
      return reply.status(before ? 200 : 201).send(after);
    },
  );

  app.delete<{ Params: Static<typeof AgencyParam> }>(
    '/v1/agencies/:agency',
    {
      config,
      schema: {
        tags: ['agencies'],
        summary: 'Delete an agency nothing refers to any more (platform-admin)',
        security: PEOPLE,
        params: AgencyParam,
        response: { 204: Type.Null(), ...errors },
      },
    },
    async (request, reply) => {
      requireRole(request, 'platform-admin');
      const before = await directory.deleteAgency(request.params.agency);
      audit.recordRequest(request, {
        action: 'agency.delete',
        targetType: 'agency',
        targetId: before.id,
        before,
      });
      return reply.status(204).send();
    },
  );

  // Users: platform admins manage everyone; agency operators see the users of their agency.

  app.get<{ Querystring: { agency?: string; username?: string } }>(
    '/v1/users',
    {
      config,
      schema: {
        tags: ['users'],
        summary: 'List users (platform-admin: all; agency-operator: their own agency)',
        security: PEOPLE,
        querystring: Type.Object(
          { agency: Type.Optional(AgencyId), username: Type.Optional(Username) },
          { additionalProperties: false },
        ),
        response: { 200: Type.Array(UserSchema), ...errors },
      },
    },
    async (request) => {
      const who = requireUser(request);
      const agencyId =
        request.query.agency ??
        (who.kind === 'user' && !can(who, 'platform-admin') ? who.agencyId : undefined);
      requireRole(request, ['platform-admin', 'agency-operator'], { agencyId });
      return directory.listUsers({ agencyId, username: request.query.username });
    },
  );

  app.get<{ Params: Static<typeof IdParam> }>(
    '/v1/users/:id',
    {
      config,
      schema: {
        tags: ['users'],
        summary: 'One user (yourself, or as platform-admin / operator of their agency)',
        security: PEOPLE,
        params: IdParam,
        response: { 200: UserSchema, ...errors },
      },
    },
    async (request) => {
      const who = requireUser(request);
      if (who.kind === 'user' && who.userId === request.params.id) return directory.getUser(who.userId);
      requireRole(request, ['platform-admin', 'agency-operator']);
      const user = await directory.getUser(request.params.id);
      requireRole(request, ['platform-admin', 'agency-operator'], { agencyId: user.agencyId });
      return user;
    },
  );

  app.post<{ Body: Static<typeof UserBody> }>(
    '/v1/users',
    {
      config,
      schema: {
        tags: ['users'],
        summary: 'Create a user with a password and roles (platform-admin)',
        security: PEOPLE,
        body: UserBody,
        response: { 201: UserSchema, ...errors },
      },
    },
    async (request, reply) => {
      requireRole(request, 'platform-admin', { agencyId: request.body.agencyId });
      const user = await directory.createUser({
        ...request.body,
        roles: request.body.roles as RoleGrant[] | undefined,
      });
      audit.recordRequest(request, {
        action: 'user.create',
        targetType: 'user',
        targetId: user.id,
        after: user,
      });
      return reply.status(201).send(user);
    },
  );

  app.patch<{ Params: Static<typeof IdParam>; Body: Static<typeof UserPatch> }>(
    '/v1/users/:id',
    {
      config,
      schema: {
        tags: ['users'],
        summary: 'Change display name, agency, or disable/enable a user (platform-admin)',
        description: 'Disabling ends the user’s sessions and API tokens at once.',
        security: PEOPLE,
        params: IdParam,
        body: UserPatch,
        response: { 200: UserSchema, ...errors },
      },
    },
    async (request) => {
      requireRole(request, 'platform-admin');
      const { before, after } = await directory.updateUser(request.params.id, request.body);
      audit.recordRequest(request, {
        action: 'user.update',
        targetType: 'user',
        targetId: after.id,
        before,
        after,
      });
      return after;
    },
  );

  app.delete<{ Params: Static<typeof IdParam> }>(
    '/v1/users/:id',
    {
      config,
      schema: {
        tags: ['users'],
        summary: 'Delete a user and their API tokens (platform-admin); the audit log keeps their name',
        security: PEOPLE,
        params: IdParam,
        response: { 204: Type.Null(), ...errors },
      },
    },
    async (request, reply) => {
      requireRole(request, 'platform-admin');
      const before = await directory.deleteUser(request.params.id);
      audit.recordRequest(request, {
        action: 'user.delete',
        targetType: 'user',
        targetId: before.id,
        before,
      });
      return reply.status(204).send();
    },
  );

  app.put<{ Params: Static<typeof IdParam>; Body: Static<typeof PasswordBody> }>(
    '/v1/users/:id/password',
    {
      config,
      schema: {
        tags: ['users'],
        summary: 'Set a password (platform-admin, or yourself with currentPassword); ends existing sessions',
        security: PEOPLE,
        params: IdParam,
        body: PasswordBody,
        response: { 204: Type.Null(), ...errors },
      },
    },
    async (request, reply) => {
      const who = requireUser(request);
      const self = who.kind === 'user' && who.userId === request.params.id;
      if (self && !can(who, 'platform-admin')) {
        const current = request.body.currentPassword ?? '';
        await auth.login(who.username, current).catch((e: unknown) => {
          throw e instanceof CitysenseError && e.code === 'CS_ERR_AUTH_LOGIN_FAILED'
            ? new CitysenseError('CS_ERR_AUTH_LOGIN_FAILED', 'currentPassword is wrong', 401)
            : e;
        });
      } else if (!self) requireRole(request, 'platform-admin');
      await directory.setPassword(request.params.id, request.body.password);
      audit.recordRequest(request, {
        action: 'user.password',
        targetType: 'user',
        targetId: request.params.id,
      });
      return reply.status(204).send();
    },
  );

  app.post<{ Params: Static<typeof IdParam>; Body: Static<typeof RoleGrantSchema> }>(
    '/v1/users/:id/roles',
    {
      config,
      schema: {
        tags: ['users'],
        summary: 'Grant a role (platform-admin); platform-admin only to users of the platform agency',
        security: PEOPLE,
        params: IdParam,
        body: RoleGrantSchema,
        response: { 200: UserSchema, ...errors },
      },
    },
    async (request) => {
      requireRole(request, 'platform-admin');
      const { before, after } = await directory.grant(request.params.id, request.body as RoleGrant);
      audit.recordRequest(request, {
        action: 'user.role-grant',
        targetType: 'user',
        targetId: after.id,
        before,
        after,
      });
      return after;
    },
  );

  app.delete<{
    Params: Static<typeof RoleParams>;
    Querystring: { category?: Static<typeof CategorySchema> };
  }>(
    '/v1/users/:id/roles/:role',
    {
      config,
      schema: {
        tags: ['users'],
        summary: 'Revoke a role (platform-admin); reviewers: ?category=',
        security: PEOPLE,
        params: RoleParams,
        querystring: Type.Object(
          { category: Type.Optional(CategorySchema) },
          { additionalProperties: false },
        ),
        response: { 200: UserSchema, ...errors },
      },
    },
    async (request) => {
      requireRole(request, 'platform-admin');
      const grant: RoleGrant = request.query.category
        ? { role: request.params.role, category: request.query.category }
        : { role: request.params.role };
      const { before, after } = await directory.revoke(request.params.id, grant);
      audit.recordRequest(request, {
        action: 'user.role-revoke',
        targetType: 'user',
        targetId: after.id,
        before,
        after,
      });
      return after;
    },
  );
}
