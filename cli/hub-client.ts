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

  /** Sends a request; a non-2xx answer becomes a CitysenseError with the hub's code. */
  async request<T>(method: string, path: string, body?: unknown): Promise<T> {
    let res: Response;
    try {
      res = await fetch(`${this.#base}${path}`, {
        method,
        headers: {
          authorization: `Bearer ${this.#token}`,
          ...(body === undefined ? {} : { 'content-type': 'application/json' }),
        },
        body: body === undefined ? undefined : JSON.stringify(body),
      });
    } catch (err) {
      throw new CitysenseError(
        'CS_ERR_HUB_UNREACHABLE',
        `cannot reach the hub at ${this.#base}: ${(err as Error).cause ?? err}`,
        503,
      );
    }
    const text = await res.text();
    const json: unknown = text ? JSON.parse(text) : undefined;
    if (!res.ok) {
      const e = json as { code?: string; message?: string } | undefined;
      throw new CitysenseError(
        e?.code ?? `CS_ERR_HTTP_${res.status}`,
        e?.message ?? `HTTP ${res.status}`,
        res.status,
      );
    }
    return json as T;
  }

  /** Creates a one-time enrolment token. */
  createToken(body: { name?: string | undefined; expires?: string }): Promise<TokenView & { token: string }> {
    return this.request('POST', '/v1/enrollment-tokens', body);
  }

  /** Lists enrolment tokens. */
  listTokens(): Promise<TokenView[]> {
    return this.request('GET', '/v1/enrollment-tokens');
  }
}
