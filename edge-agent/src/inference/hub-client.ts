/** The node's HTTP client of the hub's deployment routes: assignments in, status reports out. */
import {
  type AssignmentStatus,
  type AssignmentsDocument,
  AssignmentsDocumentSchema,
  errorMessage,
} from '@citysense/protocol';
import { Value } from '@sinclair/typebox/value';
import { ASSIGNMENTS_INVALID, ASSIGNMENTS_UNAVAILABLE, inferenceError, STATUS_REPORT } from './errors.ts';

/** Where the hub is and how this node authenticates to it: HTTP Basic `nodeId:password` (the MQTT credentials). */
export interface HubCredentials {
  hubUrl: string;
  nodeId: string;
  password: string;
}

/** Options of the hub client. */
export interface HubClientOptions {
  credentials: HubCredentials;
  /** Limit of one request (not of a package download), ms; default 15 s. */
  requestTimeoutMs?: number | undefined;
}

/** What a status PUT came to: accepted, or the hub has no such route / deployment (older hub, withdrawn). */
export type StatusReportOutcome = 'accepted' | 'not-found';

const REQUEST_TIMEOUT_MS = 15_000;

/**
 * GET /v1/nodes/:id/assignments and PUT /v1/nodes/:id/assignments/:deploymentId/status
 * (protocol/src/assignments.ts). Answers are validated here, at the boundary.
 */
export class HubClient {
  readonly #o: HubClientOptions;
  readonly #authorization: string;

  constructor(o: HubClientOptions) {
    this.#o = o;
    const { nodeId, password } = o.credentials;
    this.#authorization = `Basic ${Buffer.from(`${nodeId}:${password}`).toString('base64')}`;
  }

  /** Absolute URL of a hub path such as an assignment's `packagePath`. */
  url(path: string): string {
    return new URL(path, this.#o.credentials.hubUrl).toString();
  }

  /** Headers that authenticate this node. */
  authHeaders(): Record<string, string> {
    return { authorization: this.#authorization };
  }

  /**
   * The node's assignments, or null when the hub has no assignments route (404: a hub
   * older than the deployment scheduler). Throws CS_ERR_INFERENCE_ASSIGNMENTS_UNAVAILABLE
   * on network errors and other answers, CS_ERR_INFERENCE_ASSIGNMENTS_INVALID on a bad document.
   */
  async getAssignments(signal: AbortSignal): Promise<AssignmentsDocument | null> {
    const { nodeId } = this.#o.credentials;
    const res = await this.#request('GET', this.#nodePath('assignments'), undefined, signal);
    const text = await res.text().catch((err: unknown) => {
      throw unavailable(`reading the assignments answer failed: ${errorMessage(err)}`);
    });
    if (res.status === 404) return null;
    if (res.status !== 200) throw unavailable(`hub answered HTTP ${res.status}: ${text.slice(0, 200)}`);
    let body: unknown;
    try {
      body = Value.Default(AssignmentsDocumentSchema, JSON.parse(text));
    } catch {
      throw invalid('the answer is not JSON');
    }
    const first = Value.Errors(AssignmentsDocumentSchema, body).First();
    if (first) throw invalid(`${first.path || '/'} ${first.message}`);
    const doc = body as AssignmentsDocument;
    if (doc.nodeId !== nodeId) throw invalid(`it is addressed to node "${doc.nodeId}", this is "${nodeId}"`);
    const deployments = new Set<string>();
    for (const a of doc.assignments) {
      if (deployments.has(a.deploymentId)) throw invalid(`deployment ${a.deploymentId} appears twice`);
      deployments.add(a.deploymentId);
      const sources = new Set<string>();
      for (const s of a.sources) {
        if (sources.has(s.id)) throw invalid(`deployment ${a.deploymentId} lists source ${s.id} twice`);
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
    const res = await this.#request('GET', `/v1/algorithm-packages/${sha256}/status`, undefined, signal);
    const text = await res.text().catch(() => '');
    if (res.status !== 200)
      throw unavailable(`package status: hub answered HTTP ${res.status}: ${text.slice(0, 200)}`);
    try {
      return (JSON.parse(text) as { filed?: unknown }).filed === true;
    } catch {
      throw unavailable('package status: the answer is not JSON');
    }
  }

  /** Sends one status report. Throws CS_ERR_INFERENCE_STATUS_REPORT (status 503 when worth retrying). */
  async putStatus(
    deploymentId: string,
    status: AssignmentStatus,
    signal: AbortSignal,
  ): Promise<StatusReportOutcome> {
    const path = this.#nodePath(`assignments/${encodeURIComponent(deploymentId)}/status`);
    let res: Response;
    try {
      res = await this.#request('PUT', path, JSON.stringify(status), signal);
    } catch (err) {
      throw inferenceError(STATUS_REPORT, `status report not delivered: ${errorMessage(err)}`, 503);
    }
    const text = await res.text().catch(() => '');
    if (res.status === 404) return 'not-found';
    if (res.status >= 200 && res.status < 300) return 'accepted';
    throw inferenceError(
      STATUS_REPORT,
      `hub answered HTTP ${res.status} to a status report of ${deploymentId}: ${text.slice(0, 200)}`,
      res.status >= 500 || res.status === 429 ? 503 : 400,
    );
  }

  #nodePath(rest: string): string {
    return `/v1/nodes/${encodeURIComponent(this.#o.credentials.nodeId)}/${rest}`;
  }

  async #request(
    method: string,
    path: string,
    body: string | undefined,
    signal: AbortSignal,
  ): Promise<Response> {
    try {
      return await fetch(this.url(path), {
        method,
        headers: {
          ...this.authHeaders(),
          accept: 'application/json',
          ...(body === undefined ? {} : { 'content-type': 'application/json' }),
        },
        body,
        signal: AbortSignal.any([
          signal,
          AbortSignal.timeout(this.#o.requestTimeoutMs ?? REQUEST_TIMEOUT_MS),
        ]),
      });
    } catch (err) {
      if (signal.aborted) throw err;
      throw unavailable(`hub unreachable: ${errorMessage(err)}`);
    }
  }
}

function unavailable(message: string) {
  return inferenceError(ASSIGNMENTS_UNAVAILABLE, message, 503);
}

function invalid(why: string) {
  return inferenceError(
    ASSIGNMENTS_INVALID,
    `the hub's assignments document is invalid (${why}); check that the hub and agent versions are compatible`,
    502,
  );
}
