import { randomBytes } from 'node:crypto';
import {
  type AlertRule,
  type AssignmentStatus,
  type AssignmentsDocument,
  CitysenseError,
  componentLogger,
  type InferenceStats,
  type Logger,
  type VideoSource,
} from '@citysense/protocol';
import type { AlgorithmCentre } from '../algorithms/algorithm-centre.ts';
import type { NodeRegistry } from '../registry/node-registry.ts';
import {
  ASSIGNED_STATES,
  DEFAULT_CANARY_SHARE,
  DEFAULT_GATE,
  DEPLOYMENT_ROLLOUT,
  type DeploymentState,
  NODE_ROLLOUT_STATES,
  type NodeRolloutState,
  pickCanary,
  type RolloutGate,
} from '../rollouts/rollout.ts';
import { type RolloutChanges, type RolloutKind, StagedRollout } from '../rollouts/staged-rollout.ts';
import type { Database, Queryable } from '../storage/database.ts';
import {
  assignmentsOf,
  type DeploymentEvent,
  type DeploymentNodeRecord,
  type DeploymentRecord,
  type DeploymentTargets,
  deploymentRows,
  insertDeployment,
  type NodePatch,
  versionState,
} from './deployment-store.ts';
import { hardwareShortfall, type Refusal } from './scheduling.ts';

/** What an admin asks to deploy. */
export interface DeploymentRequest {
  algorithmId: string;
  version: string;
  targets: { nodes?: string[] | undefined; agencies?: string[] | undefined };
  /** Sources every target node runs the algorithm on... */
  sources: VideoSource[];
  /** ...unless the node has its own list here. */
  sourcesByNode?: Record<string, VideoSource[]> | undefined;
  /** Local alert rules every node evaluates on its analysed frames. */
  rules?: AlertRule[] | undefined;
  rollout?: { canaryShare?: number | undefined; gate?: Partial<RolloutGate> | undefined } | undefined;
}

/** One target node as the API shows it. */
export interface DeploymentNodeView {
  nodeId: string;
  canary: boolean;
  state: NodeRolloutState;
  /** Download progress 0..1 while downloading. */
  progress: number | null;
  reason: string | null;
  code: string | null;
  /** Revision of the node's assignments the last applied report was about. */
  reportedRevision: number | null;
  activeVersion: string | null;
  stats: InferenceStats | null;
  reportedAt: Date | null;
  updatedAt: Date;
}

/** Inference figures summed over a deployment's active nodes. */
export interface FleetStats {
  nodesReporting: number;
  frames: number;
  /** Sum over the nodes. */
  fps: number;
  /** Median of the nodes' p50. */
  inferP50Ms: number | null;
  /** The worst node's p95. */
  inferP95Ms: number | null;
  errors: number;
  droppedFrames: number;
}

/** A deployment as the API shows it; `nodes`, `stats` and `history` only for one deployment. */
export interface DeploymentView {
  id: string;
  algorithmId: string;
  version: string;
  state: DeploymentState;
  reason: string | null;
  stage: 'canary' | 'rolling';
  stageStartedAt: Date;
  rollout: { canaryShare: number; gate: RolloutGate };
  targets: DeploymentTargets;
  sources: VideoSource[];
  sourcesByNode: Record<string, VideoSource[]>;
  rules: AlertRule[];
  createdBy: string;
  createdAt: Date;
  updatedAt: Date;
  total: number;
  counts: Record<NodeRolloutState, number>;
  nodes?: DeploymentNodeView[];
  stats?: FleetStats;
  history?: DeploymentEvent[];
}

/** What a node runs now, per algorithm. */
export interface NodeInference {
  nodeId: string;
  online: boolean;
  revision: number;
  algorithms: Array<{
    algorithmId: string;
    deploymentId: string;
    /** The version assigned. */
    version: string;
    state: NodeRolloutState;
    /** The version the node says it runs (the previous one after a failed swap). */
    activeVersion: string | null;
    progress: number | null;
    reason: string | null;
    code: string | null;
    stats: InferenceStats | null;
    reportedAt: Date | null;
  }>;
}

/** What the hub did with a node's report. */
export interface ReportOutcome {
  /** False for a stale report (older revision, or an assignment the node no longer has). */
  applied: boolean;
  ignoredBecause?: 'stale-revision' | 'not-assigned';
  state: NodeRolloutState;
  deploymentState: DeploymentState;
}

/** Options of the deployment service. */
export interface DeploymentServiceOptions {
  db: Database;
  centre: AlgorithmCentre;
  registry: NodeRegistry;
  /** Tells a node that its assignments changed (NCMD); best effort, nodes also poll. */
  notify?: ((nodeId: string, revision: number) => Promise<void>) | undefined;
  /** How often gate timeouts are checked. */
  checkIntervalMs: number;
  logger?: Logger;
}

/** Who changes something: `admin`, `hub` (the rollout itself) or `node:<id>`. */
export type Actor = string;

/** Admin actions on a deployment and the states each applies to. */
export const DEPLOYMENT_ACTIONS = {
  pause: ['canary', 'rolling'],
  resume: ['paused'],
  rollback: ['canary', 'rolling', 'paused', 'completed', 'cancelled'],
  cancel: ['canary', 'rolling', 'paused'],
} as const satisfies Record<string, readonly DeploymentState[]>;
/** One admin action. */
export type DeploymentAction = keyof typeof DEPLOYMENT_ACTIONS;

/** Longest chain of earlier deployments a rollback walks back to find one to restore. */
const MAX_RESTORE_DEPTH = 32;

/** What deployments bring to the staged-rollout core. */
const DEPLOYMENTS: RolloutKind<
  DeploymentRecord,
  DeploymentNodeRecord,
  NodeRolloutState,
  DeploymentState,
  NodePatch
> = {
  store: deploymentRows,
  vocabulary: DEPLOYMENT_ROLLOUT,
  notTarget: (nodeId, id) =>
    new CitysenseError('CS_ERR_DEPLOY_NOT_TARGET', `node ${nodeId} is not a target of deployment ${id}`, 404),
  unknown: (id) =>
    new CitysenseError('CS_ERR_DEPLOY_UNKNOWN', `no deployment ${id} (GET /v1/deployments)`, 404),
  slotOf: (d) => d.algorithmId,
  supersededBy: (d) => `superseded by deployment ${d.id} (${d.version})`,
  assigned: (why, revision, replacing) =>
    `${why}: assigned at revision ${revision}${replacing ? `, replacing ${replacing}` : ''}`,
  // A rollback gives the node back the deployment it ran before.
  assignPatch: (replacing) => ({ previousDeploymentId: replacing ?? null }),
  // Nodes get only published versions: one retired since the deployment began goes no further.
  async refuseToGive(tx, d, step) {
    const version = await versionState(tx, d.algorithmId, d.version);
    return version === 'published'
      ? undefined
      : `${d.algorithmId} ${d.version} is ${version ?? 'gone'}: no further node gets it (${step.reason})`;
  },
  texts: {
    expiredGates: 'could not look for expired canary gates',
    unsettled: 'rollout did not settle; it continues with the next report',
    notAdvanced: 'could not advance a deployment',
    notNotified: 'could not send the assignments revision; the node finds it when it polls',
  },
};

/**
 * Deployments with staged rollout (001 Art. 49): puts one published algorithm
 * version onto target nodes, canary first; opens the rest when the canary gate
 * passes; pauses on failures or a gate timeout; rolls back to what each node ran
 * before. Keeps each node's desired state (its AssignmentsDocument) and the status
 * the nodes report; nudges a node over NCMD when its assignments change.
 */
export class DeploymentService {
  readonly #o: DeploymentServiceOptions;
  readonly #db: Database;
  readonly #log: Logger;
  readonly #rollout: StagedRollout<
    DeploymentRecord,
    DeploymentNodeRecord,
    NodeRolloutState,
    DeploymentState,
    NodePatch
  >;

  constructor(options: DeploymentServiceOptions) {
    this.#o = options;
    this.#db = options.db;
    this.#log = componentLogger('deployments', options.logger);
    this.#rollout = new StagedRollout(DEPLOYMENTS, {
      db: options.db,
      log: this.#log,
      notify: options.notify,
      checkIntervalMs: options.checkIntervalMs,
    });
  }

  /** Starts checking gate timeouts; idempotent. */
  start(): Promise<void> {
    return this.#rollout.start();
  }

  /** Stops the gate checks and waits for a running one; idempotent. */
  stop(): Promise<void> {
    return this.#rollout.stop();
  }

  /** Pauses deployments whose canary gate timed out (also runs on a timer). */
  checkGates(): Promise<void> {
    return this.#rollout.checkGates();
  }

  /**
   * Creates a deployment: checks the version is published, expands agencies into
   * their nodes, refuses nodes without a grant or with too little hardware, and
   * gives the canary its assignments at once.
   */
  async create(request: DeploymentRequest, actor: Actor): Promise<DeploymentView> {
    const { algorithmId, version } = request;
    const centre = this.#o.centre;
    const summary = await centre.catalogue.summary(algorithmId, version);
    if (summary.state !== 'published')
      throw new CitysenseError(
        'CS_ERR_DEPLOY_VERSION_STATE',
        `${algorithmId} ${version} is ${summary.state}: only published versions can be deployed ` +
          `(POST /v1/algorithms/${algorithmId}/versions/${version}/publish)`,
        409,
        { state: summary.state },
      );
    const { manifest } = await centre.catalogue.version(algorithmId, version);
    const targets: DeploymentTargets = {
      nodes: unique(request.targets.nodes ?? []),
      agencies: unique(request.targets.agencies ?? []),
    };
    const enrolled = new Map((await this.#o.registry.list()).map((n) => [n.id, n]));
    const nodeIds = await this.#expandTargets(targets, new Set(enrolled.keys()));
    const sourcesByNode = request.sourcesByNode ?? {};
    checkSources(nodeIds, request.sources, sourcesByNode);
    const rules = request.rules ?? [];
    checkRules(rules, request.sources, sourcesByNode);

    const refusals = new Map<string, Refusal>();
    for (const nodeId of nodeIds) {
      const refusal = await centre.authorisation.nodeRefusal(nodeId, algorithmId);
      if (refusal !== null) {
        refusals.set(nodeId, { code: 'not-granted', reason: `not-granted: ${NOT_GRANTED[refusal]}` });
        continue;
      }
      const short = hardwareShortfall(manifest.requirements, enrolled.get(nodeId)?.hardware ?? {});
      if (short !== null)
        refusals.set(nodeId, { code: 'insufficient-hardware', reason: `insufficient-hardware: ${short}` });
    }
    const eligible = nodeIds.filter((n) => !refusals.has(n));
    if (eligible.length === 0)
      throw new CitysenseError(
        'CS_ERR_DEPLOY_NO_ELIGIBLE_NODE',
        `no target node can run ${algorithmId} ${version}: ` +
          [...refusals].map(([n, r]) => `${n} (${r.reason})`).join('; '),
        409,
        { refused: [...refusals].map(([nodeId, r]) => ({ nodeId, ...r })) },
      );

    const canaryShare = request.rollout?.canaryShare ?? DEFAULT_CANARY_SHARE;
    const gate: RolloutGate = { ...DEFAULT_GATE, ...stripUndefined(request.rollout?.gate ?? {}) };
    const canary = pickCanary(eligible, canaryShare);
    const id = `dep_${randomBytes(6).toString('hex')}`;
    await this.#rollout.run(async (tx, changes) => {
      await insertDeployment(tx, {
        id,
        algorithmId,
        version,
        canaryShare,
        gate,
        targets,
        sources: request.sources,
        sourcesByNode,
        rules,
        createdBy: actor,
      });
      await this.#rollout.open(
        tx,
        id,
        {
          nodeIds,
          eligible,
          canary,
          refusals: new Map([...refusals].map(([n, r]) => [n, { ...r, event: r.reason }])),
          actor,
          superseding: `superseded by deployment ${id} (${version})`,
        },
        changes,
      );
    });
    this.#log.info(
      {
        deployment: id,
        algorithm: algorithmId,
        version,
        nodes: nodeIds.length,
        canary: canary.length,
        refused: refusals.size,
      },
      'deployment created',
    );
    return this.get(id);
  }

  /** Applies an admin action (pause, resume, rollback, cancel); CS_ERR_DEPLOY_STATE from another state. */
  async act(
    id: string,
    action: DeploymentAction,
    actor: Actor,
    note: string | null,
  ): Promise<DeploymentView> {
    const why = (what: string) => (note ? `${what}: ${note}` : what);
    const rollout = this.#rollout;
    await rollout.run(async (tx, changes) => {
      const d = await rollout.mustFind(tx, id, true);
      rollout.checkAction(d, action, DEPLOYMENT_ACTIONS[action], 'CS_ERR_DEPLOY_STATE');
      const transition = (to: DeploymentState, reason: string) =>
        rollout.transition(tx, d, to, actor, reason);
      const nodes = await deploymentRows.nodesOf(tx, id);
      switch (action) {
        case 'pause':
          await transition('paused', why(`paused by ${actor}`));
          break;
        case 'resume':
          await rollout.resume(tx, d, actor, why, changes);
          break;
        case 'rollback': {
          const reason = why(`deployment rolled back by ${actor}`);
          for (const n of nodes) {
            if (ASSIGNED_STATES.has(n.state))
              await this.#withdraw(tx, d, n.nodeId, changes, { reason, event: reason, actor });
            else if (n.state === 'pending')
              await rollout.setNodeState(tx, d, n, 'cancelled', actor, reason, reason);
          }
          await transition('rolled-back', reason);
          break;
        }
        case 'cancel': {
          const reason = why(`cancelled by ${actor}; nodes that have it keep it`);
          for (const n of nodes.filter((x) => x.state === 'pending'))
            await rollout.setNodeState(tx, d, n, 'cancelled', actor, reason, reason);
          await transition('cancelled', reason);
          break;
        }
      }
    });
    this.#log.info({ deployment: id, action, actor }, 'deployment action');
    return this.get(id);
  }

  /**
   * Records a node's report on one of its assignments. A report about an earlier
   * revision, or an assignment the node no longer has, is accepted but changes
   * nothing. A failure withdraws the assignment from the node (it keeps or gets
   * back what it ran before) and counts against the gate.
   */
  async report(nodeId: string, deploymentId: string, status: AssignmentStatus): Promise<ReportOutcome> {
    const { rolloutState, ...outcome } = await this.#rollout.report(nodeId, deploymentId, status, {
      patch: (d) => ({
        activeVersion: status.activeVersion ?? (status.state === 'active' ? d.version : undefined),
        stats: status.stats,
      }),
      withdraw: (tx, d, changes) =>
        // The node's reason stays on its row; the event says what the hub did about it.
        this.#withdraw(tx, d, nodeId, changes, {
          reason: undefined,
          event: `assignment withdrawn after the node reported ${status.state}`,
          actor: 'hub',
          runningVersion: status.activeVersion,
        }),
    });
    return { ...outcome, deploymentState: rolloutState };
  }

  /** A node's desired state; CS_ERR_NODE_UNKNOWN. */
  async document(nodeId: string): Promise<AssignmentsDocument> {
    await this.#o.registry.get(nodeId);
    // Revision first: a change committing in between then shows up under the older
    // revision, and its NCMD makes the node fetch once more; the other order could
    // hand out the newer revision with the older assignments.
    const revision = await deploymentRows.revisionOf(this.#db, nodeId);
    const rows = await assignmentsOf(this.#db, nodeId);
    return {
      nodeId,
      revision,
      assignments: rows.map((r) => ({
        deploymentId: r.deploymentId,
        algorithmId: r.algorithmId,
        version: r.version,
        sha256: r.sha256,
        bytes: r.bytes,
        packagePath: `/v1/algorithms/${encodeURIComponent(r.algorithmId)}/versions/${encodeURIComponent(r.version)}/package`,
        sources: r.sourcesByNode[nodeId] ?? r.sources,
        ...(r.rules.length > 0 ? { rules: r.rules } : {}),
      })),
      trustedKeys: await this.#o.centre.signers.trustedKeys(),
    };
  }

  /** The agency a node belongs to, or null (for access checks of node-bound reads). */
  nodeAgency(nodeId: string): Promise<string | null> {
    return this.#o.registry.agencyOf(nodeId);
  }

  /** What a node runs now: per algorithm the assignment, the version it runs, its figures. */
  async inference(nodeId: string): Promise<NodeInference> {
    const node = await this.#o.registry.get(nodeId);
    const revision = await deploymentRows.revisionOf(this.#db, nodeId);
    const rows = await assignmentsOf(this.#db, nodeId);
    return {
      nodeId,
      online: node.online,
      revision,
      algorithms: rows.map((r) => ({
        algorithmId: r.algorithmId,
        deploymentId: r.deploymentId,
        version: r.version,
        state: r.node.state,
        activeVersion: r.node.activeVersion,
        progress: r.node.progress,
        reason: r.node.reason,
        code: r.node.code,
        stats: r.node.stats,
        reportedAt: r.node.reportedAt,
      })),
    };
  }

  /** Deployments, newest first, with node counts per state. */
  async list(filter: {
    algorithmId?: string | undefined;
    state?: DeploymentState | undefined;
    limit?: number | undefined;
  }): Promise<DeploymentView[]> {
    const records = await deploymentRows.list(
      this.#db,
      { algorithm_id: filter.algorithmId, state: filter.state },
      filter.limit ?? 100,
    );
    const counts = await deploymentRows.countNodes(
      this.#db,
      records.map((r) => r.id),
    );
    return records.map((r) => present(r, counts.get(r.id) ?? {}));
  }

  /** One deployment with every node, the figures they report and its history; CS_ERR_DEPLOY_UNKNOWN. */
  async get(id: string): Promise<DeploymentView> {
    const d = await this.#rollout.mustFind(this.#db, id);
    const nodes = await deploymentRows.nodesOf(this.#db, id);
    const counts: Partial<Record<NodeRolloutState, number>> = {};
    for (const n of nodes) counts[n.state] = (counts[n.state] ?? 0) + 1;
    return {
      ...present(d, counts),
      nodes: nodes.map(nodeView),
      stats: fleetStats(nodes),
      history: await deploymentRows.eventsOf(this.#db, id, { withNodes: false, limit: 1000 }),
    };
  }

  /** Every recorded transition of a deployment and its nodes (optionally one node's). */
  async events(id: string, nodeId?: string): Promise<DeploymentEvent[]> {
    await this.#rollout.mustFind(this.#db, id);
    return deploymentRows.eventsOf(this.#db, id, { withNodes: true, nodeId, limit: 10_000 });
  }

  async #expandTargets(targets: DeploymentTargets, active: ReadonlySet<string>): Promise<string[]> {
    if (targets.nodes.length === 0 && targets.agencies.length === 0)
      throw new CitysenseError(
        'CS_ERR_DEPLOY_NO_TARGETS',
        'a deployment needs targets: give targets.nodes and/or targets.agencies',
        400,
      );
    const unknown = targets.nodes.filter((n) => !active.has(n));
    if (unknown.length > 0)
      throw new CitysenseError(
        'CS_ERR_DEPLOY_NODE_UNKNOWN',
        `not enrolled: ${unknown.join(', ')} (see GET /v1/nodes)`,
        400,
        { nodeIds: unknown },
      );
    const ids = new Set(targets.nodes);
    for (const agencyId of targets.agencies) {
      const agency = await this.#o.centre.authorisation.agency(agencyId);
      // A deregistered member is no target.
      for (const n of agency.nodes) if (active.has(n)) ids.add(n);
    }
    if (ids.size === 0)
      throw new CitysenseError(
        'CS_ERR_DEPLOY_NO_TARGETS',
        `the agencies ${targets.agencies.join(', ')} have no enrolled nodes (PUT /v1/agencies/:agency/nodes)`,
        400,
      );
    return [...ids].sort();
  }

  /**
   * Takes the assignment of `d` away from a node (state `rolled-back`) and gives
   * it back the nearest earlier deployment of the algorithm it ran that was not
   * itself rolled back, if any.
   */
  async #withdraw(
    tx: Queryable,
    d: DeploymentRecord,
    nodeId: string,
    changes: RolloutChanges,
    how: {
      /** The row's new reason; undefined keeps the one it has (the node's own). */
      reason: string | undefined;
      event: string;
      actor: Actor;
      /** The version the node says it still runs, for the restored deployment. */
      runningVersion?: string | undefined;
    },
  ): Promise<void> {
    const { actor, runningVersion } = how;
    const current = await deploymentRows.lockHolding(tx, nodeId, d.algorithmId);
    const row = await deploymentRows.findNode(tx, d.id, nodeId, true);
    if (!row) return;
    if (current === d.id) {
      const restore = await this.#restoreTarget(tx, row);
      await deploymentRows.setHolding(tx, nodeId, d.algorithmId, restore?.deploymentId ?? null);
      const revision = await deploymentRows.bumpRevision(tx, nodeId);
      changes.revisions.set(nodeId, revision);
      if (restore) {
        const why = `restored after deployment ${d.id} (${d.version}) was withdrawn`;
        await deploymentRows.patchNode(tx, restore.deploymentId, nodeId, {
          state: 'queued',
          assignedRevision: revision,
          reportedRevision: null,
          progress: null,
          reason: why,
          code: null,
          failedAt: null,
          failureAcknowledged: false,
          ...(runningVersion === undefined ? {} : { activeVersion: runningVersion }),
        });
        await deploymentRows.recordEvent(tx, {
          rolloutId: restore.deploymentId,
          nodeId,
          from: restore.state,
          to: 'queued',
          actor,
          reason: `${why}: assigned again at revision ${revision}`,
        });
        changes.touched.add(restore.deploymentId);
      }
    }
    await this.#rollout.setNodeState(tx, d, row, 'rolled-back', actor, how.reason, how.event);
  }

  /** The deployment to give back to a node whose row `row` is withdrawn. */
  async #restoreTarget(
    tx: Queryable,
    row: DeploymentNodeRecord,
  ): Promise<{ deploymentId: string; state: NodeRolloutState } | undefined> {
    let id = row.previousDeploymentId;
    for (let depth = 0; id !== null && depth < MAX_RESTORE_DEPTH; depth++) {
      // Not locked: the row lock on the node's assignment already keeps this node's chain still.
      const d = await deploymentRows.find(tx, id);
      const earlier = await deploymentRows.findNode(tx, id, row.nodeId, true);
      if (!d || !earlier) return undefined;
      // Only a deployment the node ran until it was superseded; not one that failed there or was rolled back.
      if (d.state !== 'rolled-back' && earlier.state === 'superseded')
        return { deploymentId: id, state: earlier.state };
      id = earlier.previousDeploymentId;
    }
    return undefined;
  }
}

const NOT_GRANTED = {
  'no-agency': 'the node belongs to no agency (PUT /v1/agencies/:agency/nodes)',
  'no-agency-grant': 'its agency holds no grant for the algorithm from the centre',
  'no-node-grant':
    'its agency has not granted the algorithm to this node (POST /v1/agencies/:agency/node-grants)',
} as const;

function unique(ids: string[]): string[] {
  return [...new Set(ids)];
}

function stripUndefined<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}

/** Source lists: ids unique in each, overrides only for targets, every target with at least one source. */
function checkSources(
  nodeIds: string[],
  sources: VideoSource[],
  sourcesByNode: Record<string, VideoSource[]>,
): void {
  const targets = new Set(nodeIds);
  const strangers = Object.keys(sourcesByNode).filter((n) => !targets.has(n));
  if (strangers.length > 0)
    throw new CitysenseError(
      'CS_ERR_DEPLOY_SOURCE_NODE',
      `sourcesByNode names nodes that are not targets: ${strangers.join(', ')}`,
      400,
      { nodeIds: strangers },
    );
  for (const [owner, list] of [['sources', sources] as const, ...Object.entries(sourcesByNode)]) {
    const seen = new Set<string>();
    for (const s of list) {
      if (seen.has(s.id))
        throw new CitysenseError(
          'CS_ERR_DEPLOY_SOURCE_DUPLICATE',
          `source id ${s.id} appears twice in ${owner === 'sources' ? 'sources' : `sourcesByNode.${owner}`}`,
          400,
        );
      seen.add(s.id);
    }
  }
  const without = nodeIds.filter((n) => (sourcesByNode[n] ?? sources).length === 0);
  if (without.length > 0)
    throw new CitysenseError(
      'CS_ERR_DEPLOY_NO_SOURCES',
      `no video source for ${without.join(', ')}: give sources, or sourcesByNode for these nodes`,
      400,
      { nodeIds: without },
    );
}

/** Rule ids unique; every source a rule names is one of the deployment's. */
function checkRules(
  rules: AlertRule[],
  sources: VideoSource[],
  sourcesByNode: Record<string, VideoSource[]>,
): void {
  const ids = new Set<string>();
  for (const r of rules) {
    if (ids.has(r.id))
      throw new CitysenseError('CS_ERR_DEPLOY_RULE_DUPLICATE', `rule id ${r.id} appears twice in rules`, 400);
    ids.add(r.id);
  }
  const known = new Set([...sources, ...Object.values(sourcesByNode).flat()].map((s) => s.id));
  const unknown = rules.flatMap((r) =>
    (r.sources ?? []).filter((s) => !known.has(s)).map((s) => `${r.id}: ${s}`),
  );
  if (unknown.length > 0)
    throw new CitysenseError(
      'CS_ERR_DEPLOY_RULE_SOURCE',
      `rules name sources the deployment does not have: ${unknown.join(', ')}`,
      400,
      { unknown },
    );
}

function present(d: DeploymentRecord, counts: Partial<Record<NodeRolloutState, number>>): DeploymentView {
  const all = Object.fromEntries(NODE_ROLLOUT_STATES.map((s) => [s, counts[s] ?? 0])) as Record<
    NodeRolloutState,
    number
  >;
  return {
    id: d.id,
    algorithmId: d.algorithmId,
    version: d.version,
    state: d.state,
    reason: d.stateReason,
    stage: d.stage,
    stageStartedAt: d.stageStartedAt,
    rollout: { canaryShare: d.canaryShare, gate: d.gate },
    targets: d.targets,
    sources: d.sources,
    sourcesByNode: d.sourcesByNode,
    rules: d.rules,
    createdBy: d.createdBy,
    createdAt: d.createdAt,
    updatedAt: d.updatedAt,
    total: Object.values(all).reduce((a, b) => a + b, 0),
    counts: all,
  };
}

function nodeView(n: DeploymentNodeRecord): DeploymentNodeView {
  return {
    nodeId: n.nodeId,
    canary: n.canary,
    state: n.state,
    progress: n.progress,
    reason: n.reason,
    code: n.code,
    reportedRevision: n.reportedRevision,
    activeVersion: n.activeVersion,
    stats: n.stats,
    reportedAt: n.reportedAt,
    updatedAt: n.updatedAt,
  };
}

/** Figures of the active nodes that reported some. */
export function fleetStats(nodes: DeploymentNodeRecord[]): FleetStats {
  const reporting = nodes.flatMap((n) => (n.state === 'active' && n.stats ? [n.stats] : []));
  const p50s = reporting.map((s) => s.inferP50Ms).sort((a, b) => a - b);
  const sum = (pick: (s: InferenceStats) => number) => reporting.reduce((a, s) => a + pick(s), 0);
  return {
    nodesReporting: reporting.length,
    frames: sum((s) => s.frames),
    fps: Math.round(sum((s) => s.fps) * 100) / 100,
    inferP50Ms: p50s.length > 0 ? (p50s[Math.floor((p50s.length - 1) / 2)] ?? null) : null,
    inferP95Ms: reporting.length > 0 ? Math.max(...reporting.map((s) => s.inferP95Ms)) : null,
    errors: sum((s) => s.errors),
    droppedFrames: sum((s) => s.droppedFrames),
  };
}
