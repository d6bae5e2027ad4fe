import { componentLogger, errorMessage, type Logger } from '@citysense/protocol';
import type { AnalyticsStore, NodeAlert, NodeFrame } from '../analytics/analytics-store.ts';
import type { HubMetrics } from '../http/metrics.ts';
import type { HealthColumn } from './node-session.ts';
import type { ReadingStore } from './reading-store.ts';

/** One node health sample. */
export type HealthSample = { nodeId: string; time: number } & Partial<Record<HealthColumn, number>>;

/** Called after a batch is committed with the spool record ids it completed, per node. */
export type CommitListener = (committed: Map<string, number[]>) => void;

/** Options of the batch writer. */
export interface BatchWriterOptions {
  store: ReadingStore;
  /** Where video analytics frames go. */
  analytics: AnalyticsStore;
  metrics: HubMetrics;
  /** Flush when this many rows are buffered. */
  maxBatchRows: number;
  /** Flush at the latest this long after the first buffered row. */
  flushIntervalMs: number;
  /** Above this many buffered rows, `reserve()` waits: back-pressure towards the broker. */
  maxBufferedRows: number;
  onCommit: CommitListener;
  logger?: Logger;
}

class Batch {
  time: number[] = [];
  seriesId: number[] = [];
  value: (number | null)[] = [];
  textValue: (string | null)[] = [];
  quality: number[] = [];
  health: HealthSample[] = [];
  frames: NodeFrame[] = [];
  alerts: NodeAlert[] = [];
  records = new Map<string, number[]>();
  get size(): number {
    return this.time.length + this.health.length + this.frames.length + this.alerts.length;
  }
}

/**
 * Collects decoded readings into column arrays and writes them in one
 * `INSERT ... unnest` per batch. A spool record is acknowledged only after the
 * batch holding all of its rows has committed; a failed batch is retried, never
 * dropped, and the writer holds back input while it is full.
 */
export class BatchWriter {
  readonly #o: BatchWriterOptions;
  readonly #log: Logger;
  #batch = new Batch();
  #timer: NodeJS.Timeout | undefined;
  #inflight: Promise<void> | undefined;
  #stopped = false;

  constructor(options: BatchWriterOptions) {
    this.#o = options;
    this.#log = componentLogger('batch-writer', options.logger);
  }

  /** Rows waiting to be written. */
  get bufferedRows(): number {
    return this.#batch.size;
  }

  /** Resolves when there is room for more rows (back-pressure). */
  async reserve(): Promise<void> {
    while (this.#batch.size >= this.#o.maxBufferedRows && this.#inflight) await this.#inflight;
  }

  /** Buffers one reading. */
  addReading(
    time: number,
    seriesId: number,
    value: number | null,
    textValue: string | null,
    quality: number,
  ): void {
    const b = this.#batch;
    b.time.push(time);
    b.seriesId.push(seriesId);
    b.value.push(value);
    b.textValue.push(textValue);
    b.quality.push(quality);
    this.#scheduled();
  }

  /** Buffers one health sample. */
  addHealth(sample: HealthSample): void {
    this.#batch.health.push(sample);
    this.#scheduled();
  }

  /** Buffers one video analytics frame (its objects are written with it). */
  addFrame(frame: NodeFrame): void {
    this.#batch.frames.push(frame);
    this.#scheduled();
  }

  /** Buffers one edge alert. */
  addAlert(alert: NodeAlert): void {
    this.#batch.alerts.push(alert);
    this.#scheduled();
  }

  /** Marks spool record `id` of `nodeId` complete in the current batch: it is acked after commit. */
  completeRecord(nodeId: string, id: number): void {
    const list = this.#batch.records.get(nodeId);
    if (list) list.push(id);
    else this.#batch.records.set(nodeId, [id]);
    this.#scheduled();
  }

  /** Writes everything buffered and waits for it. */
  async drain(): Promise<void> {
    while (this.#inflight || this.#batch.size > 0 || this.#batch.records.size > 0) {
      if (this.#inflight) await this.#inflight;
      else this.#flush();
    }
  }

  /** Stops timers after draining. */
  async stop(): Promise<void> {
    await this.drain();
    this.#stopped = true;
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  #scheduled(): void {
    if (this.#stopped) return;
    if (this.#batch.size >= this.#o.maxBatchRows) {
      if (!this.#inflight) this.#flush();
      return;
    }
    this.#timer ??= setTimeout(() => {
      this.#timer = undefined;
      if (!this.#inflight) this.#flush();
    }, this.#o.flushIntervalMs);
  }

  #flush(): void {
    const batch = this.#batch;
    if (batch.size === 0 && batch.records.size === 0) return;
    this.#batch = new Batch();
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#inflight = this.#commit(batch).finally(() => {
      this.#inflight = undefined;
      if (this.#batch.size > 0 || this.#batch.records.size > 0) this.#scheduled();
    });
  }

  async #commit(batch: Batch): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      const started = performance.now();
      try {
        if (batch.time.length > 0) {
          await this.#o.store.insertReadings({
            time: batch.time,
            seriesId: batch.seriesId,
            value: batch.value,
            textValue: batch.textValue,
            quality: batch.quality,
          });
        }
        if (batch.health.length > 0) await this.#o.store.insertHealth(batch.health);
        if (batch.frames.length > 0) await this.#o.analytics.insertFrames(batch.frames);
        if (batch.alerts.length > 0) await this.#o.analytics.insertAlerts(batch.alerts);
        this.#o.metrics.dbLatency.observe((performance.now() - started) / 1000);
        this.#o.metrics.readingsCommitted.inc(undefined, batch.time.length);
        break;
      } catch (err) {
        const delay = Math.min(5000, 100 * 2 ** Math.min(attempt, 6));
        this.#log.error(
          { err: errorMessage(err), rows: batch.size, attempt, retryInMs: delay },
          'ingest batch failed; retrying',
        );
        await new Promise((r) => setTimeout(r, delay));
      }
    }
    if (batch.records.size > 0) this.#o.onCommit(batch.records);
  }
}
