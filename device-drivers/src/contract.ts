/**
 * The contract every driver and every simulator passes, as a vitest suite. Tests only:
 * import it by relative path (`../../../device-drivers/src/contract.ts`); runtime code
 * must not, because it loads vitest.
 *
 * Decided behaviour the suite pins down:
 * - `start` is idempotent (sequential and concurrent calls) and `devices()` is valid once
 *   it resolves.
 * - A `readings` event carries a non-empty batch of readings of declared metrics only,
 *   typed as declared, with integer ms times that strictly increase per (device, metric).
 * - `stop` is idempotent, also before `start`; once it resolves no event is emitted.
 * - `start` with an already-aborted signal rejects (CS_ERR_ABORTED by convention) or
 *   resolves without running; either way it emits nothing.
 * - A listener that throws is isolated: other listeners still get every batch and the
 *   driver keeps producing (DriverEmitter logs the error). It is not reported as a
 *   driver `fault`: the bug is in the consumer, not in the device.
 *
 * The driver runs on real timers here: make `makeDriver` return one that produces its
 * first batch well inside `readingsTimeoutMs` (e.g. a simulator with intervalMs 10).
 */
import { setTimeout as delay } from 'node:timers/promises';
import { afterEach, describe, expect, it } from 'vitest';
import {
  checkDevices,
  checkFault,
  checkReadings,
  checkSeriesOrder,
  EARLIEST_READING_TIME,
  type TimeWindow,
} from './conformance.ts';
import type { Driver, DriverFault, Reading } from './driver.ts';

/** Tuning of the contract suite for one driver. */
export interface DriverContractOptions {
  /** How long to wait for readings batches, ms; default 2000. */
  readingsTimeoutMs?: number;
  /** How long to watch for stray events after `stop` or an aborted `start`, ms; default 150. */
  quietMs?: number;
  /** Batches to inspect in the readings test; default 3. */
  batches?: number;
  /** Acceptable reading times; default 2000-01-01 to one day after now. */
  timeWindow?: () => TimeWindow;
}

const DAY_MS = 86_400_000;

function defaultWindow(): TimeWindow {
  return { min: EARLIEST_READING_TIME, max: Date.now() + DAY_MS };
}

/** Resolves with the next `count` readings batches of `driver`, or rejects after `timeoutMs`. */
function nextBatches(driver: Driver, count: number, timeoutMs: number): Promise<Reading[][]> {
  return new Promise((resolve, reject) => {
    const got: Reading[][] = [];
    const onReadings = (batch: Reading[]) => {
      got.push(batch);
      if (got.length >= count) {
        cleanup();
        resolve(got);
      }
    };
    const timer = setTimeout(() => {
      cleanup();
      reject(
        new Error(
          `driver "${driver.id}" emitted ${got.length} of ${count} readings batches within ${timeoutMs} ms`,
        ),
      );
    }, timeoutMs);
    const cleanup = () => {
      clearTimeout(timer);
      driver.off('readings', onReadings);
    };
    driver.on('readings', onReadings);
  });
}

/** Counts every event `driver` emits until `dispose` is called. */
function recordEvents(driver: Driver): { readings: Reading[][]; faults: DriverFault[]; dispose: () => void } {
  const readings: Reading[][] = [];
  const faults: DriverFault[] = [];
  const onReadings = (batch: Reading[]) => readings.push(batch);
  const onFault = (fault: DriverFault) => faults.push(fault);
  driver.on('readings', onReadings).on('fault', onFault);
  return {
    readings,
    faults,
    dispose: () => driver.off('readings', onReadings).off('fault', onFault),
  };
}

/** Registers the driver contract suite for the drivers `makeDriver` returns (a fresh one per test). */
export function describeDriverContract(
  name: string,
  makeDriver: () => Driver,
  options: DriverContractOptions = {},
): void {
  const readingsTimeoutMs = options.readingsTimeoutMs ?? 2000;
  const quietMs = options.quietMs ?? 150;
  const batchCount = options.batches ?? 3;
  const timeWindow = options.timeWindow ?? defaultWindow;

  describe(`driver contract: ${name}`, () => {
    const started: Driver[] = [];
    const make = (): Driver => {
      const driver = makeDriver();
      started.push(driver);
      return driver;
    };

    afterEach(async () => {
      await Promise.all(started.splice(0).map((d) => d.stop()));
    });

    it('has an id and capabilities before start', () => {
      const driver = make();
      expect(typeof driver.id).toBe('string');
      expect(driver.id.length).toBeGreaterThan(0);
      expect(typeof driver.capabilities.telemetry).toBe('boolean');
      expect(typeof driver.capabilities.commands).toBe('boolean');
    });

    it('start is idempotent and devices() is valid once it resolves', async () => {
      const driver = make();
      await Promise.all([driver.start(), driver.start()]);
      await driver.start();
      const devices = driver.devices();
      expect(devices.length).toBeGreaterThan(0);
      expect(checkDevices(devices)).toEqual([]);
      expect(driver.devices().map((d) => d.id)).toEqual(devices.map((d) => d.id));
    });

    it('emits readings only for declared metrics, typed as declared, with sane increasing times', async () => {
      const driver = make();
      if (!driver.capabilities.telemetry) return;
      const events = recordEvents(driver);
      const batches = nextBatches(driver, batchCount, readingsTimeoutMs);
      await driver.start();
      const devices = driver.devices();
      const order = new Map<string, number>();
      for (const batch of await batches) {
        expect(checkReadings(devices, batch, timeWindow())).toEqual([]);
        expect(checkSeriesOrder(batch, order)).toEqual([]);
      }
      for (const fault of events.faults) expect(checkFault(devices, fault)).toEqual([]);
      events.dispose();
    });

    it('stop is idempotent, works before start, and nothing is emitted after it resolves', async () => {
      const idle = make();
      await idle.stop();
      await idle.stop();

      const driver = make();
      await driver.start();
      if (driver.capabilities.telemetry) await nextBatches(driver, 1, readingsTimeoutMs);
      await Promise.all([driver.stop(), driver.stop()]);
      const events = recordEvents(driver);
      await driver.stop();
      await delay(quietMs);
      events.dispose();
      expect(events.readings).toEqual([]);
      expect(events.faults).toEqual([]);
    });

    it('start with an already-aborted signal rejects or returns promptly without emitting', async () => {
      const driver = make();
      const events = recordEvents(driver);
      const controller = new AbortController();
      controller.abort(new Error('host shutting down'));
      const outcome = await Promise.race([
        driver.start(controller.signal).then(
          () => 'resolved' as const,
          () => 'rejected' as const,
        ),
        delay(readingsTimeoutMs, 'hung' as const),
      ]);
      expect(outcome).not.toBe('hung');
      await delay(quietMs);
      events.dispose();
      expect(events.readings).toEqual([]);
    });

    it('keeps producing for other listeners when a listener throws', async () => {
      const driver = make();
      if (!driver.capabilities.telemetry) return;
      let thrown = 0;
      driver.on('readings', () => {
        thrown += 1;
        throw new Error('a consumer bug');
      });
      const batches = nextBatches(driver, 2, readingsTimeoutMs);
      await driver.start();
      expect((await batches).length).toBe(2);
      expect(thrown).toBeGreaterThanOrEqual(2);
    });

    it('off() removes a listener', async () => {
      const driver = make();
      if (!driver.capabilities.telemetry) return;
      let removedCalls = 0;
      const removed = () => {
        removedCalls += 1;
      };
      driver.on('readings', removed).off('readings', removed);
      const batches = nextBatches(driver, 1, readingsTimeoutMs);
      await driver.start();
      await batches;
      expect(removedCalls).toBe(0);
    });
  });
}
