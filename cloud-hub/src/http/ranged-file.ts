/**
 * Serves a stored file over HTTP with resumable downloads: `Range` (206 with
 * `Content-Range`, 416 outside the file), `If-Range` and `If-None-Match` against an
 * ETag that names the exact bytes (their SHA-256). Used for algorithm packages and
 * OTA artifacts, which nodes fetch over slow links and resume where they stopped.
 */
import { createReadStream } from 'node:fs';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { parseByteRange } from '../algorithms/byte-range.ts';

/** What to send. */
export interface RangedFile {
  path: string;
  /** Size in bytes of the file at `path`. */
  size: number;
  /** SHA-256 (hex) of the file: the strong ETag. */
  sha256: string;
  /** `Content-Disposition` file name. */
  filename: string;
  /** Error code of a 416 answer, e.g. CS_ERR_ALGO_RANGE. */
  rangeErrorCode: string;
  /** What the file is, for the 416 message ("package", "artifact"). */
  noun: string;
}

/** The byte span a request gets, for logging. */
export interface ServedSpan {
  start: number;
  bytes: number;
}

/**
 * Answers `request` with `file` (RFC 9110 §14 ranges, §13.1 preconditions): the whole
 * file, one range of it, 304 when the client holds it, or 416. HEAD gets the headers
 * only. Returns the reply to send and the span served (null for 304/416).
 */
export function sendRangedFile(
  request: FastifyRequest,
  reply: FastifyReply,
  file: RangedFile,
): { reply: FastifyReply; span: ServedSpan | null } {
  const { size } = file;
  const etag = `"${file.sha256}"`;
  reply
    .header('accept-ranges', 'bytes')
    .header('etag', etag)
    .header('cache-control', 'private, no-cache')
    .header('content-disposition', `attachment; filename="${file.filename}"`);
  if (etagMatches(request.headers['if-none-match'], etag))
    return { reply: reply.status(304).send(), span: null };
  const ifRange = request.headers['if-range'];
  const range =
    ifRange === undefined || ifRange === etag ? parseByteRange(request.headers.range, size) : null;
  if (range === 'unsatisfiable')
    return {
      reply: reply
        .status(416)
        .header('content-range', `bytes */${size}`)
        .send({ code: file.rangeErrorCode, message: `the range is outside the ${size}-byte ${file.noun}` }),
      span: null,
    };
  const { start, end } = range ?? { start: 0, end: size - 1 };
  if (range) reply.status(206).header('content-range', `bytes ${start}-${end}/${size}`);
  reply.header('content-type', 'application/octet-stream').header('content-length', end - start + 1);
  const span = { start, bytes: end - start + 1 };
  if (request.method === 'HEAD' || size === 0) return { reply: reply.send(), span };
  return { reply: reply.send(createReadStream(file.path, { start, end })), span };
}

/** `If-None-Match` holds `etag` or `*` (RFC 9110 §13.1.2). */
export function etagMatches(header: string | undefined, etag: string): boolean {
  if (header === undefined) return false;
  return header
    .split(',')
    .map((t) => t.trim().replace(/^W\//, ''))
    .some((t) => t === '*' || t === etag);
}
