/**
 * The people directory: agencies, users and their role grants, in the hub's
 * database (`0070_auth.sql`). Passwords are stored as scrypt hashes only.
 */
import { CitysenseError, randomSecret } from '@citysense/protocol';
import type { Database, Queryable } from '../storage/database.ts';
import { hashPassword } from './password.ts';
import type { AgencyKind, ReviewCategory, Role, RoleGrant } from './roles.ts';

/** An agency: a district, a bureau, or the platform (big-data bureau). */
export interface Agency {
  id: string;
  name: string;
  kind: AgencyKind;
  parentId: string | null;
  createdAt: Date;
  updatedAt: Date;
}

/** A user as the API shows it (never with the password hash). */
export interface User {
  id: string;
  username: string;
  displayName: string;
  agencyId: string;
  disabled: boolean;
  roles: RoleGrant[];
  createdAt: Date;
  updatedAt: Date;
}

/** A user with what authentication needs. */
export interface UserCredentials extends User {
  passwordHash: string;
  sessionsValidAfter: Date;
}

interface AgencyRow {
  id: string;
  name: string;
  kind: AgencyKind;
  parent_id: string | null;
  created_at: Date;
  updated_at: Date;
}

interface UserRow {
  id: string;
  username: string;
  display_name: string;
  agency_id: string;
  disabled: boolean;
  password_hash: string;
  sessions_valid_after: Date;
  created_at: Date;
  updated_at: Date;
  roles: Array<{ role: Role; category: string }> | string;
}

const toAgency = (r: AgencyRow): Agency => ({
  id: r.id,
  name: r.name,
  kind: r.kind,
  parentId: r.parent_id,
  createdAt: new Date(r.created_at),
  updatedAt: new Date(r.updated_at),
});

const toCredentials = (r: UserRow): UserCredentials => {
  const raw =
    typeof r.roles === 'string' ? (JSON.parse(r.roles) as Exclude<UserRow['roles'], string>) : r.roles;
  return {
    id: r.id,
    username: r.username,
    displayName: r.display_name,
    agencyId: r.agency_id,
    disabled: r.disabled,
    roles: raw.map((g) =>
      g.category ? { role: g.role, category: g.category as ReviewCategory } : { role: g.role },
    ),
    createdAt: new Date(r.created_at),
    updatedAt: new Date(r.updated_at),
    passwordHash: r.password_hash,
    sessionsValidAfter: new Date(r.sessions_valid_after),
  };
};

/** Strips what must never leave the hub. */
export function publicUser(u: UserCredentials | User): User {
  return {
    id: u.id,
    username: u.username,
    displayName: u.displayName,
    agencyId: u.agencyId,
    disabled: u.disabled,
    roles: u.roles,
    createdAt: u.createdAt,
    updatedAt: u.updatedAt,
  };
}

const AGENCY_COLUMNS = 'id, name, kind, parent_id, created_at, updated_at';
const USER_SELECT = `SELECT u.id, u.username, u.display_name, u.agency_id, u.disabled, u.password_hash,
       u.sessions_valid_after, u.created_at, u.updated_at,
       COALESCE((SELECT json_agg(json_build_object('role', r.role, 'category', r.category)
                                 ORDER BY r.role, r.category)
                   FROM user_roles r WHERE r.user_id = u.id), '[]'::json) AS roles
  FROM users u`;

const agencyUnknown = (id: string) =>
  new CitysenseError(
    'CS_ERR_AGENCY_UNKNOWN',
    `agency ${id} does not exist: list them with GET /v1/agencies`,
    404,
  );
const userUnknown = (id: string) =>
  new CitysenseError('CS_ERR_USER_UNKNOWN', `user ${id} does not exist: list them with GET /v1/users`, 404);

/** Agencies, users and role grants. */
export class UserDirectory {
  readonly #db: Database;

  constructor(db: Database) {
    this.#db = db;
  }

  /**
   * Creates an agency or replaces its name, kind and parent (`before` is null when created).
   * Refuses a parent that is the agency or below it (CS_ERR_AGENCY_CYCLE, 409).
   */
  async putAgency(
    id: string,
    a: { name: string; kind: AgencyKind; parentId?: string | null | undefined },
  ): Promise<{ before: Agency | null; after: Agency }> {
    return this.#db.transaction(async (tx) => {
      const { rows: found } = await tx.query<AgencyRow>(
        `SELECT ${AGENCY_COLUMNS} FROM agencies WHERE id = $1 FOR UPDATE`,
        [id],
      );
      const before = found[0] ? toAgency(found[0]) : null;
      for (let p = a.parentId ?? null; p !== null; p = (await this.#agency(tx, p)).parentId)
        if (p === id)
          throw new CitysenseError(
            'CS_ERR_AGENCY_CYCLE',
            `agency ${a.parentId} is ${id} or below it: choose a parent outside ${id}`,
            409,
          );
      const { rows } = await tx.query<AgencyRow>(
        `INSERT INTO agencies (id, name, kind, parent_id) VALUES ($1, $2, $3, $4)
         ON CONFLICT (id) DO UPDATE SET name = $2, kind = $3, parent_id = $4, updated_at = now()
         RETURNING ${AGENCY_COLUMNS}`,
        [id, a.name, a.kind, a.parentId ?? null],
      );
      const row = rows[0];
      if (!row) throw agencyUnknown(id);
      return { before, after: toAgency(row) };
    });
  }

  /** Every agency, by id. */
  async listAgencies(): Promise<Agency[]> {
    const { rows } = await this.#db.query<AgencyRow>(`SELECT ${AGENCY_COLUMNS} FROM agencies ORDER BY id`);
    return rows.map(toAgency);
  }

  /** One agency; CS_ERR_AGENCY_UNKNOWN (404). */
  getAgency(id: string): Promise<Agency> {
    return this.#agency(this.#db, id);
  }

  async #agency(q: Queryable, id: string): Promise<Agency> {
    const { rows } = await q.query<AgencyRow>(`SELECT ${AGENCY_COLUMNS} FROM agencies WHERE id = $1`, [id]);
    const row = rows[0];
    if (!row) throw agencyUnknown(id);
    return toAgency(row);
  }

  /**
   * Deletes an agency that nothing refers to: users, sub-agencies, nodes, algorithm
   * grants… (else CS_ERR_AGENCY_IN_USE, 409).
   */
  async deleteAgency(id: string): Promise<Agency> {
    const before = await this.getAgency(id);
    try {
      await this.#db.query('DELETE FROM agencies WHERE id = $1', [id]);
    } catch (err) {
      // 23503 foreign_key_violation: another table still refers to the agency.
      if ((err as { code?: string }).code !== '23503') throw err;
      throw new CitysenseError(
        'CS_ERR_AGENCY_IN_USE',
        `agency ${id} is still referred to (${(err as Error).message}): move or delete its users, sub-agencies, nodes and grants first`,
        409,
      );
    }
    return before;
  }

  /** Creates a user with a scrypt-hashed password and initial grants; CS_ERR_USER_EXISTS (409). */
  async createUser(u: {
    username: string;
    displayName: string;
    agencyId: string;
    password: string;
    roles?: RoleGrant[] | undefined;
  }): Promise<User> {
    const hash = await hashPassword(u.password);
    const id = `usr_${randomSecret(9)}`;
    await this.#db.transaction(async (tx) => {
      const agency = await this.#agency(tx, u.agencyId);
      for (const grant of u.roles ?? []) assertGrantFits(grant, agency);
      const { rows } = await tx.query<{ id: string }>(
        `INSERT INTO users (id, username, display_name, agency_id, password_hash) VALUES ($1, $2, $3, $4, $5)
         ON CONFLICT (username) DO NOTHING RETURNING id`,
        [id, u.username, u.displayName, u.agencyId, hash],
      );
      if (!rows[0])
        throw new CitysenseError('CS_ERR_USER_EXISTS', `username ${u.username} is taken: pick another`, 409);
      for (const grant of u.roles ?? []) await insertGrant(tx, id, grant);
    });
    return this.getUser(id);
  }

  /** Users, optionally of one agency or with one username. */
  async listUsers(
    filter: { agencyId?: string | undefined; username?: string | undefined } = {},
  ): Promise<User[]> {
    const { rows } = await this.#db.query<UserRow>(
      `${USER_SELECT} WHERE ($1::text IS NULL OR u.agency_id = $1) AND ($2::text IS NULL OR u.username = $2)
        ORDER BY u.username LIMIT 10000`,
      [filter.agencyId ?? null, filter.username ?? null],
    );
    return rows.map((r) => publicUser(toCredentials(r)));
  }

  /** One user; CS_ERR_USER_UNKNOWN (404). */
  async getUser(id: string): Promise<User> {
    return publicUser(await this.credentials(id));
  }

  /** A user with password hash and session cut-off, by id; CS_ERR_USER_UNKNOWN (404). */
  async credentials(id: string, q: Queryable = this.#db): Promise<UserCredentials> {
    const { rows } = await q.query<UserRow>(`${USER_SELECT} WHERE u.id = $1`, [id]);
    const row = rows[0];
    if (!row) throw userUnknown(id);
    return toCredentials(row);
  }

  /** A user with password hash, by username; null when unknown. */
  async credentialsByUsername(username: string): Promise<UserCredentials | null> {
    const { rows } = await this.#db.query<UserRow>(`${USER_SELECT} WHERE u.username = $1`, [username]);
    return rows[0] ? toCredentials(rows[0]) : null;
  }

  /** Changes display name, agency or the disabled flag; disabling ends the user's sessions. */
  async updateUser(
    id: string,
    patch: {
      displayName?: string | undefined;
      agencyId?: string | undefined;
      disabled?: boolean | undefined;
    },
  ): Promise<{ before: User; after: User }> {
    const before = await this.#db.transaction(async (tx) => {
      const current = await this.credentials(id, tx);
      if (patch.agencyId !== undefined && patch.agencyId !== current.agencyId) {
        const agency = await this.#agency(tx, patch.agencyId);
        for (const grant of current.roles) assertGrantFits(grant, agency);
      }
      await tx.query(
        `UPDATE users SET display_name = $2, agency_id = $3, disabled = $4, updated_at = now(),
                sessions_valid_after = CASE WHEN $4 AND NOT disabled THEN now() ELSE sessions_valid_after END
          WHERE id = $1`,
        [
          id,
          patch.displayName ?? current.displayName,
          patch.agencyId ?? current.agencyId,
          patch.disabled ?? current.disabled,
        ],
      );
      return publicUser(current);
    });
    return { before, after: await this.getUser(id) };
  }

  /** Replaces a user's password and ends their sessions. */
  async setPassword(id: string, password: string): Promise<void> {
    const hash = await hashPassword(password);
    const { affectedRows } = await this.#db.query(
      `UPDATE users SET password_hash = $2, sessions_valid_after = now(), updated_at = now() WHERE id = $1`,
      [id, hash],
    );
    if (affectedRows === 0) throw userUnknown(id);
  }

  /** Stores a rehashed password without ending sessions (parameter upgrade at login). */
  async rehash(id: string, password: string): Promise<void> {
    await this.#db.query('UPDATE users SET password_hash = $2 WHERE id = $1', [
      id,
      await hashPassword(password),
    ]);
  }

  /** Adds a grant (no-op when held); platform-admin only for users of a platform agency. */
  async grant(id: string, grant: RoleGrant): Promise<{ before: User; after: User }> {
    const before = await this.getUser(id);
    await this.#db.transaction(async (tx) => {
      const user = await this.credentials(id, tx);
      assertGrantFits(grant, await this.#agency(tx, user.agencyId));
      await insertGrant(tx, id, grant);
      await tx.query('UPDATE users SET updated_at = now() WHERE id = $1', [id]);
    });
    return { before, after: await this.getUser(id) };
  }

  /** Removes a grant; CS_ERR_ROLE_NOT_HELD (404) when the user does not hold it. */
  async revoke(id: string, grant: RoleGrant): Promise<{ before: User; after: User }> {
    const before = await this.getUser(id);
    const { affectedRows } = await this.#db.query(
      'DELETE FROM user_roles WHERE user_id = $1 AND role = $2 AND category = $3',
      [id, grant.role, grant.category ?? ''],
    );
    if (affectedRows === 0)
      throw new CitysenseError(
        'CS_ERR_ROLE_NOT_HELD',
        `user ${before.username} does not hold ${grant.role}${grant.category ? `:${grant.category}` : ''}`,
        404,
      );
    return { before, after: await this.getUser(id) };
  }

  /** Deletes a user and their API tokens; the audit log keeps their username. */
  async deleteUser(id: string): Promise<User> {
    const before = await this.getUser(id);
    await this.#db.query('DELETE FROM users WHERE id = $1', [id]);
    return before;
  }
}

/** Refuses grants that do not fit the user's agency. */
function assertGrantFits(grant: RoleGrant, agency: Agency): void {
  if (grant.role === 'platform-admin' && agency.kind !== 'platform')
    throw new CitysenseError(
      'CS_ERR_ROLE_SCOPE',
      `platform-admin is for users of the platform agency (big-data bureau); ${agency.id} is a ${agency.kind}`,
      409,
    );
  if ((grant.role === 'reviewer') !== (grant.category !== undefined))
    throw new CitysenseError(
      'CS_ERR_ROLE_CATEGORY',
      grant.role === 'reviewer'
        ? 'a reviewer grant needs a category: video, urban-operations or hazard-monitoring'
        : `${grant.role} takes no category; only reviewers have one`,
      400,
    );
}

async function insertGrant(tx: Queryable, userId: string, grant: RoleGrant): Promise<void> {
  await tx.query(
    `INSERT INTO user_roles (user_id, role, category) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING`,
    [userId, grant.role, grant.category ?? ''],
  );
}
