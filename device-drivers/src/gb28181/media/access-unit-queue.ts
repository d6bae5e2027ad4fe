/** A bounded async queue of access units, so consumers can `for await` a live stream. */
import type { VideoAccessUnit } from './access-unit.ts';

/**
 * Async iterator over pushed access units. When the consumer falls behind by more than `limit`
 * units the oldest is dropped (live video: late pictures are worthless) and counted.
 */
export class AccessUnitQueue implements AsyncIterableIterator<VideoAccessUnit> {
  readonly #items: VideoAccessUnit[] = [];
  readonly #limit: number;
  #waiter: ((result: IteratorResult<VideoAccessUnit>) => void) | undefined;
  #closed = false;
  #dropped = 0;

  constructor(limit = 64) {
    this.#limit = Math.max(1, limit);
  }

  /** Units dropped because the consumer was behind. */
  get dropped(): number {
    return this.#dropped;
  }

  /** Adds a unit (ignored once closed). */
  push(au: VideoAccessUnit): void {
    if (this.#closed) return;
    const waiter = this.#waiter;
    if (waiter) {
      this.#waiter = undefined;
      waiter({ value: au, done: false });
      return;
    }
    this.#items.push(au);
    if (this.#items.length > this.#limit) {
      this.#items.shift();
      this.#dropped++;
    }
  }

  /** Ends iteration once the queued units are consumed. */
  close(): void {
    this.#closed = true;
    const waiter = this.#waiter;
    this.#waiter = undefined;
    waiter?.({ value: undefined, done: true });
  }

  /** The next unit, waiting for one; done after `close()`. */
  next(): Promise<IteratorResult<VideoAccessUnit>> {
    const item = this.#items.shift();
    if (item) return Promise.resolve({ value: item, done: false });
    if (this.#closed) return Promise.resolve({ value: undefined, done: true });
    return new Promise((resolve) => {
      this.#waiter?.({ value: undefined, done: true }); // a second concurrent next() ends the first
      this.#waiter = resolve;
    });
  }

  /** Stops iteration (a `break` out of `for await`). */
  return(): Promise<IteratorResult<VideoAccessUnit>> {
    this.close();
    this.#items.length = 0;
    return Promise.resolve({ value: undefined, done: true });
  }

  /** This queue is its own iterator. */
  [Symbol.asyncIterator](): AsyncIterableIterator<VideoAccessUnit> {
    return this;
  }
}
