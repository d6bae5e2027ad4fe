/** The node's HTTP client of the hub's OTA routes (protocol/src/ota.ts): document in, status reports out. */
import {
  CitysenseError,
  type OtaDocument,
  OtaDocumentSchema,
  type OtaStatus,
  OtaStatusSchema,
} from '@citysense/protocol';
import { Value } from '@sinclair/typebox/value';
import { type HubCredentials, type HubErrors, NodeHubHttp, retryStatus } from '../hub-http.ts';
import type { StatusReportOutcome } from '../inference/hub-client.ts';

/** The hub could not be reached or answered the OTA route with an error (retried on the next poll). */
export const OTA_UNAVAILABLE = 'CS_ERR_OTA_UNAVAILABLE';
/** The hub's OTA document does not follow the contract. */
export const OTA_DOCUMENT_INVALID = 'CS_ERR_OTA_DOCUMENT_INVALID';
/** A status report was not accepted; the latest state is sent again later. */
export const OTA_STATUS_REPORT = 'CS_ERR_OTA_STATUS_REPORT';

const ERRORS: HubErrors = {
  unavailable: (why) => new CitysenseError(OTA_UNAVAILABLE, why, 503),
  invalid: (why) =>
    new CitysenseError(
      OTA_DOCUMENT_INVALID,
      `the hub's OTA document is invalid (${why}); check that the hub and agent versions are compatible`,
      502,
    ),
};

/**
 * GET /v1/nodes/:id/ota and PUT /v1/nodes/:id/ota/:campaignId/status, authenticated like
 * every node route (HTTP Basic with the node's MQTT credentials).
 */
export class OtaClient {
  readonly #http: NodeHubHttp;

  constructor(credentials: HubCredentials) {
    this.#http = new NodeHubHttp(credentials);
  }

  /** Absolute URL of a hub path such as an assignment's `filePath`. */
  url(path: string): string {
    return this.#http.url(path);
  }

  /** Headers that authenticate this node. */
  authHeaders(): Record<string, string> {
    return this.#http.authHeaders();
  }

  /**
   * The node's OTA document, or null when the hub has no OTA route (404: an older hub).
   * Throws CS_ERR_OTA_UNAVAILABLE (retry later) or CS_ERR_OTA_DOCUMENT_INVALID.
   */
  async getDocument(signal: AbortSignal): Promise<OtaDocument | null> {
    const doc = await this.#http.document<OtaDocument>('ota', OtaDocumentSchema, signal, ERRORS);
    if (!doc) return null;
    const targets = new Set<string>();
    for (const u of doc.updates) {
      if (targets.has(u.target)) throw ERRORS.invalid(`it names two updates for target ${u.target}`);
      targets.add(u.target);
    }
    return doc;
  }

  /** Sends one status report. Throws CS_ERR_OTA_STATUS_REPORT (status 503 when worth retrying). */
  async putStatus(campaignId: string, status: OtaStatus, signal: AbortSignal): Promise<StatusReportOutcome> {
    const bad = Value.Errors(OtaStatusSchema, status).First();
    if (bad)
      throw new CitysenseError(
        OTA_STATUS_REPORT,
        `status report is invalid at ${bad.path}: ${bad.message}`,
        400,
      );
    const path = this.#http.nodePath(`ota/${encodeURIComponent(campaignId)}/status`);
    const answer = await this.#http.send('PUT', path, status, signal, {
      unavailable: (why) => new CitysenseError(OTA_STATUS_REPORT, `status report not delivered: ${why}`, 503),
    });
    if (answer.status === 404) return 'not-found';
    if (answer.status >= 200 && answer.status < 300) return 'accepted';
    throw new CitysenseError(
      OTA_STATUS_REPORT,
      `hub answered HTTP ${answer.status} to the OTA status of campaign ${campaignId}: ${answer.text.slice(0, 200)}`,
      retryStatus(answer.status),
    );
  }
}
