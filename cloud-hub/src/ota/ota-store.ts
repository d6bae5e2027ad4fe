/**
 * Named queries of OTA artifacts and campaigns (migrations/0130_ota.sql). Shaped like
 * deployments/deployment-store.ts: rows in, records out, no decisions.
 */
import type { OtaManifest, OtaTarget } from '@citysense/protocol';
import type { AuditActor } from '../audit/audit-log.ts';
import type { RolloutGate, RolloutStage } from '../rollouts/rollout.ts';
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
import type { CampaignState, OtaNodeState } from './campaign-rollout.ts';

/** A stored artifact. */
export interface ArtifactRecord {
  id: string;
  name: string;
  version: string;
  target: OtaTarget;
  manifest: OtaManifest;
  sha256: string;
  bytes: number;
  signerKey: string;
  uploadedBy: AuditActor;
  createdAt: Date;
}

/** Which nodes a campaign was asked for. */
export interface CampaignSelector {
  nodes: string[];
  agencies: string[];
  /** Carrier (pole) ids: the nodes mounted on them. */
  carriers: string[];
}

/** A campaign row. */
export interface CampaignRecord {
  id: string;
  artifactId: string;
  target: OtaTarget;
  state: CampaignState;
  stateReason: string | null;
  stage: RolloutStage;
  stageStartedAt: Date;
  canaryShare: number;
  /** `minActiveShare` is the share of canary nodes that must report `healthy`. */
  gate: RolloutGate;
  healthTimeoutSeconds: number;
  selector: CampaignSelector;
  agencies: string[];
  createdBy: AuditActor;
  createdAt: Date;
  updatedAt: Date;
}

/** One target node of a campaign. */
export interface CampaignNodeRecord extends RolloutNodeRecord<OtaNodeState> {
  campaignId: string;
  runningVersion: string | null;
  slot: 'a' | 'b' | null;
}

/** One recorded transition. */
export type CampaignEvent = RolloutEvent;

/** A node's update joined with its campaign and artifact. */
export interface NodeUpdateRow {
  campaign: CampaignRecord;
  artifact: ArtifactRecord;
  node: CampaignNodeRecord;
}

interface ArtifactRow {
  id: string;
  name: string;
  version: string;
  target: OtaTarget;
  manifest: OtaManifest | string;
  sha256: string;
  bytes: number | string;
  signer_key: string;
  uploaded_by: AuditActor | string;
  created_at: Date;
}

interface CampaignRow {
  id: string;
  artifact_id: string;
  target: OtaTarget;
  state: CampaignState;
  state_reason: string | null;
  stage: RolloutStage;
  stage_started_at: Date;
  canary_share: number;
  min_healthy_share: number;
  max_failed: number;
  gate_timeout_ms: number | string;
  health_timeout_s: number;
  selector: CampaignSelector | string;
  agencies: string[];
  created_by: AuditActor | string;
  created_at: Date;
  updated_at: Date;
}

interface NodeRow extends RolloutNodeRow<OtaNodeState> {
  campaign_id: string;
  running_version: string | null;
  slot: 'a' | 'b' | null;
}

const ARTIFACT_COLUMNS =
  'id, name, version, target, manifest, sha256, bytes, signer_key, uploaded_by, created_at';
const CAMPAIGN_COLUMNS = `id, artifact_id, target, state, state_reason, stage, stage_started_at, canary_share,
  min_healthy_share, max_failed, gate_timeout_ms, health_timeout_s, selector, agencies, created_by, created_at,
  updated_at`;
const NODE_COLUMNS = `campaign_id, node_id, canary, state, progress, reason, code, assigned_revision,
  reported_revision, running_version, slot, failed_at, failure_acknowledged, reported_at, updated_at`;

const toArtifact = (r: ArtifactRow): ArtifactRecord => ({
  id: r.id,
  name: r.name,
  version: r.version,
  target: r.target,
  manifest: json(r.manifest),
  sha256: r.sha256,
  bytes: Number(r.bytes),
  signerKey: r.signer_key,
  uploadedBy: json(r.uploaded_by),
  createdAt: new Date(r.created_at),
});

const toCampaign = (r: CampaignRow): CampaignRecord => ({
  id: r.id,
  artifactId: r.artifact_id,
  target: r.target,
  state: r.state,
  stateReason: r.state_reason,
  stage: r.stage,
  stageStartedAt: new Date(r.stage_started_at),
  canaryShare: Number(r.canary_share),
  gate: {
    minActiveShare: Number(r.min_healthy_share),
    maxFailed: Number(r.max_failed),
    timeoutMs: Number(r.gate_timeout_ms),
  },
  healthTimeoutSeconds: Number(r.health_timeout_s),
  selector: json(r.selector),
  agencies: r.agencies,
  createdBy: json(r.created_by),
  createdAt: new Date(r.created_at),
  updatedAt: new Date(r.updated_at),
});

const toNode = (r: NodeRow): CampaignNodeRecord => ({
  ...rolloutNodeFromRow(r),
  campaignId: r.campaign_id,
  runningVersion: r.running_version,
  slot: r.slot,
});

/** Columns of a node row the campaign service changes. */
export interface CampaignNodePatch extends RolloutNodePatch<OtaNodeState> {
  runningVersion?: string | null;
  slot?: 'a' | 'b' | null;
}

/** The queries campaigns share with every staged rollout (migrations/0130_ota.sql). */
export const campaignRows = new RolloutStore<
  CampaignRecord,
  CampaignNodeRecord,
  OtaNodeState,
  CampaignState,
  CampaignNodePatch
>(
  {
    rollouts: 'ota_campaigns',
    nodes: 'ota_campaign_nodes',
    events: 'ota_campaign_events',
    rolloutColumn: 'campaign_id',
    slotColumn: 'target',
    holdings: 'node_ota_updates',
    revisions: 'node_ota_revisions',
    noun: 'campaign',
  },
  {
    rolloutColumns: CAMPAIGN_COLUMNS,
    toRollout: (r: CampaignRow) => toCampaign(r),
    columns: NODE_COLUMNS,
    toNode: (r: NodeRow) => toNode(r),
    patchColumns: { ...NODE_PATCH_COLUMNS, runningVersion: 'running_version', slot: 'slot' },
  },
);

/** Stores an artifact; false when name+version exists already. */
export async function insertArtifact(q: Queryable, a: Omit<ArtifactRecord, 'createdAt'>): Promise<boolean> {
  const { rows } = await q.query<{ id: string }>(
    `INSERT INTO ota_artifacts (id, name, version, target, manifest, sha256, bytes, signer_key, uploaded_by)
     VALUES ($1, $2, $3, $4, $5::jsonb, $6, $7, $8, $9::jsonb)
     ON CONFLICT (name, version) DO NOTHING RETURNING id`,
    [
      a.id,
      a.name,
      a.version,
      a.target,
      JSON.stringify(a.manifest),
      a.sha256,
      a.bytes,
      a.signerKey,
      JSON.stringify(a.uploadedBy),
    ],
  );
  return rows.length > 0;
}

/** One artifact by id. */
export async function findArtifact(q: Queryable, id: string): Promise<ArtifactRecord | undefined> {
  const { rows } = await q.query<ArtifactRow>(`SELECT ${ARTIFACT_COLUMNS} FROM ota_artifacts WHERE id = $1`, [
    id,
  ]);
  const row = rows[0];
  return row ? toArtifact(row) : undefined;
}

/** The artifact with this name and version. */
export async function findArtifactByName(
  q: Queryable,
  name: string,
  version: string,
): Promise<ArtifactRecord | undefined> {
  const { rows } = await q.query<ArtifactRow>(
    `SELECT ${ARTIFACT_COLUMNS} FROM ota_artifacts WHERE name = $1 AND version = $2`,
    [name, version],
  );
  const row = rows[0];
  return row ? toArtifact(row) : undefined;
}

/** Artifacts, newest first. */
export async function listArtifacts(q: Queryable, name: string | undefined): Promise<ArtifactRecord[]> {
  const { rows } = await q.query<ArtifactRow>(
    `SELECT ${ARTIFACT_COLUMNS} FROM ota_artifacts WHERE ($1::text IS NULL OR name = $1)
      ORDER BY created_at DESC, id`,
    [name ?? null],
  );
  return rows.map(toArtifact);
}

/** Campaigns that use an artifact. */
export async function campaignsOfArtifact(q: Queryable, artifactId: string): Promise<string[]> {
  const { rows } = await q.query<{ id: string }>(
    'SELECT id FROM ota_campaigns WHERE artifact_id = $1 ORDER BY created_at',
    [artifactId],
  );
  return rows.map((r) => r.id);
}

/** Removes an artifact row. */
export async function deleteArtifact(q: Queryable, id: string): Promise<void> {
  await q.query('DELETE FROM ota_artifacts WHERE id = $1', [id]);
}

/** Whether another artifact row refers to the same stored file. */
export async function fileShared(q: Queryable, sha256: string): Promise<boolean> {
  const { rows } = await q.query<{ n: number | string }>(
    'SELECT count(*) AS n FROM ota_artifacts WHERE sha256 = $1',
    [sha256],
  );
  return Number(rows[0]?.n ?? 0) > 0;
}

/** Whether `nodeId` is a target (not refused) of a campaign of this artifact. */
export async function nodeTargetedBy(q: Queryable, nodeId: string, artifactId: string): Promise<boolean> {
  const { rows } = await q.query<{ one: number }>(
    `SELECT 1 AS one FROM ota_campaign_nodes n JOIN ota_campaigns c ON c.id = n.campaign_id
      WHERE c.artifact_id = $1 AND n.node_id = $2 AND n.state <> 'refused' LIMIT 1`,
    [artifactId, nodeId],
  );
  return rows.length > 0;
}

/** A new campaign. */
export type NewCampaign = Pick<
  CampaignRecord,
  | 'id'
  | 'artifactId'
  | 'target'
  | 'canaryShare'
  | 'gate'
  | 'healthTimeoutSeconds'
  | 'selector'
  | 'agencies'
  | 'createdBy'
>;

/** Inserts a campaign in state `canary`. */
export async function insertCampaign(q: Queryable, c: NewCampaign): Promise<void> {
  await q.query(
    `INSERT INTO ota_campaigns (id, artifact_id, target, state, canary_share, min_healthy_share, max_failed,
                                gate_timeout_ms, health_timeout_s, selector, agencies, created_by)
     VALUES ($1, $2, $3, 'canary', $4, $5, $6, $7, $8, $9::jsonb, $10::text[], $11::jsonb)`,
    [
      c.id,
      c.artifactId,
      c.target,
      c.canaryShare,
      c.gate.minActiveShare,
      c.gate.maxFailed,
      c.gate.timeoutMs,
      c.healthTimeoutSeconds,
      JSON.stringify(c.selector),
      c.agencies,
      JSON.stringify(c.createdBy),
    ],
  );
}

/** Node counts per state over the campaigns that are not over (Prometheus). */
export async function liveNodeCounts(
  q: Queryable,
): Promise<Array<{ campaignId: string; state: OtaNodeState; count: number }>> {
  const { rows } = await q.query<{ campaign_id: string; state: OtaNodeState; n: number | string }>(
    `SELECT n.campaign_id, n.state, count(*) AS n FROM ota_campaign_nodes n
       JOIN ota_campaigns c ON c.id = n.campaign_id
      WHERE c.state IN ('canary', 'rolling', 'paused')
      GROUP BY n.campaign_id, n.state`,
  );
  return rows.map((r) => ({ campaignId: r.campaign_id, state: r.state, count: Number(r.n) }));
}

/** A node's desired updates with their campaigns, artifacts and its status in each. */
export async function updatesOf(q: Queryable, nodeId: string): Promise<NodeUpdateRow[]> {
  const prefixed = (columns: string, alias: string, prefix: string) =>
    columns
      .split(',')
      .map((c) => `${alias}.${c.trim()} AS ${prefix}${c.trim()}`)
      .join(', ');
  const { rows } = await q.query<Record<string, unknown>>(
    `SELECT ${prefixed(CAMPAIGN_COLUMNS, 'c', 'c_')}, ${prefixed(ARTIFACT_COLUMNS, 'a', 'a_')},
            ${prefixed(NODE_COLUMNS, 'n', 'n_')}
       FROM node_ota_updates u
       JOIN ota_campaigns c ON c.id = u.campaign_id
       JOIN ota_artifacts a ON a.id = c.artifact_id
       JOIN ota_campaign_nodes n ON n.campaign_id = u.campaign_id AND n.node_id = u.node_id
      WHERE u.node_id = $1
      ORDER BY u.target`,
    [nodeId],
  );
  const strip = <T>(row: Record<string, unknown>, prefix: string): T =>
    Object.fromEntries(
      Object.entries(row)
        .filter(([k]) => k.startsWith(prefix))
        .map(([k, v]) => [k.slice(prefix.length), v]),
    ) as T;
  return rows.map((r) => ({
    campaign: toCampaign(strip<CampaignRow>(r, 'c_')),
    artifact: toArtifact(strip<ArtifactRow>(r, 'a_')),
    node: toNode(strip<NodeRow>(r, 'n_')),
  }));
}

/** The agency of each node that belongs to one. */
export async function agenciesOfNodes(q: Queryable, nodeIds: string[]): Promise<Map<string, string>> {
  const { rows } = await q.query<{ node_id: string; agency_id: string }>(
    'SELECT node_id, agency_id FROM agency_nodes WHERE node_id = ANY($1::text[])',
    [nodeIds],
  );
  return new Map(rows.map((r) => [r.node_id, r.agency_id]));
}
