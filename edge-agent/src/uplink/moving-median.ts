/** Median of the last `capacity` samples; robust to the odd retransmission spike. */
export class MovingMedian {
  readonly #capacity: number;
  readonly #samples: number[] = [];

  constructor(capacity = 31) {
    this.#capacity = capacity;
  }

  /** Adds a sample, evicting the oldest when full. */
  add(sample: number): void {
    this.#samples.push(sample);
    if (this.#samples.length > this.#capacity) this.#samples.shift();
  }

  /** The median, or null before the first sample. */
  value(): number | null {
    if (this.#samples.length === 0) return null;
    const sorted = [...this.#samples].sort((a, b) => a - b);
    const mid = sorted.length >> 1;
    const hi = sorted[mid] ?? 0;
    return sorted.length % 2 === 1 ? hi : ((sorted[mid - 1] ?? hi) + hi) / 2;
  }
}
