/** The node's HTTP client of the hub's deployment routes: assignments in, status reports out. */
import {
  type AssignmentStatus,
  type AssignmentsDocument,
  AssignmentsDocumentSchema,
} from '@citysense/protocol';
import { type HubCredentials, type HubErrors, NodeHubHttp, retryStatus } from '../hub-http.ts';
import { ASSIGNMENTS_INVALID, ASSIGNMENTS_UNAVAILABLE, inferenceError, STATUS_REPORT } from './errors.ts';

export type { HubCredentials } from '../hub-http.ts';

/** Options of the hub client. */
export interface HubClientOptions {
  credentials: HubCredentials;
  /** Limit of one request (not of a package download), ms; default 15 s. */
  requestTimeoutMs?: number | undefined;
}

/** What a status PUT came to: accepted, or the hub has no such route / deployment (older hub, withdrawn). */
export type StatusReportOutcome = 'accepted' | 'not-found';

const ERRORS: HubErrors = {
  unavailable: (why) => inferenceError(ASSIGNMENTS_UNAVAILABLE, why, 503),
  invalid: (why) =>
    inferenceError(
      ASSIGNMENTS_INVALID,
      `the hub's assignments document is invalid (${why}); check that the hub and agent versions are compatible`,
      502,
    ),
};

/**
 * GET /v1/nodes/:id/assignments and PUT /v1/nodes/:id/assignments/:deploymentId/status
 * (protocol/src/assignments.ts). Answers are validated here, at the boundary.
 */
export class HubClient {
  readonly #http: NodeHubHttp;

  constructor(o: HubClientOptions) {
    this.#http = new NodeHubHttp(o.credentials, o.requestTimeoutMs);
  }

  /** Absolute URL of a hub path such as an assignment's `packagePath`. */
  url(path: string): string {
    return this.#http.url(path);
  }

  /** Headers that authenticate this node. */
  authHeaders(): Record<string, string> {
    return this.#http.authHeaders();
  }

  /**
   * The node's assignments, or null when the hub has no assignments route (404: a hub
   * older than the deployment scheduler). Throws CS_ERR_INFERENCE_ASSIGNMENTS_UNAVAILABLE
   * on network errors and other answers, CS_ERR_INFERENCE_ASSIGNMENTS_INVALID on a bad document.
   */
  async getAssignments(signal: AbortSignal): Promise<AssignmentsDocument | null> {
    const doc = await this.#http.document<AssignmentsDocument>(
      'assignments',
      AssignmentsDocumentSchema,
      signal,
      ERRORS,
    );
    if (!doc) return null;
    const deployments = new Set<string>();
    for (const a of doc.assignments) {
      if (deployments.has(a.deploymentId)) throw ERRORS.invalid(`deployment ${a.deploymentId} appears twice`);
      deployments.add(a.deploymentId);
      const sources = new Set<string>();
      for (const s of a.sources) {
        if (sources.has(s.id))
          throw ERRORS.invalid(`deployment ${a.deploymentId} lists source ${s.id} twice`);
        sources.add(s.id);
      }
    }
    return doc;
  }

  /**
   * Whether the centre has filed (or published) the package with this SHA-256, so that a
   * gateway may run it from a local file. Throws CS_ERR_INFERENCE_ASSIGNMENTS_UNAVAILABLE on
   * network errors and unexpected answers.
   */
  async packageFiled(sha256: string, signal: AbortSignal): Promise<boolean> {
    const { status, text } = await this.#http.send(
      'GET',
      `/v1/algorithm-packages/${sha256}/status`,
      undefined,
      signal,
      ERRORS,
    );
    if (status !== 200)
      throw ERRORS.unavailable(`package status: hub answered HTTP ${status}: ${text.slice(0, 200)}`);
    try {
      return (JSON.parse(text) as { filed?: unknown }).filed === true;
    } catch {
      throw ERRORS.unavailable('package status: the answer is not JSON');
    }
  }

  /** Sends one status report. Throws CS_ERR_INFERENCE_STATUS_REPORT (status 503 when worth retrying). */
  async putStatus(
    deploymentId: string,
    status: AssignmentStatus,
    signal: AbortSignal,
  ): Promise<StatusReportOutcome> {
    const path = this.#http.nodePath(`assignments/${encodeURIComponent(deploymentId)}/status`);
    const answer = await this.#http.send('PUT', path, status, signal, {
      unavailable: (why) => inferenceError(STATUS_REPORT, `status report not delivered: ${why}`, 503),
    });
    if (answer.status === 404) return 'not-found';
    if (answer.status >= 200 && answer.status < 300) return 'accepted';
    throw inferenceError(
      STATUS_REPORT,
      `hub answered HTTP ${answer.status} to a status report of ${deploymentId}: ${answer.text.slice(0, 200)}`,
      retryStatus(answer.status),
    );
  }
}
