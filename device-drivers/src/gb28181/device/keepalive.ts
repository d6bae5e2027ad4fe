/**
 * Device keepalives (GB/T 28181-2016 §9.6): a `Notify/Keepalive` MESSAGE every interval.
 * A refusal means the platform no longer knows the device; `missedLimit` unanswered ones in
 * a row mean the platform is gone or restarted. Either way the registration is lost.
 */
import { errorMessage, type Logger } from '@citysense/protocol';
import type { SipResponse } from '../sip/index.ts';

/** What the keepalive timer needs and whom it tells. */
export interface KeepaliveTimerOptions {
  intervalMs: number;
  /** Unanswered keepalives in a row that count as a lost platform. */
  missedLimit: number;
  log: Logger;
  /** Sends keepalive `sn`; resolves with the platform's final response. */
  send: (sn: number, timeoutMs: number) => Promise<SipResponse>;
  nextSn: () => number;
  onSent: (sn: number) => void;
  onAnswered: () => void;
  onLost: (reason: string) => void;
}

/** The keepalive loop of a registered device. Constructor assigns only. */
export class KeepaliveTimer {
  readonly #o: KeepaliveTimerOptions;
  #interval: NodeJS.Timeout | undefined;
  #missed = 0;
  #enabled = true;

  constructor(options: KeepaliveTimerOptions) {
    this.#o = options;
  }

  /** Starts the loop (sending one now) unless it runs. */
  start(): void {
    if (this.#interval) return;
    this.#missed = 0;
    this.#interval = setInterval(() => this.#tick(), this.#o.intervalMs);
    this.#tick();
  }

  /** Stops the loop. */
  stop(): void {
    if (this.#interval) clearInterval(this.#interval);
    this.#interval = undefined;
  }

  /** Pauses (false) or resumes (true) sending while the loop runs; resuming sends one now. */
  setEnabled(enabled: boolean): void {
    if (this.#enabled === enabled) return;
    this.#enabled = enabled;
    if (enabled && this.#interval) this.#tick();
  }

  #tick(): void {
    if (!this.#enabled) return;
    const sn = this.#o.nextSn();
    this.#o.onSent(sn);
    // A keepalive that is not answered before the next one is due counts as lost.
    this.#o.send(sn, this.#o.intervalMs).then(
      (response) => {
        if (response.status < 300) {
          this.#missed = 0;
          this.#o.onAnswered();
          return;
        }
        this.#o.onLost(`keepalive refused with ${response.status}`);
      },
      (err: unknown) => {
        this.#missed++;
        this.#o.log.warn({ sn, missed: this.#missed, err: errorMessage(err) }, 'keepalive not answered');
        if (this.#missed >= this.#o.missedLimit) {
          this.#missed = 0;
          this.#o.onLost(`${this.#o.missedLimit} keepalives not answered`);
        }
      },
    );
  }
}
