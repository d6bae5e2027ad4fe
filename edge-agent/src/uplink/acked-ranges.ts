import type { SpoolRange } from '@citysense/protocol';

/**
 * Sorted, disjoint, merged ranges of acked spool ids above the spool's first
 * unacked id: acks arrive out of order, so a rewind must skip what the hub
 * already committed.
 */
export class AckedRanges {
  #ranges: SpoolRange[] = [];

  /** Adds one inclusive range. */
  add(range: SpoolRange): void {
    const out: SpoolRange[] = [];
    let merged = { first: range.first, last: range.last };
    let placed = false;
    for (const r of this.#ranges) {
      if (r.last + 1 < merged.first) out.push(r);
      else if (merged.last + 1 < r.first) {
        if (!placed) {
          out.push(merged);
          placed = true;
        }
        out.push(r);
      } else merged = { first: Math.min(r.first, merged.first), last: Math.max(r.last, merged.last) };
    }
    if (!placed) out.push(merged);
    this.#ranges = out;
  }

  /** True when `id` was acked. */
  has(id: number): boolean {
    for (const r of this.#ranges) {
      if (id < r.first) return false;
      if (id <= r.last) return true;
    }
    return false;
  }

  /** Forgets everything below `id` (the spool keeps track of that part). */
  pruneBelow(id: number): void {
    this.#ranges = this.#ranges
      .filter((r) => r.last >= id)
      .map((r) => (r.first < id ? { first: id, last: r.last } : r));
  }

  /** Number of stored ranges (for tests and diagnostics). */
  get size(): number {
    return this.#ranges.length;
  }
}
