/**
 * The set of resolved spool ids: acknowledged by the hub, or gone (dropped by the full policy,
 * lost to corruption, skipped after a crash). Stored as a contiguous head ("every id <= head")
 * plus sorted, disjoint, non-adjacent inclusive ranges above it, because the hub may commit
 * later records first and acks then arrive out of order.
 */
import type { SpoolRange } from '@citysense/protocol';

/** Resolved ids as head + ranges; all operations are O(log n) or O(ranges touched). */
export class AckedIds {
  /** Every id <= head is resolved. */
  head: number;
  private readonly ranges: SpoolRange[] = [];

  constructor(head = 0) {
    this.head = head;
  }

  /** Number of ranges held above the head (a measure of ack disorder). */
  get rangeCount(): number {
    return this.ranges.length;
  }

  /** Highest resolved id (the head when no range is above it). */
  get maxId(): number {
    return this.ranges[this.ranges.length - 1]?.last ?? this.head;
  }

  /**
   * Marks `[first, last]` resolved. Returns the sub-ranges that were not resolved before,
   * so the caller can account for exactly the newly acknowledged records.
   */
  add(first: number, last: number): SpoolRange[] {
    const from = Math.max(first, this.head + 1);
    if (from > last) return [];
    const ranges = this.ranges;
    // First range that overlaps or touches [from, last].
    let i = this.firstEndingAtOrAfter(from - 1);
    let j = i;
    const fresh: SpoolRange[] = [];
    let cursor = from;
    let mergedFirst = from;
    let mergedLast = last;
    for (let r = ranges[j]; r !== undefined && r.first <= last + 1; r = ranges[++j]) {
      if (r.first > cursor) fresh.push({ first: cursor, last: Math.min(last, r.first - 1) });
      cursor = Math.max(cursor, r.last + 1);
      mergedFirst = Math.min(mergedFirst, r.first);
      mergedLast = Math.max(mergedLast, r.last);
    }
    if (cursor <= last) fresh.push({ first: cursor, last });
    ranges.splice(i, j - i, { first: mergedFirst, last: mergedLast });
    // Advance the head over ranges that now touch it.
    i = 0;
    while (ranges[i] !== undefined && (ranges[i] as SpoolRange).first <= this.head + 1) {
      this.head = Math.max(this.head, (ranges[i] as SpoolRange).last);
      i++;
    }
    if (i > 0) ranges.splice(0, i);
    return fresh;
  }

  /** True when `id` is resolved. */
  has(id: number): boolean {
    if (id <= this.head) return true;
    const r = this.ranges[this.firstEndingAtOrAfter(id)];
    return r !== undefined && r.first <= id;
  }

  /** Smallest unresolved id >= `id`. */
  nextUnacked(id: number): number {
    if (id <= this.head) return this.head + 1;
    const r = this.ranges[this.firstEndingAtOrAfter(id)];
    return r !== undefined && r.first <= id ? r.last + 1 : id;
  }

  /** Smallest resolved id >= `id` (Infinity when none is above it). */
  nextAcked(id: number): number {
    if (id <= this.head) return id;
    const r = this.ranges[this.firstEndingAtOrAfter(id)];
    if (r === undefined) return Number.POSITIVE_INFINITY;
    return Math.max(r.first, id);
  }

  /** How many ids of `[first, last]` are resolved. */
  countIn(first: number, last: number): number {
    if (first > last) return 0;
    let n = 0;
    if (first <= this.head) {
      n += Math.min(last, this.head) - first + 1;
      first = this.head + 1;
    }
    for (let i = this.firstEndingAtOrAfter(first); i < this.ranges.length; i++) {
      const r = this.ranges[i] as SpoolRange;
      if (r.first > last) break;
      n += Math.min(last, r.last) - Math.max(first, r.first) + 1;
    }
    return n;
  }

  /** Up to `limit` lowest ranges above the head, for persistence (dropping some is safe: re-delivery). */
  snapshot(limit: number): Array<[number, number]> {
    return this.ranges.slice(0, limit).map((r) => [r.first, r.last]);
  }

  /** Index of the first range whose `last` >= id (ranges.length when none). */
  private firstEndingAtOrAfter(id: number): number {
    let lo = 0;
    let hi = this.ranges.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if ((this.ranges[mid] as SpoolRange).last < id) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }
}
