/**
 * The transactional side of the staged rollout that algorithm deployments and OTA
 * campaigns share: applies the pure state machine (rollout.ts) to a locked rollout
 * until nothing is left to do, gives nodes the rollout (taking them from the one
 * they held for the slot), checks canary gates on a timer, pauses and resumes,
 * applies node reports, and nudges nodes after commit. What differs between the
 * kinds (records, texts, hooks) comes in a `RolloutKind`.
 */
import { CitysenseError, errorMessage, type Logger } from '@citysense/protocol';
import type { Database, Queryable } from '../storage/database.ts';
import {
  nextStep,
  nodeList,
  type RolloutGate,
  type RolloutStage,
  type RolloutStep,
  type RolloutVocabulary,
} from './rollout.ts';
import type { RolloutNodePatch, RolloutNodeRecord, RolloutStore } from './rollout-store.ts';

/** The columns every kind's rollout row has, as a record. */
export interface RolloutRecord<D extends string> {
  id: string;
  state: D;
  stage: RolloutStage;
  stageStartedAt: Date;
  canaryShare: number;
  gate: RolloutGate;
}

/** A step that changes something. */
export type RolloutChange = Exclude<RolloutStep, { kind: 'none' }>;

/** What a transaction changed, acted on once it committed. */
export interface RolloutChanges {
  /** Node → its new holdings revision. */
  revisions: Map<string, number>;
  /** Other rollouts whose nodes changed: their state may follow. */
  touched: Set<string>;
}

/** What one kind of rollout (deployments, campaigns) brings to the shared core. */
export interface RolloutKind<
  R extends RolloutRecord<D>,
  N extends RolloutNodeRecord<S>,
  S extends string,
  D extends string,
  P extends RolloutNodePatch<S>,
> {
  store: RolloutStore<R, N, S, D, P>;
  vocabulary: RolloutVocabulary<S>;
  /** The error for an unknown id (404). */
  unknown(id: string): CitysenseError;
  /** The error for a report from a node that is no target (404). */
  notTarget(nodeId: string, rolloutId: string): CitysenseError;
  /** What a node holds one rollout of at a time (the algorithm, the OTA target). */
  slotOf(r: R): string;
  /** Reason on the row of the rollout a node leaves for `r`. */
  supersededBy(r: R): string;
  /** Event reason when a node gets `r` at `revision`. */
  assigned(why: string, revision: number, replacing: string | undefined): string;
  /** Columns of the kind's own set on a node that gets `r`. */
  assignPatch?(replacing: string | undefined): Partial<P>;
  /** A reason to pause instead of giving more nodes the rollout, or undefined. */
  refuseToGive?(tx: Queryable, r: R, step: RolloutChange): Promise<string | undefined>;
  /** Called after the hub changed a rollout's state on its own. */
  changedByHub?(r: R, to: D, step: RolloutChange): void;
  /** Log texts. */
  texts: { expiredGates: string; unsettled: string; notAdvanced: string; notNotified: string };
}

/** A node's report as the core reads it. */
export interface NodeReport<S extends string> {
  state: S;
  revision: number;
  progress?: number | undefined;
  reason?: string | undefined;
  code?: string | undefined;
}

/** What the hub did with a node's report. */
export interface ReportResult<S extends string, D extends string> {
  /** False for a stale report (older revision, or a rollout the node no longer holds). */
  applied: boolean;
  ignoredBecause?: 'stale-revision' | 'not-assigned';
  state: S;
  rolloutState: D;
}

/** What the service running a `StagedRollout` gives it. */
export interface StagedRolloutOptions {
  db: Database;
  log: Logger;
  /** Tells a node that its holdings changed (NCMD); best effort, nodes also poll. */
  notify?: ((nodeId: string, revision: number) => Promise<void>) | undefined;
  /** How often gate timeouts are checked. */
  checkIntervalMs: number;
  /** More work for each check tick, after the gates. */
  onTick?: (() => Promise<void>) | undefined;
}

/** Steps of the state machine applied in one go (e.g. gate passed, then completed). */
const MAX_STEPS = 8;

/** The staged-rollout core one service (deployments, campaigns) runs its rollouts on. */
export class StagedRollout<
  R extends RolloutRecord<D>,
  N extends RolloutNodeRecord<S>,
  S extends string,
  D extends string,
  P extends RolloutNodePatch<S>,
> {
  readonly #o: StagedRolloutOptions;
  readonly #k: RolloutKind<R, N, S, D, P>;
  readonly #store: RolloutStore<R, N, S, D, P>;
  readonly #noun: string;
  #timer: NodeJS.Timeout | undefined;
  #checking: Promise<void> | undefined;

  constructor(kind: RolloutKind<R, N, S, D, P>, options: StagedRolloutOptions) {
    this.#o = options;
    this.#k = kind;
    this.#store = kind.store;
    this.#noun = kind.store.tables.noun;
  }

  /** Starts checking gate timeouts; idempotent. */
  async start(): Promise<void> {
    if (this.#timer) return;
    const onTick = this.#o.onTick;
    this.#timer = setInterval(() => {
      this.#checking ??= (onTick ? this.checkGates().then(onTick) : this.checkGates()).finally(() => {
        this.#checking = undefined;
      });
    }, this.#o.checkIntervalMs);
    this.#timer.unref();
  }

  /** Stops the gate checks and waits for a running one; idempotent. */
  async stop(): Promise<void> {
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = undefined;
    await this.#checking;
  }

  /** Pauses rollouts whose canary gate timed out (also runs on a timer). */
  async checkGates(): Promise<void> {
    let due: string[];
    try {
      due = await this.#store.gatesDue(this.#o.db);
    } catch (err) {
      this.#o.log.warn({ err: errorMessage(err) }, this.#k.texts.expiredGates);
      return;
    }
    for (const id of due) await this.#settleById(id);
  }

  /** Runs `work` in one transaction, then nudges the nodes and follows the rollouts it changed. */
  async run<T>(work: (tx: Queryable, changes: RolloutChanges) => Promise<T>): Promise<T> {
    const changes: RolloutChanges = { revisions: new Map(), touched: new Set() };
    const result = await this.#o.db.transaction((tx) => work(tx, changes));
    await this.#afterCommit(changes);
    return result;
  }

  /** One rollout, optionally locked; the kind's 404 when there is none. */
  async mustFind(q: Queryable, id: string, lock = false): Promise<R> {
    const r = await this.#store.find(q, id, lock);
    if (!r) throw this.#k.unknown(id);
    return r;
  }

  /**
   * Fills a new rollout (row inserted, state `canary`): its node rows, the refused
   * ones with their reasons; takes pending nodes from older rollouts of the slot;
   * gives the canary the rollout and settles.
   */
  async open(
    tx: Queryable,
    id: string,
    plan: {
      nodeIds: readonly string[];
      eligible: string[];
      canary: readonly string[];
      /** Refused node → its row's reason and code, and the reason of its event. */
      refusals: ReadonlyMap<string, { reason: string; code: string; event: string }>;
      actor: string;
      /** The reason on older rollouts' events for the nodes this one takes. */
      superseding: string;
    },
    changes: RolloutChanges,
  ): Promise<void> {
    const store = this.#store;
    const { refusals, actor, canary } = plan;
    await store.insertNodes(
      tx,
      id,
      plan.nodeIds.map((nodeId) => {
        const r = refusals.get(nodeId);
        return r
          ? { nodeId, state: 'refused' as S, reason: r.reason, code: r.code }
          : { nodeId, state: 'pending' as S, reason: null, code: null };
      }),
    );
    await store.recordEvent(tx, {
      rolloutId: id,
      nodeId: null,
      from: null,
      to: 'canary',
      actor,
      reason: `created for ${plan.nodeIds.length} node(s): canary ${nodeList(canary)}; ${refusals.size} refused`,
    });
    for (const [nodeId, r] of refusals)
      await store.recordEvent(tx, {
        rolloutId: id,
        nodeId,
        from: null,
        to: 'refused',
        actor: 'hub',
        reason: r.event,
      });
    // The newest rollout takes the nodes: older ones no longer roll out to them.
    const created = await this.mustFind(tx, id);
    for (const s of await store.supersedePending(tx, this.#k.slotOf(created), plan.eligible, id)) {
      changes.touched.add(s.rolloutId);
      await store.recordEvent(tx, {
        rolloutId: s.rolloutId,
        nodeId: s.nodeId,
        from: 'pending',
        to: 'superseded',
        actor,
        reason: plan.superseding,
      });
    }
    for (const nodeId of canary) {
      await store.patchNode(tx, id, nodeId, { canary: true } as P);
      await this.assign(tx, created, nodeId, 'hub', 'canary', changes);
    }
    await this.settle(tx, id, changes);
  }

  /** Throws the kind's coded 409 unless `r` is in one of the states `action` applies to. */
  checkAction(r: R, action: string, allowed: readonly D[], code: string): void {
    if (!allowed.includes(r.state))
      throw new CitysenseError(
        code,
        `cannot ${action} ${this.#noun} ${r.id}: it is ${r.state}, and ${action} applies only when it is ${allowed.join(' or ')}`,
        409,
        { state: r.state, allowedFrom: allowed },
      );
  }

  /** Sets a rollout's state (and stage) and records the transition. */
  async transition(
    tx: Queryable,
    r: R,
    to: D,
    actor: string,
    reason: string,
    stage?: RolloutStage,
  ): Promise<void> {
    await this.#store.setState(tx, r.id, to, reason, stage);
    await this.#store.recordEvent(tx, { rolloutId: r.id, nodeId: null, from: r.state, to, actor, reason });
  }

  /** Resumes a paused rollout at its stage, acknowledging its failures, and settles it. */
  async resume(
    tx: Queryable,
    r: R,
    who: string,
    why: (what: string) => string,
    changes: RolloutChanges,
  ): Promise<void> {
    const acknowledged = await this.#store.acknowledgeFailures(tx, r.id);
    await this.transition(
      tx,
      r,
      r.stage as D,
      who,
      why(`resumed by ${who}${acknowledged > 0 ? `; ${acknowledged} failure(s) acknowledged` : ''}`),
      r.stage,
    );
    await this.settle(tx, r.id, changes);
  }

  /**
   * Applies a node's report in its own transaction. A report about an earlier
   * revision, or a rollout the node no longer holds, is accepted but changes nothing.
   * A failure (`failed`, `rolled-back`) is kept on the row, `withdraw` takes the
   * rollout from the node, and it counts against the gate.
   */
  report(
    nodeId: string,
    rolloutId: string,
    status: NodeReport<S>,
    how: {
      /** Columns of the kind's own the report sets. */
      patch: (r: R) => Partial<P>;
      withdraw: (tx: Queryable, r: R, changes: RolloutChanges) => Promise<void>;
    },
  ): Promise<ReportResult<S, D>> {
    const store = this.#store;
    return this.run(async (tx, changes): Promise<ReportResult<S, D>> => {
      // Lock order rollout → holding → node row, as in assign and the withdrawals.
      const r = await this.mustFind(tx, rolloutId, true);
      const current = await store.lockHolding(tx, nodeId, this.#k.slotOf(r));
      const row = await store.findNode(tx, r.id, nodeId, true);
      if (!row) throw this.#k.notTarget(nodeId, rolloutId);
      const ignoredBecause =
        current !== r.id
          ? 'not-assigned'
          : (row.assignedRevision !== null && status.revision < row.assignedRevision) ||
              (row.reportedRevision !== null && status.revision < row.reportedRevision)
            ? 'stale-revision'
            : undefined;
      if (ignoredBecause) return { applied: false, ignoredBecause, state: row.state, rolloutState: r.state };

      const failed = status.state === 'failed' || status.state === 'rolled-back';
      const reason = status.reason ?? (failed ? `the node reported ${status.state}` : null);
      await store.patchNode(tx, r.id, nodeId, {
        state: status.state,
        progress: status.state === 'downloading' ? (status.progress ?? null) : null,
        reason,
        code: status.code ?? null,
        reportedRevision: status.revision,
        reportedAt: new Date(),
        ...how.patch(r),
        ...(failed ? { failedAt: new Date(), failureAcknowledged: false } : {}),
      } as P);
      if (row.state !== status.state)
        await store.recordEvent(tx, {
          rolloutId: r.id,
          nodeId,
          from: row.state,
          to: status.state,
          actor: `node:${nodeId}`,
          reason: failed && status.code ? `${status.code}: ${reason}` : reason,
        });
      if (failed) await how.withdraw(tx, r, changes);
      await this.settle(tx, r.id, changes);
      const after = await store.findNode(tx, r.id, nodeId);
      const rollout = await this.mustFind(tx, r.id);
      return { applied: true, state: after?.state ?? status.state, rolloutState: rollout.state };
    });
  }

  /** Gives `nodeId` the rollout `r`, taking the node from the rollout it held for the slot. */
  async assign(
    tx: Queryable,
    r: R,
    nodeId: string,
    actor: string,
    why: string,
    changes: RolloutChanges,
  ): Promise<void> {
    const store = this.#store;
    const slot = this.#k.slotOf(r);
    const current = await store.lockHolding(tx, nodeId, slot);
    const row = await store.findNode(tx, r.id, nodeId, true);
    if (!row || current === r.id) return;
    if (current !== undefined) {
      const previous = await store.findNode(tx, current, nodeId, true);
      if (previous) {
        const reason = this.#k.supersededBy(r);
        await store.patchNode(tx, current, nodeId, { state: 'superseded', reason, progress: null } as P);
        await store.recordEvent(tx, {
          rolloutId: current,
          nodeId,
          from: previous.state,
          to: 'superseded',
          actor,
          reason,
        });
      }
      changes.touched.add(current);
    }
    await store.setHolding(tx, nodeId, slot, r.id);
    const revision = await store.bumpRevision(tx, nodeId);
    changes.revisions.set(nodeId, revision);
    await store.patchNode(tx, r.id, nodeId, {
      state: 'queued',
      ...this.#k.assignPatch?.(current),
      assignedRevision: revision,
      reportedRevision: null,
      progress: null,
      reason: null,
      code: null,
      failedAt: null,
      failureAcknowledged: false,
    } as P);
    await store.recordEvent(tx, {
      rolloutId: r.id,
      nodeId,
      from: row.state,
      to: 'queued',
      actor,
      reason: this.#k.assigned(why, revision, current),
    });
  }

  /** Sets a node row's state (and reason, unless undefined) and records the change. */
  async setNodeState(
    tx: Queryable,
    r: R,
    row: N,
    to: S,
    actor: string,
    reason: string | undefined,
    event: string,
  ): Promise<void> {
    await this.#store.patchNode(tx, r.id, row.nodeId, { state: to, reason, progress: null } as P);
    if (row.state !== to)
      await this.#store.recordEvent(tx, {
        rolloutId: r.id,
        nodeId: row.nodeId,
        from: row.state,
        to,
        actor,
        reason: event,
      });
  }

  /** Applies the state machine's steps to a locked rollout until none is left. */
  async settle(tx: Queryable, id: string, changes: RolloutChanges): Promise<void> {
    for (let i = 0; i < MAX_STEPS; i++) {
      const r = await this.mustFind(tx, id, true);
      const nodes = await this.#store.nodesOf(tx, id);
      const step = nextStep<S, D>(
        {
          state: r.state,
          stage: r.stage,
          stageStartedAt: r.stageStartedAt.getTime(),
          canaryShare: r.canaryShare,
          gate: r.gate,
          nodes: nodes.map((n) => ({
            nodeId: n.nodeId,
            canary: n.canary,
            state: n.state,
            failed: n.failedAt !== null && !n.failureAcknowledged,
            acknowledged: n.failedAt !== null && n.failureAcknowledged,
            reason: n.code ? `${n.code}: ${n.reason ?? ''}` : n.reason,
          })),
        },
        Date.now(),
        this.#k.vocabulary,
      );
      if (step.kind === 'none') return;
      await this.#apply(tx, r, step, changes);
    }
    this.#o.log.warn({ [this.#noun]: id }, this.#k.texts.unsettled);
  }

  async #apply(tx: Queryable, r: R, step: RolloutChange, changes: RolloutChanges): Promise<void> {
    const transition = async (to: D, stage?: RolloutStage, reason = step.reason) => {
      await this.transition(tx, r, to, 'hub', reason, stage);
      this.#o.log.info({ [this.#noun]: r.id, from: r.state, to, reason }, `${this.#noun} state`);
      this.#k.changedByHub?.(r, to, step);
    };
    if (step.kind === 'roll' || step.kind === 'new-canary') {
      const refused = await this.#k.refuseToGive?.(tx, r, step);
      if (refused !== undefined) return transition('paused' as D, undefined, refused);
    }
    switch (step.kind) {
      case 'pause':
        return transition('paused' as D);
      case 'complete':
        return transition('completed' as D);
      case 'supersede':
        return transition('superseded' as D);
      case 'new-canary':
        for (const nodeId of step.nodeIds) {
          await this.#store.patchNode(tx, r.id, nodeId, { canary: true } as P);
          await this.assign(tx, r, nodeId, 'hub', 'new canary', changes);
        }
        return transition('canary' as D, 'canary');
      case 'roll':
        for (const nodeId of step.nodeIds) await this.assign(tx, r, nodeId, 'hub', 'rolling', changes);
        return transition('rolling' as D, 'rolling');
    }
  }

  /** Locks and settles one rollout in its own transaction (timer, other rollouts' changes). */
  async #settleById(id: string): Promise<void> {
    const changes: RolloutChanges = { revisions: new Map(), touched: new Set() };
    try {
      await this.#o.db.transaction(async (tx) => {
        if (await this.#store.find(tx, id, true)) await this.settle(tx, id, changes);
      });
    } catch (err) {
      this.#o.log.warn({ [this.#noun]: id, err: errorMessage(err) }, this.#k.texts.notAdvanced);
      return;
    }
    await this.#afterCommit(changes);
  }

  /** Nudges the nodes whose holdings changed, then lets touched rollouts follow. */
  async #afterCommit(changes: RolloutChanges): Promise<void> {
    const notify = this.#o.notify;
    if (notify)
      await Promise.all(
        [...changes.revisions].map(([nodeId, revision]) =>
          notify(nodeId, revision).catch((err: unknown) =>
            this.#o.log.warn({ node: nodeId, revision, err: errorMessage(err) }, this.#k.texts.notNotified),
          ),
        ),
      );
    for (const id of changes.touched) await this.#settleById(id);
  }
}
