/** A typed event emitter whose failing listeners are logged, not thrown into socket handlers. */
import { errorMessage, type Logger } from '@citysense/protocol';

type Listener = (...args: never[]) => unknown;

/**
 * Typed `on`/`off`/`emit` over an events map. A listener that throws or rejects is logged and
 * skipped, because an exception inside a UDP or TCP data handler would take the process down.
 */
export class MediaEvents<Events extends { [K in keyof Events]: Listener }> {
  readonly #listeners = new Map<keyof Events, Set<Listener>>();
  readonly #log: Logger;

  constructor(log: Logger) {
    this.#log = log;
  }

  /** Adds `listener` for `event`. */
  on<E extends keyof Events>(event: E, listener: Events[E]): void {
    let set = this.#listeners.get(event);
    if (!set) {
      set = new Set();
      this.#listeners.set(event, set);
    }
    set.add(listener);
  }

  /** Removes `listener` for `event`. */
  off<E extends keyof Events>(event: E, listener: Events[E]): void {
    this.#listeners.get(event)?.delete(listener);
  }

  /** Calls every listener of `event`, isolating failures. */
  emit<E extends keyof Events>(event: E, ...args: Parameters<Events[E]>): void {
    const set = this.#listeners.get(event);
    if (!set) return;
    for (const listener of [...set]) {
      try {
        const result = (listener as (...a: Parameters<Events[E]>) => unknown)(...args);
        if (result instanceof Promise) result.catch((err: unknown) => this.#failed(event, err));
      } catch (err) {
        this.#failed(event, err);
      }
    }
  }

  #failed(event: keyof Events, err: unknown): void {
    this.#log.error({ err: errorMessage(err), event: String(event) }, 'a media event listener failed');
  }
}
