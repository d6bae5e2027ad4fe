/**
 * Store-and-forward spool of the edge agent: a disk-backed, bounded, ordered log between the
 * drivers and the uplink. A record leaves only once the hub acknowledges that it committed it.
 *
 * Durability trade-off. `append` resolves once the record has been handed to the kernel with
 * write(2): it then survives `kill -9` of the agent (the page cache belongs to the kernel).
 * Surviving a power loss or kernel crash needs fsync, which costs milliseconds on the SD/eMMC
 * storage of a gateway; doing it per append would cap throughput at a few hundred records/s.
 * So fsync is a group commit at most every `fsyncIntervalMs` (default 200 ms), at each segment
 * roll and on close: a reboot can lose at most the last window of appends. Ids handed out in
 * that window are never reused (see the id reservation in recovery.ts). `fsyncIntervalMs: 0`
 * fsyncs every write before `append` resolves, for callers that prefer durability to speed.
 */
import { EventEmitter } from 'node:events';
import { type FileHandle, open, unlink } from 'node:fs/promises';
import {
  CitysenseError,
  componentLogger,
  errorMessage,
  type Logger,
  type SpoolRange,
} from '@citysense/protocol';
import { AckedIds } from './acked-ids.ts';
import {
  checkFrame,
  encodeFrame,
  FRAME_HEADER_BYTES,
  frameAppendedAt,
  frameBytes,
  frameId,
} from './frame.ts';
import { type RecoveredSpool, recoverSpool } from './recovery.ts';
import { Segment } from './segment.ts';
import { type SpoolState, saveState, syncDir } from './state-file.ts';

/** What to do when an append would exceed `maxBytes`. */
export type SpoolFullPolicy = 'drop-oldest' | 'reject-new';

/** Spool configuration. */
export interface SpoolOptions {
  /** Directory of the segment files and the state file; created when missing. */
  dir: string;
  /** Bound on the total bytes of segment files; default 256 MiB. */
  maxBytes?: number;
  /** Behaviour when full; default `drop-oldest`. */
  policy?: SpoolFullPolicy;
  /** Segment file size; default 4 MiB, capped at maxBytes. Bounds the size of one record. */
  segmentBytes?: number;
  /** Longest time appended data may sit unfsynced; default 200 ms, 0 = fsync before append resolves. */
  fsyncIntervalMs?: number;
  /** Parent logger; a `component: spool` child is used. */
  logger?: Logger;
}

/** One unacked record read back from the spool. */
export interface SpoolRecord {
  /** 1, 2, 3...: strictly increasing, never reused, survives restarts. */
  id: number;
  /** When it was appended, ms since the epoch. */
  appendedAt: number;
  /** The bytes appended (a view into a buffer shared by one `read` call's records). */
  payload: Uint8Array;
}

/** A snapshot of the spool's fill level and counters. */
export interface SpoolStats {
  /** Records not yet acked. */
  records: number;
  /** Bytes of segment files on disk. */
  bytes: number;
  /** appendedAt of the oldest unacked record. */
  oldestAppendedAt: number | null;
  /** Records dropped or rejected by the full policy, ever (persisted). */
  droppedRecords: number;
  /** Corrupt or torn spots found in segment files, ever (persisted). */
  corruptions: number;
  /** Oldest unacked id. */
  firstId: number | null;
  /** Last id appended (0 when none ever was). */
  lastId: number;
}

/** Why records left the spool unacknowledged. */
export type SpoolDropReason = 'drop-oldest' | 'reject-new' | 'corrupt';

/** Events of the spool. */
export type SpoolEvents = {
  /** Records up to `lastId` were written. */
  appended: [lastId: number];
  /** `count` records were lost for `reason`. */
  dropped: [count: number, reason: SpoolDropReason];
};

const MiB = 1024 * 1024;
const DEFAULT_MAX_BYTES = 256 * MiB;
const DEFAULT_SEGMENT_BYTES = 4 * MiB;
const DEFAULT_FSYNC_INTERVAL_MS = 200;
/** Segment offsets are indexed as u32. */
const MAX_SEGMENT_BYTES = 1024 * MiB;
/** Ack state is persisted at most this often (plus on close). */
const STATE_SAVE_INTERVAL_MS = 100;
/** Ids are reserved on disk this far ahead, so a reboot never reuses an id already handed out. */
const ID_RESERVE_BLOCK = 100_000;
/** Acked ranges above the head persisted at most (the rest is re-delivered after a crash). */
const MAX_PERSISTED_RANGES = 4096;

/** One append call waiting for the writer. */
interface PendingAppend {
  payloads: Uint8Array[];
  /** Frame bytes of all payloads. */
  bytes: number;
  /** Id of the first payload, assigned by the writer. */
  firstId: number;
  settled: boolean;
  resolve: (firstId: number) => void;
  reject: (err: Error) => void;
}

/** Records planned for one write() into the active segment. */
interface WritePlan {
  firstId: number;
  payloads: Uint8Array[];
  bytes: number;
  /** Appends whose last record is in this plan: resolved once it is written. */
  completes: PendingAppend[];
}

type Phase = 'closed' | 'open' | 'closing';

function newPlan(firstId: number): WritePlan {
  return { firstId, payloads: [], bytes: 0, completes: [] };
}

function ignore(): void {}

/** Wraps a file-system error in a coded error that says what to check. */
function ioError(action: string, dir: string, err: unknown): CitysenseError {
  if (err instanceof CitysenseError) return err;
  const message = `spool ${action} failed in ${dir}: ${errorMessage(err)}; check free space and permissions`;
  return new CitysenseError('CS_ERR_SPOOL_IO', message, 500, { errno: (err as NodeJS.ErrnoException).code });
}

/** Writes all of `buf` at `position`, looping over short writes. */
async function writeFully(handle: FileHandle, buf: Buffer, position: number): Promise<void> {
  let done = 0;
  while (done < buf.length) {
    const { bytesWritten } = await handle.write(buf, done, buf.length - done, position + done);
    done += bytesWritten;
  }
}

/** Reads `length` bytes at `position`; returns how many were there. */
async function readFully(handle: FileHandle, buf: Buffer, position: number): Promise<number> {
  let done = 0;
  while (done < buf.length) {
    const { bytesRead } = await handle.read(buf, done, buf.length - done, position + done);
    if (bytesRead === 0) break;
    done += bytesRead;
  }
  return done;
}

/** The disk-backed, bounded, ordered store-and-forward log of the edge agent. */
export class Spool extends EventEmitter<SpoolEvents> {
  private readonly dir: string;
  private readonly maxBytes: number;
  private readonly policy: SpoolFullPolicy;
  private readonly segmentBytes: number;
  private readonly fsyncIntervalMs: number;
  private readonly log: Logger;

  private phase: Phase = 'closed';
  private opening: Promise<void> | null = null;
  private closing: Promise<void> | null = null;

  /** Segments holding unresolved records, oldest first; the active one is last. */
  private segments: Segment[] = [];
  /** Segment appended to; null until the first append after open or after a write error. */
  private active: Segment | null = null;
  /** Resolved segments, unlinked once the state file that resolves them is saved. */
  private retired: Segment[] = [];
  private acks = new AckedIds();
  /** Next id to hand out. */
  private nextId = 1;
  /** Last id written and indexed. */
  private lastId = 0;
  /** Bytes of all segment files (including retired, not yet unlinked ones). */
  private totalBytes = 0;
  private droppedRecords = 0;
  private corruptions = 0;
  private reservedThrough = 0;
  private persistedReserved = 0;
  private bootId: string | null = null;

  private queue: PendingAppend[] = [];
  private writer: Promise<void> | null = null;
  private syncChain: Promise<void> = Promise.resolve();
  private syncTimer: NodeJS.Timeout | null = null;
  private dirDirty = false;
  private stateChain: Promise<void> = Promise.resolve();
  private stateTimer: NodeJS.Timeout | null = null;

  constructor(options: SpoolOptions) {
    super();
    this.dir = options.dir;
    this.maxBytes = options.maxBytes ?? DEFAULT_MAX_BYTES;
    this.policy = options.policy ?? 'drop-oldest';
    this.segmentBytes = Math.min(options.segmentBytes ?? DEFAULT_SEGMENT_BYTES, this.maxBytes);
    this.fsyncIntervalMs = options.fsyncIntervalMs ?? DEFAULT_FSYNC_INTERVAL_MS;
    this.log = componentLogger('spool', options.logger);
  }

  /** Creates the directory and recovers the spool from disk. Idempotent. */
  async open(): Promise<void> {
    if (this.closing) await this.closing;
    if (this.phase === 'open') return;
    this.opening ??= this.recover().finally(() => {
      this.opening = null;
    });
    return this.opening;
  }

  /** Appends one record; resolves with its id once it is written to the file. */
  append(payload: Uint8Array): Promise<number> {
    return new Promise((resolve, reject) => this.enqueue([payload], resolve, reject));
  }

  /** Appends records in order as one unit of the write queue; resolves with their ids. */
  appendMany(payloads: Uint8Array[]): Promise<number[]> {
    if (payloads.length === 0) return Promise.resolve([]);
    return new Promise((resolve, reject) =>
      this.enqueue(payloads, (first) => resolve(payloads.map((_, i) => first + i)), reject),
    );
  }

  /**
   * Unacked records with id >= `fromId` in id order: at most `maxRecords`, and at most
   * `maxBytes` of payload except that the first record is returned whatever its size.
   */
  async read(fromId: number, maxRecords: number, maxBytes: number): Promise<SpoolRecord[]> {
    this.assertUsable();
    const out: SpoolRecord[] = [];
    let bytes = 0;
    let id = this.acks.nextUnacked(Number.isFinite(fromId) ? Math.max(1, Math.ceil(fromId)) : 1);
    while (out.length < maxRecords) {
      const segment = this.segments[this.segmentIndexOf(id)];
      if (segment === undefined) break;
      if (id < segment.firstId) {
        id = this.acks.nextUnacked(segment.firstId);
        continue;
      }
      // A run of consecutive unacked records of this segment, within the limits: one pread.
      const runLast = Math.min(
        segment.lastId,
        this.acks.nextAcked(id) - 1,
        id + (maxRecords - out.length) - 1,
      );
      let end = id;
      while (end <= runLast) {
        const payloadBytes = segment.offsetOf(end + 1) - segment.offsetOf(end) - FRAME_HEADER_BYTES;
        if (out.length + (end - id) > 0 && bytes + payloadBytes > maxBytes) break;
        bytes += payloadBytes;
        end++;
      }
      if (end === id) break;
      for (const record of await this.readRun(segment, id, end - 1)) out.push(record);
      if (end <= runLast) break; // byte budget spent
      id = this.acks.nextUnacked(end);
    }
    return out;
  }

  /**
   * Marks id ranges as committed by the hub. Out of order, duplicate, already acked or unknown
   * ids are fine (ignored). Fully acked segments are deleted once the ack state is saved.
   */
  async ack(ranges: SpoolRange[]): Promise<void> {
    this.assertUsable();
    let changed = false;
    for (const range of ranges) {
      if (!Number.isSafeInteger(range.first) || !Number.isSafeInteger(range.last)) continue;
      for (const fresh of this.acks.add(range.first, Math.min(range.last, this.lastId))) {
        changed = true;
        this.settle(fresh);
      }
    }
    if (changed) this.scheduleStateSave();
  }

  /** Oldest unacked id, or null when everything is acked. */
  firstUnackedId(): number | null {
    return this.firstUnacked()?.id ?? null;
  }

  /** Current fill level and counters. */
  stats(): SpoolStats {
    let records = 0;
    for (const segment of this.segments) records += segment.unacked;
    const first = this.firstUnacked();
    return {
      records,
      bytes: this.totalBytes,
      oldestAppendedAt: first ? first.segment.appendedAtOf(first.id) : null,
      droppedRecords: this.droppedRecords,
      corruptions: this.corruptions,
      firstId: first?.id ?? null,
      lastId: this.lastId,
    };
  }

  /** Writes pending appends, fsyncs, saves the ack state and releases files. Idempotent. */
  async close(): Promise<void> {
    // A failed open already rejected to its caller; closing after it is a no-op.
    if (this.opening) await this.opening.then(ignore, ignore);
    if (this.phase !== 'open') return this.closing ?? undefined;
    this.phase = 'closing';
    this.closing = this.shutdown().finally(() => {
      this.phase = 'closed';
      this.closing = null;
    });
    return this.closing;
  }

  // ---- open / close ----

  private async recover(): Promise<void> {
    if (!(this.maxBytes > FRAME_HEADER_BYTES) || !Number.isSafeInteger(this.maxBytes)) {
      throw new CitysenseError(
        'CS_ERR_SPOOL_CONFIG',
        `spool maxBytes must be an integer > ${FRAME_HEADER_BYTES}`,
      );
    }
    if (!Number.isSafeInteger(this.segmentBytes) || this.segmentBytes > MAX_SEGMENT_BYTES) {
      throw new CitysenseError(
        'CS_ERR_SPOOL_CONFIG',
        `spool segmentBytes must be an integer <= ${MAX_SEGMENT_BYTES}`,
      );
    }
    if (!(this.fsyncIntervalMs >= 0)) {
      throw new CitysenseError('CS_ERR_SPOOL_CONFIG', 'spool fsyncIntervalMs must be >= 0');
    }
    let recovered: RecoveredSpool;
    try {
      recovered = await recoverSpool(this.dir, this.segmentBytes, this.log);
    } catch (err) {
      throw ioError('recovery', this.dir, err);
    }
    this.segments = recovered.segments;
    this.active = null;
    this.retired = [];
    this.acks = recovered.acks;
    this.lastId = recovered.lastId;
    this.nextId = recovered.lastId + 1;
    this.totalBytes = recovered.segments.reduce((sum, s) => sum + s.size, 0);
    this.droppedRecords = recovered.droppedRecords;
    this.corruptions = recovered.corruptions;
    this.reservedThrough = Math.max(recovered.reservedThrough, recovered.lastId);
    this.persistedReserved = 0;
    this.bootId = recovered.bootId;
    this.phase = 'open';
    try {
      await this.saveStateNow(false); // marks the spool as running: an unclean stop is detectable
    } catch (err) {
      this.phase = 'closed';
      throw err;
    }
    this.log.info({ dir: this.dir, ...this.stats() }, 'spool open');
  }

  private async shutdown(): Promise<void> {
    while (this.writer) await this.writer;
    if (this.syncTimer) clearTimeout(this.syncTimer);
    if (this.stateTimer) clearTimeout(this.stateTimer);
    this.syncTimer = null;
    this.stateTimer = null;
    const active = this.active;
    this.active = null;
    if (active) await this.closeSegmentFile(active);
    await this.saveStateNow(true);
    this.log.info({ dir: this.dir, ...this.stats() }, 'spool closed');
  }

  private assertUsable(): void {
    if (this.phase === 'closed') {
      throw new CitysenseError('CS_ERR_SPOOL_CLOSED', 'the spool is not open: call open() first', 503);
    }
  }

  // ---- append path: one writer, group commit ----

  private enqueue(
    payloads: Uint8Array[],
    resolve: (firstId: number) => void,
    reject: (err: Error) => void,
  ): void {
    if (this.phase !== 'open') {
      reject(new CitysenseError('CS_ERR_SPOOL_CLOSED', 'the spool is not open: call open() first', 503));
      return;
    }
    let bytes = 0;
    for (const payload of payloads) {
      const size = frameBytes(payload.length);
      if (size > this.segmentBytes) {
        const message = `spool record of ${payload.length} bytes does not fit a ${this.segmentBytes}-byte segment: split it or raise segmentBytes`;
        reject(new CitysenseError('CS_ERR_SPOOL_RECORD_TOO_LARGE', message, 413, { bytes: payload.length }));
        return;
      }
      bytes += size;
    }
    this.queue.push({ payloads, bytes, firstId: 0, settled: false, resolve, reject });
    // Start on a microtask so that a synchronous burst of appends becomes one write().
    this.writer ??= Promise.resolve().then(() => this.drain());
  }

  /** The single writer: everything queued while a write is in flight goes into the next one. */
  private async drain(): Promise<void> {
    try {
      while (this.queue.length > 0) {
        const batch = this.queue;
        this.queue = [];
        await this.writeBatch(batch);
      }
    } finally {
      this.writer = null;
    }
  }

  private async writeBatch(batch: PendingAppend[]): Promise<void> {
    const appendedAt = Date.now();
    let plan = newPlan(this.nextId);
    try {
      for (const pending of batch) {
        const over = this.totalBytes + plan.bytes + pending.bytes > this.maxBytes;
        if (over && this.policy === 'reject-new' && !(await this.makeRoom(plan.bytes + pending.bytes))) {
          this.rejectFull(pending);
          continue;
        }
        pending.firstId = this.nextId;
        for (const payload of pending.payloads) {
          const size = frameBytes(payload.length);
          if (this.active === null || this.active.size + plan.bytes + size > this.segmentBytes) {
            await this.flush(plan, appendedAt);
            await this.roll();
            plan = newPlan(this.nextId);
          }
          if (this.totalBytes + plan.bytes + size > this.maxBytes && this.policy === 'drop-oldest') {
            await this.makeRoom(plan.bytes + size);
          }
          plan.payloads.push(payload);
          plan.bytes += size;
          this.nextId++;
        }
        plan.completes.push(pending);
      }
      await this.flush(plan, appendedAt);
    } catch (err) {
      await this.abandonWrite(batch, err);
    }
  }

  /** Writes a plan into the active segment with one write(), indexes it, resolves its appends. */
  private async flush(plan: WritePlan, appendedAt: number): Promise<void> {
    const count = plan.payloads.length;
    if (count === 0) return;
    const segment = this.active;
    if (segment?.handle == null) {
      throw new CitysenseError(
        'CS_ERR_SPOOL_INTERNAL',
        'spool writer has no active segment: please report this bug',
      );
    }
    const lastId = plan.firstId + count - 1;
    await this.reserveIds(lastId);
    const buf = Buffer.allocUnsafe(plan.bytes);
    let offset = 0;
    for (let i = 0; i < count; i++) {
      offset += encodeFrame(buf, offset, plan.firstId + i, appendedAt, plan.payloads[i] as Uint8Array);
    }
    const start = segment.size;
    await writeFully(segment.handle, buf, start);
    segment.unsynced = true;
    offset = start;
    for (const payload of plan.payloads) {
      const end = offset + frameBytes(payload.length);
      segment.push(offset, end, appendedAt);
      offset = end;
    }
    segment.size += plan.bytes;
    segment.unacked += count;
    this.totalBytes += plan.bytes;
    this.lastId = lastId;
    if (this.fsyncIntervalMs === 0) await this.syncActive();
    else this.scheduleSync();
    for (const pending of plan.completes) {
      pending.settled = true;
      pending.resolve(pending.firstId);
    }
    plan.payloads = [];
    plan.bytes = 0;
    plan.completes = [];
    this.emitSafely('appended', lastId);
  }

  /** After a failed write: ids handed out for it are skipped, the active segment is closed. */
  private async abandonWrite(batch: PendingAppend[], err: unknown): Promise<void> {
    const error = ioError('write', this.dir, err);
    this.log.error({ err }, 'spool write failed');
    if (this.nextId - 1 > this.lastId) {
      // Never written, never read, so skipping them is safe; a gap of resolved ids.
      this.acks.add(this.lastId + 1, this.nextId - 1);
      this.lastId = this.nextId - 1;
    }
    const active = this.active;
    this.active = null;
    if (active) {
      try {
        if (active.handle) await active.handle.truncate(active.size); // drop a partial frame
        await this.closeSegmentFile(active);
      } catch (closeErr) {
        this.log.error({ err: closeErr, segment: active.path }, 'spool could not close a failed segment');
      }
      if (active.count === 0) this.retire(active);
    }
    for (const pending of batch) {
      if (pending.settled) continue;
      pending.settled = true;
      pending.reject(error);
    }
  }

  /** Starts a new active segment at the next id (after fsyncing and closing the previous one). */
  private async roll(): Promise<void> {
    const previous = this.active;
    this.active = null;
    if (previous) {
      await this.closeSegmentFile(previous);
      if (previous.unacked === 0) this.retire(previous);
    }
    const segment = new Segment(this.dir, this.nextId);
    segment.handle = await open(segment.path, 'wx');
    this.segments.push(segment);
    this.active = segment;
    this.dirDirty = true;
  }

  /**
   * Makes room for `bytes` more: first by unlinking retired (acked) segments, then, under
   * drop-oldest, by dropping the oldest segments even if unacked. False when it cannot.
   */
  private async makeRoom(bytes: number): Promise<boolean> {
    if (this.totalBytes + bytes <= this.maxBytes) return true;
    if (this.retired.length > 0) await this.saveStateNow(false);
    if (this.policy === 'reject-new') return this.totalBytes + bytes <= this.maxBytes;
    while (this.totalBytes + bytes > this.maxBytes) {
      const oldest = this.segments[0];
      if (oldest === undefined || oldest === this.active) return false;
      await this.dropSegment(oldest);
    }
    return true;
  }

  /** Drops a whole segment, unacked records included; persisted before the file goes. */
  private async dropSegment(segment: Segment): Promise<void> {
    this.acks.add(segment.firstId, segment.lastId);
    const dropped = segment.unacked;
    segment.unacked = 0;
    this.droppedRecords += dropped;
    this.retire(segment);
    await this.saveStateNow(false);
    this.log.warn(
      { dropped, firstId: segment.firstId, lastId: segment.lastId, maxBytes: this.maxBytes },
      'spool full: dropped the oldest segment',
    );
    if (dropped > 0) this.emitSafely('dropped', dropped, 'drop-oldest');
  }

  private rejectFull(pending: PendingAppend): void {
    const count = pending.payloads.length;
    this.droppedRecords += count;
    this.scheduleStateSave();
    pending.settled = true;
    pending.reject(
      new CitysenseError(
        'CS_ERR_SPOOL_FULL',
        `spool is full (${this.maxBytes} bytes, policy reject-new): wait for the uplink to drain it or raise maxBytes`,
        507,
      ),
    );
    this.emitSafely('dropped', count, 'reject-new');
  }

  /** Keeps the on-disk id reservation ahead of the ids being handed out. */
  private async reserveIds(upTo: number): Promise<void> {
    if (upTo <= this.reservedThrough - ID_RESERVE_BLOCK / 2) return;
    this.reservedThrough = upTo + ID_RESERVE_BLOCK;
    if (upTo > this.persistedReserved) await this.saveStateNow(false);
    else this.scheduleStateSave();
  }

  // ---- fsync (group commit) ----

  private scheduleSync(): void {
    if (this.syncTimer) return;
    this.syncTimer = setTimeout(() => {
      this.syncTimer = null;
      this.syncActive().catch((err: unknown) => this.log.error({ err }, 'spool fsync failed'));
    }, this.fsyncIntervalMs);
    this.syncTimer.unref();
  }

  /** fsyncs the active segment and, after file creations, the directory. */
  private syncActive(): Promise<void> {
    return this.chainSync(async () => {
      const segment = this.active;
      if (segment?.handle && segment.unsynced) {
        segment.unsynced = false;
        try {
          await segment.handle.datasync();
        } catch (err) {
          segment.unsynced = true;
          throw err;
        }
      }
      await this.syncDirIfDirty();
    });
  }

  /** fsyncs and closes a segment file that stops being the active one. */
  private closeSegmentFile(segment: Segment): Promise<void> {
    return this.chainSync(async () => {
      const handle = segment.handle;
      if (handle === null) return;
      if (segment.unsynced) await handle.datasync();
      segment.unsynced = false;
      segment.handle = null;
      await handle.close();
      await this.syncDirIfDirty();
    });
  }

  private async syncDirIfDirty(): Promise<void> {
    if (!this.dirDirty) return;
    this.dirDirty = false;
    await syncDir(this.dir);
  }

  /** Serialises fsync and close of segment handles (a handle is never closed under a sync). */
  private chainSync(task: () => Promise<void>): Promise<void> {
    const run = this.syncChain.then(task);
    this.syncChain = run.then(ignore, ignore); // errors reach the caller through `run`
    return run;
  }

  // ---- ack state ----

  /** Accounts newly acked ids to their segments; retires segments that become fully acked. */
  private settle(range: SpoolRange): void {
    let i = this.segmentIndexOf(range.first);
    for (let segment = this.segments[i]; segment !== undefined; segment = this.segments[i]) {
      if (segment.firstId > range.last) break;
      const overlap = Math.min(range.last, segment.lastId) - Math.max(range.first, segment.firstId) + 1;
      segment.unacked -= Math.max(0, overlap);
      // The active segment stays until it rolls: the writer owns its handle.
      if (segment.unacked === 0 && segment !== this.active) this.retire(segment);
      else i++;
    }
  }

  /** Takes a resolved segment out of the live list; its file goes after the next state save. */
  private retire(segment: Segment): void {
    const i = this.segments.indexOf(segment);
    if (i >= 0) this.segments.splice(i, 1);
    this.retired.push(segment);
    this.scheduleStateSave();
  }

  private scheduleStateSave(): void {
    if (this.stateTimer || this.phase !== 'open') return;
    this.stateTimer = setTimeout(() => {
      this.stateTimer = null;
      this.saveStateNow(false).catch((err: unknown) =>
        this.log.error({ err }, 'spool ack state save failed'),
      );
    }, STATE_SAVE_INTERVAL_MS);
    this.stateTimer.unref();
  }

  /** Saves the state file atomically, then unlinks the segments it resolves. Serialised. */
  private saveStateNow(clean: boolean): Promise<void> {
    const task = async (): Promise<void> => {
      const retired = this.retired;
      this.retired = [];
      const state: SpoolState = {
        v: 1,
        head: this.acks.head,
        ranges: this.acks.snapshot(MAX_PERSISTED_RANGES),
        lastId: this.lastId,
        reservedThrough: this.reservedThrough,
        droppedRecords: this.droppedRecords,
        corruptions: this.corruptions,
        bootId: this.bootId,
        clean,
      };
      try {
        await saveState(this.dir, state);
      } catch (err) {
        this.retired = retired.concat(this.retired);
        throw ioError('state save', this.dir, err);
      }
      this.persistedReserved = Math.max(this.persistedReserved, state.reservedThrough);
      for (const segment of retired) {
        try {
          await unlink(segment.path);
        } catch (err) {
          this.log.error({ err, segment: segment.path }, 'spool could not delete a resolved segment');
        }
        this.totalBytes -= segment.size;
      }
    };
    const run = this.stateChain.then(task);
    this.stateChain = run.then(ignore, ignore); // errors reach the caller through `run`
    return run;
  }

  // ---- read path ----

  /** Reads records `first..last` of `segment` (all unacked) with one positional read. */
  private async readRun(segment: Segment, first: number, last: number): Promise<SpoolRecord[]> {
    const start = segment.offsetOf(first);
    const buf = Buffer.allocUnsafe(segment.offsetOf(last + 1) - start);
    let handle: FileHandle;
    try {
      handle = await open(segment.path, 'r');
    } catch (err) {
      // Acked or dropped and deleted while we were reading: nothing left to return.
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw ioError('read', this.dir, err);
    }
    let length: number;
    try {
      length = await readFully(handle, buf, start);
    } catch (err) {
      throw ioError('read', this.dir, err);
    } finally {
      await handle.close();
    }
    const records: SpoolRecord[] = [];
    for (let id = first; id <= last; id++) {
      const off = segment.offsetOf(id) - start;
      const size = segment.offsetOf(id + 1) - segment.offsetOf(id);
      if (checkFrame(buf, off, length) === size && frameId(buf, off) === id) {
        records.push({
          id,
          appendedAt: frameAppendedAt(buf, off),
          payload: buf.subarray(off + FRAME_HEADER_BYTES, off + size),
        });
      } else {
        this.loseCorruptRecord(segment, id);
      }
    }
    return records;
  }

  /** A record that no longer verifies (disk corruption): counted, logged, resolved, skipped. */
  private loseCorruptRecord(segment: Segment, id: number): void {
    this.corruptions++;
    this.log.error({ id, segment: segment.path }, 'spool record failed its CRC on read: skipped');
    for (const fresh of this.acks.add(id, id)) this.settle(fresh);
    this.scheduleStateSave();
    this.emitSafely('dropped', 1, 'corrupt');
  }

  private firstUnacked(): { segment: Segment; id: number } | null {
    for (const segment of this.segments) {
      if (segment.unacked === 0) continue;
      const id = this.acks.nextUnacked(segment.firstId);
      if (id <= segment.lastId) return { segment, id };
    }
    return null;
  }

  /** Index of the first segment whose last id >= `id` (segments.length when none). */
  private segmentIndexOf(id: number): number {
    let lo = 0;
    let hi = this.segments.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if ((this.segments[mid] as Segment).lastId < id) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  /** Listeners are the caller's code: a throwing one must not fail the write that triggered it. */
  private emitSafely<E extends keyof SpoolEvents>(event: E, ...args: SpoolEvents[E]): void {
    try {
      (this.emit as (event: E, ...args: SpoolEvents[E]) => boolean)(event, ...args);
    } catch (err) {
      this.log.error({ err, event }, 'spool event listener threw');
    }
  }
}
