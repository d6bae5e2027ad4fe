/**
 * Pushes the filing log to the city big-data platform's webhook. The chain itself is the
 * queue and `ledger_webhook_outbox` records how far the target has acknowledged, so a
 * restart resumes where delivery stopped and nothing filed is skipped. Failures back off
 * exponentially up to a ceiling; the receiver de-duplicates by `seq`.
 */
import { componentLogger, errorMessage, type Logger } from '@citysense/protocol';
import { postWebhook, webhookBackoffMs } from '../http/webhook-post.ts';
import type { Database } from '../storage/database.ts';
import type { LedgerService } from './ledger-service.ts';

/** Options of the webhook pusher. */
export interface LedgerWebhookOptions {
  db: Database;
  ledger: LedgerService;
  url: string;
  /** First retry delay; doubles per failed attempt. */
  backoffMs: number;
  maxBackoffMs: number;
  /** Entries per POST. */
  batch?: number;
  /** Per-request timeout. */
  timeoutMs?: number;
  logger?: Logger;
}

/** Delivery state as `GET /v1/ledger/webhook` shows it. */
export interface WebhookStatus {
  url: string;
  deliveredSeq: number;
  pending: number;
  attempts: number;
  nextAttemptAt: string | null;
  lastError: string | null;
}

/** Delivers chain entries to one webhook, in order, at least once. */
export class LedgerWebhook {
  readonly #o: LedgerWebhookOptions;
  readonly #log: Logger;
  #abort: AbortController | undefined;
  #running: Promise<void> | undefined;
  #timer: NodeJS.Timeout | undefined;
  #again = false;
  #unsubscribe: (() => void) | undefined;

  constructor(options: LedgerWebhookOptions) {
    this.#o = options;
    this.#log = componentLogger('ledger-webhook', options.logger);
  }

  /** Starts delivering what is pending and what gets filed; idempotent. */
  async start(): Promise<void> {
    if (this.#abort) return;
    this.#abort = new AbortController();
    await this.#o.db.query(
      'INSERT INTO ledger_webhook_outbox (target) VALUES ($1) ON CONFLICT (target) DO NOTHING',
      [this.#o.url],
    );
    this.#unsubscribe = this.#o.ledger.onFiled(() => this.#kick());
    const { rows } = await this.#o.db.query<{ next_attempt_at: Date | null }>(
      'SELECT next_attempt_at FROM ledger_webhook_outbox WHERE target = $1',
      [this.#o.url],
    );
    const wait = rows[0]?.next_attempt_at ? new Date(rows[0].next_attempt_at).getTime() - Date.now() : 0;
    this.#schedule(Math.min(Math.max(0, wait), this.#o.maxBackoffMs));
  }

  /** Stops; an in-flight request is aborted and retried after the next start. */
  async stop(): Promise<void> {
    this.#unsubscribe?.();
    this.#unsubscribe = undefined;
    clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#abort?.abort();
    await this.#running;
    this.#abort = undefined;
    this.#running = undefined;
  }

  /** Where delivery stands. */
  async status(): Promise<WebhookStatus> {
    const [{ rows }, head] = await Promise.all([
      this.#o.db.query<{
        delivered_seq: number;
        attempts: number;
        next_attempt_at: Date | null;
        last_error: string | null;
      }>(
        `SELECT delivered_seq::float8 AS delivered_seq, attempts, next_attempt_at, last_error
         FROM ledger_webhook_outbox WHERE target = $1`,
        [this.#o.url],
      ),
      this.#o.ledger.store.head(),
    ]);
    const r = rows[0];
    const delivered = r?.delivered_seq ?? 0;
    return {
      url: this.#o.url,
      deliveredSeq: delivered,
      pending: Math.max(0, head.seq - delivered),
      attempts: r?.attempts ?? 0,
      nextAttemptAt: r?.next_attempt_at ? new Date(r.next_attempt_at).toISOString() : null,
      lastError: r?.last_error ?? null,
    };
  }

  /** New entries: deliver now unless a retry is already waiting out its backoff. */
  #kick(): void {
    if (this.#running) this.#again = true;
    else if (this.#timer === undefined) this.#schedule(0);
  }

  #schedule(ms: number): void {
    if (!this.#abort || this.#abort.signal.aborted) return;
    clearTimeout(this.#timer);
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      this.#running = this.#deliver()
        .catch((err: unknown) => {
          this.#log.error({ err: errorMessage(err) }, 'ledger webhook delivery loop failed');
          this.#schedule(this.#o.maxBackoffMs);
        })
        .finally(() => {
          this.#running = undefined;
        });
    }, ms);
  }

  async #deliver(): Promise<void> {
    const signal = this.#abort?.signal;
    const batch = this.#o.batch ?? 500;
    for (;;) {
      if (!signal || signal.aborted) return;
      this.#again = false;
      const { rows } = await this.#o.db.query<{ delivered_seq: number; attempts: number }>(
        'SELECT delivered_seq::float8 AS delivered_seq, attempts FROM ledger_webhook_outbox WHERE target = $1',
        [this.#o.url],
      );
      const delivered = rows[0]?.delivered_seq ?? 0;
      const attempts = rows[0]?.attempts ?? 0;
      const page = await this.#o.ledger.chain(delivered, batch);
      if (page.entries.length === 0) {
        if (this.#again) continue;
        return;
      }
      const error = await this.#post(page, signal);
      if (signal.aborted) return;
      if (error === null) {
        await this.#o.db.query(
          `UPDATE ledger_webhook_outbox SET delivered_seq = GREATEST(delivered_seq, $2), attempts = 0,
             next_attempt_at = NULL, last_error = NULL, updated_at = now() WHERE target = $1`,
          [this.#o.url, page.next],
        );
        continue;
      }
      const delay = webhookBackoffMs(attempts, this.#o.backoffMs, this.#o.maxBackoffMs);
      await this.#o.db.query(
        `UPDATE ledger_webhook_outbox SET attempts = attempts + 1, next_attempt_at = $2, last_error = $3,
           updated_at = now() WHERE target = $1`,
        [this.#o.url, new Date(Date.now() + delay), error],
      );
      this.#log.warn(
        { url: this.#o.url, from: delivered + 1, attempt: attempts + 1, retryInMs: delay, err: error },
        'ledger webhook push failed; will retry',
      );
      this.#schedule(delay);
      return;
    }
  }

  /** POSTs one page; null on a 2xx answer, else what went wrong. */
  #post(page: Awaited<ReturnType<LedgerService['chain']>>, stop: AbortSignal): Promise<string | null> {
    const first = page.entries[0]?.seq ?? 0;
    return postWebhook(this.#o.url, JSON.stringify(page), {
      headers: { 'x-citysense-ledger-seq': `${first}-${page.next}` },
      timeoutMs: this.#o.timeoutMs,
      signal: stop,
    });
  }
}
