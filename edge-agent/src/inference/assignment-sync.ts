/** Keeps the node's copy of its assignments current: polls the hub, and polls at once when nudged. */
import { type AssignmentsDocument, errorMessage, type Logger } from '@citysense/protocol';
import { BackgroundLoop } from './background-loop.ts';
import { codeOf } from './errors.ts';
import type { HubClient } from './hub-client.ts';

/** Options of the sync loop. */
export interface AssignmentSyncOptions {
  client: Pick<HubClient, 'getAssignments'>;
  intervalMs: number;
  /** Gets every document that differs from the previous one. */
  onDocument: (doc: AssignmentsDocument) => void;
  /** Also hand over unchanged documents (something local, such as imported packages, may have changed). */
  deliverUnchanged?: boolean;
  logger: Logger;
}

/** What the sync loop knows, for the agent status. */
export interface AssignmentSyncStatus {
  /** Revision of the last document received; null before the first. */
  revision: number | null;
  /** Last successful poll, ms since the epoch. */
  lastSyncAt: number | null;
  /** False once the hub answered 404 (no deployment scheduler yet); null before the first answer. */
  hubSupportsAssignments: boolean | null;
  lastError: { code: string; message: string } | null;
  polls: number;
}

/**
 * Polls GET /v1/nodes/:id/assignments every `intervalMs`, and at once on `syncNow()`
 * (NCMD ASSIGNMENTS_REVISION, MQTT (re)connect). Polls never overlap; a nudge during a
 * poll triggers one more poll right after it. Errors are logged and the next poll retries.
 */
export class AssignmentSync {
  readonly #o: AssignmentSyncOptions;
  readonly #background = new BackgroundLoop((signal) => this.#run(signal));
  #lastJson: string | null = null;
  #failing = false;
  #status: AssignmentSyncStatus = {
    revision: null,
    lastSyncAt: null,
    hubSupportsAssignments: null,
    lastError: null,
    polls: 0,
  };

  constructor(o: AssignmentSyncOptions) {
    this.#o = o;
  }

  /** Starts polling in the background (first poll at once). Idempotent. */
  async start(): Promise<void> {
    this.#background.start();
  }

  /** Stops polling and waits for a poll in flight to end. Idempotent. */
  async stop(): Promise<void> {
    await this.#background.stop();
  }

  /** Polls now (or right after the poll in flight). */
  syncNow(reason: string): void {
    this.#o.logger.debug({ reason }, 'assignments sync requested');
    this.#background.notify();
  }

  /** A copy of the loop's figures. */
  status(): AssignmentSyncStatus {
    return { ...this.#status };
  }

  async #run(signal: AbortSignal): Promise<void> {
    while (!signal.aborted) {
      await this.#poll(signal);
      if (signal.aborted) break;
      await this.#background.wakeup.wait(this.#o.intervalMs);
    }
  }

  async #poll(signal: AbortSignal): Promise<void> {
    const log = this.#o.logger;
    this.#status.polls++;
    let doc: AssignmentsDocument | null;
    try {
      doc = await this.#o.client.getAssignments(signal);
    } catch (err) {
      if (signal.aborted) return;
      const code = codeOf(err);
      this.#status.lastError = { code, message: errorMessage(err) };
      // One warning per outage, not one per poll.
      if (!this.#failing) log.warn({ code, err: errorMessage(err) }, 'assignments poll failed; will retry');
      else log.debug({ code, err: errorMessage(err) }, 'assignments poll failed again');
      this.#failing = true;
      return;
    }
    if (this.#failing) log.info('assignments poll works again');
    this.#failing = false;
    this.#status.lastError = null;
    if (doc === null) {
      if (this.#status.hubSupportsAssignments !== false)
        log.info(
          { retryMs: this.#o.intervalMs },
          'hub has no assignments route (older hub); no algorithms to run, asking again later',
        );
      this.#status.hubSupportsAssignments = false;
      return;
    }
    this.#status.hubSupportsAssignments = true;
    this.#status.lastSyncAt = Date.now();
    this.#status.revision = doc.revision;
    const json = JSON.stringify(doc);
    const changed = json !== this.#lastJson;
    this.#lastJson = json;
    if (changed)
      log.info({ revision: doc.revision, assignments: doc.assignments.length }, 'assignments received');
    if (changed || this.#o.deliverUnchanged) this.#o.onDocument(doc);
  }
}
