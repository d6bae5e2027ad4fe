import { CitysenseError, digestEquals, type Logger, sha256Hex } from '@citysense/protocol';
import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import Fastify, { type FastifyBaseLogger, type FastifyInstance, LogController } from 'fastify';
import { ErrorBodySchema, errorHandler } from './errors.ts';

/** Who made an authenticated request. */
export type HttpPrincipal = { kind: 'admin' } | { kind: 'node'; nodeId: string };

declare module 'fastify' {
  interface FastifyContextConfig {
    /** `admin-or-node`: edge nodes may also call the route, with HTTP Basic `<node id>:<MQTT password>`. */
    auth?: 'admin' | 'admin-or-node';
  }
  interface FastifyRequest {
    /** Set by the auth hook on /v1 routes that are not public. */
    principal: HttpPrincipal | null;
  }
}

/** Options of the HTTP API server. */
export interface HttpServerOptions {
  adminToken: string;
  logger: Logger;
  /** Largest accepted request body. */
  bodyLimit?: number;
  version: string;
  /** Checks a node's MQTT credentials, for routes open to nodes (`config.auth: 'admin-or-node'`). */
  authenticateNode?: (nodeId: string, password: string) => Promise<boolean>;
}

/** Routes reachable without the admin token. */
const PUBLIC_PREFIXES = ['/health', '/metrics', '/docs', '/v1/nodes/enroll'];

/**
 * Creates the fastify app: OpenAPI at /docs, coded errors, bearer-token admin auth
 * on /v1 (except node enrolment, which carries its own one-time token); routes
 * marked `config.auth: 'admin-or-node'` also accept a node's HTTP Basic credentials.
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
        },
      },
      security: [{ admin: [] }],
    },
  });
  await app.register(swaggerUi, { routePrefix: '/docs' });
  const adminHash = sha256Hex(options.adminToken);
  app.decorateRequest('principal', null);
  app.addHook('onRequest', async (request) => {
    const path = request.url.split('?')[0] ?? '/';
    if (!path.startsWith('/v1/') || PUBLIC_PREFIXES.some((p) => path === p || path.startsWith(`${p}/`)))
      return;
    const header = request.headers.authorization ?? '';
    if (header.startsWith('Basic ') && request.routeOptions.config?.auth === 'admin-or-node') {
      request.principal = await authenticateNode(header, options.authenticateNode);
      return;
    }
    const token = header.startsWith('Bearer ') ? header.slice(7).trim() : '';
    if (!token)
      throw new CitysenseError(
        'CS_ERR_AUTH_REQUIRED',
        'missing bearer token: send Authorization: Bearer <admin token>',
        401,
      );
    if (!digestEquals(sha256Hex(token), adminHash))
      throw new CitysenseError('CS_ERR_AUTH_INVALID', 'bearer token is not valid', 401);
    request.principal = { kind: 'admin' };
  });
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
