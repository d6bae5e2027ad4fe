import { join } from 'node:path';
import type { DeviceDescriptor } from '@citysense/device-drivers';
import { componentLogger, errorMessage, type Logger, rootLogger } from '@citysense/protocol';
import { type AgentConfig, type AgentConfigInput, type DriverConfig, resolveAgentConfig } from './config.ts';
import { DRIVER_STATUS_FILE, DriverHost, type DriverRegistry, type DriverStatus } from './driver-host.ts';
import type { DriverRegistryModule } from './driver-ipc.ts';
import { builtinDrivers } from './drivers.ts';
import { ensureIdentity } from './enrollment.ts';
import { HealthMonitor } from './health.ts';
import type { NodeIdentity } from './identity-store.ts';
import type { InferenceRuntime, InferenceRuntimeStatus } from './inference/runtime.ts';
import type { OtaUpdater, OtaUpdaterStatus } from './ota/updater.ts';
import { startOta } from './ota/wiring.ts';
import { TelemetryRecorder } from './recorder.ts';
import { LogRing, tapLogger } from './remote/log-ring.ts';
import type { RemoteOperations } from './remote/remote-operations.ts';
import { startConfig, startRemoteOperations } from './remote/wiring.ts';
import { Spool } from './spool/index.ts';
import type { SpoolStats } from './spool/spool.ts';
import { SparkplugUplink, type UplinkStatus } from './uplink/uplink.ts';
import { AGENT_VERSION } from './version.ts';

/** Lifecycle state of the agent. */
export type AgentState = 'stopped' | 'starting' | 'running' | 'stopping';

/** What `Agent.status()` returns: what a field engineer checks first. */
export interface AgentStatus {
  state: AgentState;
  agentVersion: string;
  nodeId: string | null;
  groupId: string | null;
  /** MQTT session with the hub broker is up and births are out. */
  connected: boolean;
  /** The hub's retained STATE; null before one arrived. */
  hubOnline: boolean | null;
  spool: SpoolStats | null;
  /** Unacked records in flight. */
  inFlight: number;
  /** Time of the last ack that settled a record, ms since the epoch. */
  lastAckAt: number | null;
  /** Moving median publish→ack time, ms. */
  rttMs: number | null;
  /** Uplink details: bdSeq, counters of connects, resends and ack timeouts. */
  uplink: UplinkStatus | null;
  drivers: DriverStatus[];
  /** Records the spool refused (reject-new when full, disk errors). */
  appendFailures: number;
  /** Assignments, model cache and per-source figures; null when inference is disabled or not started. */
  inference: InferenceRuntimeStatus | null;
  /** Remote configuration version the node runs (null: its local configuration). */
  configVersion: number | null;
  /** Slots, trial and updates of the agent software and firmware; null when OTA is disabled. */
  ota: OtaUpdaterStatus | null;
}

/** Things a host may swap (tests, plugins). */
export interface AgentDependencies {
  /** Driver type → factory; defaults to the built-in drivers. */
  driverRegistry?: DriverRegistry | undefined;
  /** Registry module that drivers with `isolation: 'process'` load in their child; defaults to the built-in drivers. */
  processDriverRegistry?: DriverRegistryModule | undefined;
}

interface Running {
  /** The configuration running now; a remote configuration replaces it. */
  config: Readonly<AgentConfig>;
  identity: NodeIdentity | null;
  spool: Spool | null;
  uplink: SparkplugUplink | null;
  recorder: TelemetryRecorder | null;
  drivers: DriverHost | null;
  inference: InferenceRuntime | null;
  remote: RemoteOperations | null;
  ota: OtaUpdater | null;
  healthTimer: NodeJS.Timeout | null;
}

/**
 * The edge agent host. Starts its parts in order: identity (enrol when needed) →
 * spool → uplink → drivers → inference → remote operations → OTA → health timer;
 * stops them in reverse.
 * Everything a driver or an algorithm produces goes through the spool, so nothing is
 * lost while the hub is away.
 */
export class Agent {
  readonly #config: AgentConfig;
  /** Parent of every component logger (the CLI's logger). */
  readonly #parentLog: Logger;
  readonly #log: Logger;
  readonly #deps: AgentDependencies;
  /** The agent's recent log records, for remote log tails. */
  readonly #logs = new LogRing();
  #state: AgentState = 'stopped';
  #run: Running | null = null;
  #starting: Promise<void> | null = null;
  #stopping: Promise<void> | null = null;
  #restartReason: string | null = null;
  #onRestart: Array<(reason: string) => void> = [];

  constructor(config: AgentConfig, logger?: Logger, deps: AgentDependencies = {}) {
    this.#config = config;
    this.#parentLog = tapLogger(logger ?? rootLogger, this.#logs);
    this.#log = componentLogger('agent', this.#parentLog);
    this.#deps = deps;
  }

  /**
   * Starts the agent. The signal cancels starting (e.g. an enrolment that keeps
   * retrying); once started, `stop()` ends it. Idempotent; a failed start undoes
   * what it had started and rethrows.
   */
  async start(signal?: AbortSignal): Promise<void> {
    if (this.#stopping) await this.#stopping;
    if (this.#state === 'running') return;
    this.#starting ??= this.#start(signal ?? new AbortController().signal).finally(() => {
      this.#starting = null;
    });
    return this.#starting;
  }

  /** Stops drivers, uplink (NDEATH) and spool, in reverse start order. Idempotent. */
  async stop(): Promise<void> {
    if (this.#starting) await this.#starting.catch(() => undefined);
    this.#stopping ??= this.#stop().finally(() => {
      this.#stopping = null;
    });
    return this.#stopping;
  }

  /**
   * Resolves with the reason when a part (the OTA updater) needs the process to stop and
   * start again: the host then calls `stop()` (spool flushed) and exits with
   * OTA_RESTART_EXIT_CODE so that the supervisor starts the now active slot.
   */
  restartRequested(): Promise<string> {
    const reason = this.#restartReason;
    if (reason !== null) return Promise.resolve(reason);
    return new Promise((resolve) => this.#onRestart.push(resolve));
  }

  #requestRestart(reason: string): void {
    if (this.#restartReason !== null) return;
    this.#restartReason = reason;
    for (const resolve of this.#onRestart.splice(0)) resolve(reason);
  }

  /** The node identity once started. */
  get identity(): NodeIdentity | null {
    return this.#run?.identity ?? null;
  }

  /** Current state for the CLI, the local status page and tests. */
  status(): AgentStatus {
    const run = this.#run;
    const uplink = run?.uplink?.status() ?? null;
    return {
      state: this.#state,
      agentVersion: AGENT_VERSION,
      nodeId: run?.identity?.nodeId ?? null,
      groupId: run?.identity?.groupId ?? null,
      connected: uplink?.connected ?? false,
      hubOnline: uplink?.hubOnline ?? null,
      spool: run?.spool ? run.spool.stats() : null,
      inFlight: uplink?.inFlight ?? 0,
      lastAckAt: uplink?.lastAckAt ?? null,
      rttMs: uplink?.rttMs ?? null,
      uplink,
      drivers: run?.drivers?.status() ?? [],
      appendFailures: run?.recorder?.appendFailures ?? 0,
      inference: run?.inference?.status() ?? null,
      configVersion: run?.remote?.configVersion ?? null,
      ota: run?.ota?.status() ?? null,
    };
  }

  async #start(signal: AbortSignal): Promise<void> {
    this.#state = 'starting';
    const bootedAt = Date.now();
    const local = resolveAgentConfig(this.#config as unknown as AgentConfigInput);
    // A configuration pushed by the hub (persisted in the state dir) replaces the local drivers.
    const { config, version: configVersion } = await startConfig(local, this.#log);
    const run: Running = {
      config,
      identity: null,
      spool: null,
      uplink: null,
      recorder: null,
      drivers: null,
      inference: null,
      remote: null,
      ota: null,
      healthTimer: null,
    };
    this.#run = run;
    try {
      run.identity = await ensureIdentity(
        {
          ...config,
          executionProviders: config.inference.executionProviders,
          hardwareModel: config.ota.hardwareModel,
          backoff: config.uplink.backoff,
          logger: componentLogger('enrollment', this.#parentLog),
        },
        signal,
      );
      signal.throwIfAborted();

      const spool = new Spool({
        dir: join(config.stateDir, 'spool'),
        maxBytes: config.spool.maxBytes,
        policy: config.spool.policy,
        logger: componentLogger('spool', this.#parentLog),
      });
      spool.on('dropped', (count: number, reason: string) =>
        this.#log.warn({ count, reason }, 'spool dropped records'),
      );
      await spool.open();
      run.spool = spool;

      const recorder = new TelemetryRecorder({
        sink: spool,
        metricType: (device, metric) =>
          run.drivers?.metricType(device, metric) ?? run.inference?.metricType(device, metric),
        logger: componentLogger('recorder', this.#parentLog),
      });
      run.recorder = recorder;
      const drivers = this.#driverHost(config, recorder);
      const inference = await this.#createInference(config, run.identity, recorder);

      const uplink = new SparkplugUplink({
        identity: run.identity,
        source: spool,
        stateDir: config.stateDir,
        window: config.uplink.window,
        ackTimeoutMs: config.uplink.ackTimeoutMs,
        backoff: config.uplink.backoff,
        agentVersion: AGENT_VERSION,
        devices: () => birthDevices(run.drivers?.devices() ?? [], run.inference?.devices() ?? []),
        logger: componentLogger('uplink', this.#parentLog),
      });
      run.uplink = uplink;
      await uplink.start(signal);

      run.drivers = drivers;
      await drivers.start(signal);

      if (inference) {
        // Source devices come and go with assignments; births must list the current set.
        inference.on('devices', () => uplink.requestRebirth());
        uplink.on('assignmentsRevision', () => inference.syncNow('ncmd'));
        uplink.on('connected', () => inference.syncNow('connected'));
        try {
          await inference.start(signal);
          run.inference = inference;
        } catch (err) {
          // Telemetry matters more than analytics: the agent runs on without them.
          signal.throwIfAborted();
          this.#log.error(
            { err: errorMessage(err) },
            'inference runtime failed to start; running without it',
          );
        }
      }

      run.remote = await startRemoteOperations({
        run,
        identity: run.identity,
        uplink,
        registry: this.#deps.driverRegistry ?? builtinDrivers,
        logs: this.#logs,
        configVersion,
        replaceDrivers: (next) => this.#replaceDrivers(run, next),
        logger: componentLogger('remote', this.#parentLog),
      });
      run.ota = await startOta({
        config,
        identity: run.identity,
        uplink,
        drivers: () => run.drivers?.status() ?? [],
        bootedAt,
        requestRestart: (reason) => this.#requestRestart(reason),
        logger: componentLogger('ota', this.#parentLog),
      });
      run.healthTimer = this.#startHealth(run, spool, uplink);
      this.#state = 'running';
      this.#log.info({ nodeId: run.identity.nodeId, drivers: config.drivers.length }, 'agent running');
    } catch (err) {
      this.#log.error({ err: errorMessage(err) }, 'agent failed to start');
      await this.#teardown(run);
      this.#state = 'stopped';
      throw err;
    }
  }

  #driverHost(config: Readonly<AgentConfig>, recorder: TelemetryRecorder): DriverHost {
    return new DriverHost({
      drivers: config.drivers,
      registry: this.#deps.driverRegistry ?? builtinDrivers,
      processRegistry: this.#deps.processDriverRegistry,
      statusFile: join(config.stateDir, DRIVER_STATUS_FILE),
      onReadings: (batch) => recorder.recordReadings(batch),
      backoff: { initialMs: Math.max(config.uplink.backoff.initialMs, 1000), maxMs: 60_000 },
      logger: componentLogger('driver-host', this.#parentLog),
      driverLogger: this.#parentLog,
    });
  }

  /** Stops every driver and starts `drivers` instead (remote configuration); births then list the new devices. */
  async #replaceDrivers(run: Running, drivers: readonly DriverConfig[]): Promise<void> {
    const config = resolveAgentConfig({ ...run.config, drivers: structuredClone([...drivers]) });
    const old = run.drivers;
    run.drivers = null;
    await old?.stop();
    await run.recorder?.flush();
    if (!run.recorder || this.#state !== 'running') return;
    const host = this.#driverHost(config, run.recorder);
    run.config = config;
    run.drivers = host;
    await host.start();
    run.uplink?.requestRebirth();
  }

  /** The inference runtime when enabled; loaded lazily so that ONNX Runtime is only loaded on nodes that use it. */
  async #createInference(
    config: Readonly<AgentConfig>,
    identity: NodeIdentity,
    recorder: TelemetryRecorder,
  ): Promise<InferenceRuntime | null> {
    if (!config.inference.enabled) return null;
    const { InferenceRuntime } = await import('./inference/runtime.ts');
    const { enabled: _enabled, ...options } = config.inference;
    return new InferenceRuntime({
      ...options,
      // The enrolled hub, with the node's MQTT credentials as HTTP Basic credentials.
      hub: { hubUrl: identity.hubUrl, nodeId: identity.nodeId, password: identity.mqtt.password },
      stateDir: config.stateDir,
      record: (readings) => recorder.recordReadings(readings),
      logger: componentLogger('inference', this.#parentLog),
    });
  }

  #startHealth(run: Running, spool: Spool, uplink: SparkplugUplink): NodeJS.Timeout {
    const monitor = new HealthMonitor({
      stateDir: run.config.stateDir,
      spoolStats: () => spool.stats(),
      rttMs: () => uplink.status().rttMs,
      logger: componentLogger('health', this.#parentLog),
    });
    let busy = false;
    return setInterval(() => {
      if (busy) return;
      busy = true;
      monitor
        .sample()
        .then((sample) => run.recorder?.recordHealth(sample))
        .catch((err: unknown) => this.#log.warn({ err: errorMessage(err) }, 'health sample failed'))
        .finally(() => {
          busy = false;
        });
    }, run.config.healthIntervalMs);
  }

  async #stop(): Promise<void> {
    const run = this.#run;
    if (!run || this.#state === 'stopped') return;
    this.#state = 'stopping';
    await this.#teardown(run);
    this.#state = 'stopped';
    this.#log.info('agent stopped');
  }

  /** Stops whatever `run` holds, in reverse start order; one part failing does not keep the rest running. */
  async #teardown(run: Running): Promise<void> {
    if (run.healthTimer) clearInterval(run.healthTimer);
    run.healthTimer = null;
    const steps: Array<[string, () => Promise<void>]> = [
      ['ota', async () => run.ota?.stop()],
      ['remote operations', async () => run.remote?.stop()],
      ['inference', async () => run.inference?.stop()],
      ['drivers', async () => run.drivers?.stop()],
      ['recorder', async () => run.recorder?.flush()],
      ['uplink', async () => run.uplink?.stop()],
      ['spool', async () => run.spool?.close()],
    ];
    for (const [part, step] of steps) {
      try {
        await step();
      } catch (err) {
        this.#log.error({ part, err: errorMessage(err) }, 'failed to stop cleanly');
      }
    }
  }
}

/** Driver devices, then the inference runtime's source devices whose ids no driver already uses. */
function birthDevices(drivers: DeviceDescriptor[], sources: DeviceDescriptor[]): DeviceDescriptor[] {
  const taken = new Set(drivers.map((d) => d.id));
  return [...drivers, ...sources.filter((d) => !taken.has(d.id))];
}
