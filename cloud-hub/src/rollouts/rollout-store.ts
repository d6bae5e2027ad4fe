/**
 * Named queries every staged rollout shares (algorithm deployments, OTA campaigns):
 * their target-node rows, recorded transitions, each node's holdings (the rollout it
 * has per slot: per algorithm, per OTA target) and the revision of that document.
 * Each kind has its own tables (deployments/migrations, ota/migrations); a
 * `RolloutTables` names them. Rows in, records out, no decisions.
 */
import type { Queryable } from '../storage/database.ts';
import type { RolloutStage } from './rollout.ts';

/** The embedded engine returns jsonb parsed, some drivers as text. */
export const json = <T>(v: T | string): T => (typeof v === 'string' ? (JSON.parse(v) as T) : v);
/** A bigint column (text from some drivers) as a number. */
export const int = (v: number | string | null): number | null => (v === null ? null : Number(v));
/** A nullable timestamptz as a Date. */
export const date = (d: Date | null): Date | null => (d ? new Date(d) : null);

/** The tables and key columns of one kind of rollout, from its migration. */
export interface RolloutTables {
  /** The rollouts (`deployments`, `ota_campaigns`). */
  rollouts: string;
  /** Their target nodes, keyed by (`rolloutColumn`, `node_id`). */
  nodes: string;
  /** Recorded transitions of a rollout and its nodes. */
  events: string;
  /** The column naming the rollout in the node, event and holdings tables (`deployment_id`). */
  rolloutColumn: string;
  /** The column of the rollout (and of holdings) naming what a node holds one of (`algorithm_id`, `target`). */
  slotColumn: string;
  /** Which rollout each node holds per slot (`node_assignments`). */
  holdings: string;
  /** Per node, the revision of its holdings document (`node_assignment_revisions`). */
  revisions: string;
  /** The rollout in texts: `deployment`, `campaign`. */
  noun: string;
}

/** The columns every kind's node row has, as records. */
export interface RolloutNodeRecord<S extends string> {
  nodeId: string;
  canary: boolean;
  state: S;
  progress: number | null;
  reason: string | null;
  code: string | null;
  assignedRevision: number | null;
  reportedRevision: number | null;
  failedAt: Date | null;
  failureAcknowledged: boolean;
  reportedAt: Date | null;
  updatedAt: Date;
}

/** The columns every kind's node row has, as the driver returns them. */
export interface RolloutNodeRow<S extends string> {
  node_id: string;
  canary: boolean;
  state: S;
  progress: number | null;
  reason: string | null;
  code: string | null;
  assigned_revision: number | string | null;
  reported_revision: number | string | null;
  failed_at: Date | null;
  failure_acknowledged: boolean;
  reported_at: Date | null;
  updated_at: Date;
}

/** The shared columns of a node row as a record; each kind adds its own. */
export const rolloutNodeFromRow = <S extends string>(r: RolloutNodeRow<S>): RolloutNodeRecord<S> => ({
  nodeId: r.node_id,
  canary: r.canary,
  state: r.state,
  progress: r.progress === null ? null : Number(r.progress),
  reason: r.reason,
  code: r.code,
  assignedRevision: int(r.assigned_revision),
  reportedRevision: int(r.reported_revision),
  failedAt: date(r.failed_at),
  failureAcknowledged: r.failure_acknowledged,
  reportedAt: date(r.reported_at),
  updatedAt: new Date(r.updated_at),
});

/** Columns of a node row every rollout changes. */
export interface RolloutNodePatch<S extends string> {
  canary?: boolean;
  state?: S;
  progress?: number | null;
  reason?: string | null;
  code?: string | null;
  assignedRevision?: number | null;
  reportedRevision?: number | null;
  failedAt?: Date | null;
  failureAcknowledged?: boolean;
  reportedAt?: Date | null;
}

/** Column of each `RolloutNodePatch` key. */
export const NODE_PATCH_COLUMNS: Record<keyof RolloutNodePatch<string>, string> = {
  canary: 'canary',
  state: 'state',
  progress: 'progress',
  reason: 'reason',
  code: 'code',
  assignedRevision: 'assigned_revision',
  reportedRevision: 'reported_revision',
  failedAt: 'failed_at',
  failureAcknowledged: 'failure_acknowledged',
  reportedAt: 'reported_at',
};

/** One recorded transition. */
export interface RolloutEvent {
  nodeId: string | null;
  fromState: string | null;
  toState: string;
  actor: string;
  reason: string | null;
  at: Date;
}

/** A transition to record: of the rollout (`nodeId` null) or of one of its nodes. */
export interface NewRolloutEvent {
  rolloutId: string;
  nodeId: string | null;
  from: string | null;
  to: string;
  actor: string;
  reason: string | null;
}

/** How one kind's rollout and node rows read and change. */
export interface RolloutRowShape<R, N, P> {
  /** Its rollout columns, comma-separated, for SELECT. */
  rolloutColumns: string;
  /** A rollout row as the driver returns it → record. */
  toRollout: (row: never) => R;
  /** Its node columns, comma-separated, for SELECT. */
  columns: string;
  /** A node row as the driver returns it → record. */
  toNode: (row: never) => N;
  /** Column of each patch key. */
  patchColumns: Record<keyof P & string, string>;
  /** Patch keys stored as jsonb. */
  jsonKeys?: ReadonlySet<string>;
}

/**
 * The shared queries of one kind of rollout: `R` its rollout record, `N` its node
 * record, `S` its node states, `D` its rollout states, `P` its node patch.
 */
export class RolloutStore<
  R,
  N extends RolloutNodeRecord<S>,
  S extends string,
  D extends string,
  P extends RolloutNodePatch<S>,
> {
  readonly tables: RolloutTables;
  readonly #shape: RolloutRowShape<R, N, P>;

  constructor(tables: RolloutTables, shape: RolloutRowShape<R, N, P>) {
    this.tables = tables;
    this.#shape = shape;
  }

  /** One rollout, optionally locked for the rest of the transaction. */
  async find(q: Queryable, id: string, lock = false): Promise<R | undefined> {
    const { rows } = await q.query<never>(
      `SELECT ${this.#shape.rolloutColumns} FROM ${this.tables.rollouts} WHERE id = $1${lock ? ' FOR UPDATE' : ''}`,
      [id],
    );
    const row = rows[0];
    return row ? this.#shape.toRollout(row) : undefined;
  }

  /** Rollouts, newest first; a filter column whose value is undefined is not filtered on. */
  async list(q: Queryable, filters: Record<string, string | undefined>, limit: number): Promise<R[]> {
    const columns = Object.keys(filters);
    const where = columns.map((c, i) => `($${i + 1}::text IS NULL OR ${c} = $${i + 1})`).join(' AND ');
    const { rows } = await q.query<never>(
      `SELECT ${this.#shape.rolloutColumns} FROM ${this.tables.rollouts}
      WHERE ${where}
      ORDER BY created_at DESC, id LIMIT $${columns.length + 1}`,
      [...columns.map((c) => filters[c] ?? null), limit],
    );
    return rows.map(this.#shape.toRollout);
  }

  /** Inserts target node rows. */
  async insertNodes(
    q: Queryable,
    rolloutId: string,
    rows: Array<{ nodeId: string; state: S; reason: string | null; code: string | null }>,
  ): Promise<void> {
    if (rows.length === 0) return;
    const t = this.tables;
    await q.query(
      `INSERT INTO ${t.nodes} (${t.rolloutColumn}, node_id, state, reason, code)
     SELECT $1::text, u.node_id, u.state, u.reason, u.code
       FROM unnest($2::text[], $3::text[], $4::text[], $5::text[]) AS u(node_id, state, reason, code)`,
      [
        rolloutId,
        rows.map((r) => r.nodeId),
        rows.map((r) => r.state),
        rows.map((r) => r.reason),
        rows.map((r) => r.code),
      ],
    );
  }

  /** Target nodes of a rollout, by id. */
  async nodesOf(q: Queryable, rolloutId: string): Promise<N[]> {
    const t = this.tables;
    const { rows } = await q.query<never>(
      `SELECT ${this.#shape.columns} FROM ${t.nodes} WHERE ${t.rolloutColumn} = $1 ORDER BY node_id`,
      [rolloutId],
    );
    return rows.map(this.#shape.toNode);
  }

  /** One target node of a rollout, optionally locked. */
  async findNode(q: Queryable, rolloutId: string, nodeId: string, lock = false): Promise<N | undefined> {
    const t = this.tables;
    const { rows } = await q.query<never>(
      `SELECT ${this.#shape.columns} FROM ${t.nodes} WHERE ${t.rolloutColumn} = $1 AND node_id = $2${lock ? ' FOR UPDATE' : ''}`,
      [rolloutId, nodeId],
    );
    const row = rows[0];
    return row ? this.#shape.toNode(row) : undefined;
  }

  /** Updates a node row; undefined values are left alone. */
  async patchNode(q: Queryable, rolloutId: string, nodeId: string, patch: P): Promise<void> {
    const sets: string[] = [];
    const params: unknown[] = [rolloutId, nodeId];
    const jsonKeys = this.#shape.jsonKeys ?? new Set();
    for (const [key, value] of Object.entries(patch) as Array<[keyof P & string, unknown]>) {
      if (value === undefined) continue;
      const asJson = jsonKeys.has(key);
      params.push(asJson && value !== null ? JSON.stringify(value) : value);
      sets.push(`${this.#shape.patchColumns[key]} = $${params.length}${asJson ? '::jsonb' : ''}`);
    }
    const t = this.tables;
    await q.query(
      `UPDATE ${t.nodes} SET ${[...sets, 'updated_at = now()'].join(', ')}
      WHERE ${t.rolloutColumn} = $1 AND node_id = $2`,
      params,
    );
  }

  /** Node counts per state of each of `ids`. */
  async countNodes(q: Queryable, ids: string[]): Promise<Map<string, Partial<Record<S, number>>>> {
    const t = this.tables;
    const { rows } = await q.query<{ rollout_id: string; state: S; n: number | string }>(
      `SELECT ${t.rolloutColumn} AS rollout_id, state, count(*) AS n FROM ${t.nodes}
      WHERE ${t.rolloutColumn} = ANY($1::text[]) GROUP BY ${t.rolloutColumn}, state`,
      [ids],
    );
    const out = new Map<string, Partial<Record<S, number>>>();
    for (const r of rows) {
      const counts: Partial<Record<S, number>> = out.get(r.rollout_id) ?? {};
      counts[r.state] = Number(r.n);
      out.set(r.rollout_id, counts);
    }
    return out;
  }

  /** Acknowledges every failure of a rollout (resume); returns how many. */
  async acknowledgeFailures(q: Queryable, rolloutId: string): Promise<number> {
    const t = this.tables;
    const { rows } = await q.query<{ node_id: string }>(
      `UPDATE ${t.nodes} SET failure_acknowledged = true
      WHERE ${t.rolloutColumn} = $1 AND failed_at IS NOT NULL AND NOT failure_acknowledged RETURNING node_id`,
      [rolloutId],
    );
    return rows.length;
  }

  /** Sets a rollout's state (and optionally its stage, restarting the gate clock). */
  async setState(
    q: Queryable,
    id: string,
    state: D,
    reason: string | null,
    stage?: RolloutStage,
  ): Promise<void> {
    await q.query(
      `UPDATE ${this.tables.rollouts} SET state = $2, state_reason = $3, updated_at = now(),
            stage = COALESCE($4, stage),
            stage_started_at = CASE WHEN $4::text IS NULL THEN stage_started_at ELSE now() END
      WHERE id = $1`,
      [id, state, reason, stage ?? null],
    );
  }

  /** Records a transition of a rollout (`nodeId` null) or of one of its nodes. */
  async recordEvent(q: Queryable, e: NewRolloutEvent): Promise<void> {
    const t = this.tables;
    await q.query(
      `INSERT INTO ${t.events} (${t.rolloutColumn}, node_id, from_state, to_state, actor, reason)
     VALUES ($1, $2, $3, $4, $5, $6)`,
      [e.rolloutId, e.nodeId, e.from, e.to, e.actor, e.reason],
    );
  }

  /** Recorded transitions in order; only the rollout's own unless `withNodes`. */
  async eventsOf(
    q: Queryable,
    rolloutId: string,
    options: { withNodes: boolean; nodeId?: string | undefined; limit: number },
  ): Promise<RolloutEvent[]> {
    const t = this.tables;
    const { rows } = await q.query<{
      node_id: string | null;
      from_state: string | null;
      to_state: string;
      actor: string;
      reason: string | null;
      at: Date;
    }>(
      `SELECT node_id, from_state, to_state, actor, reason, at FROM ${t.events}
      WHERE ${t.rolloutColumn} = $1 AND ($2::boolean OR node_id IS NULL) AND ($3::text IS NULL OR node_id = $3)
      ORDER BY id LIMIT $4`,
      [rolloutId, options.withNodes, options.nodeId ?? null, options.limit],
    );
    return rows.map((r) => ({
      nodeId: r.node_id,
      fromState: r.from_state,
      toState: r.to_state,
      actor: r.actor,
      reason: r.reason,
      at: new Date(r.at),
    }));
  }

  /** The rollout a node holds for a slot, locked for the rest of the transaction. */
  async lockHolding(q: Queryable, nodeId: string, slot: string): Promise<string | undefined> {
    const t = this.tables;
    const { rows } = await q.query<{ rollout_id: string }>(
      `SELECT ${t.rolloutColumn} AS rollout_id FROM ${t.holdings} WHERE node_id = $1 AND ${t.slotColumn} = $2 FOR UPDATE`,
      [nodeId, slot],
    );
    return rows[0]?.rollout_id;
  }

  /** Points a node's holding for a slot at `rolloutId`, or removes it (null). */
  async setHolding(q: Queryable, nodeId: string, slot: string, rolloutId: string | null): Promise<void> {
    const t = this.tables;
    if (rolloutId === null) {
      await q.query(`DELETE FROM ${t.holdings} WHERE node_id = $1 AND ${t.slotColumn} = $2`, [nodeId, slot]);
      return;
    }
    await q.query(
      `INSERT INTO ${t.holdings} (node_id, ${t.slotColumn}, ${t.rolloutColumn}) VALUES ($1, $2, $3)
     ON CONFLICT (node_id, ${t.slotColumn}) DO UPDATE SET ${t.rolloutColumn} = $3, assigned_at = now()`,
      [nodeId, slot, rolloutId],
    );
  }

  /** Raises a node's holdings revision; returns the new one. */
  async bumpRevision(q: Queryable, nodeId: string): Promise<number> {
    const table = this.tables.revisions;
    const { rows } = await q.query<{ revision: number | string }>(
      `INSERT INTO ${table} (node_id, revision) VALUES ($1, 1)
     ON CONFLICT (node_id) DO UPDATE SET revision = ${table}.revision + 1, changed_at = now()
     RETURNING revision`,
      [nodeId],
    );
    return Number(rows[0]?.revision ?? 1);
  }

  /** A node's holdings revision (0 before its first). */
  async revisionOf(q: Queryable, nodeId: string): Promise<number> {
    const { rows } = await q.query<{ revision: number | string }>(
      `SELECT revision FROM ${this.tables.revisions} WHERE node_id = $1`,
      [nodeId],
    );
    return Number(rows[0]?.revision ?? 0);
  }

  /**
   * Marks `pending` rows of other rollouts of `slot` on `nodeIds` superseded (the
   * newest rollout takes those nodes); returns the rows changed.
   */
  async supersedePending(
    q: Queryable,
    slot: string,
    nodeIds: string[],
    by: string,
  ): Promise<Array<{ rolloutId: string; nodeId: string }>> {
    const t = this.tables;
    const { rows } = await q.query<{ rollout_id: string; node_id: string }>(
      `UPDATE ${t.nodes} n SET state = 'superseded', reason = $4, updated_at = now()
       FROM ${t.rollouts} r
      WHERE r.id = n.${t.rolloutColumn} AND r.${t.slotColumn} = $1 AND r.id <> $3
        AND n.node_id = ANY($2::text[]) AND n.state = 'pending'
      RETURNING n.${t.rolloutColumn} AS rollout_id, n.node_id`,
      [slot, nodeIds, by, `superseded by ${t.noun} ${by}`],
    );
    return rows.map((r) => ({ rolloutId: r.rollout_id, nodeId: r.node_id }));
  }

  /** Rollouts in canary whose gate timeout has passed. */
  async gatesDue(q: Queryable): Promise<string[]> {
    const { rows } = await q.query<{ id: string }>(
      `SELECT id FROM ${this.tables.rollouts}
      WHERE state = 'canary' AND stage_started_at + gate_timeout_ms * interval '1 millisecond' <= now()
      ORDER BY stage_started_at`,
    );
    return rows.map((r) => r.id);
  }
}
