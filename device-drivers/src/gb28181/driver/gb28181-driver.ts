/**
 * GB/T 28181 hosted by the edge agent, for the cameras on its pole: the driver runs a Gb28181Platform
 * (SIP server) that only the configured cameras may register with, and turns what the platform sees
 * into Sparkplug readings: each camera is one device with `Video/Online`, `Video/Registered`,
 * `Video/Channels` (from its Catalog answer) and its alarms (GB/T 28181-2016 §9.4) as encoded
 * EdgeAlerts under EDGE_ALERT_METRIC, so the hub files them in `edge_alerts`.
 *
 * With `upstream` set, a Gb28181Cascade registers the gateway with a higher platform (the hub or a
 * city platform) as a lower-level platform, answers its Catalog with the pole's cameras and forwards
 * its live INVITEs to them, so video flows from the camera straight to the higher platform.
 */
import {
  type AlarmNotify,
  type CatalogItem,
  CitysenseError,
  componentLogger,
  EDGE_ALERT_METRIC,
  encodeEdgeAlert,
  errorMessage,
  type Logger,
} from '@citysense/protocol';
import type {
  DeviceDescriptor,
  Driver,
  DriverCapabilities,
  MetricDescriptor,
  Reading,
} from '../../driver.ts';
import { driverAbortedError, throwIfStartAborted } from '../../lifecycle.ts';
import { DriverEmitter } from '../../typed-emitter.ts';
import { Gb28181Cascade } from '../cascade/cascade.ts';
import { type DeviceStatusChange, Gb28181Platform, type RefusedRequest } from '../platform/platform.ts';
import { SipEndpoint } from '../sip/endpoint.ts';
import { gbAlarmToEdgeAlert } from './alarm.ts';
import { type Gb28181CameraConfig, type Gb28181DriverConfig, resolveGb28181DriverConfig } from './config.ts';

/** Metric names of a camera on the pole. */
export const GB28181_METRICS = {
  /** Keepalives arrive in time (GB/T 28181-2016 §9.6). */
  online: 'Video/Online',
  /** The camera holds a registration with the pole (§9.1.2). */
  registered: 'Video/Registered',
  /** Channels in the camera's last Catalog answer (§9.5.2): 1 for a plain IPC. */
  channels: 'Video/Channels',
  /** A device alarm: an encoded EdgeAlert (kind `device-alarm`); the hub recognises this exact name. */
  alarm: EDGE_ALERT_METRIC,
} as const;

/** Stable error codes of the GB/T 28181 driver, on faults that have no code of their own. */
export const GB28181_DRIVER_ERRORS = {
  /** A camera's Catalog could not be read. */
  catalog: 'CS_ERR_GB_CATALOG',
  /** An alarm names a device or channel that is not on this pole. */
  alarmUnrouted: 'CS_ERR_GB_ALARM_UNROUTED',
  /** Registration with the higher platform failed; it is retried with back-off. */
  upstream: 'CS_ERR_GB_UPSTREAM',
} as const;

const CAMERA_METRICS: readonly MetricDescriptor[] = [
  { name: GB28181_METRICS.online, type: 'bool' },
  { name: GB28181_METRICS.registered, type: 'bool' },
  { name: GB28181_METRICS.channels, type: 'int' },
  { name: GB28181_METRICS.alarm, type: 'bytes' },
];

/** The same fault (device and code) is reported at most once per this period; the platform logs every one. */
const FAULT_REPEAT_MS = 60_000;

/** How to build a GB/T 28181 driver. */
export interface Gb28181DriverInit {
  /** Driver instance id; default `gb28181`. */
  id?: string;
  /** Options, validated by `start` against Gb28181DriverConfig (CS_ERR_CONFIG_INVALID). */
  config?: unknown;
  /** Parent logger; default the root logger. */
  logger?: Logger;
}

/** What the driver keeps about one camera; survives stop/start so series keep increasing. */
interface CameraState {
  config: Readonly<Gb28181CameraConfig>;
  /** Channel IDs of the last Catalog answer (and the NOTIFYs since); undefined until one arrived. */
  channels: Set<string> | undefined;
  /** Time of the last reading, so that every series strictly increases. */
  lastTime: number;
}

/** What exists between start and stop. */
interface Running {
  platform: Gb28181Platform;
  cascade: Gb28181Cascade | undefined;
  detach: () => void;
  /** Readings flow once start resolved, so a host knows the devices before their first values. */
  live: boolean;
  timer: NodeJS.Timeout | undefined;
  first: NodeJS.Immediate | undefined;
}

/** The cameras on a pole over GB/T 28181; one device per admitted camera. Constructor assigns only. */
export class Gb28181Driver extends DriverEmitter implements Driver {
  /** Driver instance id. */
  readonly id: string;
  /** Telemetry only: PTZ and playback are left to the higher platform. */
  readonly capabilities: DriverCapabilities = { telemetry: true, commands: false };
  readonly #input: unknown;
  #config: Readonly<Gb28181DriverConfig> | undefined;
  readonly #cameras = new Map<string, CameraState>();
  /** When each (device, code) fault was last reported, ms. */
  readonly #faultAt = new Map<string, number>();
  #run: Running | undefined;
  #starting: Promise<void> | undefined;
  #stopping: Promise<void> | undefined;

  constructor(init: Gb28181DriverInit = {}) {
    const id = init.id ?? 'gb28181';
    super(componentLogger('gb28181-driver', init.logger).child({ driver: id }));
    this.id = id;
    this.#input = init.config ?? {};
  }

  /** One device per configured camera; empty before the first `start`. */
  devices(): DeviceDescriptor[] {
    return [...this.#cameras.values()].map((c) => ({
      id: c.config.id,
      kind: 'camera',
      metrics: CAMERA_METRICS.map((m) => ({ ...m })),
    }));
  }

  /** The port the cameras register on; 0 while stopped. */
  get sipPort(): number {
    return this.#run?.platform.port ?? 0;
  }

  /** True while the higher platform holds the gateway's registration (always false without `upstream`). */
  get upstreamRegistered(): boolean {
    return this.#run?.cascade?.registered ?? false;
  }

  /**
   * Validates the options (CS_ERR_CONFIG_INVALID), binds the SIP server (CS_ERR_SIP_BIND) and, with
   * `upstream`, starts registering upward (failures are faults, retried). The first readings follow at
   * once. Idempotent.
   */
  start(signal?: AbortSignal): Promise<void> {
    if (signal?.aborted) return Promise.reject(driverAbortedError(this.id, signal));
    this.#starting ??= this.#start(signal).finally(() => {
      this.#starting = undefined;
    });
    return this.#starting;
  }

  async #start(signal: AbortSignal | undefined): Promise<void> {
    if (this.#stopping) await this.#stopping;
    if (this.#run) return;
    throwIfStartAborted(this.id, signal);
    const config = this.#resolve();
    const { sip } = config;
    const platform = new Gb28181Platform({
      endpoint: new SipEndpoint({
        host: sip.host,
        port: sip.port,
        publicAddress: sip.publicAddress,
        userAgent: 'citysense-gb28181-gateway',
        logger: this.log,
      }),
      serverId: sip.id,
      domain: sip.domain,
      passwordOf: (deviceId) => (this.#cameras.has(deviceId) ? sip.password : undefined),
      keepaliveIntervalMs: sip.keepaliveIntervalS * 1000,
      keepaliveMissed: sip.keepaliveMissed,
      logger: this.log,
    });
    const run: Running = {
      platform,
      cascade: undefined,
      detach: () => undefined,
      live: false,
      timer: undefined,
      first: undefined,
    };
    this.#run = run;
    try {
      run.detach = this.#watch(run);
      await platform.start();
      if (signal?.aborted) throw driverAbortedError(this.id, signal);
      if (config.upstream) {
        const up = config.upstream;
        const cascade = new Gb28181Cascade({
          platform,
          upstream: {
            serverId: up.serverId,
            domain: up.domain,
            host: up.host,
            port: up.port,
            transport: up.transport,
            password: up.password,
          },
          localId: up.localId,
          name: up.name ?? `citysense ${this.id}`,
          keepaliveIntervalMs: sip.keepaliveIntervalS * 1000,
          local: { host: sip.host, publicAddress: sip.publicAddress },
          logger: this.log,
        });
        cascade.on('registrationFailed', (err) => this.#upstreamFailed(run, err));
        run.cascade = cascade;
        await cascade.start(signal);
      }
    } catch (err) {
      await this.#teardown(run);
      throw err;
    }
    run.live = true;
    // The first batch goes out right after start resolves: the host knows the devices by then.
    run.first = setImmediate(() => this.#emitStatus(run, [...this.#cameras.values()], true));
    run.timer = setInterval(
      () => this.#emitStatus(run, [...this.#cameras.values()], false),
      config.statusIntervalMs,
    );
    this.log.info(
      { port: platform.port, cameras: [...this.#cameras.keys()], upstream: config.upstream?.host },
      'GB/T 28181 pole driver started',
    );
  }

  /** Stops the cascade and the SIP server; no event is emitted once this resolves. Idempotent. */
  stop(): Promise<void> {
    this.#stopping ??= this.#stop().finally(() => {
      this.#stopping = undefined;
    });
    return this.#stopping;
  }

  async #stop(): Promise<void> {
    await this.#starting?.catch(() => undefined);
    const run = this.#run;
    if (!run) return;
    await this.#teardown(run);
    this.log.info('GB/T 28181 pole driver stopped');
  }

  async #teardown(run: Running): Promise<void> {
    if (this.#run === run) this.#run = undefined;
    run.live = false;
    if (run.timer) clearInterval(run.timer);
    if (run.first) clearImmediate(run.first);
    run.detach();
    await run.cascade?.stop();
    await run.platform.stop();
  }

  /** The options, resolved once; the cameras' state is kept from then on. */
  #resolve(): Readonly<Gb28181DriverConfig> {
    if (this.#config) return this.#config;
    const config = resolveGb28181DriverConfig(this.#input);
    for (const camera of config.cameras)
      this.#cameras.set(camera.id, {
        config: camera,
        channels: undefined,
        lastTime: Number.NEGATIVE_INFINITY,
      });
    this.#config = config;
    return config;
  }

  /** Follows the platform; returns what undoes it. */
  #watch(run: Running): () => void {
    const { platform } = run;
    const onStatus = (change: DeviceStatusChange): void => {
      const camera = this.#cameras.get(change.deviceId);
      if (!camera) return;
      // A camera that (re)appears may have changed its channels: read its catalog again.
      if (change.online) this.#readCatalog(run, camera);
      this.#emitStatus(run, [camera], false);
    };
    const onCatalog = (deviceId: string, items: CatalogItem[]): void => {
      const camera = this.#cameras.get(deviceId);
      if (camera) this.#onCatalog(run, camera, items);
    };
    const onAlarm = (alarm: AlarmNotify, receivedAt: number): void => this.#onAlarm(run, alarm, receivedAt);
    const onRefused = (refused: RefusedRequest): void => {
      if (refused.method === 'REGISTER') this.#registerRefused(run, refused);
    };
    platform.on('status', onStatus);
    platform.on('catalog', onCatalog);
    platform.on('alarm', onAlarm);
    platform.on('refused', onRefused);
    return () => {
      platform.off('status', onStatus);
      platform.off('catalog', onCatalog);
      platform.off('alarm', onAlarm);
      platform.off('refused', onRefused);
    };
  }

  /** Asks a camera for its catalog; the answer arrives as the platform's `catalog` event. */
  #readCatalog(run: Running, camera: CameraState): void {
    const id = camera.config.id;
    run.platform.queryCatalog(id).catch((err: unknown) => {
      if (this.#run !== run) return;
      const code = err instanceof CitysenseError ? err.code : GB28181_DRIVER_ERRORS.catalog;
      this.#fault(run, id, code, `catalog of camera ${id} could not be read: ${errorMessage(err)}`);
    });
  }

  /**
   * Channels a camera reported: a query answer (no item has `event`) replaces them, a subscription
   * NOTIFY (§9.11.2) adds (ADD) or removes (DEL) the items it names.
   */
  #onCatalog(run: Running, camera: CameraState, items: readonly CatalogItem[]): void {
    const incremental = items.some((i) => i.event !== undefined);
    const channels = incremental ? new Set(camera.channels) : new Set<string>();
    for (const item of items) {
      if (item.event === 'DEL') channels.delete(item.deviceId);
      else channels.add(item.deviceId);
    }
    camera.channels = channels;
    this.#emit(run, [this.#reading(camera, GB28181_METRICS.channels, channels.size, this.#stamp(camera))]);
  }

  /** Online and Registered of `cameras` as the platform sees them now (and Channels when `withChannels`). */
  #emitStatus(run: Running, cameras: readonly CameraState[], withChannels: boolean): void {
    if (!run.live || this.#run !== run) return;
    const batch: Reading[] = [];
    for (const camera of cameras) {
      const session = run.platform.session(camera.config.id);
      const time = this.#stamp(camera);
      batch.push(
        this.#reading(camera, GB28181_METRICS.online, session?.online ?? false, time),
        this.#reading(camera, GB28181_METRICS.registered, session !== undefined, time),
      );
      if (withChannels && camera.channels)
        batch.push(this.#reading(camera, GB28181_METRICS.channels, camera.channels.size, time));
    }
    this.#emit(run, batch);
  }

  /** A device alarm as an EdgeAlert reading of the camera that has the alarming device or channel. */
  #onAlarm(run: Running, alarm: AlarmNotify, receivedAt: number): void {
    const camera = this.#cameraOf(alarm.deviceId);
    if (!camera) {
      this.#fault(
        run,
        undefined,
        GB28181_DRIVER_ERRORS.alarmUnrouted,
        `alarm from ${alarm.deviceId}, which is neither a camera on this pole nor one of their catalog channels; dropped`,
      );
      return;
    }
    const time = this.#stamp(camera, receivedAt);
    const alert = gbAlarmToEdgeAlert(alarm, camera.config.id, time);
    this.log.info(
      { camera: camera.config.id, channel: alarm.deviceId, severity: alert.severity, message: alert.message },
      'device alarm',
    );
    this.#emit(run, [this.#reading(camera, GB28181_METRICS.alarm, encodeEdgeAlert(alert), time)]);
  }

  /** The camera that is `deviceId` or has it as a channel. */
  #cameraOf(deviceId: string): CameraState | undefined {
    const direct = this.#cameras.get(deviceId);
    if (direct) return direct;
    for (const camera of this.#cameras.values()) if (camera.channels?.has(deviceId)) return camera;
    return undefined;
  }

  #registerRefused(run: Running, refused: RefusedRequest): void {
    const id = refused.deviceId;
    const admitted = id !== undefined && this.#cameras.has(id);
    const hint = admitted ? '' : '; add it to the cameras option to admit it on this pole';
    this.#fault(
      run,
      admitted ? id : undefined,
      refused.code,
      `camera ${id ?? '(no ID)'} at ${refused.peer} refused at REGISTER (${refused.status}): ${refused.reason}${hint}`,
      id,
    );
  }

  #upstreamFailed(run: Running, err: Error): void {
    const up = this.#config?.upstream;
    const code = err instanceof CitysenseError ? err.code : GB28181_DRIVER_ERRORS.upstream;
    this.#fault(
      run,
      undefined,
      code,
      `registration with the higher platform ${up?.host}:${up?.port} failed: ${errorMessage(err)}; retrying`,
    );
  }

  /** Emits a fault unless the same one went out within FAULT_REPEAT_MS. `subject` tells apart undeclared senders. */
  #fault(run: Running, device: string | undefined, code: string, message: string, subject = device): void {
    if (this.#run !== run) return;
    const key = `${subject ?? ''}|${code}`;
    const now = Date.now();
    const last = this.#faultAt.get(key);
    if (last !== undefined && now - last < FAULT_REPEAT_MS) return;
    this.#faultAt.set(key, now);
    this.log.warn({ device: subject, code }, message);
    this.emit('fault', { device, code, message });
  }

  #emit(run: Running, batch: Reading[]): void {
    if (batch.length > 0 && run.live && this.#run === run) this.emit('readings', batch);
  }

  #reading(camera: CameraState, metric: string, value: Reading['value'], time: number): Reading {
    return { device: camera.config.id, metric, time, value, quality: 'good' };
  }

  /** A reading time after every earlier one of the camera, even if the clock stalls or steps back. */
  #stamp(camera: CameraState, time = Date.now()): number {
    camera.lastTime = Math.max(Math.floor(time), camera.lastTime + 1);
    return camera.lastTime;
  }
}
