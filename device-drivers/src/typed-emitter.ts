import type { Logger } from '@citysense/protocol';
import type { DriverEvents } from './driver.ts';

type AnyListener = (...args: never[]) => unknown;

/**
 * Base class giving a driver the typed `on`/`off` of the Driver interface and a
 * protected `emit`. A listener that throws (or returns a rejected promise) is logged
 * and skipped: the remaining listeners still get the event and the driver keeps
 * running, because one broken consumer must not silence a pole's sensors for the
 * others (STYLE.md: the host isolates failures). Adding the same listener twice is a
 * no-op. Listeners receive the same batch array and must not mutate it.
 */
export abstract class DriverEmitter {
  /** The driver's component logger. */
  protected readonly log: Logger;
  readonly #listeners = new Map<keyof DriverEvents, Set<AnyListener>>();

  constructor(log: Logger) {
    this.log = log;
  }

  /** Adds `listener` for `event`. */
  on<E extends keyof DriverEvents>(event: E, listener: DriverEvents[E]): this {
    let set = this.#listeners.get(event);
    if (!set) {
      set = new Set();
      this.#listeners.set(event, set);
    }
    set.add(listener);
    return this;
  }

  /** Removes `listener` for `event`; unknown listeners are ignored. */
  off<E extends keyof DriverEvents>(event: E, listener: DriverEvents[E]): this {
    this.#listeners.get(event)?.delete(listener);
    return this;
  }

  /** Number of listeners for `event`, so a driver can skip work nobody consumes. */
  protected listenerCount(event: keyof DriverEvents): number {
    return this.#listeners.get(event)?.size ?? 0;
  }

  /** Calls every listener of `event` in order, isolating each one's failure. */
  protected emit<E extends keyof DriverEvents>(event: E, ...args: Parameters<DriverEvents[E]>): void {
    const set = this.#listeners.get(event);
    if (!set || set.size === 0) return;
    // Copy so a listener may call on/off while we iterate.
    for (const listener of [...set]) {
      try {
        const result = (listener as (...a: Parameters<DriverEvents[E]>) => unknown)(...args);
        if (isPromiseLike(result)) result.then(undefined, (err: unknown) => this.#listenerFailed(event, err));
      } catch (err) {
        this.#listenerFailed(event, err);
      }
    }
  }

  #listenerFailed(event: keyof DriverEvents, err: unknown): void {
    this.log.error({ err, event }, 'a driver event listener failed; the driver keeps running');
  }
}

function isPromiseLike(value: unknown): value is PromiseLike<unknown> {
  return typeof (value as PromiseLike<unknown> | null)?.then === 'function';
}
