import { join } from 'node:path';
import type { DeviceDescriptor } from '@citysense/device-drivers';
import { componentLogger, errorMessage, type Logger, rootLogger } from '@citysense/protocol';
import { type AgentConfig, type AgentConfigInput, resolveAgentConfig } from './config.ts';
import { DriverHost, type DriverRegistry, type DriverStatus } from './driver-host.ts';
import { builtinDrivers } from './drivers.ts';
import { ensureIdentity } from './enrollment.ts';
import { HealthMonitor } from './health.ts';
import type { NodeIdentity } from './identity-store.ts';
import type { InferenceRuntime, InferenceRuntimeStatus } from './inference/runtime.ts';
import { TelemetryRecorder } from './recorder.ts';
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
}

/** Things a host may swap (tests, plugins). */
export interface AgentDependencies {
  /** Driver type → factory; defaults to the built-in drivers. */
  driverRegistry?: DriverRegistry | undefined;
}

interface Running {
  config: Readonly<AgentConfig>;
  identity: NodeIdentity | null;
  spool: Spool | null;
  uplink: SparkplugUplink | null;
  recorder: TelemetryRecorder | null;
  drivers: DriverHost | null;
  inference: InferenceRuntime | null;
  healthTimer: NodeJS.Timeout | null;
}

/**
 * The edge agent host. Starts its parts in order: identity (enrol when needed) →
 * spool → uplink → drivers → inference → health timer; stops them in reverse.
 * Everything a driver or an algorithm produces goes through the spool, so nothing is
 * lost while the hub is away.
 */
export class Agent {
  readonly #config: AgentConfig;
  /** Parent of every component logger (the CLI's logger). */
  readonly #parentLog: Logger;
  readonly #log: Logger;
  readonly #deps: AgentDependencies;
  #state: AgentState = 'stopped';
  #run: Running | null = null;
  #starting: Promise<void> | null = null;
  #stopping: Promise<void> | null = null;

  constructor(config: AgentConfig, logger?: Logger, deps: AgentDependencies = {}) {
    this.#config = config;
    this.#parentLog = logger ?? rootLogger;
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
    };
  }

  async #start(signal: AbortSignal): Promise<void> {
    this.#state = 'starting';
    const config = resolveAgentConfig(this.#config as unknown as AgentConfigInput);
    const run: Running = {
      config,
      identity: null,
      spool: null,
      uplink: null,
      recorder: null,
      drivers: null,
      inference: null,
      healthTimer: null,
    };
    this.#run = run;
    try {
      run.identity = await ensureIdentity(
        {
          ...config,
          executionProviders: config.inference.executionProviders,
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

      const drivers = new DriverHost({
        drivers: config.drivers,
        registry: this.#deps.driverRegistry ?? builtinDrivers,
        onReadings: (batch) => recorder.recordReadings(batch),
        backoff: { initialMs: Math.max(config.uplink.backoff.initialMs, 1000), maxMs: 60_000 },
        logger: componentLogger('driver-host', this.#parentLog),
        driverLogger: this.#parentLog,
      });
      const recorder = new TelemetryRecorder({
        sink: spool,
        metricType: (device, metric) =>
          drivers.metricType(device, metric) ?? run.inference?.metricType(device, metric),
        logger: componentLogger('recorder', this.#parentLog),
      });
      run.recorder = recorder;
      const inference = await this.#createInference(config, run.identity, recorder);

      const uplink = new SparkplugUplink({
        identity: run.identity,
        source: spool,
        stateDir: config.stateDir,
        window: config.uplink.window,
        ackTimeoutMs: config.uplink.ackTimeoutMs,
        backoff: config.uplink.backoff,
        agentVersion: AGENT_VERSION,
        devices: () => birthDevices(drivers.devices(), run.inference?.devices() ?? []),
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
