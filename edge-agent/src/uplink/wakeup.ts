/**
 * The one waiter of the uplink's send loop: the loop parks here until something
 * it cares about happens (record appended, ack, rebirth, disconnect, stop) or its
 * timeout passes (ack deadline). Wake-ups that arrive while the loop is busy are
 * remembered, so none is lost between a check and the next wait.
 */
export class Wakeup {
  #pending = false;
  #resolve: (() => void) | null = null;

  /** Wakes the waiter, or marks the next wait to return at once. */
  notify(): void {
    if (this.#resolve) {
      const resolve = this.#resolve;
      this.#resolve = null;
      resolve();
    } else this.#pending = true;
  }

  /** Resolves on the next notify (or a pending one) or after `timeoutMs`. */
  wait(timeoutMs: number): Promise<void> {
    if (this.#pending) {
      this.#pending = false;
      return Promise.resolve();
    }
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.#resolve = null;
        resolve();
      }, timeoutMs);
      this.#resolve = () => {
        clearTimeout(timer);
        resolve();
      };
    });
  }
}
