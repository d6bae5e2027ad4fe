import { CitysenseError } from '@citysense/protocol';

/** The error `start(signal)` rejects with when its signal is already aborted. */
export function driverAbortedError(driverId: string, signal: AbortSignal): CitysenseError {
  const reason = signal.reason instanceof Error ? signal.reason.message : 'aborted';
  return new CitysenseError('CS_ERR_ABORTED', `start of driver "${driverId}" cancelled: ${reason}`, 499);
}

/** Throws CS_ERR_ABORTED when `signal` is aborted; drivers call it first thing in `start`. */
export function throwIfStartAborted(driverId: string, signal: AbortSignal | undefined): void {
  if (signal?.aborted) throw driverAbortedError(driverId, signal);
}
