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
import type { AuditActor } from '../audit/audit-log.ts';
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

/** What a box replacement took over: the facts of the box that was replaced. */
export interface ReplacedBox {
  hardware: Partial<NodeHardware>;
  agentVersion: string | null;
  /** SHA-256 of the old box's public key (PEM), to tell boxes apart in the history. */
  publicKeySha256: string;
  enrolledAt: Date;
  replacedAt: Date | null;
}

/** Kinds of identity change kept in a node's history. */
export type NodeEventKind = 'enrolled' | 'replaced' | 'deregistered';

/** One identity change of a node (`node_events`). */
export interface NodeEvent {
  id: number;
  nodeId: string;
  at: Date;
  kind: NodeEventKind;
  /** Who did it or authorised it; null when unknown. */
  actor: AuditActor | null;
  details: Record<string, unknown>;
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

/**
 * How long a cached credential is trusted for HTTP before it is read again: another
 * hub replica may have replaced the box or deregistered the node since.
 */
const CREDENTIAL_RECHECK_MS = 5000;

const parseJson = <T>(v: T | string): T => (typeof v === 'string' ? (JSON.parse(v) as T) : v);

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
  /** node id → when its cached credential hash was last read from the database. */
  readonly #confirmedAt = new Map<string, number>();

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
    this.#confirmedAt.clear();
    const now = Date.now();
    for (const r of rows) {
      this.#credentials.set(r.id, r.credential_hash);
      this.#confirmedAt.set(r.id, now);
    }
  }

  /** True when `password` is the current MQTT credential of active node `nodeId`. */
  authenticate(nodeId: string, password: string): boolean {
    const hash = this.#credentials.get(nodeId);
    return hash !== undefined && digestEquals(hash, sha256Hex(password));
  }

  /** True when `passwordHash` (SHA-256 hex) is still the current credential of `nodeId`: sessions opened with an older one are stale. */
  isCurrent(nodeId: string, passwordHash: string): boolean {
    const hash = this.#credentials.get(nodeId);
    return hash !== undefined && digestEquals(hash, passwordHash);
  }

  /**
   * Checks node credentials for HTTP: like `authenticate`, but a cached credential
   * older than a few seconds is read again from the database, so that a box replaced
   * or a node deregistered through another hub replica is refused here too.
   */
  async verify(nodeId: string, password: string): Promise<boolean> {
    if (!(await this.isActive(nodeId))) return false;
    if (Date.now() - (this.#confirmedAt.get(nodeId) ?? 0) > CREDENTIAL_RECHECK_MS) {
      const { rows } = await this.#db.query<{ credential_hash: string }>(
        'SELECT credential_hash FROM nodes WHERE id = $1 AND deregistered_at IS NULL',
        [nodeId],
      );
      const row = rows[0];
      if (row) {
        this.#credentials.set(nodeId, row.credential_hash);
        this.#confirmedAt.set(nodeId, Date.now());
      } else {
        this.#credentials.delete(nodeId);
        this.#confirmedAt.delete(nodeId);
        return false;
      }
    }
    return this.authenticate(nodeId, password);
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
    this.#confirmedAt.set(nodeId, Date.now());
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
        `node ${id} is already enrolled: to swap its box use a replacement token (citysense token replace ${id}, or POST /v1/nodes/${id}/replacement-tokens)`,
        409,
      );
    }
    return id;
  }

  /**
   * Creates or (for a replacement) takes over a node record inside `tx`; returns fresh
   * MQTT credentials and, for a replacement, the facts of the box that was replaced.
   * Only an active node can be taken over: CS_ERR_NODE_UNKNOWN (404) otherwise.
   */
  async enroll(
    tx: Queryable,
    nodeId: string,
    facts: NodeEnrollment,
    replacing: boolean,
  ): Promise<NodeCredentials & { replacedBox: ReplacedBox | null }> {
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
    let replacedBox: ReplacedBox | null = null;
    if (replacing) {
      const { rows: before } = await tx.query<{
        hardware: Partial<NodeHardware> | string;
        agent_version: string | null;
        public_key: string;
        enrolled_at: Date;
        replaced_at: Date | null;
      }>(
        `SELECT hardware, agent_version, public_key, enrolled_at, replaced_at FROM nodes
          WHERE id = $1 AND group_id = $2 AND deregistered_at IS NULL FOR UPDATE`,
        [nodeId, this.#groupId],
      );
      const old = before[0];
      if (!old)
        throw new CitysenseError(
          'CS_ERR_NODE_UNKNOWN',
          `node ${nodeId} to replace is not an active node (deregistered or unknown): enrol the box with a new enrolment token instead`,
          404,
        );
      replacedBox = {
        hardware: parseJson(old.hardware),
        agentVersion: old.agent_version,
        publicKeySha256: sha256Hex(old.public_key),
        enrolledAt: new Date(old.enrolled_at),
        replacedAt: date(old.replaced_at),
      };
      await tx.query(
        `UPDATE nodes SET public_key = $4, credential_hash = $5, agent_version = $6, hardware = $7::jsonb,
                longitude = COALESCE($8, longitude), latitude = COALESCE($9, latitude), pole_id = COALESCE($10, pole_id),
                name = COALESCE($3, name), replaced_at = now(), online = false
          WHERE id = $1 AND group_id = $2`,
        params,
      );
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
    return { nodeId, groupId: this.#groupId, username: nodeId, password, replacedBox };
  }

  /** Makes credentials of a committed enrolment effective for MQTT (and the old ones of a replaced box void). */
  activate(nodeId: string, password: string): void {
    this.#unknown.delete(nodeId);
    this.#credentials.set(nodeId, sha256Hex(password));
    this.#confirmedAt.set(nodeId, Date.now());
  }

  /** Appends to a node's identity history inside `tx` (or on the database). */
  async recordEvent(
    tx: Queryable,
    event: {
      nodeId: string;
      kind: NodeEventKind;
      actor: AuditActor | null;
      details: Record<string, unknown>;
    },
  ): Promise<void> {
    await tx.query(
      'INSERT INTO node_events (node_id, kind, actor, details) VALUES ($1, $2, $3::jsonb, $4::jsonb)',
      [
        event.nodeId,
        event.kind,
        event.actor ? JSON.stringify(event.actor) : null,
        JSON.stringify(event.details),
      ],
    );
  }

  /** A node's identity history, oldest first; CS_ERR_NODE_UNKNOWN when the node never existed. */
  async events(nodeId: string): Promise<NodeEvent[]> {
    await this.get(nodeId);
    const { rows } = await this.#db.query<{
      id: number | string;
      node_id: string;
      at: Date;
      kind: NodeEventKind;
      actor: AuditActor | string | null;
      details: Record<string, unknown> | string;
    }>('SELECT id, node_id, at, kind, actor, details FROM node_events WHERE node_id = $1 ORDER BY id', [
      nodeId,
    ]);
    return rows.map((r) => ({
      id: Number(r.id),
      nodeId: r.node_id,
      at: new Date(r.at),
      kind: r.kind,
      actor: r.actor === null ? null : parseJson(r.actor),
      details: parseJson(r.details),
    }));
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

  /** The agency a node belongs to (`agency_nodes`), or null for a node of no agency. */
  async agencyOf(nodeId: string): Promise<string | null> {
    const { rows } = await this.#db.query<{ agency_id: string }>(
      'SELECT agency_id FROM agency_nodes WHERE node_id = $1',
      [nodeId],
    );
    return rows[0]?.agency_id ?? null;
  }

  /** Every node that belongs to an agency, with its agency (`agency_nodes`); nodes of none are absent. */
  async agencies(): Promise<Map<string, string>> {
    const { rows } = await this.#db.query<{ node_id: string; agency_id: string }>(
      'SELECT node_id, agency_id FROM agency_nodes',
    );
    return new Map(rows.map((r) => [r.node_id, r.agency_id]));
  }

  /** Deregisters a node: its credentials stop working at once; history stays. */
  async deregister(nodeId: string, actor: AuditActor | null = null): Promise<void> {
    await this.#db.transaction(async (tx) => {
      const { rows } = await tx.query(
        'UPDATE nodes SET deregistered_at = now(), online = false WHERE id = $1 AND deregistered_at IS NULL RETURNING id',
        [nodeId],
      );
      if (rows.length === 0)
        throw new CitysenseError('CS_ERR_NODE_UNKNOWN', `node ${nodeId} is not an active node`, 404);
      await this.recordEvent(tx, { nodeId, kind: 'deregistered', actor, details: {} });
    });
    this.#credentials.delete(nodeId);
    this.#confirmedAt.delete(nodeId);
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
