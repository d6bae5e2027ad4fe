/**
 * Opens the admin-only routes of a plugin scope to users holding given roles, so that
 * algorithm-centre admins (and field engineers for video) use the console without the
 * admin token. Routes that declare their own `config.auth` (node downloads, the centre
 * key export) keep it. Must be called before the scope declares its routes.
 */
import type { FastifyInstance, FastifyRequest, onRequestHookHandler, RouteOptions } from 'fastify';
import { requireRole } from '../auth/access.ts';
import type { Role } from '../auth/roles.ts';

/** Opens the scope's routes that `which` selects (default: all) to the admin token and `roles`. */
export function openToRoles(
  scope: FastifyInstance,
  roles: readonly Role[],
  which: (route: RouteOptions) => boolean = () => true,
): void {
  const check: onRequestHookHandler = async (request: FastifyRequest) => {
    requireRole(request, roles);
  };
  scope.addHook('onRoute', (route) => {
    if (route.config?.auth || !which(route)) return;
    route.config = { ...route.config, auth: 'user' };
    const own = route.onRequest;
    route.onRequest = own ? [check, ...(Array.isArray(own) ? own : [own])] : [check];
  });
}
