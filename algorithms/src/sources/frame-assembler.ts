/** Cuts a byte stream of packed frames into whole frames, whatever the chunk boundaries. */

/**
 * Copies incoming chunks into one preallocated frame buffer at a time and hands each
 * full buffer on. Buffers given back with `recycle` are reused, so a steady stream with
 * dropped frames allocates nothing.
 */
export class FrameAssembler {
  /** Bytes in one frame. */
  readonly frameBytes: number;
  readonly #onFrame: (frame: Buffer) => void;
  readonly #maxSpare: number;
  readonly #spare: Buffer[] = [];
  #current: Buffer | undefined;
  #filled = 0;
  #allocated = 0;

  constructor(frameBytes: number, onFrame: (frame: Buffer) => void, maxSpare = 4) {
    this.frameBytes = frameBytes;
    this.#onFrame = onFrame;
    this.#maxSpare = maxSpare;
  }

  /** Frame buffers allocated so far (a memory bound: stays small when frames are recycled). */
  get allocated(): number {
    return this.#allocated;
  }

  /** Bytes of an incomplete frame waiting for more data. */
  get partialBytes(): number {
    return this.#filled;
  }

  /** Consumes one chunk; calls `onFrame` for every frame it completes. */
  push(chunk: Uint8Array): void {
    let offset = 0;
    while (offset < chunk.length) {
      const target = this.#current ?? this.#take();
      const n = Math.min(this.frameBytes - this.#filled, chunk.length - offset);
      target.set(chunk.subarray(offset, offset + n), this.#filled);
      offset += n;
      this.#filled += n;
      if (this.#filled === this.frameBytes) {
        this.#current = undefined;
        this.#filled = 0;
        this.#onFrame(target);
      }
    }
  }

  /** Returns a frame buffer nobody holds any more (a dropped frame) for reuse. */
  recycle(frame: Buffer): void {
    if (frame.length === this.frameBytes && this.#spare.length < this.#maxSpare) this.#spare.push(frame);
  }

  #take(): Buffer {
    const spare = this.#spare.pop();
    if (spare) {
      this.#current = spare;
      return spare;
    }
    // allocUnsafeSlow: each frame owns its memory (never a slice of Node's shared pool),
    // so a consumer may keep or transfer it; every byte is overwritten before use.
    this.#allocated++;
    this.#current = Buffer.allocUnsafeSlow(this.frameBytes);
    return this.#current;
  }
}
