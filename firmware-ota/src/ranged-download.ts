/**
 * One resumable download of a file named by its SHA-256 into a `.part` file (RFC 9110
 * §14: Range, 206 Partial Content, Content-Range, If-Range). The part survives crashes
 * and dropped connections; the next attempt asks for the rest, and starts over when the
 * hub sends the whole file (200) instead. Algorithm packages and OTA artifacts both use
 * it; each passes its own error codes.
 */
import { createHash, type Hash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { type FileHandle, open, rename, rm, stat } from 'node:fs/promises';
import { CitysenseError, errorMessage } from '@citysense/protocol';

/** The codes a caller's errors carry, so each capability keeps its own stable codes. */
export interface RangedDownloadErrors {
  /** Broke off; retry resumes from the part (status 503). */
  download: string;
  /** The hub refused with a 4xx that has no code of its own. */
  refused: string;
  /** Size or SHA-256 is not the one named (part deleted, status 422). */
  digest: string;
}

/** What to fetch and where to put it. */
export interface RangedDownloadRequest {
  url: string;
  /** Authentication headers. */
  headers: Record<string, string>;
  /** The `.part` file; kept between attempts. */
  partPath: string;
  /** Where the verified file goes (renamed from the part). */
  finalPath: string;
  sha256: string;
  bytes: number;
  /** Called as bytes arrive, with the total received so far (resumed bytes included). */
  onProgress?: ((received: number, total: number) => void) | undefined;
  /** A download that receives nothing this long is abandoned (and resumes on the next attempt); default 30 s. */
  idleTimeoutMs?: number | undefined;
  signal: AbortSignal;
  /** Error codes of the caller. */
  errors: RangedDownloadErrors;
  /** What the file is, for messages: "package", "artifact". */
  noun: string;
}

/** What one successful attempt did. */
export interface RangedDownloadResult {
  /** Bytes that were already in the part file and were not fetched again. */
  resumedFrom: number;
  /** Bytes fetched by this attempt. */
  fetched: number;
  /** HTTP status of the answer (200, 206), or 0 when the part was already complete. */
  httpStatus: number;
  durationMs: number;
}

const IDLE_TIMEOUT_MS = 30_000;

/**
 * Downloads (the rest of) a file and checks size and SHA-256 of the whole file before
 * renaming it into place. Throws `errors.download` (503, retry: the part keeps what
 * arrived), the hub's own code or `errors.refused` on 4xx, `errors.digest` (part
 * deleted) when the file is not the one named.
 */
export async function downloadRanged(req: RangedDownloadRequest): Promise<RangedDownloadResult> {
  const started = performance.now();
  let have = await sizeOf(req.partPath);
  if (have > req.bytes) {
    await rm(req.partPath, { force: true });
    have = 0;
  }
  const hash = createHash('sha256');
  if (have > 0) have = await hashPrefix(req.partPath, have, hash);
  let httpStatus = 0;
  let fetched = 0;
  if (have < req.bytes) {
    const answer = await fetchFrom(req, have);
    httpStatus = answer.status;
    const start = answer.status === 206 ? have : 0;
    const write = start === 0 ? createHash('sha256') : hash;
    const file = await open(req.partPath, start === 0 ? 'w' : 'a');
    try {
      fetched = await receive(answer, file, write, start, req);
      await file.sync();
    } finally {
      await file.close();
    }
    have = start + fetched;
    if (start === 0) return finish(req, write, have, 0, fetched, httpStatus, started);
  }
  return finish(req, hash, have, have - fetched, fetched, httpStatus, started);
}

async function finish(
  req: RangedDownloadRequest,
  hash: Hash,
  have: number,
  resumedFrom: number,
  fetched: number,
  httpStatus: number,
  started: number,
): Promise<RangedDownloadResult> {
  const digest = hash.digest('hex');
  if (have !== req.bytes || digest !== req.sha256) {
    await rm(req.partPath, { force: true });
    throw new CitysenseError(
      req.errors.digest,
      `downloaded ${req.noun} is ${have} bytes with SHA-256 ${digest}, the assignment names ${req.bytes} bytes ` +
        `and ${req.sha256}: the file was deleted; ask the hub operator to check the ${req.noun}`,
      422,
      { sha256: digest, bytes: have },
    );
  }
  await rename(req.partPath, req.finalPath);
  return { resumedFrom, fetched, httpStatus, durationMs: performance.now() - started };
}

interface Answer {
  status: 200 | 206;
  body: ReadableStream<Uint8Array>;
  /** Aborts the transfer when no byte arrives for the idle timeout. */
  idle: IdleTimer;
}

async function fetchFrom(req: RangedDownloadRequest, have: number): Promise<Answer> {
  const idle = new IdleTimer(req.idleTimeoutMs ?? IDLE_TIMEOUT_MS);
  const headers: Record<string, string> = { ...req.headers, accept: 'application/octet-stream' };
  if (have > 0) {
    headers.range = `bytes=${have}-`;
    // The hub's ETag is the quoted SHA-256: if the file changed, it sends the whole new one (200).
    headers['if-range'] = `"${req.sha256}"`;
  }
  let res: Response;
  try {
    res = await fetch(req.url, { headers, signal: AbortSignal.any([req.signal, idle.signal]) });
  } catch (err) {
    idle.clear();
    if (req.signal.aborted) throw err;
    throw broken(req, `hub unreachable: ${errorMessage(err)}`, have);
  }
  if (res.status === 200 || res.status === 206) {
    if (!res.body) {
      idle.clear();
      throw broken(req, `HTTP ${res.status} without a body`, have);
    }
    if (res.status === 206) checkContentRange(req, res.headers.get('content-range'), have);
    return { status: res.status, body: res.body, idle };
  }
  idle.clear();
  const text = await res.text().catch(() => '');
  if (res.status === 416) {
    // Our part is longer than the hub's file: it cannot be this file.
    throw new CitysenseError(
      req.errors.digest,
      `hub refused range bytes=${have}- of ${req.url}; its file is not the ${req.bytes}-byte ${req.noun} assigned`,
      422,
    );
  }
  if (res.status >= 500 || res.status === 408 || res.status === 429)
    throw broken(req, `hub answered HTTP ${res.status}`, have);
  throw refusal(req, res.status, text);
}

/** `Content-Range: bytes <first>-<last>/<complete>` must continue exactly where the part ends. */
function checkContentRange(req: RangedDownloadRequest, header: string | null, have: number): void {
  const bytes = req.bytes;
  const m = /^bytes (\d+)-(\d+)\/(\d+)$/.exec(header?.trim() ?? '');
  const [first, last, complete] = m ? [Number(m[1]), Number(m[2]), Number(m[3])] : [-1, -1, -1];
  if (first !== have || last !== bytes - 1 || complete !== bytes)
    throw new CitysenseError(
      req.errors.download,
      `hub answered 206 with Content-Range "${header ?? ''}", expected bytes ${have}-${bytes - 1}/${bytes}`,
      502,
      { resumeFrom: have },
    );
}

async function receive(
  answer: Answer,
  file: FileHandle,
  hash: Hash,
  start: number,
  req: RangedDownloadRequest,
): Promise<number> {
  let got = 0;
  answer.idle.touch();
  try {
    for await (const chunk of answer.body) {
      answer.idle.touch();
      if (start + got + chunk.length > req.bytes)
        throw new CitysenseError(
          req.errors.digest,
          `hub sent more than the ${req.bytes} bytes the assignment names`,
          422,
        );
      await file.write(chunk);
      hash.update(chunk);
      got += chunk.length;
      req.onProgress?.(start + got, req.bytes);
    }
  } catch (err) {
    if (err instanceof CitysenseError) throw err;
    if (req.signal.aborted) throw err;
    const why = answer.idle.fired ? `no data for ${answer.idle.ms} ms` : errorMessage(err);
    throw broken(req, `transfer broke off after ${start + got} bytes: ${why}`, start + got);
  } finally {
    answer.idle.clear();
  }
  return got;
}

/** Hashes the first `bytes` of the part into `hash`; returns how many bytes it read. */
async function hashPrefix(path: string, bytes: number, hash: Hash): Promise<number> {
  let read = 0;
  for await (const chunk of createReadStream(path, { start: 0, end: bytes - 1 })) {
    hash.update(chunk as Buffer);
    read += (chunk as Buffer).length;
  }
  return read;
}

async function sizeOf(path: string): Promise<number> {
  try {
    return (await stat(path)).size;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return 0;
    throw err;
  }
}

function broken(req: RangedDownloadRequest, message: string, resumeFrom: number): CitysenseError {
  return new CitysenseError(req.errors.download, `${req.noun} download failed: ${message}`, 503, {
    resumeFrom,
  });
}

function refusal(req: RangedDownloadRequest, status: number, text: string): CitysenseError {
  const url = req.url;
  let body: { code?: unknown; message?: unknown } | null = null;
  try {
    body = JSON.parse(text) as { code?: unknown; message?: unknown };
  } catch {
    body = null;
  }
  const code =
    typeof body?.code === 'string' && body.code.startsWith('CS_ERR_') ? body.code : req.errors.refused;
  const hubMessage = typeof body?.message === 'string' ? body.message : text.slice(0, 200);
  return new CitysenseError(
    code,
    `hub refused the ${req.noun} download (HTTP ${status} ${url}): ${hubMessage}`,
    status,
  );
}

/** An abort signal that fires when `touch()` is not called for `ms`. */
class IdleTimer {
  readonly #controller = new AbortController();
  #timer: NodeJS.Timeout | null = null;
  fired = false;

  constructor(readonly ms: number) {
    this.touch();
  }

  get signal(): AbortSignal {
    return this.#controller.signal;
  }

  touch(): void {
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = setTimeout(() => {
      this.fired = true;
      this.#controller.abort();
    }, this.ms);
  }

  clear(): void {
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = null;
  }
}
