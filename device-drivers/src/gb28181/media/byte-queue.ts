/** A growable byte buffer for incremental parsers: append at the end, consume from the front. */

/**
 * Bytes waiting to be parsed. Appending is amortised O(1) (the storage doubles or is compacted),
 * so feeding a large PES or NAL unit in 1400-byte RTP payloads does not copy it quadratically.
 */
export class ByteQueue {
  #buf: Buffer;
  #start = 0;
  #end = 0;

  constructor(initialCapacity = 4096) {
    this.#buf = Buffer.allocUnsafe(initialCapacity);
  }

  /** Number of queued bytes. */
  get length(): number {
    return this.#end - this.#start;
  }

  /** The queued bytes, without copying; valid only until the next append or consume. */
  view(): Buffer {
    return this.#buf.subarray(this.#start, this.#end);
  }

  /** Appends a copy of `chunk`. */
  append(chunk: Uint8Array): void {
    if (chunk.length === 0) return;
    if (this.#end + chunk.length > this.#buf.length) {
      const length = this.length;
      if (length + chunk.length <= this.#buf.length) {
        this.#buf.copyWithin(0, this.#start, this.#end);
      } else {
        const grown = Buffer.allocUnsafe(Math.max(this.#buf.length * 2, length + chunk.length));
        this.#buf.copy(grown, 0, this.#start, this.#end);
        this.#buf = grown;
      }
      this.#start = 0;
      this.#end = length;
    }
    this.#buf.set(chunk, this.#end);
    this.#end += chunk.length;
  }

  /** Drops the first `n` bytes (or all of them). */
  consume(n: number): void {
    this.#start += Math.min(Math.max(n, 0), this.length);
    if (this.#start === this.#end) {
      this.#start = 0;
      this.#end = 0;
    }
  }

  /** Copies out and drops the first `n` bytes. */
  take(n: number): Buffer {
    const out = Buffer.from(this.#buf.subarray(this.#start, this.#start + Math.min(n, this.length)));
    this.consume(n);
    return out;
  }

  /** Drops everything. */
  clear(): void {
    this.#start = 0;
    this.#end = 0;
  }
}
