/**
 * Streamed uploads of one signed file (algorithm packages, OTA artifacts): the body
 * as `application/octet-stream` or as the `file` field of `multipart/form-data`,
 * refused early by its declared length, never parsed or buffered whole.
 */
import { Readable } from 'node:stream';
import { CitysenseError, errorMessage } from '@citysense/protocol';
import multipart from '@fastify/multipart';
import type { FastifyInstance, FastifyRequest } from 'fastify';

/** Headers and boundaries a multipart upload adds around the file. */
const MULTIPART_OVERHEAD_BYTES = 64 * 1024;
/** Marks a body in a content type the upload does not take. */
const UNSUPPORTED_BODY = Symbol('unsupported upload body');

/** OpenAPI body of an upload route: raw bytes, or a form with field `file`. */
export const FILE_UPLOAD_BODY = {
  content: {
    'application/octet-stream': { schema: { type: 'string', format: 'binary' } },
    'multipart/form-data': {
      schema: {
        type: 'object',
        required: ['file'],
        properties: { file: { type: 'string', format: 'binary' } },
      },
    },
  },
} as const;

/** Makes `scope` take bodies as streams: raw octets or one multipart file of at most `maxBytes`. */
export async function acceptFileUploads(scope: FastifyInstance, maxBytes: number): Promise<void> {
  scope.removeAllContentTypeParsers();
  scope.addContentTypeParser('application/octet-stream', (_request, payload, done) => done(null, payload));
  scope.addContentTypeParser('*', (_request, _payload, done) => done(null, UNSUPPORTED_BODY));
  await scope.register(multipart, {
    // One byte over the limit is enough to know the file is too large; busboy drops the rest.
    limits: { fileSize: maxBytes + 1, files: 1, fields: 20, parts: 25 },
    throwFileSizeLimit: false,
  });
}

/** An `onRequest` hook refusing a body whose declared length exceeds `maxBytes` (plus form overhead). */
export function refuseDeclaredOver(maxBytes: () => number, tooLarge: (maxBytes: number) => Error) {
  return async (request: FastifyRequest): Promise<void> => {
    const declared = Number(request.headers['content-length']);
    const overhead = request.headers['content-type']?.startsWith('multipart/') ? MULTIPART_OVERHEAD_BYTES : 0;
    if (declared > maxBytes() + overhead) throw tooLarge(maxBytes());
  };
}

/** What an upload calls its file and the codes of its errors. */
export interface UploadTexts {
  /** The file in messages: `artifact`, `package`. */
  noun: string;
  /** How the missing-file hint names it: `it`, `the package`. */
  hint: string;
  /** Code of a malformed form (400). */
  invalidCode: string;
  /** Code of a content type the upload does not take (415). */
  typeCode: string;
}

/** The file bytes of an upload request, raw or the `file` field of a form. */
export async function uploadSource(request: FastifyRequest, texts: UploadTexts): Promise<Readable> {
  if (request.isMultipart()) {
    let part: Awaited<ReturnType<FastifyRequest['file']>>;
    try {
      part = await request.file();
    } catch (err) {
      throw new CitysenseError(texts.invalidCode, `malformed multipart body: ${errorMessage(err)}`, 400);
    }
    if (!part)
      throw new CitysenseError(
        texts.invalidCode,
        `the form has no file: send ${texts.hint} in a field named "file"`,
        400,
      );
    if (part.fieldname !== 'file') {
      part.file.resume();
      throw new CitysenseError(
        texts.invalidCode,
        `the ${texts.noun} must be in the form field "file", not "${part.fieldname}"`,
        400,
      );
    }
    return part.file;
  }
  if (request.body instanceof Readable) return request.body;
  const article = /^[aeiou]/.test(texts.noun) ? 'an' : 'a';
  throw new CitysenseError(
    texts.typeCode,
    `cannot take ${article} ${texts.noun} as ${request.headers['content-type'] ?? 'a body without content type'}: ` +
      'send application/octet-stream, or multipart/form-data with the file in field "file"',
    415,
  );
}
