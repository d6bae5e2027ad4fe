import type { Logger } from '@citysense/protocol';
import { CitysenseError } from '@citysense/protocol';
import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify';

/** JSON body of every error the HTTP API returns. */
export interface ErrorBody {
  code: string;
  message: string;
  details?: unknown;
}

/** JSON Schema of ErrorBody, for OpenAPI. */
export const ErrorBodySchema = {
  type: 'object',
  required: ['code', 'message'],
  properties: { code: { type: 'string' }, message: { type: 'string' }, details: {} },
} as const;

/** Maps any thrown error to a coded JSON answer; unexpected errors are logged and hidden. */
export function errorHandler(log: Logger) {
  return (err: FastifyError | CitysenseError | Error, request: FastifyRequest, reply: FastifyReply): void => {
    if (err instanceof CitysenseError) {
      void reply
        .status(err.statusCode)
        .send({ code: err.code, message: err.message, details: err.details } satisfies ErrorBody);
      return;
    }
    const fe = err as FastifyError;
    if (fe.validation) {
      void reply.status(400).send({
        code: 'CS_ERR_VALIDATION',
        message: `invalid request: ${fe.message}`,
        details: fe.validation.map((v) => ({
          path: v.instancePath || v.params?.missingProperty || '',
          message: v.message,
        })),
      } satisfies ErrorBody);
      return;
    }
    if (fe.statusCode && fe.statusCode >= 400 && fe.statusCode < 500) {
      void reply
        .status(fe.statusCode)
        .send({ code: `CS_ERR_HTTP_${fe.code ?? fe.statusCode}`, message: fe.message } satisfies ErrorBody);
      return;
    }
    log.error({ err, url: request.url }, 'unhandled error');
    void reply
      .status(500)
      .send({ code: 'CS_ERR_INTERNAL', message: 'internal error; see the hub log' } satisfies ErrorBody);
  };
}
