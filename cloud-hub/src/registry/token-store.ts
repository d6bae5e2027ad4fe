import { CitysenseError, randomSecret, sha256Hex } from '@citysense/protocol';
import type { AuditActor } from '../audit/audit-log.ts';
import type { Database, Queryable } from '../storage/database.ts';

/** An enrolment token as listed by the API (the secret itself is shown only once, at creation). */
export interface EnrollmentToken {
  id: string;
  name: string | null;
  replacesNode: string | null;
  createdAt: Date;
  expiresAt: Date;
  usedAt: Date | null;
  usedByNode: string | null;
  /** Who issued the token (null for tokens from before box replacement was recorded). */
  issuedBy: AuditActor | null;
}

/** A newly created token, with its secret. */
export interface CreatedToken extends EnrollmentToken {
  token: string;
}

interface TokenRow {
  id: string;
  name: string | null;
  replaces_node: string | null;
  created_at: Date;
  expires_at: Date;
  used_at: Date | null;
  used_by_node: string | null;
  issued_by: AuditActor | string | null;
}

const toToken = (r: TokenRow): EnrollmentToken => ({
  id: r.id,
  name: r.name,
  replacesNode: r.replaces_node,
  createdAt: new Date(r.created_at),
  expiresAt: new Date(r.expires_at),
  usedAt: r.used_at ? new Date(r.used_at) : null,
  usedByNode: r.used_by_node,
  issuedBy: typeof r.issued_by === 'string' ? (JSON.parse(r.issued_by) as AuditActor) : r.issued_by,
});

const TOKEN_COLUMNS = 'id, name, replaces_node, created_at, expires_at, used_at, used_by_node, issued_by';

const DURATION = /^(\d+)\s*(s|m|h|d)$/;
const UNIT_MS: Record<string, number> = { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** Parses `90s`, `15m`, `24h`, `7d` into milliseconds; throws CS_ERR_DURATION_INVALID. */
export function parseDuration(text: string): number {
  const m = DURATION.exec(text.trim());
  const unit = m?.[2];
  if (!m || !unit) {
    throw new CitysenseError(
      'CS_ERR_DURATION_INVALID',
      `duration "${text}" is not valid: use e.g. 30m, 24h or 7d`,
      400,
    );
  }
  const ms = Number(m[1]) * (UNIT_MS[unit] ?? 0);
  if (ms <= 0 || ms > 365 * 86_400_000) {
    throw new CitysenseError(
      'CS_ERR_DURATION_INVALID',
      `duration "${text}" must be between 1s and 365d`,
      400,
    );
  }
  return ms;
}

/**
 * One-time enrolment tokens, and replacement tokens (`replacesNode` set): the same
 * store, the same one-time and expiry rules. Only a SHA-256 of each token is stored.
 */
export class TokenStore {
  readonly #db: Database;

  constructor(db: Database) {
    this.#db = db;
  }

  /** Creates a token valid for `ttlMs`; `replacesNode` makes it a replacement token for that node. */
  async create(opts: {
    name?: string | undefined;
    ttlMs: number;
    replacesNode?: string | undefined;
    issuedBy?: AuditActor | undefined;
  }): Promise<CreatedToken> {
    const token = `cst_${randomSecret(24)}`;
    const id = `tok_${randomSecret(6)}`;
    const { rows } = await this.#db.query<TokenRow>(
      `INSERT INTO enrollment_tokens (id, token_hash, name, replaces_node, expires_at, issued_by)
       VALUES ($1, $2, $3, $4, now() + make_interval(secs => $5), $6::jsonb)
       RETURNING ${TOKEN_COLUMNS}`,
      [
        id,
        sha256Hex(token),
        opts.name ?? null,
        opts.replacesNode ?? null,
        opts.ttlMs / 1000,
        opts.issuedBy ? JSON.stringify(opts.issuedBy) : null,
      ],
    );
    const row = rows[0];
    if (!row) throw new CitysenseError('CS_ERR_DB', 'token insert returned no row', 500);
    return { ...toToken(row), token };
  }

  /** Lists tokens, newest first. */
  async list(): Promise<EnrollmentToken[]> {
    const { rows } = await this.#db.query<TokenRow>(
      `SELECT ${TOKEN_COLUMNS}
         FROM enrollment_tokens ORDER BY created_at DESC LIMIT 1000`,
    );
    return rows.map(toToken);
  }

  /**
   * Marks a token used inside the caller's transaction (the caller records which
   * node used it), so that a token can never produce two identities. Throws CS_ERR_TOKEN_UNKNOWN / _USED / _EXPIRED.
   */
  async consume(tx: Queryable, token: string): Promise<EnrollmentToken> {
    const { rows } = await tx.query<TokenRow & { expired: boolean }>(
      `SELECT ${TOKEN_COLUMNS}, expires_at < now() AS expired
         FROM enrollment_tokens WHERE token_hash = $1 FOR UPDATE`,
      [sha256Hex(token)],
    );
    const row = rows[0];
    if (!row) {
      throw new CitysenseError(
        'CS_ERR_TOKEN_UNKNOWN',
        'enrolment token is unknown: ask the operator for a new one (citysense token create)',
        401,
      );
    }
    const what = row.replaces_node ? `replacement token for node ${row.replaces_node}` : 'enrolment token';
    const fresh = row.replaces_node
      ? `citysense token replace ${row.replaces_node}`
      : 'citysense token create';
    if (row.used_at) {
      throw new CitysenseError(
        'CS_ERR_TOKEN_USED',
        `${what} was already used by node ${row.used_by_node}: tokens are one-time, ask for a new one (${fresh})`,
        409,
      );
    }
    if (row.expired) {
      throw new CitysenseError(
        'CS_ERR_TOKEN_EXPIRED',
        `${what} expired at ${new Date(row.expires_at).toISOString()}: ask for a new one (${fresh})`,
        401,
      );
    }
    await tx.query('UPDATE enrollment_tokens SET used_at = now() WHERE id = $1', [row.id]);
    return toToken(row);
  }
}
