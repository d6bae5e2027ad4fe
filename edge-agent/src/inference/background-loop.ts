import { Wakeup } from '../uplink/wakeup.ts';

/**
 * A loop that runs in the background until stopped: `start` and `stop` are
 * idempotent, `stop` aborts the loop's signal, wakes its wait and waits for the
 * iteration in flight. The body waits with `wakeup.wait(ms)`, so `notify` runs
 * the next iteration at once.
 */
export class BackgroundLoop {
  readonly wakeup = new Wakeup();
  readonly #body: (signal: AbortSignal) => Promise<void>;
  #controller: AbortController | null = null;
  #loop: Promise<void> | null = null;

  constructor(body: (signal: AbortSignal) => Promise<void>) {
    this.#body = body;
  }

  /** Starts the loop. Idempotent. */
  start(): void {
    if (this.#loop) return;
    const controller = new AbortController();
    this.#controller = controller;
    this.#loop = this.#body(controller.signal);
  }

  /** Stops the loop and waits for it to end. Idempotent. */
  async stop(): Promise<void> {
    const loop = this.#loop;
    if (!loop) return;
    this.#controller?.abort();
    this.wakeup.notify();
    await loop;
    this.#loop = null;
    this.#controller = null;
  }

  /** Runs the next iteration now. */
  notify(): void {
    this.wakeup.notify();
  }
}
