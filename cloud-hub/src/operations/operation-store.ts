/** SQL of remote operations and node configuration versions (`0140_operations.sql`). */
import type { OperationState, RemoteConfig } from '@citysense/protocol';
import type { AuditActor } from '../audit/audit-log.ts';
import type { Queryable } from '../storage/database.ts';

/** One stored operation. */
export interface StoredOperation {
  id: string;
  seq: number;
  nodeId: string;
  kind: string;
  params: unknown;
  state: OperationState;
  code: string | null;
  message: string | null;
  result: unknown;
  requestedBy: AuditActor;
  createdAt: Date;
  deadline: Date;
  startedAt: Date | null;
  finishedAt: Date | null;
  updatedAt: Date;
}

/** States of a configuration version. */
export type ConfigVersionState = 'pending' | 'applied' | 'refused' | 'rolled-back' | 'expired' | 'superseded';

/** One stored configuration version. */
export interface ConfigVersion {
  nodeId: string;
  version: number;
  config: RemoteConfig;
  comment: string | null;
  author: AuditActor;
  createdAt: Date;
  operationId: string | null;
  state: ConfigVersionState;
  reason: string | null;
}

interface OperationRow {
  id: string;
  seq: string | number;
  node_id: string;
  kind: string;
  params: unknown;
  state: OperationState;
  code: string | null;
  message: string | null;
  result: unknown;
  requested_by: unknown;
  created_at: Date;
  deadline: Date;
  started_at: Date | null;
  finished_at: Date | null;
  updated_at: Date;
}

interface ConfigRow {
  node_id: string;
  version: number;
  config: unknown;
  comment: string | null;
  author: unknown;
  created_at: Date;
  operation_id: string | null;
  state: ConfigVersionState;
  reason: string | null;
}

const parsed = (v: unknown): unknown => (typeof v === 'string' ? JSON.parse(v) : v);
const date = (d: Date | null): Date | null => (d ? new Date(d) : null);

const OP_COLUMNS = `id, seq, node_id, kind, params, state, code, message, result, requested_by, created_at,
  deadline, started_at, finished_at, updated_at`;

function toOperation(r: OperationRow): StoredOperation {
  return {
    id: r.id,
    seq: Number(r.seq),
    nodeId: r.node_id,
    kind: r.kind,
    params: parsed(r.params),
    state: r.state,
    code: r.code,
    message: r.message,
    result: parsed(r.result) ?? null,
    requestedBy: parsed(r.requested_by) as AuditActor,
    createdAt: new Date(r.created_at),
    deadline: new Date(r.deadline),
    startedAt: date(r.started_at),
    finishedAt: date(r.finished_at),
    updatedAt: new Date(r.updated_at),
  };
}

function toConfig(r: ConfigRow): ConfigVersion {
  return {
    nodeId: r.node_id,
    version: Number(r.version),
    config: parsed(r.config) as RemoteConfig,
    comment: r.comment,
    author: parsed(r.author) as AuditActor,
    createdAt: new Date(r.created_at),
    operationId: r.operation_id,
    state: r.state,
    reason: r.reason,
  };
}

/** Named queries of the operations module. */
export const operationQueries = {
  async insert(
    db: Queryable,
    op: {
      id: string;
      nodeId: string;
      kind: string;
      params: unknown;
      requestedBy: AuditActor;
      deadline: Date;
    },
  ): Promise<StoredOperation> {
    const { rows } = await db.query<OperationRow>(
      `INSERT INTO node_operations (id, node_id, kind, params, state, requested_by, deadline)
       VALUES ($1, $2, $3, $4::jsonb, 'pending', $5::jsonb, $6) RETURNING ${OP_COLUMNS}`,
      [op.id, op.nodeId, op.kind, JSON.stringify(op.params), JSON.stringify(op.requestedBy), op.deadline],
    );
    return toOperation(rows[0] as OperationRow);
  },

  async get(db: Queryable, nodeId: string, id: string): Promise<StoredOperation | null> {
    const { rows } = await db.query<OperationRow>(
      `SELECT ${OP_COLUMNS} FROM node_operations WHERE node_id = $1 AND id = $2`,
      [nodeId, id],
    );
    return rows[0] ? toOperation(rows[0]) : null;
  },

  async pending(db: Queryable, nodeId: string): Promise<StoredOperation[]> {
    const { rows } = await db.query<OperationRow>(
      `SELECT ${OP_COLUMNS} FROM node_operations
        WHERE node_id = $1 AND state = 'pending' AND deadline > now() ORDER BY seq`,
      [nodeId],
    );
    return rows.map(toOperation);
  },

  async revision(db: Queryable, nodeId: string): Promise<number> {
    const { rows } = await db.query<{ seq: string | number | null }>(
      'SELECT max(seq) AS seq FROM node_operations WHERE node_id = $1',
      [nodeId],
    );
    return Number(rows[0]?.seq ?? 0);
  },

  async list(
    db: Queryable,
    q: { nodeId?: string | undefined; kind?: string | undefined; state?: string | undefined; limit: number },
  ): Promise<StoredOperation[]> {
    const where: string[] = [];
    const params: unknown[] = [];
    for (const [column, value] of [
      ['node_id', q.nodeId],
      ['kind', q.kind],
      ['state', q.state],
    ] as const) {
      if (value === undefined) continue;
      params.push(value);
      where.push(`${column} = $${params.length}`);
    }
    params.push(q.limit);
    const { rows } = await db.query<OperationRow>(
      `SELECT ${OP_COLUMNS} FROM node_operations ${where.length ? `WHERE ${where.join(' AND ')}` : ''}
        ORDER BY seq DESC LIMIT $${params.length}`,
      params,
    );
    return rows.map(toOperation);
  },

  /** Moves an operation on, only from one of `from`; null when it was not in one of them. */
  async transition(
    db: Queryable,
    id: string,
    from: readonly OperationState[],
    to: {
      state: OperationState;
      code?: string | null | undefined;
      message?: string | null | undefined;
      result?: unknown;
    },
  ): Promise<StoredOperation | null> {
    const terminal = to.state !== 'running';
    const { rows } = await db.query<OperationRow>(
      `UPDATE node_operations SET state = $2, code = $3, message = $4, result = $5::jsonb, updated_at = now(),
              started_at = COALESCE(started_at, now()),
              finished_at = CASE WHEN $6::boolean THEN now() ELSE finished_at END
        WHERE id = $1 AND state = ANY($7::text[]) RETURNING ${OP_COLUMNS}`,
      [
        id,
        to.state,
        to.code ?? null,
        to.message ?? null,
        to.result === undefined ? null : JSON.stringify(to.result),
        terminal,
        from,
      ],
    );
    return rows[0] ? toOperation(rows[0]) : null;
  },

  /** Open operations past their deadline (all nodes, or one). */
  async overdue(db: Queryable, nodeId?: string): Promise<StoredOperation[]> {
    const { rows } = await db.query<OperationRow>(
      `SELECT ${OP_COLUMNS} FROM node_operations
        WHERE state IN ('pending', 'running') AND deadline <= now() ${nodeId ? 'AND node_id = $1' : ''}
        ORDER BY seq LIMIT 500`,
      nodeId ? [nodeId] : [],
    );
    return rows.map(toOperation);
  },

  async nodeAgency(db: Queryable, nodeId: string): Promise<string | null> {
    const { rows } = await db.query<{ agency_id: string }>(
      'SELECT agency_id FROM agency_nodes WHERE node_id = $1',
      [nodeId],
    );
    return rows[0]?.agency_id ?? null;
  },

  async nodeExists(db: Queryable, nodeId: string): Promise<boolean> {
    const { rows } = await db.query('SELECT 1 FROM nodes WHERE id = $1 AND deregistered_at IS NULL', [
      nodeId,
    ]);
    return rows.length > 0;
  },

  async nextConfigVersion(db: Queryable, nodeId: string): Promise<number> {
    const { rows } = await db.query<{ v: number | null }>(
      'SELECT max(version) AS v FROM node_config_versions WHERE node_id = $1',
      [nodeId],
    );
    return Number(rows[0]?.v ?? 0) + 1;
  },

  async insertConfig(
    db: Queryable,
    c: { nodeId: string; version: number; config: RemoteConfig; comment: string | null; author: AuditActor },
  ): Promise<void> {
    await db.query(
      `INSERT INTO node_config_versions (node_id, version, config, comment, author)
       VALUES ($1, $2, $3::jsonb, $4, $5::jsonb)`,
      [c.nodeId, c.version, JSON.stringify(c.config), c.comment, JSON.stringify(c.author)],
    );
  },

  async linkConfigOperation(
    db: Queryable,
    nodeId: string,
    version: number,
    operationId: string,
  ): Promise<void> {
    await db.query('UPDATE node_config_versions SET operation_id = $3 WHERE node_id = $1 AND version = $2', [
      nodeId,
      version,
      operationId,
    ]);
  },

  /** Older versions still pending will never be applied: a newer one replaces them. */
  async supersedePending(db: Queryable, nodeId: string, below: number): Promise<void> {
    await db.query(
      `UPDATE node_config_versions SET state = 'superseded', reason = 'a newer version was pushed'
        WHERE node_id = $1 AND version < $2 AND state = 'pending'`,
      [nodeId, below],
    );
  },

  async setConfigState(
    db: Queryable,
    nodeId: string,
    version: number,
    state: ConfigVersionState,
    reason: string | null,
  ): Promise<void> {
    await db.query(
      'UPDATE node_config_versions SET state = $3, reason = $4 WHERE node_id = $1 AND version = $2',
      [nodeId, version, state, reason],
    );
  },

  async configVersions(db: Queryable, nodeId: string, limit: number): Promise<ConfigVersion[]> {
    const { rows } = await db.query<ConfigRow>(
      `SELECT node_id, version, config, comment, author, created_at, operation_id, state, reason
         FROM node_config_versions WHERE node_id = $1 ORDER BY version DESC LIMIT $2`,
      [nodeId, limit],
    );
    return rows.map(toConfig);
  },

  async setActiveVersion(db: Queryable, nodeId: string, version: number | null): Promise<void> {
    await db.query(
      `INSERT INTO node_config_state (node_id, active_version, reported_at) VALUES ($1, $2, now())
       ON CONFLICT (node_id) DO UPDATE SET active_version = EXCLUDED.active_version, reported_at = now()`,
      [nodeId, version],
    );
  },

  async activeVersion(db: Queryable, nodeId: string): Promise<{ version: number | null; at: Date } | null> {
    const { rows } = await db.query<{ active_version: number | null; reported_at: Date }>(
      'SELECT active_version, reported_at FROM node_config_state WHERE node_id = $1',
      [nodeId],
    );
    const r = rows[0];
    return r
      ? { version: r.active_version === null ? null : Number(r.active_version), at: new Date(r.reported_at) }
      : null;
  },
};
