/**
 * One segment file of the spool: records with contiguous ids, named by the first id
 * (`00000000000000000001.seg`), plus its in-memory index. Ids being contiguous inside a
 * segment, the index is just arrays by position: file offset and append time of each record.
 */
import type { FileHandle } from 'node:fs/promises';
import { join } from 'node:path';

const SEGMENT_NAME = /^(\d{20})\.seg$/;

/** File name of the segment whose first record has `firstId`. */
export function segmentFileName(firstId: number): string {
  return `${String(firstId).padStart(20, '0')}.seg`;
}

/** First id encoded in a segment file name, or null when `name` is not a segment. */
export function parseSegmentFileName(name: string): number | null {
  const m = SEGMENT_NAME.exec(name);
  if (!m?.[1]) return null;
  const id = Number(m[1]);
  return Number.isSafeInteger(id) && id > 0 ? id : null;
}

/** A segment file and the offsets/times of its valid records. */
export class Segment {
  /** Id of the record at position 0. */
  readonly firstId: number;
  /** Absolute path of the file. */
  readonly path: string;
  /** Valid records indexed. */
  count = 0;
  /** Indexed records not yet resolved (acked or dropped). */
  unacked = 0;
  /** Bytes the file takes on disk (can exceed the indexed end after mid-file corruption). */
  size = 0;
  /** Write handle while this is the active (last) segment. */
  handle: FileHandle | null = null;
  /** Written since the last fsync. */
  unsynced = false;
  // offsets[i] = file offset of record i; offsets[count] = end of the last valid record.
  // Offsets fit u32: segment size is capped well below 4 GiB.
  private offsets = new Uint32Array(1024);
  private times = new Float64Array(1024);

  constructor(dir: string, firstId: number) {
    this.firstId = firstId;
    this.path = join(dir, segmentFileName(firstId));
  }

  /** Id of the last indexed record (firstId - 1 when empty). */
  get lastId(): number {
    return this.firstId + this.count - 1;
  }

  /** End offset of the indexed records. */
  get indexedEnd(): number {
    return this.offsets[this.count] as number;
  }

  /** Indexes one more record that spans `[start, end)` of the file. */
  push(start: number, end: number, appendedAt: number): void {
    if (this.count + 1 >= this.offsets.length) this.grow();
    this.offsets[this.count] = start;
    this.times[this.count] = appendedAt;
    this.count++;
    this.offsets[this.count] = end;
  }

  /** File offset where record `id` starts (`id` = lastId + 1 gives the end of the last one). */
  offsetOf(id: number): number {
    return this.offsets[id - this.firstId] as number;
  }

  /** appendedAt of record `id`. */
  appendedAtOf(id: number): number {
    return this.times[id - this.firstId] as number;
  }

  /** True when `id` is indexed here. */
  contains(id: number): boolean {
    return id >= this.firstId && id <= this.lastId;
  }

  /** Forgets records from position `count` on (recovery of overlapping segments). */
  truncateTo(count: number): void {
    if (count < this.count) this.count = Math.max(0, count);
  }

  private grow(): void {
    const offsets = new Uint32Array(this.offsets.length * 2);
    offsets.set(this.offsets);
    this.offsets = offsets;
    const times = new Float64Array(this.times.length * 2);
    times.set(this.times);
    this.times = times;
  }
}
