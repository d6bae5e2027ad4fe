/**
 * Delivers alarm notifications from the `alarm_webhook_deliveries` outbox: signed JSON
 * POSTs (HMAC-SHA256 of the body, `x-citysense-signature-256`), retried with exponential
 * backoff until the target answers 2xx or `maxAttempts` is reached. The alarm itself is
 * committed before its notification is queued, so a failing target never loses one.
 * Receivers de-duplicate by `x-citysense-delivery` and order by the body's `eventId`.
 */
import { componentLogger, errorMessage, type Logger } from '@citysense/protocol';
import type { Counter } from '../http/metrics.ts';
import { postWebhook, webhookBackoffMs } from '../http/webhook-post.ts';
import type { Database } from '../storage/database.ts';

/** Options of the alarm webhook deliverer. */
export interface AlarmWebhooksOptions {
  db: Database;
  /** HMAC-SHA256 key shared with the receivers. */
  secret: string | Buffer;
  backoffMs: number;
  maxBackoffMs: number;
  /** After this many failed attempts a delivery is `failed` (and stays visible). */
  maxAttempts: number;
  timeoutMs: number;
  failures: Counter;
  logger?: Logger;
}

interface DueRow {
  id: number;
  target: string;
  body: string;
  attempts: number;
}

/** Works through the webhook outbox; one loop, kicked when something is queued. */
export class AlarmWebhooks {
  readonly #o: AlarmWebhooksOptions;
  readonly #log: Logger;
  #abort: AbortController | undefined;
  #timer: NodeJS.Timeout | undefined;
  #running: Promise<void> | undefined;
  #again = false;

  constructor(options: AlarmWebhooksOptions) {
    this.#o = options;
    this.#log = componentLogger('alarm-webhooks', options.logger);
  }

  /** Starts delivering what is pending; idempotent. */
  async start(): Promise<void> {
    if (this.#abort) return;
    this.#abort = new AbortController();
    this.kick();
  }

  /** Stops; an in-flight request is aborted and retried after the next start. */
  async stop(): Promise<void> {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#abort?.abort();
    await this.#running;
    this.#abort = undefined;
  }

  /** Something was queued: deliver now. */
  kick(): void {
    if (this.#running) this.#again = true;
    else this.#schedule(0);
  }

  #schedule(ms: number): void {
    if (!this.#abort || this.#abort.signal.aborted) return;
    clearTimeout(this.#timer);
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      this.#running = this.#deliver()
        .catch((err: unknown) => {
          this.#log.error({ err: errorMessage(err) }, 'alarm webhook loop failed; retrying');
          this.#schedule(this.#o.maxBackoffMs);
        })
        .finally(() => {
          this.#running = undefined;
          if (this.#again) {
            this.#again = false;
            this.#schedule(0);
          }
        });
    }, ms);
  }

  async #deliver(): Promise<void> {
    const signal = this.#abort?.signal;
    for (;;) {
      if (!signal || signal.aborted) return;
      this.#again = false;
      const { rows } = await this.#o.db.query<DueRow>(
        `SELECT id, target, body, attempts FROM alarm_webhook_deliveries
         WHERE state = 'pending' AND next_attempt_at <= $1 ORDER BY id LIMIT 50`,
        [new Date()],
      );
      if (rows.length === 0) break;
      // A target that failed in this round is not tried again in it (its later deliveries wait too).
      const down = new Set<string>();
      for (const row of rows) {
        if (signal.aborted) return;
        if (down.has(row.target)) continue;
        const error = await postWebhook(row.target, row.body, {
          secret: this.#o.secret,
          headers: { 'x-citysense-delivery': String(row.id) },
          timeoutMs: this.#o.timeoutMs,
          signal,
        });
        if (signal.aborted) return;
        await this.#record(row, error);
        if (error !== null) down.add(row.target);
      }
      if (down.size > 0) break;
    }
    const next = await this.#o.db.query<{ at: Date | null }>(
      "SELECT min(next_attempt_at) AS at FROM alarm_webhook_deliveries WHERE state = 'pending'",
    );
    const at = next.rows[0]?.at;
    if (at) this.#schedule(Math.min(this.#o.maxBackoffMs, Math.max(0, new Date(at).getTime() - Date.now())));
  }

  async #record(row: DueRow, error: string | null): Promise<void> {
    const attempts = row.attempts + 1;
    if (error === null) {
      await this.#o.db.query(
        `UPDATE alarm_webhook_deliveries SET state = 'delivered', attempts = $2, delivered_at = now(), last_error = NULL
         WHERE id = $1`,
        [row.id, attempts],
      );
      return;
    }
    this.#o.failures.inc();
    const giveUp = attempts >= this.#o.maxAttempts;
    const delay = webhookBackoffMs(row.attempts, this.#o.backoffMs, this.#o.maxBackoffMs);
    await this.#o.db.query(
      `UPDATE alarm_webhook_deliveries SET state = $2, attempts = $3, next_attempt_at = $4, last_error = $5 WHERE id = $1`,
      [row.id, giveUp ? 'failed' : 'pending', attempts, new Date(Date.now() + delay), error],
    );
    this.#log.warn(
      {
        target: row.target,
        delivery: row.id,
        attempt: attempts,
        retryInMs: giveUp ? null : delay,
        err: error,
      },
      giveUp ? 'alarm webhook delivery failed for good' : 'alarm webhook delivery failed; will retry',
    );
  }
}
