/**
 * OTA campaigns on the staged-rollout state machine of deployments
 * (rollouts/rollout.ts): the campaign and node states, and the vocabulary that
 * tells the machine that `healthy` is success and `failed`/`rolled-back` are failures.
 */
import { OTA_STATES } from '@citysense/protocol';
import type { RolloutVocabulary } from '../rollouts/rollout.ts';

/**
 * States of a campaign: as a deployment's, except that an operator `abort`s a campaign
 * (nodes that have not started installing never get it) instead of rolling it back —
 * a firmware rollback is the node's own A/B slot decision.
 */
export const CAMPAIGN_STATES = ['canary', 'rolling', 'completed', 'paused', 'aborted', 'superseded'] as const;
/** One of `CAMPAIGN_STATES`. */
export type CampaignState = (typeof CAMPAIGN_STATES)[number];

/**
 * States of one target node: `pending` waits for its stage, then what the node reports
 * (`queued` … `rolled-back`, protocol OTA_STATES), and the hub's own `refused`
 * (hardware mismatch), `superseded` (a newer campaign of the same target took the
 * node) and `cancelled` (aborted before the node started installing).
 */
export const OTA_NODE_STATES = ['pending', ...OTA_STATES, 'refused', 'superseded', 'cancelled'] as const;
/** One of `OTA_NODE_STATES`. */
export type OtaNodeState = (typeof OTA_NODE_STATES)[number];

/** Node states in which the update is in the node's OTA document. */
export const OTA_ASSIGNED_STATES: ReadonlySet<OtaNodeState> = new Set([
  'queued',
  'downloading',
  'verifying',
  'installing',
  'activating',
  'healthy',
]);

/** Node states an abort still takes the update back from: nothing was written to a slot yet. */
export const OTA_WITHDRAWABLE_STATES: ReadonlySet<OtaNodeState> = new Set([
  'queued',
  'downloading',
  'verifying',
]);

/** The rollout vocabulary of OTA campaigns. */
export const OTA_ROLLOUT: RolloutVocabulary<OtaNodeState> = {
  success: 'healthy',
  assigned: OTA_ASSIGNED_STATES,
  unfinished: new Set(['pending', 'queued', 'downloading', 'verifying', 'installing', 'activating']),
  failures: new Set(['failed', 'rolled-back']),
};

/** Operator actions on a campaign and the states each applies to. */
export const CAMPAIGN_ACTIONS = {
  pause: ['canary', 'rolling'],
  resume: ['paused'],
  abort: ['canary', 'rolling', 'paused'],
} as const satisfies Record<string, readonly CampaignState[]>;
/** One operator action. */
export type CampaignAction = keyof typeof CAMPAIGN_ACTIONS;

/**
 * Why a node's hardware cannot take an artifact, or null when it can. The manifest's
 * `hardware` lists gateway models; a node matches with its reported `model` (or its
 * `arch`, for agent builds per CPU architecture). A node that reported neither is
 * refused: a firmware image for the wrong board bricks it.
 */
export function hardwareMismatch(
  wanted: readonly string[] | undefined,
  hardware: { model?: string | undefined; arch?: string | undefined },
): string | null {
  if (!wanted || wanted.length === 0) return null;
  const has = [hardware.model, hardware.arch].filter((h): h is string => typeof h === 'string' && h !== '');
  if (has.some((h) => wanted.includes(h))) return null;
  return has.length === 0
    ? `the artifact is for hardware ${wanted.join(', ')} and the node reported no hardware model`
    : `the artifact is for hardware ${wanted.join(', ')}, the node is ${has.join(' / ')}`;
}
