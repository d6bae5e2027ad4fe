import { CitysenseError, digestEquals, type Logger, sha256Hex } from '@citysense/protocol';
import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import Fastify, {
  type FastifyBaseLogger,
  type FastifyInstance,
  type FastifyRequest,
  LogController,
} from 'fastify';
import type { RoleGrant } from '../auth/roles.ts';
import { ErrorBodySchema, errorHandler } from './errors.ts';

/** The holder of the admin token: a super-user with every role. */
export type AdminPrincipal = { kind: 'admin' };

/** A person signed in with a session JWT or one of their API tokens. */
export type UserPrincipal = {
  kind: 'user';
  userId: string;
  username: string;
  agencyId: string;
  /** Current grants, read from the directory on every request. */
  roles: RoleGrant[];
  via: 'session' | 'api-token';
};

/** Who made an authenticated request. */
export type HttpPrincipal = AdminPrincipal | { kind: 'node'; nodeId: string } | UserPrincipal;

/**
 * Who may reach a route (`config.auth`):
 * - `admin` (default): the admin token, or a user holding `platform-admin`;
 * - `admin-or-node`: the admin token, or an edge node with HTTP Basic `<node id>:<MQTT password>`;
 * - `user`: the admin token or any signed-in user — the handler must then call
 *   `requireRole`/`requireUser` (`auth/access.ts`); a `user` route that answers
 *   without checking is turned into a 500 CS_ERR_AUTH_UNCHECKED.
 * - `user-or-node`: as `user`, and edge nodes with HTTP Basic too (e.g. OTA artifact
 *   downloads); the handler decides for both.
 */
export type RouteAuth = 'admin' | 'admin-or-node' | 'user' | 'user-or-node';

declare module 'fastify' {
  interface FastifyContextConfig {
    /** Who may reach the route; see `RouteAuth`. */
    auth?: RouteAuth;
  }
  interface FastifyRequest {
    /** Set by the auth hook on /v1 routes that are not public. */
    principal: HttpPrincipal | null;
    /** Set by `requireRole`/`requireUser`: the handler checked access. */
    accessChecked: boolean;
    /** Set when a route wrote its own audit record, so the generic write record is skipped. */
    auditRecorded: boolean;
  }
}

/** What the HTTP layer reports to the audit log. */
export type HttpAuditEvent =
  | { kind: 'refused'; request: FastifyRequest; error: CitysenseError }
  | { kind: 'write'; request: FastifyRequest; statusCode: number };

/** Options of the HTTP API server. */
export interface HttpServerOptions {
  adminToken: string;
  logger: Logger;
  /** Largest accepted request body. */
  bodyLimit?: number;
  version: string;
  /** Checks a node's MQTT credentials, for routes open to nodes (`config.auth: 'admin-or-node'`). */
  authenticateNode?: (nodeId: string, password: string) => Promise<boolean>;
  /**
   * Resolves a bearer token that is not the admin token to a user (session JWT or API token):
   * null when it is no user token, throws CS_ERR_AUTH_INVALID_TOKEN when it is a bad one.
   */
  authenticateUser?: (bearer: string) => Promise<UserPrincipal | null>;
  /** Receives refused accesses (every CS_ERR_AUTH_* answer) and successful writes, for the audit log. */
  onAudit?: (event: HttpAuditEvent) => void;
}

/** Routes reachable without the admin token. */
const PUBLIC_PREFIXES = ['/health', '/metrics', '/docs', '/v1/nodes/enroll', '/v1/auth/login'];
const WRITE_METHODS = new Set(['POST', 'PUT', 'PATCH', 'DELETE']);

/**
 * Creates the fastify app: OpenAPI at /docs, coded errors, bearer auth on /v1
 * (except node enrolment, which carries its own one-time token, and login): the
 * admin token, a user's session JWT or API token; routes marked
 * `config.auth: 'admin-or-node'` also accept a node's HTTP Basic credentials.
 * Which principals reach which route: see `RouteAuth`.
 */
export async function createHttpServer(options: HttpServerOptions): Promise<FastifyInstance> {
  const app = Fastify({
    loggerInstance: options.logger.child({ component: 'http' }) as FastifyBaseLogger,
    logController: new LogController({ disableRequestLogging: true }),
    bodyLimit: options.bodyLimit ?? 256 * 1024,
    ajv: { customOptions: { removeAdditional: false, coerceTypes: 'array', allErrors: true } },
  });
  app.setErrorHandler(errorHandler(options.logger));
  app.setNotFoundHandler((request, reply) => {
    void reply
      .status(404)
      .send({ code: 'CS_ERR_NOT_FOUND', message: `no route ${request.method} ${request.url.split('?')[0]}` });
  });
  app.addSchema({ $id: 'Error', ...ErrorBodySchema });
  await app.register(swagger, {
    openapi: {
      info: {
        title: 'citysense hub API',
        version: options.version,
        description: 'Compute management, enrolment, registry and telemetry of the citysense hub.',
      },
      components: {
        securitySchemes: {
          admin: { type: 'http', scheme: 'bearer' },
          node: { type: 'http', scheme: 'basic', description: '<node id>:<MQTT password> from enrolment' },
          user: {
            type: 'http',
            scheme: 'bearer',
            bearerFormat: 'JWT',
            description: 'session token from POST /v1/auth/login, or a personal API token (csu_…)',
          },
        },
      },
      security: [{ admin: [] }, { user: [] }],
    },
  });
  await app.register(swaggerUi, { routePrefix: '/docs' });
  const adminHash = sha256Hex(options.adminToken);
  app.decorateRequest('principal', null);
  app.decorateRequest('accessChecked', false);
  app.decorateRequest('auditRecorded', false);
  app.addHook('onRequest', async (request) => {
    const path = request.url.split('?')[0] ?? '/';
    if (!path.startsWith('/v1/') || PUBLIC_PREFIXES.some((p) => path === p || path.startsWith(`${p}/`)))
      return;
    const auth = request.routeOptions.config?.auth ?? 'admin';
    const header = request.headers.authorization ?? '';
    if (header.startsWith('Basic ') && (auth === 'admin-or-node' || auth === 'user-or-node')) {
      request.principal = await authenticateNode(header, options.authenticateNode);
      return;
    }
    const token = header.startsWith('Bearer ') ? header.slice(7).trim() : '';
    if (!token)
      throw new CitysenseError(
        'CS_ERR_AUTH_REQUIRED',
        'missing bearer token: send Authorization: Bearer <session token, API token or admin token>',
        401,
      );
    if (digestEquals(sha256Hex(token), adminHash)) {
      request.principal = { kind: 'admin' };
      return;
    }
    const user = (await options.authenticateUser?.(token)) ?? null;
    if (!user) throw new CitysenseError('CS_ERR_AUTH_INVALID', 'bearer token is not valid', 401);
    request.principal = user;
    const admitted =
      auth === 'user' ||
      auth === 'user-or-node' ||
      (auth === 'admin' && user.roles.some((g) => g.role === 'platform-admin'));
    if (!admitted)
      throw new CitysenseError(
        'CS_ERR_AUTH_FORBIDDEN',
        auth === 'admin'
          ? `${request.method} ${request.routeOptions.url} needs the platform-admin role`
          : `${request.method} ${request.routeOptions.url} is open to the admin token and edge nodes only`,
        403,
        { needed: auth === 'admin' ? ['platform-admin'] : [] },
      );
  });
  app.addHook('onSend', async (request, reply, payload) => {
    const auth = request.routeOptions.config?.auth;
    if (
      (auth !== 'user' && auth !== 'user-or-node') ||
      request.principal?.kind !== 'user' ||
      request.accessChecked ||
      reply.statusCode >= 400
    )
      return payload;
    // A route opened to users answered without asking who may: fail closed, loudly.
    request.log.error({ route: request.routeOptions.url }, 'route with auth "user" did not check access');
    reply.status(500).header('content-type', 'application/json; charset=utf-8');
    return JSON.stringify({
      code: 'CS_ERR_AUTH_UNCHECKED',
      message: 'internal error: this route did not check access; see the hub log',
    });
  });
  const onAudit = options.onAudit;
  if (onAudit) {
    app.addHook('onError', async (request, _reply, error) => {
      if (
        error instanceof CitysenseError &&
        error.code.startsWith('CS_ERR_AUTH_') &&
        !request.auditRecorded
      ) {
        request.auditRecorded = true;
        onAudit({ kind: 'refused', request, error });
      }
    });
    app.addHook('onResponse', async (request, reply) => {
      if (
        WRITE_METHODS.has(request.method) &&
        reply.statusCode < 400 &&
        !request.auditRecorded &&
        request.principal?.kind !== 'node' &&
        (request.url.startsWith('/v1/') || request.url === '/v1')
      )
        onAudit({ kind: 'write', request, statusCode: reply.statusCode });
    });
  }
  return app;
}

/** Checks `Authorization: Basic <node id>:<MQTT password>` (RFC 7617) against the node registry. */
async function authenticateNode(
  header: string,
  check: HttpServerOptions['authenticateNode'],
): Promise<HttpPrincipal> {
  const decoded = Buffer.from(header.slice(6).trim(), 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  const nodeId = colon > 0 ? decoded.slice(0, colon) : '';
  if (!check || !nodeId || !(await check(nodeId, decoded.slice(colon + 1))))
    throw new CitysenseError(
      'CS_ERR_AUTH_INVALID',
      'node credentials are not valid: send HTTP Basic <node id>:<MQTT password> of an enrolled node',
      401,
    );
  return { kind: 'node', nodeId };
}

/**
 * Closes `app`: stops accepting, lets requests in flight finish for `graceMs`, then drops
 * every connection left (a client that vanished mid-request, a stream nobody ends), so that
 * a hub never hangs on stop.
 */
export async function closeHttpServer(app: FastifyInstance, graceMs = 3000): Promise<void> {
  const timer = setTimeout(() => app.server.closeAllConnections(), graceMs);
  try {
    await app.close();
  } finally {
    clearTimeout(timer);
  }
}
