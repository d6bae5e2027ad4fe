import type { AlertRule, InferenceStats, VideoSource } from '@citysense/protocol';
import type { DeploymentState, NodeRolloutState, RolloutGate, RolloutStage } from '../rollouts/rollout.ts';
import {
  json,
  NODE_PATCH_COLUMNS,
  type RolloutEvent,
  type RolloutNodePatch,
  type RolloutNodeRecord,
  type RolloutNodeRow,
  RolloutStore,
  rolloutNodeFromRow,
} from '../rollouts/rollout-store.ts';
import type { Queryable } from '../storage/database.ts';

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
export interface DeploymentNodeRecord extends RolloutNodeRecord<NodeRolloutState> {
  deploymentId: string;
  previousDeploymentId: string | null;
  activeVersion: string | null;
  stats: InferenceStats | null;
}

/** One recorded transition. */
export type DeploymentEvent = RolloutEvent;

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

interface NodeRow extends RolloutNodeRow<NodeRolloutState> {
  deployment_id: string;
  previous_deployment_id: string | null;
  active_version: string | null;
  stats: InferenceStats | string | null;
}

const DEPLOYMENT_COLUMNS = `id, algorithm_id, version, state, state_reason, stage, stage_started_at, canary_share,
  min_active_share, max_failed, gate_timeout_ms, targets, sources, sources_by_node, rules, created_by, created_at,
  updated_at`;

const NODE_COLUMNS = `deployment_id, node_id, canary, state, progress, reason, code, previous_deployment_id,
  assigned_revision, reported_revision, active_version, stats, failed_at, failure_acknowledged, reported_at, updated_at`;

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
  ...rolloutNodeFromRow(r),
  deploymentId: r.deployment_id,
  previousDeploymentId: r.previous_deployment_id,
  activeVersion: r.active_version,
  stats: r.stats === null ? null : json(r.stats),
});

/** Columns of a node row the deployment service changes. */
export interface NodePatch extends RolloutNodePatch<NodeRolloutState> {
  previousDeploymentId?: string | null;
  activeVersion?: string | null;
  stats?: InferenceStats | null;
}

/** The queries deployments share with every staged rollout (migrations/0050_deployments.sql). */
export const deploymentRows = new RolloutStore<
  DeploymentRecord,
  DeploymentNodeRecord,
  NodeRolloutState,
  DeploymentState,
  NodePatch
>(
  {
    rollouts: 'deployments',
    nodes: 'deployment_nodes',
    events: 'deployment_events',
    rolloutColumn: 'deployment_id',
    slotColumn: 'algorithm_id',
    holdings: 'node_assignments',
    revisions: 'node_assignment_revisions',
    noun: 'deployment',
  },
  {
    rolloutColumns: DEPLOYMENT_COLUMNS,
    toRollout: (r: DeploymentRow) => toDeployment(r),
    columns: NODE_COLUMNS,
    toNode: (r: NodeRow) => toNode(r),
    patchColumns: {
      ...NODE_PATCH_COLUMNS,
      previousDeploymentId: 'previous_deployment_id',
      activeVersion: 'active_version',
      stats: 'stats',
    },
    jsonKeys: new Set(['stats']),
  },
);

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
