/**
 * Runs the hub's remote operations on this node: polls the pending ones (at once when
 * nudged by NCMD `citysense/Operations Revision` or on reconnect), runs them one at a
 * time and reports each result. Bad input never changes the node: an unknown kind or
 * invalid parameters are a `failed` result with a code, an invalid configuration is
 * refused before anything is touched, and a configuration that leaves the node
 * unhealthy is undone.
 */
import {
  CitysenseError,
  type ConfigApplyParams,
  type ConfigApplyResult,
  type DriverRestartResult,
  errorMessage,
  type Logger,
  type LogTailParams,
  OPERATION_KINDS,
  OPERATION_PARAMS,
  type Operation,
  type OperationKind,
  type OperationResult,
  type RemoteConfig,
  RemoteConfigSchema,
} from '@citysense/protocol';
import { Value } from '@sinclair/typebox/value';
import { type AgentConfig, type DriverConfig, resolveAgentConfig } from '../config.ts';
import { checkDrivers } from '../doctor/drivers.ts';
import type { DoctorReport } from '../doctor/report.ts';
import { builtinChecks, runDoctor } from '../doctor/runner.ts';
import type { DriverRegistry, DriverStatus } from '../driver-host.ts';
import { BackgroundLoop } from '../inference/background-loop.ts';
import type { RemoteConfigState, RemoteConfigStore, VersionedConfig } from './config-store.ts';
import type { LogRing } from './log-ring.ts';
import type { OperationsClient } from './operations-client.ts';

/** What the executor may do to the agent; the agent implements it. */
export interface NodeControl {
  /** The configuration the agent runs now. */
  config(): Readonly<AgentConfig>;
  registry: DriverRegistry;
  drivers(): DriverStatus[];
  /** Restarts one driver (fresh instance); CS_ERR_DRIVER_NOT_FOUND for an unknown id. */
  restartDriver(id: string): Promise<void>;
  /** Replaces every hosted driver with `drivers` (stop all, start the new set). */
  replaceDrivers(drivers: readonly DriverConfig[]): Promise<void>;
  /** MQTT session up and births out. */
  connected(): boolean;
}

/** Options of the executor. */
export interface RemoteOperationsOptions {
  client: Pick<OperationsClient, 'pending' | 'report'>;
  control: NodeControl;
  logs: LogRing;
  store: RemoteConfigStore;
  /** Poll period without a nudge; default 30 s. */
  pollIntervalMs?: number;
  /** How long a node must stay healthy after a config change before it counts; default 1 s (capped at a third of the timeout). */
  settleMs?: number;
  logger: Logger;
}

/** One line of why the node is not healthy. */
type Problems = string[];

const RESULT_ATTEMPTS = 3;

/** Executes remote operations; `start`/`stop` are idempotent. */
export class RemoteOperations {
  readonly #o: RemoteOperationsOptions;
  readonly #loop = new BackgroundLoop((signal) => this.#run(signal));
  /** Operations already taken, so a slow hub answer never runs one twice. */
  readonly #taken = new Set<string>();
  #configVersion: number | null = null;
  #failing = false;

  constructor(o: RemoteOperationsOptions) {
    this.#o = o;
  }

  /** The remote configuration version the node runs (null: its local file). */
  get configVersion(): number | null {
    return this.#configVersion;
  }

  /** Starts polling. `configVersion` is what the agent started with. Idempotent. */
  async start(configVersion: number | null): Promise<void> {
    this.#configVersion = configVersion;
    this.#loop.start();
  }

  /** Stops polling and waits for the operation in flight. Idempotent. */
  async stop(): Promise<void> {
    await this.#loop.stop();
  }

  /** Polls now (NCMD nudge, reconnect). */
  pollNow(reason: string): void {
    this.#o.logger.debug({ reason }, 'operations poll requested');
    this.#loop.notify();
  }

  async #run(signal: AbortSignal): Promise<void> {
    while (!signal.aborted) {
      await this.#poll(signal);
      if (signal.aborted) break;
      await this.#loop.wakeup.wait(this.#o.pollIntervalMs ?? 30_000);
    }
  }

  async #poll(signal: AbortSignal): Promise<void> {
    const log = this.#o.logger;
    let ops: Operation[];
    try {
      const doc = await this.#o.client.pending(signal);
      ops = doc?.operations ?? [];
      if (this.#failing) log.info('operations poll works again');
      this.#failing = false;
    } catch (err) {
      if (signal.aborted) return;
      if (!this.#failing) log.warn({ err: errorMessage(err) }, 'operations poll failed; will retry');
      this.#failing = true;
      return;
    }
    for (const op of ops) {
      if (signal.aborted) return;
      if (this.#taken.has(op.id)) continue;
      this.#taken.add(op.id);
      if (this.#taken.size > 1000) this.#taken.delete(this.#taken.values().next().value as string);
      await this.#execute(op, signal);
    }
  }

  async #execute(op: Operation, signal: AbortSignal): Promise<void> {
    const log = this.#o.logger.child({ operationId: op.id, kind: op.kind });
    if (!(OPERATION_KINDS as readonly string[]).includes(op.kind)) {
      await this.#report(
        op,
        this.#failed('CS_ERR_OPERATION_KIND', `this agent does not know operation kind "${op.kind}"`),
        signal,
      );
      return;
    }
    const kind = op.kind as OperationKind;
    const schema = OPERATION_PARAMS[kind];
    const params = Value.Default(schema, structuredClone(op.params ?? {}));
    const first = Value.Errors(schema, params).First();
    if (first) {
      await this.#report(
        op,
        this.#failed('CS_ERR_OPERATION_INVALID', `invalid parameters: ${first.path || '/'} ${first.message}`),
        signal,
      );
      return;
    }
    // A tail is instant and may be asked every second: no separate `running` report.
    if (kind !== 'log-tail' && (await this.#report(op, { state: 'running' }, signal)) === 'gone') return;
    log.info('running remote operation');
    let outcome: OperationResult;
    try {
      outcome = await this.#dispatch(kind, params, signal);
    } catch (err) {
      const code = err instanceof CitysenseError ? err.code : 'CS_ERR_OPERATION_FAILED';
      outcome = this.#failed(
        code,
        errorMessage(err),
        err instanceof CitysenseError ? err.details : undefined,
      );
    }
    log.info({ state: outcome.state, code: outcome.code }, 'remote operation finished');
    await this.#report(op, outcome, signal);
  }

  #dispatch(kind: OperationKind, params: unknown, signal: AbortSignal): Promise<OperationResult> {
    switch (kind) {
      case 'doctor':
        return this.#doctor((params as { timeoutMs?: number }).timeoutMs, signal);
      case 'log-tail':
        return Promise.resolve(this.#done(this.#o.logs.tail(params as LogTailParams)));
      case 'driver-restart':
        return this.#restartDriver((params as { driverId: string }).driverId);
      case 'config-apply':
        return this.#applyConfig(params as ConfigApplyParams, signal);
      case 'config-rollback':
        return this.#rollback(signal);
    }
  }

  #done(result: unknown): OperationResult {
    return { state: 'succeeded', result, configVersion: this.#configVersion };
  }

  #failed(code: string, message: string, details?: unknown): OperationResult {
    return {
      state: 'failed',
      code,
      message: message.slice(0, 2000),
      ...(details === undefined ? {} : { result: { details } }),
      configVersion: this.#configVersion,
    };
  }

  async #doctor(timeoutMs: number | undefined, signal: AbortSignal): Promise<OperationResult> {
    const report: DoctorReport = await runDoctor(this.#o.control.config(), {
      timeoutMs: timeoutMs ?? 5_000,
      checks: { ...builtinChecks, drivers: checkDrivers(this.#o.control.registry) },
      signal,
    });
    return this.#done(report);
  }

  async #restartDriver(driverId: string): Promise<OperationResult> {
    await this.#o.control.restartDriver(driverId);
    const s = this.#o.control.drivers().find((d) => d.id === driverId);
    const result: DriverRestartResult = {
      driverId,
      state: s?.state ?? 'stopped',
      restarts: s?.restarts ?? 0,
    };
    return this.#done(result);
  }

  // ── configuration ────────────────────────────────────────────────────────

  /** Every problem of `config` on this node, without changing anything. */
  async #validate(config: RemoteConfig): Promise<Array<{ path: string; message: string }>> {
    const problems = [...Value.Errors(RemoteConfigSchema, config)].map((e) => ({
      path: e.path || '/',
      message: e.message,
    }));
    if (problems.length > 0) return problems;
    let merged: Readonly<AgentConfig>;
    try {
      merged = resolveAgentConfig({
        ...(structuredClone(this.#o.control.config()) as unknown as Record<string, unknown>),
        drivers: structuredClone(config.drivers),
      });
    } catch (err) {
      const details = err instanceof CitysenseError ? err.details : undefined;
      return Array.isArray(details)
        ? (details as Array<{ path: string; message: string }>)
        : [{ path: '/', message: errorMessage(err) }];
    }
    merged.drivers.forEach((d, i) => {
      if (!this.#o.control.registry[d.type])
        problems.push({ path: `/drivers/${i}/type`, message: `this agent build has no driver "${d.type}"` });
    });
    if (problems.length > 0) return problems;
    // Each driver's factory and its own option resolver, as `agent doctor` checks them.
    const lines = await checkDrivers(this.#o.control.registry)({
      config: merged,
      identity: null,
      signal: AbortSignal.timeout(10_000),
      timeoutMs: 10_000,
    });
    for (const line of lines) {
      if (line.verdict !== 'fail') continue;
      const id = line.name.replace(/^driver:/, '');
      const i = merged.drivers.findIndex((d) => d.id === id);
      problems.push({ path: `/drivers/${i}/options`, message: line.detail });
    }
    return problems;
  }

  #running(): VersionedConfig {
    return {
      version: this.#configVersion,
      config: { drivers: structuredClone([...this.#o.control.config().drivers]) },
    };
  }

  async #applyConfig(p: ConfigApplyParams, signal: AbortSignal): Promise<OperationResult> {
    if (this.#configVersion !== null && p.version === this.#configVersion)
      return this.#done(this.#configResult(p.version));
    if (this.#configVersion !== null && p.version < this.#configVersion)
      return this.#failed(
        'CS_ERR_CONFIG_STALE',
        `version ${p.version} is older than the version ${this.#configVersion} this node runs`,
      );
    const problems = await this.#validate(p.config);
    if (problems.length > 0)
      return this.#failed(
        'CS_ERR_CONFIG_INVALID',
        `configuration version ${p.version} refused, nothing changed: ${problems.map((x) => `${x.path}: ${x.message}`).join('; ')}`,
        problems,
      );
    const previous = this.#running();
    const state = await this.#o.store.load();
    const next: VersionedConfig = { version: p.version, config: p.config };
    return this.#switchTo(next, previous, state, p.healthTimeoutMs, signal, p.version);
  }

  async #rollback(signal: AbortSignal): Promise<OperationResult> {
    const state = await this.#o.store.load();
    if (!state.lastGood)
      return this.#failed(
        'CS_ERR_CONFIG_NO_LAST_GOOD',
        'this node has no earlier configuration to go back to',
      );
    return this.#switchTo(state.lastGood, this.#running(), state, 30_000, signal, state.lastGood.version);
  }

  /**
   * Runs `next` on probation: persisted with `applying`, drivers replaced, then the node
   * must be healthy within `timeoutMs`. Otherwise `previous` is restored and persisted.
   */
  async #switchTo(
    next: VersionedConfig,
    previous: VersionedConfig,
    state: RemoteConfigState,
    timeoutMs: number,
    signal: AbortSignal,
    version: number | null,
  ): Promise<OperationResult> {
    const log = this.#o.logger;
    await this.#o.store.save({ current: next, lastGood: previous, applying: true });
    log.info({ version: next.version, previous: previous.version }, 'applying configuration');
    let problems: Problems;
    try {
      await this.#o.control.replaceDrivers(next.config.drivers);
      problems = await this.#healthy(timeoutMs, signal);
    } catch (err) {
      problems = [`applying failed: ${errorMessage(err)}`];
    }
    if (problems.length === 0) {
      await this.#o.store.save({ current: next, lastGood: previous, applying: false });
      this.#configVersion = next.version;
      log.info({ version: next.version }, 'configuration applied and healthy');
      return this.#done(this.#configResult(version));
    }
    log.warn(
      { version: next.version, problems },
      'node not healthy with the new configuration; rolling back',
    );
    await this.#o.control.replaceDrivers(previous.config.drivers);
    await this.#o.store.save({ current: previous, lastGood: state.lastGood, applying: false });
    this.#configVersion = previous.version;
    return {
      state: 'rolled-back',
      code: 'CS_ERR_CONFIG_UNHEALTHY',
      message:
        `version ${next.version ?? 'local'} rolled back to ${previous.version ?? 'the local configuration'}: ${problems.join('; ')}`.slice(
          0,
          2000,
        ),
      result: this.#configResult(version),
      configVersion: this.#configVersion,
    };
  }

  #configResult(version: number | null): ConfigApplyResult {
    return {
      version,
      activeVersion: this.#configVersion,
      drivers: this.#o.control.drivers().map((d) => ({ id: d.id, state: d.state })),
    };
  }

  /** Waits until uplink and every driver are fine for the settle time; the problems when the time runs out. */
  async #healthy(timeoutMs: number, signal: AbortSignal): Promise<Problems> {
    const settleMs = Math.min(this.#o.settleMs ?? 1000, Math.floor(timeoutMs / 3));
    const deadline = Date.now() + timeoutMs;
    const faultsAtStart = new Map(this.#o.control.drivers().map((d) => [d.id, d.faults]));
    let healthySince: number | null = null;
    let problems: Problems = [];
    while (!signal.aborted) {
      problems = [];
      if (!this.#o.control.connected()) problems.push('uplink to the hub is not connected');
      for (const d of this.#o.control.drivers()) {
        if (d.state !== 'running')
          problems.push(
            `driver ${d.id} is ${d.state}${d.lastFault ? ` (${d.lastFault.code}: ${d.lastFault.message})` : ''}`,
          );
        else if (d.faults > (faultsAtStart.get(d.id) ?? 0))
          problems.push(`driver ${d.id} reported a fault (${d.lastFault?.code}: ${d.lastFault?.message})`);
      }
      const now = Date.now();
      if (problems.length === 0) {
        healthySince ??= now;
        if (now - healthySince >= settleMs) return [];
      } else healthySince = null;
      if (now >= deadline)
        return problems.length > 0 ? problems : ['not healthy long enough before the timeout'];
      await new Promise((r) => setTimeout(r, 100));
    }
    return ['agent is stopping'];
  }

  async #report(op: Operation, result: OperationResult, signal: AbortSignal): Promise<'accepted' | 'gone'> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.#o.client.report(op.id, result, signal);
      } catch (err) {
        if (signal.aborted || attempt >= RESULT_ATTEMPTS) {
          // The hub expires the operation at its deadline; the node's state is what it is.
          this.#o.logger.warn(
            { operationId: op.id, err: errorMessage(err) },
            'could not report an operation result',
          );
          return 'gone';
        }
        await new Promise((r) => setTimeout(r, 500 * attempt));
      }
    }
  }
}
