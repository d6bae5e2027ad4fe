/**
 * Access checks for routes — the one way a route decides who may do what.
 *
 * 1. Open the route to users: `config: { auth: 'user' }` (without it a route takes
 *    the admin token and platform-admin users only; see `RouteAuth` in http/server.ts).
 * 2. In the handler, before doing anything, call
 *      const who = requireRole(request, ['agency-operator', 'platform-admin'], { agencyId: body.ownerAgency });
 *    or `requireUser(request)` when any signed-in person may (their own profile, tokens).
 *    The admin token passes every check; `platform-admin` matches any agency; other
 *    roles match only targets of the user's own agency when `agencyId` is given, and
 *    a reviewer grant only its category when `category` is given.
 * 3. For filtering rather than refusing (e.g. list only what one may see), use
 *    `can(request.principal, roles, scope)` after `requireUser`.
 *
 * A refusal is CS_ERR_AUTH_FORBIDDEN (403) and lands in the audit log through the
 * HTTP layer's `onAudit` hook; a `user` route that never checks answers 500.
 */
import { CitysenseError } from '@citysense/protocol';
import type { FastifyRequest } from 'fastify';
import type { AdminPrincipal, HttpPrincipal, UserPrincipal } from '../http/server.ts';
import { type AccessScope, holdsRole, type Role } from './roles.ts';

/** A person: the admin token's holder or a signed-in user. */
export type PersonPrincipal = AdminPrincipal | UserPrincipal;

/** Whether `principal` holds one of `roles` for `scope` (the admin holds every role). */
export function can(
  principal: HttpPrincipal | null,
  roles: Role | readonly Role[],
  scope?: AccessScope,
): boolean {
  if (principal?.kind === 'admin') return true;
  return principal?.kind === 'user' && holdsRole(principal, roles, scope);
}

/** The admin or a signed-in user, whatever their roles; CS_ERR_AUTH_REQUIRED (401) / _FORBIDDEN (403) otherwise. */
export function requireUser(request: FastifyRequest): PersonPrincipal {
  const p = request.principal;
  if (!p) throw new CitysenseError('CS_ERR_AUTH_REQUIRED', 'sign in first: POST /v1/auth/login', 401);
  if (p.kind === 'node')
    throw new CitysenseError(
      'CS_ERR_AUTH_FORBIDDEN',
      `node ${p.nodeId} cannot call routes meant for people`,
      403,
    );
  request.accessChecked = true;
  return p;
}

/**
 * The admin or a user holding one of `roles` for `scope`; throws CS_ERR_AUTH_FORBIDDEN
 * (403, details `{ needed, scope }`) otherwise. Call it first thing in a handler.
 */
export function requireRole(
  request: FastifyRequest,
  roles: Role | readonly Role[],
  scope: AccessScope = {},
): PersonPrincipal {
  const p = requireUser(request);
  if (can(p, roles, scope)) return p;
  const needed = typeof roles === 'string' ? [roles] : [...roles];
  const where = [
    scope.agencyId === undefined ? '' : ` for agency ${scope.agencyId}`,
    scope.category === undefined ? '' : ` in review category ${scope.category}`,
  ].join('');
  throw new CitysenseError(
    'CS_ERR_AUTH_FORBIDDEN',
    `${request.method} ${request.routeOptions.url} needs ${needed.join(' or ')}${where}; ask a platform admin for the role`,
    403,
    { needed, scope },
  );
}
