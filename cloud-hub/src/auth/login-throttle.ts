/**
 * Failed-login counting per username (GB/T 22239 level 3 "login failure handling"):
 * after `maxFailures` failures in a row the username is locked for `lockMs`, and each
 * further lock doubles, up to `maxLockMs`. Unknown usernames are counted too, so
 * the answer does not reveal which usernames exist. In memory: one hub process.
 */

/** Limits of the throttle. */
export interface LoginThrottleOptions {
  maxFailures?: number;
  lockMs?: number;
  maxLockMs?: number;
  /** Entries kept at most; the oldest are forgotten first. */
  maxEntries?: number;
  now?: () => number;
}

interface Entry {
  failures: number;
  locks: number;
  lockedUntil: number;
  lastFailure: number;
}

/** Counts failed logins and locks usernames. */
export class LoginThrottle {
  readonly #entries = new Map<string, Entry>();
  readonly #maxFailures: number;
  readonly #lockMs: number;
  readonly #maxLockMs: number;
  readonly #maxEntries: number;
  readonly #now: () => number;

  constructor(options: LoginThrottleOptions = {}) {
    this.#maxFailures = options.maxFailures ?? 5;
    this.#lockMs = options.lockMs ?? 60_000;
    this.#maxLockMs = options.maxLockMs ?? 3_600_000;
    this.#maxEntries = options.maxEntries ?? 10_000;
    this.#now = options.now ?? Date.now;
  }

  /** Milliseconds until `username` may try again; 0 when it is not locked. */
  lockedFor(username: string): number {
    const entry = this.#entries.get(username.toLowerCase());
    return entry ? Math.max(0, entry.lockedUntil - this.#now()) : 0;
  }

  /** Records a failure; returns the lock now in force in ms (0 when none). */
  failure(username: string): number {
    const key = username.toLowerCase();
    const now = this.#now();
    let entry = this.#entries.get(key);
    // A quiet hour forgives earlier locks.
    if (entry && now - entry.lastFailure > this.#maxLockMs) entry = undefined;
    entry ??= { failures: 0, locks: 0, lockedUntil: 0, lastFailure: now };
    entry.failures += 1;
    entry.lastFailure = now;
    if (entry.failures >= this.#maxFailures) {
      entry.lockedUntil = now + Math.min(this.#maxLockMs, this.#lockMs * 2 ** entry.locks);
      entry.locks += 1;
      entry.failures = 0;
    }
    this.#entries.delete(key);
    this.#entries.set(key, entry);
    if (this.#entries.size > this.#maxEntries) {
      const oldest = this.#entries.keys().next().value;
      if (oldest !== undefined) this.#entries.delete(oldest);
    }
    return Math.max(0, entry.lockedUntil - now);
  }

  /** Forgets the failures of `username` after a successful login. */
  success(username: string): void {
    this.#entries.delete(username.toLowerCase());
  }
}
