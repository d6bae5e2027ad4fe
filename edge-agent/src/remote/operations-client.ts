/** The node's HTTP client of the hub's operation routes: pending operations in, results out. */
import {
  CitysenseError,
  type OperationResult,
  type OperationsDocument,
  OperationsDocumentSchema,
} from '@citysense/protocol';
import { type HubCredentials, type HubErrors, NodeHubHttp, retryStatus } from '../hub-http.ts';

/** The hub could not be reached or answered with an error. */
export const OPERATIONS_UNAVAILABLE = 'CS_ERR_OPERATIONS_UNAVAILABLE';
/** The hub's answer does not follow the contract (protocol/src/operations.ts). */
export const OPERATIONS_INVALID = 'CS_ERR_OPERATIONS_INVALID';

/** What a result PUT came to. */
export type ResultOutcome = 'accepted' | 'gone';

const ERRORS: HubErrors = {
  unavailable: (why) => new CitysenseError(OPERATIONS_UNAVAILABLE, why, 503),
  invalid: (why) => new CitysenseError(OPERATIONS_INVALID, `operations document invalid: ${why}`, 502),
};

/** GET /v1/nodes/:id/operations and PUT /v1/nodes/:id/operations/:opId/result, HTTP Basic with the node's credentials. */
export class OperationsClient {
  readonly #http: NodeHubHttp;

  constructor(credentials: HubCredentials, requestTimeoutMs?: number) {
    this.#http = new NodeHubHttp(credentials, requestTimeoutMs);
  }

  /** Pending operations, or null when the hub has no operations route (older hub). */
  pending(signal: AbortSignal): Promise<OperationsDocument | null> {
    return this.#http.document<OperationsDocument>('operations', OperationsDocumentSchema, signal, ERRORS);
  }

  /** Sends a result; `gone` when the hub no longer takes it (expired, unknown: 404/409). */
  async report(operationId: string, result: OperationResult, signal: AbortSignal): Promise<ResultOutcome> {
    const path = this.#http.nodePath(`operations/${encodeURIComponent(operationId)}/result`);
    const { status, text } = await this.#http.send('PUT', path, result, signal, ERRORS);
    if (status >= 200 && status < 300) return 'accepted';
    if (status === 404 || status === 409) return 'gone';
    throw new CitysenseError(
      OPERATIONS_UNAVAILABLE,
      `hub answered HTTP ${status} to the result of ${operationId}: ${text.slice(0, 200)}`,
      retryStatus(status),
    );
  }
}
