import { CitysenseError } from '@citysense/protocol';

/** Exponential backoff bounds. */
export interface BackoffOptions {
  initialMs: number;
  maxMs: number;
}

/**
 * Exponential backoff with full jitter (AWS Architecture Blog, "Exponential Backoff
 * and Jitter"): delay = random(0, min(max, initial * 2^attempt)). Full jitter keeps a
 * street of boxes that lost the hub together from reconnecting in lock-step.
 */
export function backoffDelay(attempt: number, o: BackoffOptions, random: () => number = Math.random): number {
  const ceiling = Math.min(o.maxMs, o.initialMs * 2 ** Math.min(attempt, 30));
  return Math.round(random() * ceiling);
}

/** The error a cancelled wait rejects with. */
export function abortError(signal: AbortSignal): CitysenseError {
  const reason = signal.reason instanceof Error ? signal.reason.message : 'aborted';
  return new CitysenseError('CS_ERR_ABORTED', `operation cancelled: ${reason}`, 499);
}

/** Resolves after `ms`, or rejects with CS_ERR_ABORTED when `signal` fires first. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) {
      reject(abortError(signal));
      return;
    }
    const onAbort = () => {
      clearTimeout(timer);
      reject(abortError(signal as AbortSignal));
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}
