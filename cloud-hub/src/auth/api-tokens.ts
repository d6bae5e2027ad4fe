/**
 * Personal API tokens (`csu_…`) for scripts and integrations: named, owned by a
 * user, with an expiry; only a SHA-256 of each token is stored, and the secret is
 * shown once. A token acts with its owner's current roles.
 */
import { CitysenseError, randomSecret, sha256Hex } from '@citysense/protocol';
import type { Database } from '../storage/database.ts';

/** Prefix of user API tokens (enrolment tokens are `cst_`, the admin token `csa_`). */
export const API_TOKEN_PREFIX = 'csu_';

/** An API token as listed (without its secret). */
export interface ApiToken {
  id: string;
  name: string;
  userId: string;
  createdAt: Date;
  expiresAt: Date;
  lastUsedAt: Date | null;
}

interface ApiTokenRow {
  id: string;
  name: string;
  user_id: string;
  created_at: Date;
  expires_at: Date;
  last_used_at: Date | null;
}

const COLUMNS = 'id, name, user_id, created_at, expires_at, last_used_at';
const toToken = (r: ApiTokenRow): ApiToken => ({
  id: r.id,
  name: r.name,
  userId: r.user_id,
  createdAt: new Date(r.created_at),
  expiresAt: new Date(r.expires_at),
  lastUsedAt: r.last_used_at ? new Date(r.last_used_at) : null,
});

/** API tokens of users. */
export class ApiTokenStore {
  readonly #db: Database;

  constructor(db: Database) {
    this.#db = db;
  }

  /** Creates a token for `userId` valid for `ttlMs`; the secret is in the answer only. */
  async create(userId: string, name: string, ttlMs: number): Promise<ApiToken & { token: string }> {
    const token = `${API_TOKEN_PREFIX}${randomSecret(24)}`;
    const { rows } = await this.#db.query<ApiTokenRow>(
      `INSERT INTO api_tokens (id, token_hash, name, user_id, expires_at)
       VALUES ($1, $2, $3, $4, now() + make_interval(secs => $5)) RETURNING ${COLUMNS}`,
      [`apt_${randomSecret(6)}`, sha256Hex(token), name, userId, ttlMs / 1000],
    );
    const row = rows[0];
    if (!row) throw new CitysenseError('CS_ERR_DB', 'token insert returned no row', 500);
    return { ...toToken(row), token };
  }

  /** Live (not revoked) tokens of a user, newest first, expired ones included. */
  async list(userId: string): Promise<ApiToken[]> {
    const { rows } = await this.#db.query<ApiTokenRow>(
      `SELECT ${COLUMNS} FROM api_tokens WHERE user_id = $1 AND revoked_at IS NULL ORDER BY created_at DESC`,
      [userId],
    );
    return rows.map(toToken);
  }

  /** Revokes a token of `userId` (any user's when null); CS_ERR_AUTH_TOKEN_UNKNOWN (404). */
  async revoke(id: string, userId: string | null): Promise<ApiToken> {
    const { rows } = await this.#db.query<ApiTokenRow>(
      `UPDATE api_tokens SET revoked_at = now()
        WHERE id = $1 AND ($2::text IS NULL OR user_id = $2) AND revoked_at IS NULL RETURNING ${COLUMNS}`,
      [id, userId],
    );
    const row = rows[0];
    if (!row)
      throw new CitysenseError(
        'CS_ERR_AUTH_TOKEN_UNKNOWN',
        `API token ${id} does not exist or is already revoked: list yours with GET /v1/auth/tokens`,
        404,
      );
    return toToken(row);
  }

  /** The owner of a live token, or null; notes its use (at most once a minute). */
  async owner(token: string): Promise<string | null> {
    const { rows } = await this.#db.query<{ id: string; user_id: string; stale: boolean }>(
      `SELECT id, user_id, (last_used_at IS NULL OR last_used_at < now() - interval '1 minute') AS stale
         FROM api_tokens WHERE token_hash = $1 AND revoked_at IS NULL AND expires_at > now()`,
      [sha256Hex(token)],
    );
    const row = rows[0];
    if (!row) return null;
    if (row.stale) await this.#db.query('UPDATE api_tokens SET last_used_at = now() WHERE id = $1', [row.id]);
    return row.user_id;
  }
}
