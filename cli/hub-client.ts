import { createReadStream, statSync } from 'node:fs';
import { Readable, Transform } from 'node:stream';
import { CitysenseError } from '@citysense/protocol';

/** A token as the API returns it. */
export interface TokenView {
  id: string;
  token?: string;
  name: string | null;
  expiresAt: string;
  usedAt: string | null;
  usedByNode: string | null;
}

/** Minimal admin client of the hub's HTTP API, for the CLI and the demo. */
export class HubClient {
  readonly #base: string;
  readonly #token: string;

  constructor(baseUrl: string, adminToken: string) {
    this.#base = baseUrl.replace(/\/$/, '');
    this.#token = adminToken;
  }

  /** Sends a JSON request; a non-2xx answer becomes a CitysenseError with the hub's code. */
  async request<T>(method: string, path: string, body?: unknown): Promise<T> {
    const answer = await this.send<T>(
      method,
      path,
      body === undefined ? undefined : { body: JSON.stringify(body), contentType: 'application/json' },
    );
    return answer.body;
  }

  /**
   * Sends a request with a raw body (a CSV, a streamed file) and parses the JSON answer; a
   * non-2xx answer becomes a CitysenseError with the hub's code, an unreachable hub
   * CS_ERR_HUB_UNREACHABLE.
   */
  async send<T>(
    method: string,
    path: string,
    payload?: {
      body: string | ReadableStream<Uint8Array>;
      contentType: string;
      contentLength?: number;
    },
    signal?: AbortSignal,
  ): Promise<{ status: number; body: T }> {
    let res: Response;
    try {
      res = await fetch(`${this.#base}${path}`, {
        method,
        headers: {
          authorization: `Bearer ${this.#token}`,
          ...(payload ? { 'content-type': payload.contentType } : {}),
          ...(payload?.contentLength === undefined
            ? {}
            : { 'content-length': String(payload.contentLength) }),
        },
        body: payload?.body,
        // A stream body is sent as it is read.
        ...(payload && typeof payload.body !== 'string' ? { duplex: 'half' } : {}),
        signal,
      } as RequestInit);
    } catch (err) {
      if (signal?.aborted) throw err;
      throw new CitysenseError(
        'CS_ERR_HUB_UNREACHABLE',
        `cannot reach the hub at ${this.#base}: ${(err as Error).cause ?? err}`,
        503,
      );
    }
    const text = await res.text();
    let json: unknown;
    try {
      json = text ? JSON.parse(text) : undefined;
    } catch {
      json = undefined;
    }
    if (!res.ok) {
      const e = json as { code?: string; message?: string } | undefined;
      throw new CitysenseError(
        e?.code ?? `CS_ERR_HTTP_${res.status}`,
        e?.message ?? `HTTP ${res.status}`,
        res.status,
      );
    }
    return { status: res.status, body: json as T };
  }

  /** Streams `file` to `path` as application/octet-stream, with progress lines on stderr every 10 %. */
  uploadFile<T>(
    path: string,
    file: string,
    label: string,
    signal?: AbortSignal,
  ): Promise<{ status: number; body: T }> {
    const size = statSync(file).size;
    let sent = 0;
    let shown = -1;
    const progress = new Transform({
      transform(chunk: Buffer, _encoding, done) {
        sent += chunk.length;
        const pct = Math.floor((sent / size) * 100);
        if (pct !== shown && (pct % 10 === 0 || sent === size)) {
          shown = pct;
          process.stderr.write(`uploading ${label}: ${pct}% (${sent}/${size} bytes)\n`);
        }
        done(null, chunk);
      },
    });
    const body = Readable.toWeb(createReadStream(file).pipe(progress)) as ReadableStream<Uint8Array>;
    return this.send<T>(
      'POST',
      path,
      { body, contentType: 'application/octet-stream', contentLength: size },
      signal,
    );
  }

  /** Creates a one-time enrolment token. */
  createToken(body: { name?: string | undefined; expires?: string }): Promise<TokenView & { token: string }> {
    return this.request('POST', '/v1/enrollment-tokens', body);
  }

  /** Issues a one-time replacement token for node `nodeId` (field engineer or platform admin). */
  createReplacementToken(
    nodeId: string,
    body: { ttl?: string | undefined },
  ): Promise<TokenView & { token: string; replacesNode: string }> {
    return this.request('POST', `/v1/nodes/${encodeURIComponent(nodeId)}/replacement-tokens`, body);
  }

  /** Lists enrolment tokens. */
  listTokens(): Promise<TokenView[]> {
    return this.request('GET', '/v1/enrollment-tokens');
  }
}
