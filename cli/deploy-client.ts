import type { AlertRule, InferenceStats, VideoSource } from '@citysense/protocol';
import type { HubClient } from './hub-client.ts';

/** States of a deployment (cloud-hub/src/rollouts/rollout.ts). */
export type DeploymentState =
  | 'canary'
  | 'rolling'
  | 'completed'
  | 'paused'
  | 'rolled-back'
  | 'cancelled'
  | 'superseded';

/** States a deployment stays in until an admin acts: the CLI stops watching there. */
export const SETTLED_STATES: ReadonlySet<DeploymentState> = new Set([
  'completed',
  'paused',
  'rolled-back',
  'cancelled',
  'superseded',
]);

/** What `POST /v1/deployments` takes. */
export interface DeploymentRequest {
  algorithmId: string;
  version: string;
  targets: { nodes?: string[]; agencies?: string[] };
  sources: VideoSource[];
  sourcesByNode?: Record<string, VideoSource[]>;
  rules?: AlertRule[];
  rollout?: {
    canaryShare?: number;
    gate?: { minActiveShare?: number; maxFailed?: number; timeoutMs?: number };
  };
}

/** A deployment as the list shows it. */
export interface DeploymentSummary {
  id: string;
  algorithmId: string;
  version: string;
  state: DeploymentState;
  reason: string | null;
  stage: 'canary' | 'rolling';
  rollout: { canaryShare: number; gate: { minActiveShare: number; maxFailed: number; timeoutMs: number } };
  createdAt: string;
  updatedAt: string;
  total: number;
  /** Target nodes per state (pending, queued, downloading, … active, rolled-back, refused, …). */
  counts: Record<string, number>;
}

/** One target node of a deployment. */
export interface DeploymentNode {
  nodeId: string;
  canary: boolean;
  state: string;
  progress: number | null;
  reason: string | null;
  code: string | null;
  activeVersion: string | null;
  stats: InferenceStats | null;
}

/** One deployment with its nodes and figures. */
export interface DeploymentDetail extends DeploymentSummary {
  nodes: DeploymentNode[];
  stats: {
    nodesReporting: number;
    fps: number;
    inferP50Ms: number | null;
    inferP95Ms: number | null;
    errors: number;
  };
}

/** Admin actions on a deployment. */
export type DeploymentAction = 'pause' | 'resume' | 'rollback' | 'cancel';

/** The deployments API of the hub, on top of the admin client. */
export class DeploymentClient {
  readonly #hub: HubClient;

  constructor(hub: HubClient) {
    this.#hub = hub;
  }

  /** Creates a deployment; the canary gets it at once. */
  create(request: DeploymentRequest): Promise<DeploymentDetail> {
    return this.#hub.request('POST', '/v1/deployments', request);
  }

  /** Deployments, newest first. */
  list(
    filter: { algorithmId?: string | undefined; state?: string | undefined } = {},
  ): Promise<DeploymentSummary[]> {
    const query = new URLSearchParams();
    if (filter.algorithmId) query.set('algorithmId', filter.algorithmId);
    if (filter.state) query.set('state', filter.state);
    const qs = query.toString();
    return this.#hub.request('GET', `/v1/deployments${qs ? `?${qs}` : ''}`);
  }

  /** One deployment with every node. */
  get(id: string): Promise<DeploymentDetail> {
    return this.#hub.request('GET', `/v1/deployments/${encodeURIComponent(id)}`);
  }

  /** Pauses, resumes, rolls back or cancels a deployment. */
  act(id: string, action: DeploymentAction, reason?: string): Promise<DeploymentDetail> {
    return this.#hub.request(
      'POST',
      `/v1/deployments/${encodeURIComponent(id)}/${action}`,
      reason ? { reason } : {},
    );
  }
}
