/**
 * A simulated GB/T 28181 device: an IPC with one channel or an NVR with several. The SIP
 * side is the runtime `Gb28181Device` (REGISTER with digest and refresh, keepalives,
 * Catalog / DeviceInfo / DeviceStatus answers, alarms, catalog and alarm subscriptions, live INVITE);
 * the simulator adds a fixed channel list whose status tests can flip, a test-pattern
 * stream for live INVITEs, and switches to go offline or vanish so that tests exercise the
 * platform's offline detection.
 */
import { EventEmitter } from 'node:events';
import {
  type DeviceAlarm,
  deviceOptionProblems,
  Gb28181Device,
  type Gb28181DeviceEvents,
  type Gb28181DeviceOptions,
  type Gb28181DeviceStats,
  type Gb28181ServerOptions,
  type GbLiveSession,
} from '@citysense/device-drivers';
import {
  type CatalogItem,
  type CatalogStatus,
  CitysenseError,
  componentLogger,
  type Logger,
} from '@citysense/protocol';
import { GB_CAMERA_CONFIG, GB_CAMERA_NOT_REGISTERED, GB_CHANNEL_UNKNOWN } from './errors.ts';
import { TestPatternMedia } from './live-video.ts';

export type { Gb28181ServerOptions } from '@citysense/device-drivers';

/** One video channel (for an IPC usually one, for an NVR one per camera). */
export interface Gb28181Channel {
  /** 20-digit channel ID (type 131/132). */
  id: string;
  /** Shown in the platform's catalog; Chinese names are normal (`人民路与解放路交叉口东北角`). */
  name: string;
  /** WGS84 degrees. */
  longitude?: number | undefined;
  latitude?: number | undefined;
  address?: string | undefined;
  /** Default 'ON'. */
  status?: CatalogStatus | undefined;
}

/** Options of a simulated camera. */
export interface Gb28181CameraOptions {
  /** 20-digit device ID (IPC 132, NVR 118, …); also the digest username. */
  deviceId: string;
  password: string;
  server: Gb28181ServerOptions;
  /** Where the camera's SIP endpoint binds; default 127.0.0.1 and a free port. */
  local?: { host?: string | undefined; port?: number | undefined } | undefined;
  /** Requested registration lifetime, s (default 3600). */
  expires?: number | undefined;
  /** Keepalive period, ms (default 60 000). */
  keepaliveIntervalMs?: number | undefined;
  /** Default one channel whose ID is the device ID, like a simple IPC. */
  channels?: Gb28181Channel[] | undefined;
  /** Catalog items per Response message (default 2, so that paging is exercised). */
  catalogPageSize?: number | undefined;
  /** Charset of MANSCDP bodies (default GB2312, what field devices send). */
  charset?: 'GB2312' | 'UTF-8' | undefined;
  /** DeviceName in DeviceInfo (default 'citysense GB28181 camera'). */
  name?: string | undefined;
  manufacturer?: string | undefined;
  model?: string | undefined;
  firmware?: string | undefined;
  /** Test pattern streamed for a live INVITE. */
  media?:
    | {
        width?: number | undefined;
        height?: number | undefined;
        frameRate?: number | undefined;
        ffmpegPath?: string | undefined;
      }
    | undefined;
  /** Wait before registering again after a failed refresh, ms (default 10 000; doubles per failure). */
  retryMs?: number | undefined;
  /** SIP timer T1, ms (default 500). */
  t1Ms?: number | undefined;
  logger?: Logger | undefined;
}

/** Counters of a camera since start. */
export type Gb28181CameraStats = Gb28181DeviceStats;

/** Events of a camera: those of the device it runs. */
export type Gb28181CameraEvents = Gb28181DeviceEvents;

type ChannelState = Gb28181Channel & { status: CatalogStatus };

/** A simulated GB/T 28181 IPC or NVR. Constructor assigns only; `start()` registers. */
export class Gb28181Camera extends EventEmitter<Gb28181CameraEvents> {
  readonly #o: Gb28181CameraOptions;
  readonly #log: Logger;
  readonly #channels: Map<string, ChannelState>;
  readonly #device: Gb28181Device;
  #online = true;
  #vanished = false;

  constructor(options: Gb28181CameraOptions) {
    super();
    this.#o = options;
    this.#log = componentLogger('gb28181-camera', options.logger).child({ deviceId: options.deviceId });
    const channels = options.channels ?? [{ id: options.deviceId, name: options.name ?? 'IPC' }];
    this.#channels = new Map(channels.map((c) => [c.id, { ...c, status: c.status ?? 'ON' }]));
    this.#device = new Gb28181Device(this.#deviceOptions(() => this.#items()));
    const device = this.#device;
    device.on('registered', (expires) => this.emit('registered', expires));
    device.on('registrationFailed', (err) => this.emit('registrationFailed', err));
    device.on('keepalive', (sn) => this.emit('keepalive', sn));
    device.on('query', (query) => this.emit('query', query));
    device.on('sessionStarted', (session) => this.emit('sessionStarted', session));
    device.on('sessionEnded', (session, reason) => this.emit('sessionEnded', session, reason));
  }

  #deviceOptions(channels: Gb28181DeviceOptions['channels']): Gb28181DeviceOptions {
    const o = this.#o;
    return {
      deviceId: o.deviceId,
      password: o.password,
      server: o.server,
      local: o.local,
      channels,
      live: new TestPatternMedia(o.media ?? {}, this.#log),
      identity: {
        name: o.name ?? 'citysense GB28181 camera',
        manufacturer: o.manufacturer ?? 'citysense',
        model: o.model ?? 'GB28181-SIM',
        firmware: o.firmware ?? '1.0.0',
      },
      userAgent: `citysense-gb28181-camera/${o.firmware ?? '1.0'}`,
      expires: o.expires,
      keepaliveIntervalMs: o.keepaliveIntervalMs,
      catalogPageSize: o.catalogPageSize,
      charset: o.charset,
      retryMs: o.retryMs,
      t1Ms: o.t1Ms,
      logger: o.logger,
    };
  }

  /** The device ID. */
  get deviceId(): string {
    return this.#o.deviceId;
  }

  /** The port the camera's SIP endpoint listens on (after start). */
  get sipPort(): number {
    return this.#device.sipPort;
  }

  /** True while the last REGISTER is accepted and not expired. */
  get registered(): boolean {
    return this.#device.registered;
  }

  /** Counters since start. */
  stats(): Gb28181CameraStats {
    return this.#device.stats();
  }

  /** Live sessions now (answered or streaming). */
  liveSessions(): GbLiveSession[] {
    return this.#device.liveSessions();
  }

  /** The channels with their current status. */
  channels(): Gb28181Channel[] {
    return [...this.#channels.values()].map((c) => ({ ...c }));
  }

  /**
   * Binds the SIP endpoint and registers; resolves once the platform answered 200. Rejects
   * CS_ERR_GB_CAMERA_CONFIG (bad options), CS_ERR_GB_REGISTER_FORBIDDEN (403),
   * CS_ERR_GB_REGISTER_UNAUTHORIZED (password refused), CS_ERR_GB_REGISTER_REJECTED (other
   * status), CS_ERR_SIP_TIMEOUT (no answer). Idempotent.
   */
  async start(signal?: AbortSignal): Promise<void> {
    const staticItems = [...this.#channels.values()].map((c) => this.#catalogItem(c));
    const problems = deviceOptionProblems(this.#deviceOptions(staticItems));
    if (problems.length > 0)
      throw new CitysenseError(
        GB_CAMERA_CONFIG,
        `invalid GB/T 28181 camera options: ${problems.join('; ')}`,
        400,
        {
          problems,
        },
      );
    this.#vanished = false;
    this.#online = true;
    await this.#device.start(signal);
  }

  /** Hangs up live sessions, unregisters (`Expires: 0`) and frees the port. Idempotent. */
  async stop(): Promise<void> {
    await this.#device.stop();
  }

  /** Stops (false) or resumes (true) keepalives, so the platform sees the device go offline. */
  setOnline(online: boolean): void {
    if (this.#online === online) return;
    this.#online = online;
    this.#device.setKeepalivesEnabled(online);
  }

  /**
   * The camera vanishes (power cut, cable pulled): timers and streams stop and every request
   * goes unanswered, without a BYE or an unregister. `stop()` then just frees the port.
   */
  vanish(): void {
    this.#vanished = true;
    this.#device.abandon();
  }

  /**
   * Raises an alarm (§9.4 MESSAGE, or NOTIFY in the platform's alarm subscription, §9.11.1)
   * and resolves with its SN once the platform accepted it.
   */
  async raiseAlarm(alarm: DeviceAlarm): Promise<number> {
    if (alarm.channelId !== undefined && alarm.channelId !== this.#o.deviceId) this.#channel(alarm.channelId);
    if (this.#device.sipPort === 0 || this.#vanished)
      throw new CitysenseError(
        GB_CAMERA_NOT_REGISTERED,
        'the camera is not started; call start() first',
        409,
      );
    return this.#device.raiseAlarm(alarm);
  }

  /**
   * Changes a channel's status; every live Catalog subscription gets a NOTIFY with the
   * change (§9.11.2). Resolves once the platform answered the NOTIFYs.
   */
  async setChannelStatus(channelId: string, status: CatalogStatus): Promise<void> {
    const channel = this.#channel(channelId);
    if (channel.status === status) return;
    channel.status = status;
    await this.#device.notifyCatalog([{ ...this.#catalogItem(channel), event: status }]);
  }

  #channel(id: string): ChannelState {
    const channel = this.#channels.get(id);
    if (!channel) throw new CitysenseError(GB_CHANNEL_UNKNOWN, `the camera has no channel ${id}`, 404);
    return channel;
  }

  #items(): CatalogItem[] {
    return [...this.#channels.values()].map((c) => this.#catalogItem(c));
  }

  #catalogItem(channel: Gb28181Channel): CatalogItem {
    const item: CatalogItem = {
      deviceId: channel.id,
      name: channel.name,
      manufacturer: this.#o.manufacturer ?? 'citysense',
      model: this.#o.model ?? 'GB28181-SIM',
      civilCode: this.#o.deviceId.slice(0, 6),
      parental: '0',
      parentId: this.#o.deviceId,
      registerWay: '1',
      secrecy: '0',
      status: channel.status ?? 'ON',
    };
    if (channel.address !== undefined) item.address = channel.address;
    if (channel.longitude !== undefined) item.longitude = channel.longitude;
    if (channel.latitude !== undefined) item.latitude = channel.latitude;
    return item;
  }
}
