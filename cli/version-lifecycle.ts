import type { HubClient } from './hub-client.ts';

/** The publishing path of an algorithm version at the centre, in order. */
export const PUBLISH_PATH = ['draft', 'validated', 'filed', 'published'] as const;
/** A state on the publishing path. */
export type PublishState = (typeof PUBLISH_PATH)[number];

/** The admin action that leads into each state after draft. */
const ACTION_INTO: Record<Exclude<PublishState, 'draft'>, string> = {
  validated: 'validate',
  filed: 'file',
  published: 'publish',
};

/** Where `advanceVersion` stopped. */
export interface AdvanceResult {
  state: PublishState;
  /** Set when a step did not move the version (a failing adaptation test), with the hub's reason. */
  stuck?: { action: string; reason: string };
}

/**
 * Moves an algorithm version along draft → validated → filed → published until
 * `until`, one admin action at a time; stops where a step leaves the state unchanged.
 */
export async function advanceVersion(
  client: HubClient,
  id: string,
  version: string,
  from: PublishState,
  until: PublishState,
  onStep: (state: PublishState) => void = () => undefined,
): Promise<AdvanceResult> {
  if (!PUBLISH_PATH.includes(from))
    return {
      state: from,
      stuck: { action: 'none', reason: `the version is ${from}, off the publishing path` },
    };
  let state = from;
  while (PUBLISH_PATH.indexOf(state) < PUBLISH_PATH.indexOf(until)) {
    const next = PUBLISH_PATH[PUBLISH_PATH.indexOf(state) + 1] ?? 'published';
    const action = ACTION_INTO[next as Exclude<PublishState, 'draft'>];
    const moved = await client.request<{ state: PublishState; report?: { error?: { message: string } } }>(
      'POST',
      `/v1/algorithms/${id}/versions/${version}/${action}`,
      {},
    );
    if (moved.state === state)
      return {
        state,
        stuck: { action, reason: moved.report?.error?.message ?? 'the adaptation test did not pass' },
      };
    state = moved.state;
    onStep(state);
  }
  return { state };
}
