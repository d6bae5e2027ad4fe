import { randomBytes } from 'node:crypto';
import {
  assertValidId,
  CitysenseError,
  digestEquals,
  isValidId,
  type NodeHardware,
  randomSecret,
  sha256Hex,
} from '@citysense/protocol';
import type { Database, Queryable } from '../storage/database.ts';

/** An edge compute node in the registry. */
export interface EdgeNode {
  id: string;
  groupId: string;
  name: string | null;
  agentVersion: string | null;
  hardware: Partial<NodeHardware>;
  location: { lon: number; lat: number } | null;
  poleId: string | null;
  enrolledAt: Date;
  replacedAt: Date | null;
  deregisteredAt: Date | null;
  online: boolean;
  lastSeen: Date | null;
  lastBirthAt: Date | null;
  lastDeathAt: Date | null;
}

/** What a node gets back from enrolment. */
export interface NodeCredentials {
  nodeId: string;
  groupId: string;
  username: string;
  password: string;
}

/** The facts a node sends to enrol. */
export interface NodeEnrollment {
  publicKey: string;
  name?: string | undefined;
  agentVersion?: string | undefined;
  hardware?: Partial<NodeHardware> | undefined;
  location?: { lon: number; lat: number } | undefined;
  poleId?: string | undefined;
}

interface NodeRow {
  id: string;
  group_id: string;
  name: string | null;
  agent_version: string | null;
  hardware: Partial<NodeHardware> | string;
  longitude: number | null;
  latitude: number | null;
  pole_id: string | null;
  enrolled_at: Date;
  replaced_at: Date | null;
  deregistered_at: Date | null;
  online: boolean;
  last_seen: Date | null;
  last_birth_at: Date | null;
  last_death_at: Date | null;
}

const NODE_COLUMNS = `id, group_id, name, agent_version, hardware, longitude, latitude, pole_id, enrolled_at,
  replaced_at, deregistered_at, online, last_seen, last_birth_at, last_death_at`;

const date = (d: Date | null): Date | null => (d ? new Date(d) : null);

const toNode = (r: NodeRow): EdgeNode => ({
  id: r.id,
  groupId: r.group_id,
  name: r.name,
  agentVersion: r.agent_version,
  hardware: typeof r.hardware === 'string' ? (JSON.parse(r.hardware) as Partial<NodeHardware>) : r.hardware,
  location: r.longitude !== null && r.latitude !== null ? { lon: r.longitude, lat: r.latitude } : null,
  poleId: r.pole_id,
  enrolledAt: new Date(r.enrolled_at),
  replacedAt: date(r.replaced_at),
  deregisteredAt: date(r.deregistered_at),
  online: r.online,
  lastSeen: date(r.last_seen),
  lastBirthAt: date(r.last_birth_at),
  lastDeathAt: date(r.last_death_at),
});

/** How long a "not enrolled" answer from the database is trusted. */
const UNKNOWN_NODE_TTL_MS = 5000;

/** Generates a node id for a token without a name: `gw-` and 8 hex digits. */
export function generateNodeId(): string {
  return `gw-${randomBytes(4).toString('hex')}`;
}

/**
 * The registry of edge compute nodes (001 Art. 49(二)): enrolment, credentials,
 * online state. MQTT credentials are checked on every connect, so their hashes are
 * cached in memory and refreshed on every change made through this class.
 */
export class NodeRegistry {
  readonly #db: Database;
  readonly #groupId: string;
  /** node id → SHA-256 of its MQTT password, for active nodes only. */
  readonly #credentials = new Map<string, string>();
  /** node id → when the database last said it is not an active node. */
  readonly #unknown = new Map<string, number>();

  constructor(db: Database, groupId: string) {
    this.#db = db;
    this.#groupId = groupId;
  }

  /** Loads credential hashes of active nodes. */
  async load(): Promise<void> {
    const { rows } = await this.#db.query<{ id: string; credential_hash: string }>(
      'SELECT id, credential_hash FROM nodes WHERE deregistered_at IS NULL',
    );
    this.#credentials.clear();
    for (const r of rows) this.#credentials.set(r.id, r.credential_hash);
  }

  /** True when `password` is the current MQTT credential of active node `nodeId`. */
  authenticate(nodeId: string, password: string): boolean {
    const hash = this.#credentials.get(nodeId);
    return hash !== undefined && digestEquals(hash, sha256Hex(password));
  }

  /**
   * True when `nodeId` is enrolled and not deregistered. Another hub replica may
   * have enrolled it since we loaded: a miss is checked in the database, and a
   * negative answer is remembered briefly so that garbage cannot hammer the database.
   */
  async isActive(nodeId: string): Promise<boolean> {
    if (this.#credentials.has(nodeId)) return true;
    const refusedAt = this.#unknown.get(nodeId);
    if (refusedAt !== undefined && Date.now() - refusedAt < UNKNOWN_NODE_TTL_MS) return false;
    const { rows } = await this.#db.query<{ credential_hash: string }>(
      'SELECT credential_hash FROM nodes WHERE id = $1 AND deregistered_at IS NULL',
      [nodeId],
    );
    const row = rows[0];
    if (!row) {
      if (this.#unknown.size > 10_000) this.#unknown.clear();
      this.#unknown.set(nodeId, Date.now());
      return false;
    }
    this.#unknown.delete(nodeId);
    this.#credentials.set(nodeId, row.credential_hash);
    return true;
  }

  /** Picks the node id for an enrolment: the replaced node, the token's name, or a generated id. */
  async chooseNodeId(
    tx: Queryable,
    token: { name: string | null; replacesNode: string | null },
  ): Promise<string> {
    if (token.replacesNode) return token.replacesNode;
    const id = token.name && isValidId(token.name) ? token.name : generateNodeId();
    const { rows } = await tx.query('SELECT 1 FROM nodes WHERE id = $1 AND deregistered_at IS NULL', [id]);
    if (rows.length > 0) {
      throw new CitysenseError(
        'CS_ERR_NODE_EXISTS',
        `node ${id} is already enrolled: to swap its box use a replacement token (POST /v1/nodes/${id}/replace)`,
        409,
      );
    }
    return id;
  }

  /** Creates or (for a replacement) takes over a node record inside `tx`; returns fresh MQTT credentials. */
  async enroll(
    tx: Queryable,
    nodeId: string,
    facts: NodeEnrollment,
    replacing: boolean,
  ): Promise<NodeCredentials> {
    assertValidId(nodeId, 'node id');
    const password = randomSecret(24);
    const hash = sha256Hex(password);
    const params = [
      nodeId,
      this.#groupId,
      facts.name ?? null,
      facts.publicKey,
      hash,
      facts.agentVersion ?? null,
      JSON.stringify(facts.hardware ?? {}),
      facts.location?.lon ?? null,
      facts.location?.lat ?? null,
      facts.poleId ?? null,
    ];
    if (replacing) {
      const { rows } = await tx.query(
        `UPDATE nodes SET public_key = $4, credential_hash = $5, agent_version = $6, hardware = $7::jsonb,
                longitude = COALESCE($8, longitude), latitude = COALESCE($9, latitude), pole_id = COALESCE($10, pole_id),
                name = COALESCE($3, name), replaced_at = now(), deregistered_at = NULL, online = false
          WHERE id = $1 AND group_id = $2 RETURNING id`,
        params,
      );
      if (rows.length === 0)
        throw new CitysenseError('CS_ERR_NODE_UNKNOWN', `node ${nodeId} to replace does not exist`, 404);
    } else {
      await tx.query(
        `INSERT INTO nodes (id, group_id, name, public_key, credential_hash, agent_version, hardware, longitude, latitude, pole_id)
         VALUES ($1, $2, $3, $4, $5, $6, $7::jsonb, $8, $9, $10)
         ON CONFLICT (id) DO UPDATE SET group_id = $2, name = $3, public_key = $4, credential_hash = $5,
           agent_version = $6, hardware = $7::jsonb, longitude = $8, latitude = $9, pole_id = $10,
           enrolled_at = now(), replaced_at = NULL, deregistered_at = NULL, online = false, last_seen = NULL`,
        params,
      );
    }
    return { nodeId, groupId: this.#groupId, username: nodeId, password };
  }

  /** Makes credentials of a committed enrolment effective for MQTT. */
  activate(nodeId: string, password: string): void {
    this.#unknown.delete(nodeId);
    this.#credentials.set(nodeId, sha256Hex(password));
  }

  /** Lists nodes; deregistered ones only when asked. */
  async list(opts: { includeDeregistered?: boolean } = {}): Promise<EdgeNode[]> {
    const where = opts.includeDeregistered ? '' : 'WHERE deregistered_at IS NULL';
    const { rows } = await this.#db.query<NodeRow>(`SELECT ${NODE_COLUMNS} FROM nodes ${where} ORDER BY id`);
    return rows.map(toNode);
  }

  /** One node; throws CS_ERR_NODE_UNKNOWN. */
  async get(nodeId: string): Promise<EdgeNode> {
    const { rows } = await this.#db.query<NodeRow>(`SELECT ${NODE_COLUMNS} FROM nodes WHERE id = $1`, [
      nodeId,
    ]);
    const row = rows[0];
    if (!row) throw new CitysenseError('CS_ERR_NODE_UNKNOWN', `node ${nodeId} is not enrolled`, 404);
    return toNode(row);
  }

  /** Deregisters a node: its credentials stop working at once; history stays. */
  async deregister(nodeId: string): Promise<void> {
    const { rows } = await this.#db.query(
      'UPDATE nodes SET deregistered_at = now(), online = false WHERE id = $1 AND deregistered_at IS NULL RETURNING id',
      [nodeId],
    );
    if (rows.length === 0)
      throw new CitysenseError('CS_ERR_NODE_UNKNOWN', `node ${nodeId} is not an active node`, 404);
    this.#credentials.delete(nodeId);
  }

  /** Records a Sparkplug NBIRTH: online, with session number and agent version. */
  async markBirth(nodeId: string, bdSeq: number | null, agentVersion: string | null): Promise<void> {
    await this.#db.query(
      `UPDATE nodes SET online = true, last_birth_at = now(), last_seen = now(), bd_seq = $2,
              agent_version = COALESCE($3, agent_version) WHERE id = $1`,
      [nodeId, bdSeq, agentVersion],
    );
  }

  /** Records a Sparkplug NDEATH (or a lost connection): offline. */
  async markDeath(nodeId: string): Promise<void> {
    await this.#db.query('UPDATE nodes SET online = false, last_death_at = now() WHERE id = $1', [nodeId]);
  }

  /** Persists last-seen times collected in memory. */
  async touch(lastSeen: Map<string, number>): Promise<void> {
    if (lastSeen.size === 0) return;
    await this.#db.query(
      `UPDATE nodes n SET last_seen = to_timestamp(u.ms / 1000.0)
         FROM unnest($1::text[], $2::float8[]) AS u(id, ms)
        WHERE n.id = u.id AND (n.last_seen IS NULL OR n.last_seen < to_timestamp(u.ms / 1000.0))`,
      [[...lastSeen.keys()], [...lastSeen.values()]],
    );
  }

  /** Marks every node offline (hub start: sessions are re-established by births). */
  async markAllOffline(): Promise<void> {
    await this.#db.query('UPDATE nodes SET online = false WHERE online');
  }
}
