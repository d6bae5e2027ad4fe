/**
 * Keeps a device's registration alive (GB/T 28181-2016 §9.1.2): refresh at half the granted
 * lifetime, and after a failure or a lost binding register again with a doubling back-off,
 * so a platform that is down or restarting is not hammered and is rejoined once it is back.
 */
import { errorMessage, type Logger } from '@citysense/protocol';
import type { DeviceRegistration } from './registration.ts';

/** What the keeper needs and whom it tells. */
export interface RegistrationKeeperOptions {
  registration: DeviceRegistration;
  /** Requested lifetime, s. */
  expires: number;
  /** First wait after a failed attempt, ms; doubles up to `maxRetryMs`. */
  retryMs: number;
  maxRetryMs: number;
  log: Logger;
  onRegistered: (expires: number, refresh: boolean) => void;
  onFailed: (error: Error) => void;
}

/** The refresh and retry timer of one registration. Constructor assigns only. */
export class RegistrationKeeper {
  readonly #o: RegistrationKeeperOptions;
  #registered = false;
  #timer: NodeJS.Timeout | undefined;
  #retryMs: number;
  #stopped = false;

  constructor(options: RegistrationKeeperOptions) {
    this.#o = options;
    this.#retryMs = options.retryMs;
  }

  /** True while the last REGISTER was accepted and not lost since. */
  get registered(): boolean {
    return this.#registered;
  }

  /** One REGISTER now; on success the refresh is scheduled. Rejects like `DeviceRegistration.register`. */
  async registerOnce(): Promise<number> {
    const granted = await this.#o.registration.register(this.#o.expires);
    this.#accepted(granted);
    return granted;
  }

  /** Registers in the background now, retrying with back-off until accepted. */
  begin(): void {
    this.#schedule(0);
  }

  /** The platform forgot us (refused keepalive, no answers): register again at once. */
  lost(reason: string): void {
    if (this.#stopped || !this.#registered) return;
    this.#o.log.warn({ reason }, 'registration lost; registering again');
    this.#registered = false;
    this.#schedule(0);
  }

  /** Stops the timers; with `unregister` sends `Expires: 0` when registered (failures are logged). */
  async stop(unregister: boolean): Promise<void> {
    this.#stopped = true;
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = undefined;
    const was = this.#registered;
    this.#registered = false;
    if (!unregister || !was) return;
    try {
      await this.#o.registration.register(0, 2000);
    } catch (err) {
      this.#o.log.warn({ err: errorMessage(err) }, 'unregister failed');
    }
  }

  #accepted(expires: number): void {
    const refresh = this.#registered;
    this.#registered = true;
    this.#retryMs = this.#o.retryMs;
    this.#o.onRegistered(expires, refresh);
    // Refresh at half the lifetime, like most devices, so one lost refresh still leaves time.
    this.#schedule((expires * 1000) / 2);
  }

  #schedule(delayMs: number): void {
    if (this.#stopped) return;
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      void this.#attempt();
    }, delayMs);
  }

  async #attempt(): Promise<void> {
    try {
      const granted = await this.#o.registration.register(this.#o.expires);
      if (!this.#stopped) this.#accepted(granted);
    } catch (err) {
      if (this.#stopped) return;
      this.#registered = false;
      const wait = this.#retryMs;
      this.#retryMs = Math.min(this.#retryMs * 2, this.#o.maxRetryMs);
      this.#o.log.warn({ err: errorMessage(err), retryInMs: wait }, 'registration failed; retrying');
      this.#o.onFailed(err instanceof Error ? err : new Error(String(err)));
      this.#schedule(wait);
    }
  }
}
