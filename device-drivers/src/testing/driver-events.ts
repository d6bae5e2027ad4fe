/**
 * Waiting for a driver's events in tests, without sleeps: the next reading or fault that
 * matches, or a rejection naming what did not come. Plain code, no vitest, so any test
 * (drivers, simulators, the agent) can import it by relative path.
 */
import type { Driver, DriverFault, Reading } from '../driver.ts';

/** Resolves with the first reading `match` accepts, or rejects after `timeoutMs`. */
export async function nextReading(
  driver: Driver,
  match: (r: Reading) => boolean = () => true,
  timeoutMs = 10_000,
): Promise<Reading> {
  const batch = await nextBatch(driver, match, timeoutMs);
  return batch.find(match) as Reading;
}

/** Resolves with the first batch holding a reading `match` accepts, or rejects after `timeoutMs`. */
export function nextBatch(
  driver: Driver,
  match: (r: Reading) => boolean = () => true,
  timeoutMs = 10_000,
): Promise<Reading[]> {
  return new Promise((resolve, reject) => {
    const onReadings = (batch: Reading[]) => {
      if (!batch.some(match)) return;
      cleanup();
      resolve(batch);
    };
    const timer = setTimeout(() => {
      cleanup();
      reject(new Error(`no matching reading from driver ${driver.id} within ${timeoutMs} ms`));
    }, timeoutMs);
    const cleanup = () => {
      clearTimeout(timer);
      driver.off('readings', onReadings);
    };
    driver.on('readings', onReadings);
  });
}

/** Resolves with the next fault (carrying `code`, when given), or rejects after `timeoutMs`. */
export function nextFault(driver: Driver, code?: string, timeoutMs = 10_000): Promise<DriverFault> {
  return new Promise((resolve, reject) => {
    const onFault = (fault: DriverFault) => {
      if (code !== undefined && fault.code !== code) return;
      cleanup();
      resolve(fault);
    };
    const timer = setTimeout(() => {
      cleanup();
      reject(new Error(`no ${code ?? ''} fault from driver ${driver.id} within ${timeoutMs} ms`));
    }, timeoutMs);
    const cleanup = () => {
      clearTimeout(timer);
      driver.off('fault', onFault);
    };
    driver.on('fault', onFault);
  });
}
