/**
 * Refusals of data by the ledger, per device: what was refused, why, how often, first and
 * last time. Refusals arrive at message rate, so they are merged in memory and written as
 * one upsert per flush (`ledger_refusals`); a failed write keeps its counts for the next one.
 */
import { componentLogger, errorMessage, type Logger } from '@citysense/protocol';
import type { Queryable } from '../storage/database.ts';

/** Where a refusal happened: a GB/T 28181 REGISTER or Sparkplug values. */
export type RefusalChannel = 'video' | 'sensor';

/** One refusal (or `count` of them) to record. */
export interface RefusalEvent {
  deviceCode: string;
  /** Stable code, e.g. CS_ERR_LEDGER_NOT_ACTIVE. */
  code: string;
  channel: RefusalChannel;
  /** What the owner should do. */
  reason: string;
  /** The SIP peer or the Sparkplug edge node that sent it. */
  source: string;
  /** Refused requests (video) or dropped values (sensor). */
  count: number;
  /** Epoch ms. */
  time: number;
}

/** A device's refusal record as its owner reads it. */
export interface RefusalRecord {
  code: string;
  channel: RefusalChannel;
  reason: string;
  source: string;
  count: number;
  firstAt: string;
  lastAt: string;
}

/** Options of the log. */
export interface RefusalLogOptions {
  db: Queryable;
  /** Longest time a refusal waits in memory before it is written, ms (default 1000). */
  flushMs?: number;
  logger?: Logger | undefined;
}

interface Pending {
  deviceCode: string;
  code: string;
  channel: RefusalChannel;
  reason: string;
  source: string;
  count: number;
  firstAt: number;
  lastAt: number;
}

/** Batched per-device refusal records. */
export class RefusalLog {
  readonly #o: RefusalLogOptions;
  readonly #log: Logger;
  #pending = new Map<string, Pending>();
  #timer: NodeJS.Timeout | undefined;
  #writes: Promise<void> = Promise.resolve();
  #failures = 0;

  constructor(options: RefusalLogOptions) {
    this.#o = options;
    this.#log = componentLogger('ledger-refusals', options.logger);
  }

  /** Writes that failed since start (their counts were kept for the next flush). */
  get failures(): number {
    return this.#failures;
  }

  /** Adds a refusal; it is written within `flushMs`. */
  record(e: RefusalEvent): void {
    const key = `${e.deviceCode}\u0000${e.code}\u0000${e.channel}`;
    this.#merge(key, {
      deviceCode: e.deviceCode,
      code: e.code,
      channel: e.channel,
      reason: e.reason,
      source: e.source,
      count: e.count,
      firstAt: e.time,
      lastAt: e.time,
    });
    this.#schedule();
  }

  /** Writes what is pending and waits for every write so far. */
  flush(): Promise<void> {
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = undefined;
    const batch = this.#pending;
    this.#pending = new Map();
    this.#writes = this.#writes.then(() => (batch.size > 0 ? this.#upsert(batch) : undefined));
    return this.#writes;
  }

  /** A device's records, most recent first (pending ones included once flushed by the caller). */
  async list(deviceCode: string): Promise<RefusalRecord[]> {
    const { rows } = await this.#o.db.query<RefusalRecord & { firstAt: Date; lastAt: Date }>(
      `SELECT code, channel, reason, source, count::float8 AS count, first_at AS "firstAt", last_at AS "lastAt"
       FROM ledger_refusals WHERE device_code = $1 ORDER BY last_at DESC, code, channel`,
      [deviceCode],
    );
    return rows.map((r) => ({
      ...r,
      firstAt: new Date(r.firstAt).toISOString(),
      lastAt: new Date(r.lastAt).toISOString(),
    }));
  }

  /** Writes what is pending. Idempotent. */
  async stop(): Promise<void> {
    await this.flush();
  }

  #schedule(): void {
    this.#timer ??= setTimeout(() => {
      this.#timer = undefined;
      void this.flush();
    }, this.#o.flushMs ?? 1000);
    this.#timer.unref();
  }

  #merge(key: string, p: Pending): void {
    const known = this.#pending.get(key);
    if (!known) {
      this.#pending.set(key, p);
      return;
    }
    known.count += p.count;
    known.firstAt = Math.min(known.firstAt, p.firstAt);
    if (p.lastAt >= known.lastAt)
      Object.assign(known, { lastAt: p.lastAt, reason: p.reason, source: p.source });
  }

  async #upsert(batch: Map<string, Pending>): Promise<void> {
    const rows = [...batch.values()].map((p) => ({
      ...p,
      firstAt: new Date(p.firstAt).toISOString(),
      lastAt: new Date(p.lastAt).toISOString(),
    }));
    try {
      await this.#o.db.query(
        `INSERT INTO ledger_refusals (device_code, code, channel, reason, source, count, first_at, last_at)
         SELECT r."deviceCode", r.code, r.channel, r.reason, r.source, r.count, r."firstAt", r."lastAt"
         FROM jsonb_to_recordset($1::jsonb) AS r("deviceCode" text, code text, channel text, reason text,
           source text, count bigint, "firstAt" timestamptz, "lastAt" timestamptz)
         ON CONFLICT (device_code, code, channel) DO UPDATE SET
           count = ledger_refusals.count + EXCLUDED.count,
           first_at = LEAST(ledger_refusals.first_at, EXCLUDED.first_at),
           reason = CASE WHEN EXCLUDED.last_at >= ledger_refusals.last_at THEN EXCLUDED.reason ELSE ledger_refusals.reason END,
           source = CASE WHEN EXCLUDED.last_at >= ledger_refusals.last_at THEN EXCLUDED.source ELSE ledger_refusals.source END,
           last_at = GREATEST(ledger_refusals.last_at, EXCLUDED.last_at)`,
        [JSON.stringify(rows)],
      );
    } catch (err) {
      // Keep the counts: they go out with the next flush.
      this.#failures++;
      this.#log.error(
        { rows: rows.length, err: errorMessage(err) },
        'refusal records not written; kept for retry',
      );
      for (const [key, p] of batch) this.#merge(key, p);
      this.#schedule();
    }
  }
}
