/**
 * The staged rollout as a pure state machine: given a deployment and its nodes,
 * what happens next. The deployment service applies the step in a transaction and
 * asks again until nothing is left to do. OTA campaigns (cloud-hub/src/ota) run on
 * the same machine with their own node states, described by a `RolloutVocabulary`.
 *
 *   canary ──gate passed──▶ rolling ──all active──▶ completed
 *     │ failures > maxFailed, gate timeout           │
 *     ▼                                              ▼
 *   paused ──resume──▶ (canary | rolling)     rolled-back (admin), superseded
 */
import { ASSIGNMENT_STATES } from '@citysense/protocol';

/** States of a deployment. */
export const DEPLOYMENT_STATES = [
  'canary',
  'rolling',
  'completed',
  'paused',
  'rolled-back',
  'cancelled',
  'superseded',
] as const;
/** One of `DEPLOYMENT_STATES`. */
export type DeploymentState = (typeof DEPLOYMENT_STATES)[number];

/** The stage a rollout reached: a paused deployment resumes there. */
export type RolloutStage = 'canary' | 'rolling';

/**
 * States of one target node: `pending` waits for its stage, the states the node
 * reports (`queued` … `rolled-back`), and the hub's own `refused` (cannot run it),
 * `superseded` (a newer deployment of the algorithm took the node) and `cancelled`
 * (never given, the deployment ended first).
 */
export const NODE_ROLLOUT_STATES = [
  'pending',
  ...ASSIGNMENT_STATES,
  'refused',
  'superseded',
  'cancelled',
] as const;
/** One of `NODE_ROLLOUT_STATES`. */
export type NodeRolloutState = (typeof NODE_ROLLOUT_STATES)[number];

/** Node states in which the node holds the assignment (it is in its document). */
export const ASSIGNED_STATES: ReadonlySet<NodeRolloutState> = new Set([
  'queued',
  'downloading',
  'verifying',
  'loading',
  'active',
  'failed',
]);

/** Node states still on their way to `active`. */
const UNFINISHED_STATES: ReadonlySet<NodeRolloutState> = new Set([
  'pending',
  'queued',
  'downloading',
  'verifying',
  'loading',
]);

/** Node states that take no part in the rollout any more (the hub's own, the same for every rollout). */
const OUT_STATES: ReadonlySet<string> = new Set(['refused', 'superseded', 'cancelled']);

/**
 * What the state machine needs to know about the node states of one kind of rollout.
 * Every rollout shares the hub's own node states `pending`, `refused`, `superseded`
 * and `cancelled`; the rest are what its nodes report.
 */
export interface RolloutVocabulary<S extends string> {
  /** The state of a node that succeeded (`active`, `healthy`): the gate counts these. */
  success: S;
  /** States in which the node holds the assignment (it is in its document). */
  assigned: ReadonlySet<S>;
  /** States still on their way to `success`, `pending` included. */
  unfinished: ReadonlySet<S>;
  /** Final failure states, counted in the completion reason. */
  failures: ReadonlySet<S>;
}

/** The vocabulary of algorithm deployments. */
export const DEPLOYMENT_ROLLOUT: RolloutVocabulary<NodeRolloutState> = {
  success: 'active',
  assigned: ASSIGNED_STATES,
  unfinished: UNFINISHED_STATES,
  failures: new Set(['rolled-back']),
};

/** When the canary may open the rollout to every node. */
export interface RolloutGate {
  /** Share of canary nodes that must report `active`. */
  minActiveShare: number;
  /** Failed nodes tolerated; one more pauses the deployment. */
  maxFailed: number;
  /** The canary must pass within this time of its start, or the deployment pauses. */
  timeoutMs: number;
}

/** Default gate: every canary node active, no failure, within 10 minutes. */
export const DEFAULT_GATE: RolloutGate = { minActiveShare: 1, maxFailed: 0, timeoutMs: 600_000 };
/** Default share of the target nodes in the canary. */
export const DEFAULT_CANARY_SHARE = 0.1;

/** One node as the state machine sees it. */
export interface RolloutNode<S extends string = NodeRolloutState> {
  nodeId: string;
  canary: boolean;
  state: S;
  /** It failed and no resume has acknowledged the failure yet. */
  failed: boolean;
  /** A failure that a resume acknowledged: it no longer counts, not even in the gate. */
  acknowledged: boolean;
  reason: string | null;
}

/**
 * A deployment (or campaign) as the state machine sees it. Only the states `canary`,
 * `rolling`, `paused`, `completed` and `superseded` have steps; any other (rolled
 * back, cancelled, aborted) is final.
 */
export interface RolloutSnapshot<S extends string = NodeRolloutState, D extends string = DeploymentState> {
  state: D;
  stage: RolloutStage;
  stageStartedAt: number;
  canaryShare: number;
  gate: RolloutGate;
  nodes: Array<RolloutNode<S>>;
}

/** What happens next. */
export type RolloutStep =
  | { kind: 'none' }
  | { kind: 'pause'; reason: string }
  /** The canary is gone (superseded elsewhere, failures acknowledged): the next pending nodes become it. */
  | { kind: 'new-canary'; nodeIds: string[]; reason: string }
  /** The gate passed: every pending node gets the assignment. */
  | { kind: 'roll'; nodeIds: string[]; reason: string }
  | { kind: 'complete'; reason: string }
  | { kind: 'supersede'; reason: string };

/** Canary size: `share` of `eligible` nodes, rounded up, at least one, at most all. */
export function canaryCount(share: number, eligible: number): number {
  if (eligible <= 0) return 0;
  // The epsilon keeps 0.1 × 30 = 3.0000000000000004 at 3.
  return Math.min(eligible, Math.max(1, Math.ceil(share * eligible - 1e-9)));
}

/** Picks the canary: the first `canaryCount` nodes in id order (stable, so a retry picks the same). */
export function pickCanary(nodeIds: readonly string[], share: number): string[] {
  return [...nodeIds].sort().slice(0, canaryCount(share, nodeIds.length));
}

/** The next step of a deployment, or `none`. */
export function nextStep(s: RolloutSnapshot, now: number): RolloutStep;
/** The next step of a rollout whose node states `vocabulary` describes, or `none`. */
export function nextStep<S extends string, D extends string>(
  s: RolloutSnapshot<S, D>,
  now: number,
  vocabulary: RolloutVocabulary<S>,
): RolloutStep;
export function nextStep(
  s: RolloutSnapshot<string, string>,
  now: number,
  vocabulary: RolloutVocabulary<string> = DEPLOYMENT_ROLLOUT,
): RolloutStep {
  const v = vocabulary;
  const holding = s.nodes.filter((n) => v.assigned.has(n.state) || n.state === 'pending');
  const superseded = s.nodes.filter((n) => n.state === 'superseded');
  if (s.state === 'superseded')
    return holding.length > 0
      ? { kind: 'complete', reason: `restored on ${nodeList(holding.map((n) => n.nodeId))}` }
      : { kind: 'none' };
  if (s.state !== 'canary' && s.state !== 'rolling' && s.state !== 'paused' && s.state !== 'completed')
    return { kind: 'none' };
  if (holding.length === 0 && superseded.length > 0)
    return {
      kind: 'supersede',
      reason: `newer deployments took over all its nodes (${nodeList(superseded.map((n) => n.nodeId))})`,
    };
  if (s.state !== 'canary' && s.state !== 'rolling') return { kind: 'none' };

  const failed = s.nodes.filter((n) => n.failed);
  if (failed.length > s.gate.maxFailed)
    return {
      kind: 'pause',
      reason:
        `${failed.length} node(s) failed, more than maxFailed ${s.gate.maxFailed}: ` +
        failed.map((n) => `${n.nodeId} (${n.reason ?? 'no reason given'})`).join('; '),
    };

  if (s.state === 'canary') {
    const canary = s.nodes.filter((n) => n.canary && !OUT_STATES.has(n.state) && !n.acknowledged);
    const pending = s.nodes.filter((n) => n.state === 'pending').map((n) => n.nodeId);
    if (canary.length === 0 && pending.length > 0) {
      const nodeIds = pickCanary(pending, s.canaryShare);
      return { kind: 'new-canary', nodeIds, reason: `no canary node left; new canary ${nodeList(nodeIds)}` };
    }
    if (canary.length > 0) {
      const active = canary.filter((n) => n.state === v.success).length;
      const needed = Math.ceil(s.gate.minActiveShare * canary.length - 1e-9);
      const tally = `${active} of ${canary.length} canary node(s) ${v.success} (${needed} needed), ${failed.length} failed`;
      if (active < needed) {
        if (now - s.stageStartedAt < s.gate.timeoutMs) return { kind: 'none' };
        return {
          kind: 'pause',
          reason: `canary gate timed out after ${Math.round(s.gate.timeoutMs / 1000)} s: ${tally}`,
        };
      }
      return {
        kind: 'roll',
        nodeIds: pending.filter((id) => !isCanary(s, id)),
        reason: `gate passed: ${tally}`,
      };
    }
  }

  if (s.nodes.some((n) => v.unfinished.has(n.state))) return { kind: 'none' };
  const active = s.nodes.filter((n) => n.state === v.success).length;
  if (active === 0)
    return { kind: 'pause', reason: 'no target node runs it: every node failed, was refused or taken over' };
  const failures = [...v.failures].flatMap((state) => {
    const count = s.nodes.filter((n) => n.state === state).length;
    return count > 0 ? [`, ${count} ${state.replace('-', ' ')}`] : [];
  });
  return { kind: 'complete', reason: `${active} node(s) ${v.success}${failures.join('')}` };
}

function isCanary(s: RolloutSnapshot<string, string>, nodeId: string): boolean {
  return s.nodes.some((n) => n.nodeId === nodeId && n.canary);
}

/** Node ids for a reason text, shortened for large fleets. */
export function nodeList(ids: readonly string[]): string {
  return ids.length <= 5 ? ids.join(', ') : `${ids.slice(0, 5).join(', ')} and ${ids.length - 5} more`;
}
