import type { SpoolRange } from '@citysense/protocol';
import type { SpoolRecord } from '../spool/spool.ts';
import { AckedRanges } from './acked-ranges.ts';
import { MovingMedian } from './moving-median.ts';
import type { RecordSource } from './record-source.ts';

/** Records fetched from the spool per read. */
const READ_BATCH = 64;
/** Bytes fetched from the spool per read. */
const READ_BYTES = 1024 * 1024;
/**
 * While backlog remains, one send slot in LIVE_EVERY goes to live data (when there
 * is any), so live records get at least 25% of the slots and backlog up to 75%.
 */
const LIVE_EVERY = 4;

/** Options of the scheduler. */
export interface SendSchedulerOptions {
  source: RecordSource;
  /** Max unacked records in flight. */
  window: number;
  /** Rewind when the oldest in-flight record has waited this long for its ack. */
  ackTimeoutMs: number;
}

/** Where a record came from. */
export type Lane = 'backlog' | 'live';

/**
 * Decides which spool record the uplink sends next.
 *
 * Policy: at (re)connect the spool's last id becomes the live boundary. Records up
 * to it are backlog, records after it are live. Both lanes are sent in id order
 * and as fast as the window allows; while both have records ready, every
 * LIVE_EVERY-th slot goes to the live lane, so a long backlog drains at up to three
 * times the live rate without live data waiting behind it. At most `window`
 * records are unacked at once; a rewind (rebirth, ack timeout) restarts both lanes
 * at the oldest unacked record, skipping records acked out of order. The ack
 * timeout fires when the oldest in-flight record has waited `ackTimeoutMs`.
 */
export class SendScheduler {
  readonly #o: SendSchedulerOptions;
  readonly #acked = new AckedRanges();
  readonly #rtt = new MovingMedian();
  /** id → time of the last send, in send order. */
  readonly #inFlight = new Map<number, number>();
  #liveBoundary = 0;
  #backlogNext = 0;
  #liveNext = 0;
  #backlogDone = true;
  #backlogBuf: SpoolRecord[] = [];
  #liveBuf: SpoolRecord[] = [];
  #slotsSinceLive = 0;
  #lastAckAt: number | null = null;

  constructor(o: SendSchedulerOptions) {
    this.#o = o;
  }

  /** Starts a session: everything up to the spool's last id is backlog. */
  beginSession(): void {
    this.#liveBoundary = this.#o.source.stats().lastId;
    this.rewind();
  }

  /** Forgets what is in flight and restarts both lanes at the oldest unacked record. */
  rewind(): void {
    const stats = this.#o.source.stats();
    const from = this.#o.source.firstUnackedId() ?? stats.lastId + 1;
    this.#acked.pruneBelow(from);
    this.#inFlight.clear();
    this.#backlogBuf = [];
    this.#liveBuf = [];
    this.#backlogNext = from;
    this.#backlogDone = from > this.#liveBoundary;
    this.#liveNext = Math.max(this.#liveBoundary + 1, from);
    this.#slotsSinceLive = 0;
  }

  /** The next record to send and its lane, or null when the window is full or nothing is ready. */
  async next(): Promise<{ record: SpoolRecord; lane: Lane } | null> {
    if (this.#inFlight.size >= this.#o.window) return null;
    if (!this.#backlogDone && this.#backlogBuf.length === 0) await this.#fillBacklog();
    if (this.#liveBuf.length === 0) await this.#fillLive();
    const backlogReady = this.#backlogBuf.length > 0;
    const liveReady = this.#liveBuf.length > 0;
    let lane: Lane;
    if (backlogReady && liveReady) lane = this.#slotsSinceLive >= LIVE_EVERY - 1 ? 'live' : 'backlog';
    else if (backlogReady) lane = 'backlog';
    else if (liveReady) lane = 'live';
    else return null;
    const record = lane === 'live' ? this.#liveBuf.shift() : this.#backlogBuf.shift();
    if (!record) return null;
    this.#slotsSinceLive = lane === 'live' ? 0 : this.#slotsSinceLive + 1;
    return { record, lane };
  }

  /** Records that `id` left now. */
  markSent(id: number, now: number): void {
    this.#inFlight.delete(id);
    this.#inFlight.set(id, now);
  }

  /** Marks `id` as done without an ack from the hub (an unreadable record that can never be sent). */
  settleLocally(id: number): void {
    this.#acked.add({ first: id, last: id });
    this.#inFlight.delete(id);
  }

  /** Applies a hub ack; returns how many in-flight records it settled. */
  onAck(ranges: SpoolRange[], now: number): number {
    let settled = 0;
    for (const range of ranges) {
      this.#acked.add(range);
      for (const [id, sentAt] of this.#inFlight) {
        if (id < range.first || id > range.last) continue;
        this.#inFlight.delete(id);
        this.#rtt.add(now - sentAt);
        settled++;
      }
    }
    if (settled > 0) this.#lastAckAt = now;
    return settled;
  }

  /**
   * Milliseconds until the ack timeout fires; null when nothing is in flight. The
   * clock is the oldest in-flight send: no ack progress at all trips it, and so does
   * one record lost on the way (e.g. sent before the hub resubscribed) while later
   * records keep being acked, which a plain "any ack resets it" clock would miss.
   */
  msUntilAckTimeout(now: number): number | null {
    for (const sentAt of this.#inFlight.values()) return sentAt + this.#o.ackTimeoutMs - now;
    return null;
  }

  /** Unacked records in flight. */
  get inFlight(): number {
    return this.#inFlight.size;
  }

  /** Last spool id at the start of the session: records after it are live. */
  get liveBoundary(): number {
    return this.#liveBoundary;
  }

  /** True while records up to the live boundary remain to be sent. */
  get hasBacklog(): boolean {
    return !this.#backlogDone || this.#backlogBuf.length > 0;
  }

  /** Time of the last ack that settled an in-flight record. */
  get lastAckAt(): number | null {
    return this.#lastAckAt;
  }

  /** Moving median of publish→ack time in ms, or null before the first ack. */
  get rttMs(): number | null {
    return this.#rtt.value();
  }

  async #fillBacklog(): Promise<void> {
    this.#backlogNext = this.#clampToSpool(this.#backlogNext);
    while (this.#backlogBuf.length === 0 && this.#backlogNext <= this.#liveBoundary) {
      const want = Math.min(READ_BATCH, this.#liveBoundary - this.#backlogNext + 1);
      const records = await this.#o.source.read(this.#backlogNext, want, READ_BYTES);
      const last = records[records.length - 1];
      if (!last) break;
      this.#backlogNext = last.id + 1;
      this.#backlogBuf = records.filter((r) => r.id <= this.#liveBoundary && !this.#acked.has(r.id));
    }
    // The loop ends with records in hand, past the boundary, or on an empty read
    // (nothing left at or after the cursor): in the last two cases the backlog is over.
    if (this.#backlogBuf.length === 0) this.#backlogDone = true;
  }

  async #fillLive(): Promise<void> {
    this.#liveNext = this.#clampToSpool(this.#liveNext);
    while (this.#liveBuf.length === 0 && this.#liveNext <= this.#o.source.stats().lastId) {
      const records = await this.#o.source.read(this.#liveNext, READ_BATCH, READ_BYTES);
      const last = records[records.length - 1];
      if (!last) break;
      this.#liveNext = last.id + 1;
      this.#liveBuf = records.filter((r) => !this.#acked.has(r.id));
    }
  }

  /** Records the spool dropped (drop-oldest) cannot be sent; skip to what is still there. */
  #clampToSpool(id: number): number {
    const firstId = this.#o.source.stats().firstId;
    return firstId !== null && id < firstId ? firstId : id;
  }
}
