/**
 * Entry point of a driver process (`isolation: 'process'`), forked by `ProcessDriver`.
 * Builds one driver from the registry module the agent names, relays its readings
 * and faults over IPC through a bounded queue, and exits on any uncaught error so
 * the agent can restart it: a driver that crashes takes down only this process.
 */
import { EventEmitter } from 'node:events';
import type { Driver, Reading } from '@citysense/device-drivers';
import { CitysenseError, componentLogger, errorMessage, rootLogger } from '@citysense/protocol';
import type { DriverRegistry } from './driver-host.ts';
import type { ChildToHost, HostToChild } from './driver-ipc.ts';

/** Messages handed to the IPC channel whose write has not completed; beyond this, batches queue here. */
const MAX_IN_FLIGHT = 32;
/** At most one overflow fault per this many ms. */
const OVERFLOW_REPORT_MS = 1000;

const log = componentLogger('driver-process');
let driver: Driver | null = null;
let maxQueuedReadings = 50_000;
const queue: Reading[][] = [];
let queuedReadings = 0;
let inFlight = 0;
let dropped = 0;
let lastOverflowReport = 0;
let stopping = false;

function send(message: ChildToHost, done?: () => void): void {
  if (!process.connected) return;
  inFlight++;
  process.send?.(message, undefined, undefined, () => {
    inFlight--;
    done?.();
    pump();
  });
}

/** Sends queued batches while the channel keeps up. */
function pump(): void {
  while (inFlight < MAX_IN_FLIGHT && queue.length > 0) {
    const batch = queue.shift() as Reading[];
    queuedReadings -= batch.length;
    send({ t: 'readings', batch });
  }
}

function enqueue(batch: Reading[]): void {
  queue.push(batch);
  queuedReadings += batch.length;
  // Bounded: the oldest readings go first, as in the agent's spool (drop-oldest).
  while (queuedReadings > maxQueuedReadings && queue.length > 1) {
    const old = queue.shift() as Reading[];
    queuedReadings -= old.length;
    dropped += old.length;
  }
  pump();
  const now = Date.now();
  if (dropped > 0 && now - lastOverflowReport >= OVERFLOW_REPORT_MS) {
    lastOverflowReport = now;
    send({
      t: 'fault',
      fault: {
        code: 'CS_ERR_DRIVER_IPC_OVERFLOW',
        message: `${dropped} readings dropped: the agent does not keep up with this driver process, lower its rate`,
      },
    });
    dropped = 0;
  }
}

function crash(err: unknown): void {
  log.fatal({ err: errorMessage(err) }, 'driver process crashed');
  const exit = () => process.exit(70);
  // Exit even when the channel is gone or the send never completes.
  setTimeout(exit, 500).unref();
  if (process.connected) send({ t: 'crash', message: errorMessage(err) }, exit);
  else exit();
}

async function start(m: Extract<HostToChild, { t: 'start' }>): Promise<void> {
  maxQueuedReadings = m.maxQueuedReadings;
  try {
    const mod = (await import(m.registry.module)) as Record<string, DriverRegistry | undefined>;
    const factory = mod[m.registry.exportName]?.[m.type];
    if (!factory) {
      throw new CitysenseError(
        'CS_ERR_DRIVER_TYPE',
        `no driver registered for type "${m.type}" in ${m.registry.module}`,
        400,
      );
    }
    const d = await factory({ id: m.id, options: m.options, logger: rootLogger });
    driver = d;
    d.on('readings', enqueue);
    d.on('fault', (fault) => send({ t: 'fault', fault }));
    if (d instanceof EventEmitter) {
      d.on('error', (err: unknown) =>
        send({
          t: 'error',
          code: err instanceof CitysenseError ? err.code : 'CS_ERR_DRIVER_ERROR',
          message: errorMessage(err),
        }),
      );
    }
    await d.start();
    send({ t: 'started', devices: d.devices(), capabilities: { ...d.capabilities } });
  } catch (err) {
    send({
      t: 'start-failed',
      code: err instanceof CitysenseError ? err.code : 'CS_ERR_DRIVER_START',
      message: errorMessage(err),
    });
  }
}

async function stop(): Promise<void> {
  if (stopping) return;
  stopping = true;
  try {
    await driver?.stop();
  } catch (err) {
    log.warn({ err: errorMessage(err) }, 'driver failed to stop cleanly');
  }
  pump();
  send({ t: 'stopped' }, () => process.exit(0));
}

process.on('uncaughtException', crash);
process.on('unhandledRejection', crash);
// The agent is gone (killed, crashed): nobody reads this driver any more.
process.on('disconnect', () => process.exit(0));
process.on('message', (m: HostToChild) => {
  if (m.t === 'start') void start(m);
  else if (m.t === 'stop') void stop();
  else if (m.t === 'devices' && driver) send({ t: 'devices', devices: driver.devices() });
});
