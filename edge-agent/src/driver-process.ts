/**
 * The agent's side of a driver running in its own process (`isolation: 'process'`),
 * the way EdgeX runs each device service apart from core data: the same `Driver`
 * interface, backed by a forked `driver-runner.ts` over IPC. A crash, a native
 * abort or an exception thrown from a timer inside the driver ends only the child;
 * the proxy turns the exit into a CS_ERR_DRIVER_CRASHED `error` and the host restarts it.
 */
import { type ChildProcess, fork } from 'node:child_process';
import { EventEmitter } from 'node:events';
import { createRequire } from 'node:module';
import { fileURLToPath, pathToFileURL } from 'node:url';
import type { DeviceDescriptor, Driver, DriverCapabilities, DriverEvents } from '@citysense/device-drivers';
import { CitysenseError, type Logger } from '@citysense/protocol';
import type { ChildToHost, DriverRegistryModule, HostToChild } from './driver-ipc.ts';

/** The registry a driver process loads by default: the agent's built-in driver types. */
export const BUILTIN_REGISTRY_MODULE: DriverRegistryModule = {
  module: new URL('./drivers.ts', import.meta.url).href,
  exportName: 'builtinDrivers',
};

const RUNNER = fileURLToPath(new URL('./driver-runner.ts', import.meta.url));

/**
 * The child runs TypeScript like the agent does (bin/citysense.mjs registers tsx).
 * The loader is resolved from this package, not the working directory, so an
 * agent started from anywhere finds it; the parent's execArgv (vitest, inspector) is not inherited.
 */
const TSX_LOADER = pathToFileURL(createRequire(import.meta.url).resolve('tsx')).href;

/** Options of one driver process. */
export interface ProcessDriverOptions {
  id: string;
  type: string;
  options: Readonly<Record<string, unknown>>;
  registry: DriverRegistryModule;
  /** Graceful stop budget; after it the child is killed with SIGKILL. */
  stopTimeoutMs: number;
  /** Bound of the child's outgoing reading queue (oldest dropped beyond it, reported as a fault). */
  maxQueuedReadings: number;
  logger: Logger;
}

/** A `Driver` whose implementation runs in a child process. */
export class ProcessDriver extends EventEmitter implements Driver {
  readonly id: string;
  readonly #o: ProcessDriverOptions;
  #capabilities: DriverCapabilities = { telemetry: true, commands: false };
  #devices: DeviceDescriptor[] = [];
  #child: ChildProcess | null = null;
  #exited: Promise<void> = Promise.resolve();
  #starting: Promise<void> | null = null;
  #stopping: Promise<void> | null = null;
  #crashMessage: string | null = null;

  constructor(o: ProcessDriverOptions) {
    super();
    this.id = o.id;
    this.#o = o;
  }

  /** Capabilities the child's driver declared (defaults until it started). */
  get capabilities(): DriverCapabilities {
    return this.#capabilities;
  }

  /** Pid of the driver process while it runs. */
  get pid(): number | undefined {
    return this.#child?.pid;
  }

  /** Devices the child reported; a call also asks the child for a fresh list (it may have added metrics). */
  devices(): DeviceDescriptor[] {
    if (this.#child?.connected && !this.#stopping) this.#send({ t: 'devices' });
    return this.#devices;
  }

  /** Forks the driver process and resolves once its driver started. Idempotent. */
  start(signal?: AbortSignal): Promise<void> {
    this.#starting ??= this.#start(signal);
    return this.#starting;
  }

  async #start(signal?: AbortSignal): Promise<void> {
    signal?.throwIfAborted();
    const child = fork(RUNNER, [], {
      execArgv: ['--import', TSX_LOADER],
      serialization: 'advanced',
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    this.#child = child;
    this.#exited = new Promise((resolve) => child.once('exit', () => resolve()));
    const started = new Promise<void>((resolve, reject) => {
      const onAbort = () => {
        child.kill('SIGKILL');
        reject(new CitysenseError('CS_ERR_ABORTED', 'driver start cancelled', 499));
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      const settle = () => signal?.removeEventListener('abort', onAbort);
      child.on('message', (m: ChildToHost) => {
        if (m.t === 'started') {
          settle();
          this.#devices = m.devices;
          this.#capabilities = m.capabilities;
          resolve();
        } else if (m.t === 'start-failed') {
          settle();
          reject(new CitysenseError(m.code, m.message, 500));
          void this.kill();
        } else this.#onMessage(m);
      });
      child.once('error', (err) => {
        settle();
        reject(err);
      });
      child.once('exit', (code, sig) => {
        settle();
        const err = this.#crashError(code, sig);
        // Before `started` the exit rejects start; after it, it is a crash of a running driver.
        reject(err);
        if (!this.#stopping) this.#raise(err);
      });
    });
    this.#send({
      t: 'start',
      id: this.#o.id,
      type: this.#o.type,
      options: { ...this.#o.options },
      registry: this.#o.registry,
      maxQueuedReadings: this.#o.maxQueuedReadings,
    });
    await started;
  }

  /** Asks the child to stop; kills it with SIGKILL when it has not exited within `stopTimeoutMs`. Idempotent. */
  stop(): Promise<void> {
    this.#stopping ??= this.#stop();
    return this.#stopping;
  }

  async #stop(): Promise<void> {
    const child = this.#child;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    this.#send({ t: 'stop' });
    let timer: NodeJS.Timeout | undefined;
    const timedOut = await Promise.race([
      this.#exited.then(() => false),
      new Promise<boolean>((resolve) => {
        timer = setTimeout(() => resolve(true), this.#o.stopTimeoutMs);
      }),
    ]);
    clearTimeout(timer);
    if (timedOut) {
      this.#o.logger.warn(
        { driver: this.id, pid: child.pid, stopTimeoutMs: this.#o.stopTimeoutMs },
        'driver process did not stop in time, killing it',
      );
      await this.kill();
    }
  }

  /** Kills the child at once (SIGKILL) and resolves when it is gone; for a hung start. */
  async kill(): Promise<void> {
    this.#stopping ??= Promise.resolve();
    const child = this.#child;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    child.kill('SIGKILL');
    await this.#exited;
  }

  #onMessage(m: ChildToHost): void {
    switch (m.t) {
      case 'readings':
        this.emit('readings', m.batch);
        break;
      case 'fault':
        this.emit('fault', m.fault);
        break;
      case 'devices':
        this.#devices = m.devices;
        break;
      case 'error':
        this.#raise(new CitysenseError(m.code, m.message, 500));
        break;
      case 'crash':
        this.#crashMessage = m.message;
        break;
      default:
        break;
    }
  }

  #crashError(code: number | null, sig: NodeJS.Signals | null): CitysenseError {
    const how = sig ? `was killed by ${sig}` : `exited with code ${code}`;
    const why = this.#crashMessage ? `: ${this.#crashMessage}` : '';
    return new CitysenseError(
      'CS_ERR_DRIVER_CRASHED',
      `driver process of "${this.id}" ${how}${why}; the agent restarts it with backoff`,
      500,
    );
  }

  /** Emits `error` only while the host listens: a detached, retired proxy must not throw. */
  #raise(err: Error): void {
    if (this.listenerCount('error') > 0) this.emit('error', err);
    else this.#o.logger.warn({ driver: this.id, err: err.message }, 'driver process error after retirement');
  }

  #send(m: HostToChild): void {
    const child = this.#child;
    if (!child?.connected) return;
    child.send(m, (err) => {
      if (err) this.#o.logger.debug({ driver: this.id, err: err.message }, 'driver process IPC send failed');
    });
  }

  override on<E extends keyof DriverEvents>(event: E, listener: DriverEvents[E]): this;
  override on(event: 'error', listener: (err: Error) => void): this;
  override on(event: string, listener: (...args: never[]) => void): this {
    return super.on(event, listener as (...args: unknown[]) => void);
  }

  override off<E extends keyof DriverEvents>(event: E, listener: DriverEvents[E]): this;
  override off(event: 'error', listener: (err: Error) => void): this;
  override off(event: string, listener: (...args: never[]) => void): this {
    return super.off(event, listener as (...args: unknown[]) => void);
  }
}
