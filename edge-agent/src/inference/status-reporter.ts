/**
 * Delivers per-assignment status reports to the hub, one PUT at a time. Only the latest
 * state of each deployment matters: a report that fails (hub down) is retried with
 * backoff, and a newer state replaces it while it waits.
 */
import { type AssignmentStatus, errorMessage, type Logger } from '@citysense/protocol';
import { type BackoffOptions, backoffDelay, sleep } from '../backoff.ts';
import { BackgroundLoop } from './background-loop.ts';
import { codeOf, isRetryable } from './errors.ts';
import type { StatusReportOutcome } from './hub-client.ts';

/** Options of the reporter; `S` is the report type (AssignmentStatus here, OtaStatus for OTA). */
export interface StatusReporterOptions<S = AssignmentStatus> {
  client: { putStatus(id: string, status: S, signal: AbortSignal): Promise<StatusReportOutcome> };
  backoff: BackoffOptions;
  logger: Logger;
  /** Called when the hub took a report (or has no such route/id), with the state it took. */
  onDelivered?: ((id: string, status: S, outcome: StatusReportOutcome) => void) | undefined;
}

/** Reporter figures for the agent status. */
export interface StatusReporterStatus {
  /** Deployments whose latest state is not delivered yet. */
  pending: number;
  delivered: number;
  /** Failed attempts (each retried later with the latest state). */
  failures: number;
  lastError: { code: string; message: string } | null;
}

interface Pending<S> {
  status: S;
  /** Bumped on every update, so a delivery only clears the state it sent. */
  seq: number;
}

/** Coalescing, retrying sender of status reports (AssignmentStatus by default). */
export class StatusReporter<S = AssignmentStatus> {
  readonly #o: StatusReporterOptions<S>;
  readonly #pending = new Map<string, Pending<S>>();
  readonly #notFoundLogged = new Set<string>();
  readonly #background = new BackgroundLoop((signal) => this.#run(signal));
  #seq = 0;
  #counters = { delivered: 0, failures: 0 };
  #lastError: { code: string; message: string } | null = null;

  constructor(o: StatusReporterOptions<S>) {
    this.#o = o;
  }

  /** Starts the sender. Idempotent. */
  async start(): Promise<void> {
    this.#background.start();
  }

  /** Stops the sender; undelivered reports are dropped (the hub gets fresh ones after a restart). Idempotent. */
  async stop(): Promise<void> {
    await this.#background.stop();
  }

  /** Queues `status` as the latest state of `deploymentId`, replacing an undelivered one. */
  update(deploymentId: string, status: S): void {
    // Re-inserted at the end, so one deployment's stream of updates cannot starve the others.
    this.#pending.delete(deploymentId);
    this.#pending.set(deploymentId, { status, seq: ++this.#seq });
    this.#background.notify();
  }

  /** Drops any undelivered report of a deployment the hub withdrew. */
  forget(deploymentId: string): void {
    this.#pending.delete(deploymentId);
    this.#notFoundLogged.delete(deploymentId);
  }

  /** Sender figures. */
  status(): StatusReporterStatus {
    return { pending: this.#pending.size, ...this.#counters, lastError: this.#lastError };
  }

  async #run(signal: AbortSignal): Promise<void> {
    let attempt = 0;
    while (!signal.aborted) {
      const next = this.#pending.entries().next();
      if (next.done) {
        await this.#background.wakeup.wait(60_000);
        continue;
      }
      const [deploymentId, { status, seq }] = next.value;
      try {
        const outcome = await this.#o.client.putStatus(deploymentId, status, signal);
        attempt = 0;
        this.#lastError = null;
        if (outcome === 'accepted') this.#counters.delivered++;
        else if (!this.#notFoundLogged.has(deploymentId)) {
          this.#notFoundLogged.add(deploymentId);
          this.#o.logger.info(
            { deployment: deploymentId },
            'hub does not know this deployment or has no status route; report dropped',
          );
        }
        if (this.#pending.get(deploymentId)?.seq === seq) this.#pending.delete(deploymentId);
        this.#o.onDelivered?.(deploymentId, status, outcome);
      } catch (err) {
        if (signal.aborted) break;
        const code = codeOf(err);
        this.#counters.failures++;
        this.#lastError = { code, message: errorMessage(err) };
        if (!isRetryable(err)) {
          this.#o.logger.warn(
            { deployment: deploymentId, code, err: errorMessage(err) },
            'status report refused',
          );
          if (this.#pending.get(deploymentId)?.seq === seq) this.#pending.delete(deploymentId);
          continue;
        }
        const delayMs = backoffDelay(attempt, this.#o.backoff) + this.#o.backoff.initialMs;
        const level = attempt === 0 ? 'warn' : 'debug';
        this.#o.logger[level](
          { code, err: errorMessage(err), delayMs },
          'status report failed; will send the latest state',
        );
        attempt++;
        await sleep(delayMs, signal).catch(() => undefined);
      }
    }
  }
}
