import { randomBytes } from 'node:crypto';
import {
  CitysenseError,
  componentLogger,
  errorMessage,
  type Logger,
  type OtaDocument,
  type OtaStatus,
  type OtaTarget,
} from '@citysense/protocol';
import type { AuditActor, AuditLog } from '../audit/audit-log.ts';
import type { NodeRegistry } from '../registry/node-registry.ts';
import { DEFAULT_CANARY_SHARE, DEFAULT_GATE, pickCanary, type RolloutGate } from '../rollouts/rollout.ts';
import { type RolloutChanges, type RolloutKind, StagedRollout } from '../rollouts/staged-rollout.ts';
import type { Database, Queryable } from '../storage/database.ts';
import { actorName, type OtaArtifactService } from './artifact-service.ts';
import {
  CAMPAIGN_ACTIONS,
  type CampaignAction,
  type CampaignState,
  hardwareMismatch,
  OTA_NODE_STATES,
  OTA_ROLLOUT,
  OTA_WITHDRAWABLE_STATES,
  type OtaNodeState,
} from './campaign-rollout.ts';
import {
  agenciesOfNodes,
  type CampaignEvent,
  type CampaignNodePatch,
  type CampaignNodeRecord,
  type CampaignRecord,
  type CampaignSelector,
  campaignRows,
  insertCampaign,
  liveNodeCounts,
  updatesOf,
} from './ota-store.ts';

/** What an operator asks for. */
export interface CampaignRequest {
  artifactId: string;
  targets: { nodes?: string[] | undefined; agencies?: string[] | undefined; carriers?: string[] | undefined };
  canaryShare?: number | undefined;
  gate?: {
    minHealthyShare?: number | undefined;
    maxFailed?: number | undefined;
    timeoutMs?: number | undefined;
  };
  /** Seconds a node waits for its health check after activation before it rolls back. */
  healthTimeoutSeconds?: number | undefined;
}

/** The nodes a selector names, with the agency of each (null: none), before the campaign exists. */
export interface ResolvedTargets {
  nodeIds: string[];
  agencies: Map<string, string | null>;
}

/** One target node as the API shows it. */
export interface CampaignNodeView {
  nodeId: string;
  canary: boolean;
  state: OtaNodeState;
  progress: number | null;
  reason: string | null;
  code: string | null;
  reportedRevision: number | null;
  runningVersion: string | null;
  slot: 'a' | 'b' | null;
  reportedAt: Date | null;
  updatedAt: Date;
}

/** A campaign as the API shows it; `nodes` and `history` only for one campaign. */
export interface CampaignView {
  id: string;
  artifactId: string;
  name: string;
  version: string;
  target: OtaTarget;
  state: CampaignState;
  reason: string | null;
  stage: 'canary' | 'rolling';
  stageStartedAt: Date;
  rollout: {
    canaryShare: number;
    gate: { minHealthyShare: number; maxFailed: number; timeoutMs: number };
    healthTimeoutSeconds: number;
  };
  targets: CampaignSelector;
  agencies: string[];
  createdBy: string;
  createdAt: Date;
  updatedAt: Date;
  total: number;
  counts: Record<OtaNodeState, number>;
  /** Fleet totals: nodes in the rollout, how many are healthy, failed, in flight; mean download progress. */
  totals: {
    eligible: number;
    healthy: number;
    failed: number;
    inFlight: number;
    downloadProgress: number | null;
  };
  nodes?: CampaignNodeView[];
  history?: CampaignEvent[];
}

/** What the hub did with a node's report. */
export interface OtaReportOutcome {
  applied: boolean;
  ignoredBecause?: 'stale-revision' | 'not-assigned';
  state: OtaNodeState;
  campaignState: CampaignState;
}

/** Options of the campaign service. */
export interface CampaignServiceOptions {
  db: Database;
  artifacts: OtaArtifactService;
  registry: NodeRegistry;
  /** Public keys allowed to sign artifacts, for the node document. */
  trustedKeys: () => Promise<string[]>;
  /** Tells a node its OTA document changed (NCMD OTA_REVISION); best effort, nodes also poll. */
  notify?: ((nodeId: string, revision: number) => Promise<void>) | undefined;
  /** Records the campaign changes the hub makes on its own (gate passed, paused on failures). */
  audit?: AuditLog | undefined;
  checkIntervalMs: number;
  logger?: Logger;
}

/** Default seconds a node waits for the new version's health check. */
export const DEFAULT_HEALTH_TIMEOUT_S = 300;

/** What campaigns bring to the staged-rollout core; `audit` records what the hub does on its own. */
const campaigns = (
  audit: AuditLog | undefined,
): RolloutKind<CampaignRecord, CampaignNodeRecord, OtaNodeState, CampaignState, CampaignNodePatch> => ({
  store: campaignRows,
  vocabulary: OTA_ROLLOUT,
  notTarget: (nodeId, id) =>
    new CitysenseError('CS_ERR_OTA_NOT_TARGET', `node ${nodeId} is not a target of campaign ${id}`, 404),
  unknown: (id) =>
    new CitysenseError('CS_ERR_OTA_CAMPAIGN_UNKNOWN', `no campaign ${id} (GET /v1/ota/campaigns)`, 404),
  slotOf: (c) => c.target,
  supersededBy: (c) => `superseded by campaign ${c.id}`,
  assigned: (why, revision, replacing) =>
    `${why}: given at OTA revision ${revision}${replacing ? `, replacing ${replacing}` : ''}`,
  // The hub changed the campaign on its own: on the record, attributed to whoever started it.
  changedByHub: (c, to, step) =>
    audit?.record({
      actor: c.createdBy,
      action: `ota-campaign.${step.kind === 'roll' ? 'gate-passed' : step.kind}`,
      targetType: 'ota-campaign',
      targetId: c.id,
      before: { state: c.state },
      after: { state: to, by: 'hub', reason: step.reason },
      outcome: step.kind === 'pause' ? 'failure' : 'success',
      reason: step.kind === 'pause' ? step.reason.slice(0, 500) : undefined,
    }),
  texts: {
    expiredGates: 'could not look for expired campaign gates',
    unsettled: 'campaign did not settle; it continues with the next report',
    notAdvanced: 'could not advance a campaign',
    notNotified: 'could not send the OTA revision; the node finds it when it polls',
  },
});

/**
 * OTA campaigns: one artifact onto target nodes with the staged rollout of
 * deployments (canary, health gate, pause on failures, resume), where `healthy` is
 * success and `failed`/`rolled-back` are failures. Keeps each node's desired OTA
 * state (its OtaDocument: at most one update per target) and nudges the node over
 * NCMD when it changes. A newer campaign for the same target takes a node over.
 */
export class CampaignService {
  readonly #o: CampaignServiceOptions;
  readonly #db: Database;
  readonly #log: Logger;
  readonly #rollout: StagedRollout<
    CampaignRecord,
    CampaignNodeRecord,
    OtaNodeState,
    CampaignState,
    CampaignNodePatch
  >;
  #liveCounts: Array<{ campaignId: string; state: OtaNodeState; count: number }> = [];

  constructor(options: CampaignServiceOptions) {
    this.#o = options;
    this.#db = options.db;
    this.#log = componentLogger('ota-campaigns', options.logger);
    this.#rollout = new StagedRollout(campaigns(options.audit), {
      db: options.db,
      log: this.#log,
      notify: options.notify,
      checkIntervalMs: options.checkIntervalMs,
      onTick: () => this.#refreshCounts(),
    });
  }

  /** Starts checking gate timeouts (and counting nodes for /metrics); idempotent. */
  start(): Promise<void> {
    return this.#rollout.start();
  }

  /** Stops the gate checks and waits for a running one; idempotent. */
  stop(): Promise<void> {
    return this.#rollout.stop();
  }

  /** Pauses campaigns whose canary gate timed out (also runs on a timer). */
  checkGates(): Promise<void> {
    return this.#rollout.checkGates();
  }

  /** The enrolled nodes a selector names, with their agencies; coded 400 errors for bad selectors. */
  async resolveTargets(targets: CampaignRequest['targets']): Promise<ResolvedTargets> {
    const selector = selectorOf(targets);
    if (selector.nodes.length + selector.agencies.length + selector.carriers.length === 0)
      throw new CitysenseError(
        'CS_ERR_OTA_NO_TARGETS',
        'a campaign needs targets: give targets.nodes, targets.agencies and/or targets.carriers',
        400,
      );
    const enrolled = await this.#o.registry.list();
    const active = new Set(enrolled.map((n) => n.id));
    const unknown = selector.nodes.filter((n) => !active.has(n));
    if (unknown.length > 0)
      throw new CitysenseError(
        'CS_ERR_OTA_NODE_UNKNOWN',
        `not enrolled: ${unknown.join(', ')} (see GET /v1/nodes)`,
        400,
        {
          nodeIds: unknown,
        },
      );
    const ids = new Set(selector.nodes);
    if (selector.carriers.length > 0) {
      const carriers = new Set(selector.carriers);
      for (const n of enrolled) if (n.poleId !== null && carriers.has(n.poleId)) ids.add(n.id);
    }
    if (selector.agencies.length > 0) {
      const { rows } = await this.#db.query<{ node_id: string }>(
        'SELECT node_id FROM agency_nodes WHERE agency_id = ANY($1::text[])',
        [selector.agencies],
      );
      for (const r of rows) if (active.has(r.node_id)) ids.add(r.node_id);
    }
    if (ids.size === 0)
      throw new CitysenseError('CS_ERR_OTA_NO_TARGETS', 'the selector names no enrolled node', 400);
    const nodeIds = [...ids].sort();
    const agencyOf = await agenciesOfNodes(this.#db, nodeIds);
    return { nodeIds, agencies: new Map(nodeIds.map((n) => [n, agencyOf.get(n) ?? null])) };
  }

  /**
   * Creates a campaign for `resolved` nodes (from `resolveTargets`): refuses nodes
   * whose hardware the manifest rules out, and gives the canary its update at once.
   */
  async create(
    request: CampaignRequest,
    resolved: ResolvedTargets,
    actor: AuditActor,
  ): Promise<CampaignView> {
    const artifact = await this.#o.artifacts.record(request.artifactId);
    const { manifest } = artifact;
    const enrolled = new Map((await this.#o.registry.list()).map((n) => [n.id, n]));
    const refusals = new Map<string, string>();
    for (const nodeId of resolved.nodeIds) {
      const hw = enrolled.get(nodeId)?.hardware ?? {};
      const why = hardwareMismatch(manifest.hardware, hw);
      if (why !== null) refusals.set(nodeId, why);
    }
    const eligible = resolved.nodeIds.filter((n) => !refusals.has(n));
    if (eligible.length === 0)
      throw new CitysenseError(
        'CS_ERR_OTA_NO_ELIGIBLE_NODE',
        `no target node can take ${manifest.name} ${manifest.version}: ` +
          [...refusals].map(([n, r]) => `${n} (${r})`).join('; '),
        409,
        { refused: [...refusals].map(([nodeId, reason]) => ({ nodeId, reason })) },
      );
    const canaryShare = request.canaryShare ?? DEFAULT_CANARY_SHARE;
    const gate: RolloutGate = {
      minActiveShare: request.gate?.minHealthyShare ?? DEFAULT_GATE.minActiveShare,
      maxFailed: request.gate?.maxFailed ?? DEFAULT_GATE.maxFailed,
      timeoutMs: request.gate?.timeoutMs ?? DEFAULT_GATE.timeoutMs,
    };
    const canary = pickCanary(eligible, canaryShare);
    const id = `ota_${randomBytes(6).toString('hex')}`;
    const who = actorName(actor);
    await this.#rollout.run(async (tx, changes) => {
      await insertCampaign(tx, {
        id,
        artifactId: artifact.id,
        target: artifact.target,
        canaryShare,
        gate,
        healthTimeoutSeconds: request.healthTimeoutSeconds ?? DEFAULT_HEALTH_TIMEOUT_S,
        selector: selectorOf(request.targets),
        agencies: [...new Set([...resolved.agencies.values()].map((a) => a ?? ''))].sort(),
        createdBy: actor,
      });
      const refused = [...refusals].map(
        ([nodeId, reason]) =>
          [
            nodeId,
            { reason: `hardware-mismatch: ${reason}`, code: 'CS_ERR_OTA_HARDWARE', event: reason },
          ] as const,
      );
      await this.#rollout.open(
        tx,
        id,
        {
          nodeIds: resolved.nodeIds,
          eligible,
          canary,
          refusals: new Map(refused),
          actor: who,
          superseding: `superseded by campaign ${id} (${manifest.name} ${manifest.version})`,
        },
        changes,
      );
    });
    this.#log.info(
      {
        campaign: id,
        artifact: artifact.id,
        nodes: resolved.nodeIds.length,
        canary: canary.length,
        refused: refusals.size,
      },
      'OTA campaign created',
    );
    return this.get(id);
  }

  /** Applies an operator action; CS_ERR_OTA_CAMPAIGN_STATE (409) from another state. */
  async act(
    id: string,
    action: CampaignAction,
    actor: AuditActor,
    note: string | null,
  ): Promise<CampaignView> {
    const who = actorName(actor);
    const why = (what: string) => (note ? `${what}: ${note}` : what);
    const rollout = this.#rollout;
    await rollout.run(async (tx, changes) => {
      const c = await rollout.mustFind(tx, id, true);
      rollout.checkAction(c, action, CAMPAIGN_ACTIONS[action], 'CS_ERR_OTA_CAMPAIGN_STATE');
      const transition = (to: CampaignState, reason: string) => rollout.transition(tx, c, to, who, reason);
      switch (action) {
        case 'pause':
          await transition('paused', why(`paused by ${who}`));
          break;
        case 'resume':
          await rollout.resume(tx, c, who, why, changes);
          break;
        case 'abort': {
          const reason = why(`aborted by ${who}; nodes already installing finish, the others never get it`);
          for (const n of await campaignRows.nodesOf(tx, id)) {
            if (n.state === 'pending') await rollout.setNodeState(tx, c, n, 'cancelled', who, reason, reason);
            else if (OTA_WITHDRAWABLE_STATES.has(n.state)) {
              await this.#withdraw(tx, c, n.nodeId, changes);
              await rollout.setNodeState(tx, c, n, 'cancelled', who, reason, reason);
            }
          }
          await transition('aborted', reason);
          break;
        }
      }
    });
    this.#log.info({ campaign: id, action, actor: who }, 'OTA campaign action');
    return this.get(id);
  }

  /**
   * Records a node's report on one update. A report about an earlier revision, or an
   * update the node no longer has, is accepted but changes nothing. `failed` and
   * `rolled-back` take the update out of the node's document and count against the gate.
   */
  async report(nodeId: string, campaignId: string, status: OtaStatus): Promise<OtaReportOutcome> {
    const { rolloutState, ...outcome } = await this.#rollout.report(nodeId, campaignId, status, {
      patch: () => ({ runningVersion: status.runningVersion, slot: status.slot }),
      // The node runs its previous version again (or never left it): nothing left for it to install.
      withdraw: (tx, c, changes) => this.#withdraw(tx, c, nodeId, changes),
    });
    return { ...outcome, campaignState: rolloutState };
  }

  /** A node's desired OTA state; CS_ERR_NODE_UNKNOWN. */
  async document(nodeId: string): Promise<OtaDocument> {
    await this.#o.registry.get(nodeId);
    // Revision first, as for assignments: a change in between shows up under the older revision and its NCMD.
    const revision = await campaignRows.revisionOf(this.#db, nodeId);
    const rows = await updatesOf(this.#db, nodeId);
    return {
      nodeId,
      revision,
      updates: rows.map(({ campaign, artifact }) => ({
        campaignId: campaign.id,
        artifactId: artifact.id,
        name: artifact.name,
        version: artifact.version,
        target: artifact.target,
        sha256: artifact.sha256,
        bytes: artifact.bytes,
        filePath: `/v1/ota/artifacts/${encodeURIComponent(artifact.id)}/file`,
        healthTimeoutSeconds: campaign.healthTimeoutSeconds,
      })),
      trustedKeys: await this.#o.trustedKeys(),
    };
  }

  /** Campaigns, newest first, with node counts per state. */
  async list(filter: {
    state?: CampaignState | undefined;
    artifactId?: string | undefined;
    limit?: number | undefined;
  }) {
    const records = await campaignRows.list(
      this.#db,
      { state: filter.state, artifact_id: filter.artifactId },
      filter.limit ?? 100,
    );
    const counts = await campaignRows.countNodes(
      this.#db,
      records.map((r) => r.id),
    );
    return Promise.all(records.map(async (r) => this.#present(r, counts.get(r.id) ?? {}, [])));
  }

  /** One campaign with every node's progress, totals and history; CS_ERR_OTA_CAMPAIGN_UNKNOWN. */
  async get(id: string): Promise<CampaignView> {
    const c = await this.#rollout.mustFind(this.#db, id);
    const nodes = await campaignRows.nodesOf(this.#db, id);
    const counts: Partial<Record<OtaNodeState, number>> = {};
    for (const n of nodes) counts[n.state] = (counts[n.state] ?? 0) + 1;
    return {
      ...(await this.#present(c, counts, nodes)),
      nodes: nodes.map(nodeView),
      history: await campaignRows.eventsOf(this.#db, id, { withNodes: false, limit: 1000 }),
    };
  }

  /** The agencies of a campaign's targets ('' for nodes of no agency); CS_ERR_OTA_CAMPAIGN_UNKNOWN. */
  async agenciesOf(id: string): Promise<string[]> {
    return (await this.#rollout.mustFind(this.#db, id)).agencies;
  }

  /** Every transition of a campaign and its nodes. */
  async events(id: string, nodeId?: string): Promise<CampaignEvent[]> {
    await this.#rollout.mustFind(this.#db, id);
    return campaignRows.eventsOf(this.#db, id, { withNodes: true, nodeId, limit: 10_000 });
  }

  /**
   * Node counts per campaign and state over live campaigns, as of the last check tick
   * (a Prometheus scrape is synchronous and must not wait for the database).
   */
  liveCounts(): ReadonlyArray<{ campaignId: string; state: OtaNodeState; count: number }> {
    return this.#liveCounts;
  }

  async #refreshCounts(): Promise<void> {
    try {
      this.#liveCounts = await liveNodeCounts(this.#db);
    } catch (err) {
      this.#log.warn({ err: errorMessage(err) }, 'could not count campaign nodes for /metrics');
    }
  }

  async #present(
    c: CampaignRecord,
    counts: Partial<Record<OtaNodeState, number>>,
    nodes: CampaignNodeRecord[],
  ): Promise<CampaignView> {
    const all = Object.fromEntries(OTA_NODE_STATES.map((s) => [s, counts[s] ?? 0])) as Record<
      OtaNodeState,
      number
    >;
    const artifact = await this.#o.artifacts.record(c.artifactId);
    const total = Object.values(all).reduce((a, b) => a + b, 0);
    const downloading = nodes.flatMap((n) =>
      n.state === 'downloading' && n.progress !== null ? [n.progress] : [],
    );
    return {
      id: c.id,
      artifactId: c.artifactId,
      name: artifact.name,
      version: artifact.version,
      target: c.target,
      state: c.state,
      reason: c.stateReason,
      stage: c.stage,
      stageStartedAt: c.stageStartedAt,
      rollout: {
        canaryShare: c.canaryShare,
        gate: {
          minHealthyShare: c.gate.minActiveShare,
          maxFailed: c.gate.maxFailed,
          timeoutMs: c.gate.timeoutMs,
        },
        healthTimeoutSeconds: c.healthTimeoutSeconds,
      },
      targets: c.selector,
      agencies: c.agencies,
      createdBy: actorName(c.createdBy),
      createdAt: c.createdAt,
      updatedAt: c.updatedAt,
      total,
      counts: all,
      totals: {
        eligible: total - all.refused - all.superseded - all.cancelled,
        healthy: all.healthy,
        failed: all.failed + all['rolled-back'],
        inFlight: all.queued + all.downloading + all.verifying + all.installing + all.activating,
        downloadProgress:
          downloading.length > 0
            ? Math.round((downloading.reduce((a, b) => a + b, 0) / downloading.length) * 1000) / 1000
            : null,
      },
    };
  }

  /** Takes the update of `c` out of the node's document, if it is still there. */
  async #withdraw(tx: Queryable, c: CampaignRecord, nodeId: string, changes: RolloutChanges): Promise<void> {
    if ((await campaignRows.lockHolding(tx, nodeId, c.target)) !== c.id) return;
    await campaignRows.setHolding(tx, nodeId, c.target, null);
    changes.revisions.set(nodeId, await campaignRows.bumpRevision(tx, nodeId));
  }
}

function selectorOf(t: CampaignRequest['targets']): CampaignSelector {
  const unique = (ids: string[] | undefined) => [...new Set(ids ?? [])];
  return { nodes: unique(t.nodes), agencies: unique(t.agencies), carriers: unique(t.carriers) };
}

function nodeView(n: CampaignNodeRecord): CampaignNodeView {
  return {
    nodeId: n.nodeId,
    canary: n.canary,
    state: n.state,
    progress: n.progress,
    reason: n.reason,
    code: n.code,
    reportedRevision: n.reportedRevision,
    runningVersion: n.runningVersion,
    slot: n.slot,
    reportedAt: n.reportedAt,
    updatedAt: n.updatedAt,
  };
}
