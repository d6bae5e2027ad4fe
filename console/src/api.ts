/**
 * The console's one way to the hub: the public `/v1` API with the session token from
 * `POST /v1/auth/login` as `Authorization: Bearer`. Every failure becomes an `ApiError`
 * carrying the hub's stable `code` (CS_ERR_…), its message and the HTTP status, so that
 * pages show the same thing the API documents.
 */

/** Roles of hub users (cloud-hub/src/auth/roles.ts). */
export type Role = 'platform-admin' | 'agency-operator' | 'reviewer' | 'algorithm-admin' | 'field-engineer';

/** One role grant; reviewers carry a review category. */
export interface RoleGrant {
  role: Role;
  category?: string;
}

/** A hub user as `GET /v1/auth/me` answers it. */
export interface User {
  id: string;
  username: string;
  displayName: string;
  agencyId: string;
  roles: RoleGrant[];
}

/** Who is signed in: a user, or the holder of the admin token (every role). */
export type Me = { kind: 'admin'; user: null } | { kind: 'user'; user: User };

/** A signed-in session. */
export interface Session {
  token: string;
  expiresAt: string;
  me: Me;
}

/** An answer of the hub that is not a success, or no answer at all (code CS_ERR_NETWORK). */
export class ApiError extends Error {
  readonly code: string;
  readonly status: number;
  readonly details: unknown;
  readonly path: string;
  constructor(code: string, message: string, status: number, path: string, details?: unknown) {
    super(message);
    this.name = 'ApiError';
    this.code = code;
    this.status = status;
    this.path = path;
    this.details = details;
  }
}

/** Turns anything thrown into an ApiError (so error panels always have a code). */
export function asApiError(e: unknown, path = ''): ApiError {
  if (e instanceof ApiError) return e;
  const message = e instanceof Error ? e.message : String(e);
  return new ApiError('CS_ERR_CONSOLE', message, 0, path);
}

/** Platform health (`GET /v1/health/summary`). */
export interface HealthSummary {
  at: string;
  nodes: { online: number; total: number };
  alarms: { open: number; bySeverity: Record<string, number> };
  ingest: { readingsPerSecond: number; windowS: number };
}

/** What the console learns about the hub (`GET /v1/console/config`). */
export interface ConsoleConfig {
  hubId: string;
  version: string;
  basemap: { tileUrl: string | null; attribution: string | null };
}

const SESSION_KEY = 'citysense.session';

/** Calls the hub API; holds the session token and tells listeners when it ends (401). */
export class ApiClient {
  #session: Session | null;
  readonly #base: string;
  readonly #onUnauthorised = new Set<(e: ApiError) => void>();

  constructor(base = '') {
    this.#base = base;
    this.#session = readStoredSession();
  }

  /** The current session, if signed in. */
  get session(): Session | null {
    return this.#session;
  }

  /** Called when a call answers 401: the session is gone. */
  onUnauthorised(listener: (e: ApiError) => void): () => void {
    this.#onUnauthorised.add(listener);
    return () => this.#onUnauthorised.delete(listener);
  }

  /** Logs in and reads who we are; keeps the session for this browser tab. */
  async login(username: string, password: string): Promise<Session> {
    const answer = await this.request<{ token: string; expiresAt: string }>('POST', '/v1/auth/login', {
      body: { username, password },
      auth: false,
    });
    const me = await this.request<Me>('GET', '/v1/auth/me', { token: answer.token });
    this.#session = { token: answer.token, expiresAt: answer.expiresAt, me };
    // sessionStorage: the token dies with the tab (graded protection: no long-lived secrets at rest).
    sessionStorage.setItem(SESSION_KEY, JSON.stringify(this.#session));
    return this.#session;
  }

  /**
   * Signs in with a token instead of a password: a personal API token (csu_…) or the
   * admin token `npm start` prints. Its lifetime is the token's; a 401 ends the session.
   */
  async loginWithToken(token: string): Promise<Session> {
    const me = await this.request<Me>('GET', '/v1/auth/me', { token });
    this.#session = { token, expiresAt: new Date(Date.now() + 12 * 3600_000).toISOString(), me };
    sessionStorage.setItem(SESSION_KEY, JSON.stringify(this.#session));
    return this.#session;
  }

  /** Forgets the session. */
  logout(): void {
    this.#session = null;
    sessionStorage.removeItem(SESSION_KEY);
  }

  /** GET a JSON resource. */
  get<T>(path: string, query?: Record<string, string | number | boolean | undefined>): Promise<T> {
    return this.request<T>('GET', withQuery(path, query));
  }

  /** Any call; JSON in and out. */
  async request<T>(
    method: string,
    path: string,
    opts: {
      body?: unknown;
      /** A body sent as it is (e.g. a CSV file part) instead of JSON. */
      raw?: { contentType: string; text: string };
      auth?: boolean;
      token?: string;
      signal?: AbortSignal;
    } = {},
  ): Promise<T> {
    const headers: Record<string, string> = { accept: 'application/json' };
    const token = opts.token ?? (opts.auth === false ? undefined : this.#session?.token);
    if (token) headers.authorization = `Bearer ${token}`;
    if (opts.body !== undefined) headers['content-type'] = 'application/json';
    if (opts.raw) headers['content-type'] = opts.raw.contentType;
    let res: Response;
    try {
      res = await fetch(this.#url(path), {
        method,
        headers,
        body: opts.raw ? opts.raw.text : opts.body === undefined ? null : JSON.stringify(opts.body),
        signal: opts.signal ?? null,
      });
    } catch (e) {
      if (e instanceof DOMException && e.name === 'AbortError') throw e;
      throw new ApiError('CS_ERR_NETWORK', e instanceof Error ? e.message : String(e), 0, path);
    }
    const text = await res.text();
    let body: unknown;
    try {
      body = text ? JSON.parse(text) : undefined;
    } catch {
      body = { code: `CS_ERR_HTTP_${res.status}`, message: text.slice(0, 200) };
    }
    if (!res.ok) {
      const b = (body ?? {}) as { code?: string; message?: string; details?: unknown };
      const error = new ApiError(
        b.code ?? `CS_ERR_HTTP_${res.status}`,
        b.message ?? res.statusText,
        res.status,
        path,
        b.details,
      );
      if (res.status === 401 && opts.auth !== false && !opts.token) {
        this.logout();
        for (const l of this.#onUnauthorised) l(error);
      }
      throw error;
    }
    return body as T;
  }

  /**
   * POSTs a file as `multipart/form-data` (field `file`) with upload progress: XMLHttpRequest,
   * because fetch() reports no upload progress. Errors become ApiError like every call.
   */
  upload<T>(
    path: string,
    file: Blob,
    onProgress: (sent: number, total: number) => void,
    signal?: AbortSignal,
  ): Promise<T> {
    const form = new FormData();
    form.append('file', file);
    return new Promise<T>((resolve, reject) => {
      const xhr = new XMLHttpRequest();
      xhr.open('POST', this.#url(path));
      xhr.setRequestHeader('accept', 'application/json');
      const token = this.#session?.token;
      if (token) xhr.setRequestHeader('authorization', `Bearer ${token}`);
      xhr.upload.onprogress = (e) => onProgress(e.loaded, e.lengthComputable ? e.total : file.size);
      xhr.onerror = () => reject(new ApiError('CS_ERR_NETWORK', 'upload failed: no answer', 0, path));
      xhr.onabort = () => reject(new DOMException('upload aborted', 'AbortError'));
      xhr.onload = () => {
        let body: { code?: string; message?: string; details?: unknown } | undefined;
        try {
          body = xhr.responseText ? JSON.parse(xhr.responseText) : undefined;
        } catch {
          body = { code: `CS_ERR_HTTP_${xhr.status}`, message: xhr.responseText.slice(0, 200) };
        }
        if (xhr.status >= 200 && xhr.status < 300) return resolve(body as T);
        const error = new ApiError(
          body?.code ?? `CS_ERR_HTTP_${xhr.status}`,
          body?.message ?? xhr.statusText,
          xhr.status,
          path,
          body?.details,
        );
        if (xhr.status === 401) {
          this.logout();
          for (const l of this.#onUnauthorised) l(error);
        }
        reject(error);
      };
      signal?.addEventListener('abort', () => xhr.abort(), { once: true });
      xhr.send(form);
    });
  }

  /** Opens the live event stream (see live.ts). */
  stream(path: string, signal: AbortSignal): Promise<Response> {
    const token = this.#session?.token;
    return fetch(this.#url(path), {
      headers: { accept: 'text/event-stream', ...(token ? { authorization: `Bearer ${token}` } : {}) },
      signal,
      cache: 'no-store',
    });
  }

  #url(path: string): string {
    // Relative to the page: the hub may be served under a path prefix.
    return `${this.#base}${path.replace(/^\//, '')}`;
  }
}

function withQuery(path: string, query?: Record<string, string | number | boolean | undefined>): string {
  if (!query) return path;
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(query)) if (v !== undefined) q.set(k, String(v));
  const s = q.toString();
  return s ? `${path}?${s}` : path;
}

function readStoredSession(): Session | null {
  const raw = sessionStorage.getItem(SESSION_KEY);
  if (!raw) return null;
  try {
    const s = JSON.parse(raw) as Session;
    return Date.parse(s.expiresAt) > Date.now() ? s : null;
  } catch {
    sessionStorage.removeItem(SESSION_KEY);
    return null;
  }
}

/** The console's API client. */
export const api = new ApiClient();
