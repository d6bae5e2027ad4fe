import { CitysenseError, digestEquals, type Logger, sha256Hex } from '@citysense/protocol';
import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import Fastify, { type FastifyBaseLogger, type FastifyInstance, LogController } from 'fastify';
import { ErrorBodySchema, errorHandler } from './errors.ts';

/** Options of the HTTP API server. */
export interface HttpServerOptions {
  adminToken: string;
  logger: Logger;
  /** Largest accepted request body. */
  bodyLimit?: number;
  version: string;
}

/** Routes reachable without the admin token. */
const PUBLIC_PREFIXES = ['/health', '/metrics', '/docs', '/v1/nodes/enroll'];

/**
 * Creates the fastify app: OpenAPI at /docs, coded errors, bearer-token admin auth
 * on /v1 (except node enrolment, which carries its own one-time token).
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
      components: { securitySchemes: { admin: { type: 'http', scheme: 'bearer' } } },
      security: [{ admin: [] }],
    },
  });
  await app.register(swaggerUi, { routePrefix: '/docs' });
  const adminHash = sha256Hex(options.adminToken);
  app.addHook('onRequest', async (request) => {
    const path = request.url.split('?')[0] ?? '/';
    if (!path.startsWith('/v1/') || PUBLIC_PREFIXES.some((p) => path === p || path.startsWith(`${p}/`)))
      return;
    const header = request.headers.authorization ?? '';
    const token = header.startsWith('Bearer ') ? header.slice(7).trim() : '';
    if (!token)
      throw new CitysenseError(
        'CS_ERR_AUTH_REQUIRED',
        'missing bearer token: send Authorization: Bearer <admin token>',
        401,
      );
    if (!digestEquals(sha256Hex(token), adminHash))
      throw new CitysenseError('CS_ERR_AUTH_INVALID', 'bearer token is not valid', 401);
  });
  return app;
}
