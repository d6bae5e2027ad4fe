import type { AlertRule, InferenceStats, VideoSource } from '@citysense/protocol';
import type { Queryable } from '../storage/database.ts';
import type { DeploymentState, NodeRolloutState, RolloutGate, RolloutStage } from './rollout.ts';

/** Which nodes a deployment was asked for. */
export interface DeploymentTargets {
  nodes: string[];
  agencies: string[];
}

/** A deployment row. */
export interface DeploymentRecord {
  id: string;
  algorithmId: string;
  version: string;
  state: DeploymentState;
  stateReason: string | null;
  stage: RolloutStage;
  stageStartedAt: Date;
  canaryShare: number;
  gate: RolloutGate;
  targets: DeploymentTargets;
  sources: VideoSource[];
  sourcesByNode: Record<string, VideoSource[]>;
  rules: AlertRule[];
  createdBy: string;
  createdAt: Date;
  updatedAt: Date;
}

/** One target node of a deployment. */
export interface DeploymentNodeRecord {
  deploymentId: string;
  nodeId: string;
  canary: boolean;
  state: NodeRolloutState;
  progress: number | null;
  reason: string | null;
  code: string | null;
  previousDeploymentId: string | null;
  assignedRevision: number | null;
  reportedRevision: number | null;
  activeVersion: string | null;
  stats: InferenceStats | null;
  failedAt: Date | null;
  failureAcknowledged: boolean;
  reportedAt: Date | null;
  updatedAt: Date;
}

/** One recorded transition. */
export interface DeploymentEvent {
  nodeId: string | null;
  fromState: string | null;
  toState: string;
  actor: string;
  reason: string | null;
  at: Date;
}

/** A node's assignment joined with its deployment and package. */
export interface AssignmentRow {
  deploymentId: string;
  algorithmId: string;
  version: string;
  sha256: string;
  bytes: number;
  sources: VideoSource[];
  sourcesByNode: Record<string, VideoSource[]>;
  rules: AlertRule[];
  node: DeploymentNodeRecord;
}

interface DeploymentRow {
  id: string;
  algorithm_id: string;
  version: string;
  state: DeploymentState;
  state_reason: string | null;
  stage: RolloutStage;
  stage_started_at: Date;
  canary_share: number;
  min_active_share: number;
  max_failed: number;
  gate_timeout_ms: number | string;
  targets: DeploymentTargets | string;
  sources: VideoSource[] | string;
  sources_by_node: Record<string, VideoSource[]> | string;
  rules: AlertRule[] | string;
  created_by: string;
  created_at: Date;
  updated_at: Date;
}

interface NodeRow {
  deployment_id: string;
  node_id: string;
  canary: boolean;
  state: NodeRolloutState;
  progress: number | null;
  reason: string | null;
  code: string | null;
  previous_deployment_id: string | null;
  assigned_revision: number | string | null;
  reported_revision: number | string | null;
  active_version: string | null;
  stats: InferenceStats | string | null;
  failed_at: Date | null;
  failure_acknowledged: boolean;
  reported_at: Date | null;
  updated_at: Date;
}

const DEPLOYMENT_COLUMNS = `id, algorithm_id, version, state, state_reason, stage, stage_started_at, canary_share,
  min_active_share, max_failed, gate_timeout_ms, targets, sources, sources_by_node, rules, created_by, created_at,
  updated_at`;

const NODE_COLUMNS = `deployment_id, node_id, canary, state, progress, reason, code, previous_deployment_id,
  assigned_revision, reported_revision, active_version, stats, failed_at, failure_acknowledged, reported_at, updated_at`;

/** The embedded engine returns jsonb parsed, some drivers as text. */
const json = <T>(v: T | string): T => (typeof v === 'string' ? (JSON.parse(v) as T) : v);
const int = (v: number | string | null): number | null => (v === null ? null : Number(v));
const date = (d: Date | null): Date | null => (d ? new Date(d) : null);

const toDeployment = (r: DeploymentRow): DeploymentRecord => ({
  id: r.id,
  algorithmId: r.algorithm_id,
  version: r.version,
  state: r.state,
  stateReason: r.state_reason,
  stage: r.stage,
  stageStartedAt: new Date(r.stage_started_at),
  canaryShare: Number(r.canary_share),
  gate: {
    minActiveShare: Number(r.min_active_share),
    maxFailed: Number(r.max_failed),
    timeoutMs: Number(r.gate_timeout_ms),
  },
  targets: json(r.targets),
  sources: json(r.sources),
  sourcesByNode: json(r.sources_by_node),
  rules: json(r.rules),
  createdBy: r.created_by,
  createdAt: new Date(r.created_at),
  updatedAt: new Date(r.updated_at),
});

const toNode = (r: NodeRow): DeploymentNodeRecord => ({
  deploymentId: r.deployment_id,
  nodeId: r.node_id,
  canary: r.canary,
  state: r.state,
  progress: r.progress === null ? null : Number(r.progress),
  reason: r.reason,
  code: r.code,
  previousDeploymentId: r.previous_deployment_id,
  assignedRevision: int(r.assigned_revision),
  reportedRevision: int(r.reported_revision),
  activeVersion: r.active_version,
  stats: r.stats === null ? null : json(r.stats),
  failedAt: date(r.failed_at),
  failureAcknowledged: r.failure_acknowledged,
  reportedAt: date(r.reported_at),
  updatedAt: new Date(r.updated_at),
});

/** A new deployment. */
export interface NewDeployment {
  id: string;
  algorithmId: string;
  version: string;
  canaryShare: number;
  gate: RolloutGate;
  targets: DeploymentTargets;
  sources: VideoSource[];
  sourcesByNode: Record<string, VideoSource[]>;
  rules: AlertRule[];
  createdBy: string;
}

/** Inserts a deployment in state `canary`. */
export async function insertDeployment(q: Queryable, d: NewDeployment): Promise<void> {
  await q.query(
    `INSERT INTO deployments (id, algorithm_id, version, state, canary_share, min_active_share, max_failed,
                              gate_timeout_ms, targets, sources, sources_by_node, rules, created_by)
     VALUES ($1, $2, $3, 'canary', $4, $5, $6, $7, $8::jsonb, $9::jsonb, $10::jsonb, $11::jsonb, $12)`,
    [
      d.id,
      d.algorithmId,
      d.version,
      d.canaryShare,
      d.gate.minActiveShare,
      d.gate.maxFailed,
      d.gate.timeoutMs,
      JSON.stringify(d.targets),
      JSON.stringify(d.sources),
      JSON.stringify(d.sourcesByNode),
      JSON.stringify(d.rules),
      d.createdBy,
    ],
  );
}

/** Inserts target node rows. */
export async function insertNodes(
  q: Queryable,
  deploymentId: string,
  rows: Array<{ nodeId: string; state: NodeRolloutState; reason: string | null; code: string | null }>,
): Promise<void> {
  if (rows.length === 0) return;
  await q.query(
    `INSERT INTO deployment_nodes (deployment_id, node_id, state, reason, code)
     SELECT $1::text, u.node_id, u.state, u.reason, u.code
       FROM unnest($2::text[], $3::text[], $4::text[], $5::text[]) AS u(node_id, state, reason, code)`,
    [
      deploymentId,
      rows.map((r) => r.nodeId),
      rows.map((r) => r.state),
      rows.map((r) => r.reason),
      rows.map((r) => r.code),
    ],
  );
}

/** One deployment, optionally locked for the rest of the transaction. */
export async function findDeployment(
  q: Queryable,
  id: string,
  lock = false,
): Promise<DeploymentRecord | undefined> {
  const { rows } = await q.query<DeploymentRow>(
    `SELECT ${DEPLOYMENT_COLUMNS} FROM deployments WHERE id = $1${lock ? ' FOR UPDATE' : ''}`,
    [id],
  );
  const row = rows[0];
  return row ? toDeployment(row) : undefined;
}

/** Deployments, newest first. */
export async function listDeployments(
  q: Queryable,
  filter: { algorithmId?: string | undefined; state?: DeploymentState | undefined; limit: number },
): Promise<DeploymentRecord[]> {
  const { rows } = await q.query<DeploymentRow>(
    `SELECT ${DEPLOYMENT_COLUMNS} FROM deployments
      WHERE ($1::text IS NULL OR algorithm_id = $1) AND ($2::text IS NULL OR state = $2)
      ORDER BY created_at DESC, id LIMIT $3`,
    [filter.algorithmId ?? null, filter.state ?? null, filter.limit],
  );
  return rows.map(toDeployment);
}

/** Node counts per state of each of `ids`. */
export async function countNodes(
  q: Queryable,
  ids: string[],
): Promise<Map<string, Partial<Record<NodeRolloutState, number>>>> {
  const { rows } = await q.query<{ deployment_id: string; state: NodeRolloutState; n: number | string }>(
    `SELECT deployment_id, state, count(*) AS n FROM deployment_nodes
      WHERE deployment_id = ANY($1::text[]) GROUP BY deployment_id, state`,
    [ids],
  );
  const out = new Map<string, Partial<Record<NodeRolloutState, number>>>();
  for (const r of rows) {
    const counts = out.get(r.deployment_id) ?? {};
    counts[r.state] = Number(r.n);
    out.set(r.deployment_id, counts);
  }
  return out;
}

/** Target nodes of a deployment, by id. */
export async function nodesOf(q: Queryable, deploymentId: string): Promise<DeploymentNodeRecord[]> {
  const { rows } = await q.query<NodeRow>(
    `SELECT ${NODE_COLUMNS} FROM deployment_nodes WHERE deployment_id = $1 ORDER BY node_id`,
    [deploymentId],
  );
  return rows.map(toNode);
}

/** One target node of a deployment, optionally locked. */
export async function findNode(
  q: Queryable,
  deploymentId: string,
  nodeId: string,
  lock = false,
): Promise<DeploymentNodeRecord | undefined> {
  const { rows } = await q.query<NodeRow>(
    `SELECT ${NODE_COLUMNS} FROM deployment_nodes WHERE deployment_id = $1 AND node_id = $2${lock ? ' FOR UPDATE' : ''}`,
    [deploymentId, nodeId],
  );
  const row = rows[0];
  return row ? toNode(row) : undefined;
}

/** Columns of a node row the service changes. */
export interface NodePatch {
  canary?: boolean;
  state?: NodeRolloutState;
  progress?: number | null;
  reason?: string | null;
  code?: string | null;
  previousDeploymentId?: string | null;
  assignedRevision?: number | null;
  reportedRevision?: number | null;
  activeVersion?: string | null;
  stats?: InferenceStats | null;
  failedAt?: Date | null;
  failureAcknowledged?: boolean;
  reportedAt?: Date | null;
}

const PATCH_COLUMNS: Record<keyof NodePatch, string> = {
  canary: 'canary',
  state: 'state',
  progress: 'progress',
  reason: 'reason',
  code: 'code',
  previousDeploymentId: 'previous_deployment_id',
  assignedRevision: 'assigned_revision',
  reportedRevision: 'reported_revision',
  activeVersion: 'active_version',
  stats: 'stats',
  failedAt: 'failed_at',
  failureAcknowledged: 'failure_acknowledged',
  reportedAt: 'reported_at',
};

/** Updates a node row. */
export async function patchNode(
  q: Queryable,
  deploymentId: string,
  nodeId: string,
  patch: NodePatch,
): Promise<void> {
  const sets: string[] = [];
  const params: unknown[] = [deploymentId, nodeId];
  for (const [key, value] of Object.entries(patch) as Array<[keyof NodePatch, unknown]>) {
    if (value === undefined) continue;
    params.push(key === 'stats' && value !== null ? JSON.stringify(value) : value);
    sets.push(`${PATCH_COLUMNS[key]} = $${params.length}${key === 'stats' ? '::jsonb' : ''}`);
  }
  await q.query(
    `UPDATE deployment_nodes SET ${[...sets, 'updated_at = now()'].join(', ')}
      WHERE deployment_id = $1 AND node_id = $2`,
    params,
  );
}

/** Acknowledges every failure of a deployment (resume). */
export async function acknowledgeFailures(q: Queryable, deploymentId: string): Promise<void> {
  await q.query(
    `UPDATE deployment_nodes SET failure_acknowledged = true
      WHERE deployment_id = $1 AND failed_at IS NOT NULL AND NOT failure_acknowledged`,
    [deploymentId],
  );
}

/** Sets a deployment's state (and optionally its stage, restarting the gate clock). */
export async function setDeploymentState(
  q: Queryable,
  id: string,
  state: DeploymentState,
  reason: string | null,
  stage?: RolloutStage,
): Promise<void> {
  await q.query(
    `UPDATE deployments SET state = $2, state_reason = $3, updated_at = now(),
            stage = COALESCE($4, stage),
            stage_started_at = CASE WHEN $4::text IS NULL THEN stage_started_at ELSE now() END
      WHERE id = $1`,
    [id, state, reason, stage ?? null],
  );
}

/** Records a transition of a deployment (`nodeId` null) or of one of its nodes. */
export async function recordEvent(
  q: Queryable,
  e: {
    deploymentId: string;
    nodeId: string | null;
    from: string | null;
    to: string;
    actor: string;
    reason: string | null;
  },
): Promise<void> {
  await q.query(
    `INSERT INTO deployment_events (deployment_id, node_id, from_state, to_state, actor, reason)
     VALUES ($1, $2, $3, $4, $5, $6)`,
    [e.deploymentId, e.nodeId, e.from, e.to, e.actor, e.reason],
  );
}

/** Recorded transitions in order; only the deployment's own unless `withNodes`. */
export async function eventsOf(
  q: Queryable,
  deploymentId: string,
  options: { withNodes: boolean; nodeId?: string | undefined; limit: number },
): Promise<DeploymentEvent[]> {
  const { rows } = await q.query<{
    node_id: string | null;
    from_state: string | null;
    to_state: string;
    actor: string;
    reason: string | null;
    at: Date;
  }>(
    `SELECT node_id, from_state, to_state, actor, reason, at FROM deployment_events
      WHERE deployment_id = $1 AND ($2::boolean OR node_id IS NULL) AND ($3::text IS NULL OR node_id = $3)
      ORDER BY id LIMIT $4`,
    [deploymentId, options.withNodes, options.nodeId ?? null, options.limit],
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

/** The deployment a node runs for an algorithm, locked for the rest of the transaction. */
export async function lockAssignment(
  q: Queryable,
  nodeId: string,
  algorithmId: string,
): Promise<string | undefined> {
  const { rows } = await q.query<{ deployment_id: string }>(
    'SELECT deployment_id FROM node_assignments WHERE node_id = $1 AND algorithm_id = $2 FOR UPDATE',
    [nodeId, algorithmId],
  );
  return rows[0]?.deployment_id;
}

/** Points a node's assignment for an algorithm at `deploymentId`, or removes it (null). */
export async function setAssignment(
  q: Queryable,
  nodeId: string,
  algorithmId: string,
  deploymentId: string | null,
): Promise<void> {
  if (deploymentId === null) {
    await q.query('DELETE FROM node_assignments WHERE node_id = $1 AND algorithm_id = $2', [
      nodeId,
      algorithmId,
    ]);
    return;
  }
  await q.query(
    `INSERT INTO node_assignments (node_id, algorithm_id, deployment_id) VALUES ($1, $2, $3)
     ON CONFLICT (node_id, algorithm_id) DO UPDATE SET deployment_id = $3, assigned_at = now()`,
    [nodeId, algorithmId, deploymentId],
  );
}

/** Raises a node's assignments revision; returns the new one. */
export async function bumpRevision(q: Queryable, nodeId: string): Promise<number> {
  const { rows } = await q.query<{ revision: number | string }>(
    `INSERT INTO node_assignment_revisions (node_id, revision) VALUES ($1, 1)
     ON CONFLICT (node_id) DO UPDATE
       SET revision = node_assignment_revisions.revision + 1, changed_at = now()
     RETURNING revision`,
    [nodeId],
  );
  return Number(rows[0]?.revision ?? 1);
}

/** A node's assignments revision (0 before its first assignment). */
export async function revisionOf(q: Queryable, nodeId: string): Promise<number> {
  const { rows } = await q.query<{ revision: number | string }>(
    'SELECT revision FROM node_assignment_revisions WHERE node_id = $1',
    [nodeId],
  );
  return Number(rows[0]?.revision ?? 0);
}

/** A node's assignments with their deployments, packages and its status in each. */
export async function assignmentsOf(q: Queryable, nodeId: string): Promise<AssignmentRow[]> {
  const { rows } = await q.query<
    NodeRow & {
      a_algorithm_id: string;
      d_version: string;
      sha256: string;
      bytes: number | string;
      d_sources: VideoSource[] | string;
      d_sources_by_node: Record<string, VideoSource[]> | string;
      d_rules: AlertRule[] | string;
    }
  >(
    `SELECT a.algorithm_id AS a_algorithm_id, d.version AS d_version, v.sha256, v.bytes,
            d.sources AS d_sources, d.sources_by_node AS d_sources_by_node, d.rules AS d_rules,
            ${NODE_COLUMNS.split(',')
              .map((c) => `n.${c.trim()}`)
              .join(', ')}
       FROM node_assignments a
       JOIN deployments d ON d.id = a.deployment_id
       JOIN algorithm_versions v ON v.algorithm_id = d.algorithm_id AND v.version = d.version
       JOIN deployment_nodes n ON n.deployment_id = a.deployment_id AND n.node_id = a.node_id
      WHERE a.node_id = $1
      ORDER BY a.algorithm_id`,
    [nodeId],
  );
  return rows.map((r) => ({
    deploymentId: r.deployment_id,
    algorithmId: r.a_algorithm_id,
    version: r.d_version,
    sha256: r.sha256,
    bytes: Number(r.bytes),
    sources: json(r.d_sources),
    sourcesByNode: json(r.d_sources_by_node),
    rules: json(r.d_rules),
    node: toNode(r),
  }));
}

/**
 * Marks `pending` rows of other deployments of `algorithmId` on `nodeIds` superseded
 * (the newest deployment takes those nodes); returns the rows changed.
 */
export async function supersedePending(
  q: Queryable,
  algorithmId: string,
  nodeIds: string[],
  by: string,
): Promise<Array<{ deploymentId: string; nodeId: string }>> {
  const { rows } = await q.query<{ deployment_id: string; node_id: string }>(
    `UPDATE deployment_nodes n SET state = 'superseded', reason = $4, updated_at = now()
       FROM deployments d
      WHERE d.id = n.deployment_id AND d.algorithm_id = $1 AND d.id <> $3
        AND n.node_id = ANY($2::text[]) AND n.state = 'pending'
      RETURNING n.deployment_id, n.node_id`,
    [algorithmId, nodeIds, by, `superseded by deployment ${by}`],
  );
  return rows.map((r) => ({ deploymentId: r.deployment_id, nodeId: r.node_id }));
}

/** Deployments in canary whose gate timeout has passed. */
export async function gatesDue(q: Queryable): Promise<string[]> {
  const { rows } = await q.query<{ id: string }>(
    `SELECT id FROM deployments
      WHERE state = 'canary' AND stage_started_at + gate_timeout_ms * interval '1 millisecond' <= now()
      ORDER BY stage_started_at`,
  );
  return rows.map((r) => r.id);
}

/** The lifecycle state of an algorithm version, if it exists. */
export async function versionState(
  q: Queryable,
  algorithmId: string,
  version: string,
): Promise<string | undefined> {
  const { rows } = await q.query<{ state: string }>(
    'SELECT state FROM algorithm_versions WHERE algorithm_id = $1 AND version = $2',
    [algorithmId, version],
  );
  return rows[0]?.state;
}
