/**
 * The hub's GB/T 28181 access: runs the SIP platform for cameras and NVRs that connect
 * to the city directly, admits devices by the sensor ledger, else by the video list (or
 * auto-accepts: `sip.autoAccept` admits any device the ledger has no entry for, never one
 * it refuses while `ledger.enforce` is on), and
 * keeps registrations, channels, status history and alarms in the database. After a
 * device registers it is asked for DeviceInfo and Catalog.
 */
import { Gb28181Platform, MediaRelayServer, SipEndpoint } from '@citysense/device-drivers';
import { CitysenseError, componentLogger, errorMessage, isGbId, type Logger } from '@citysense/protocol';
import { advertisedAddress } from './advertised-address.ts';
import { LiveVideo } from './live-video.ts';
import type { VideoStore } from './video-store.ts';

/** The code a camera refused by its ledger state gets in the 403's Warning and in the counters. */
const LEDGER_NOT_ACTIVE = 'CS_ERR_LEDGER_NOT_ACTIVE';

/** SIP settings of the hub (the `sip` section of its config). */
export interface VideoSipConfig {
  enabled: boolean;
  id: string;
  domain?: string | undefined;
  host: string;
  port: number;
  /** Address written into Via/Contact and SDP, as devices reach the hub; default the bind host. */
  publicAddress?: string | undefined;
  password: string;
  autoAccept: boolean;
  keepaliveIntervalS: number;
  keepaliveMissed: number;
  queryOnRegister: boolean;
}

/** Media settings of the hub (the `media` section of its config). */
export interface VideoMediaConfig {
  enabled: boolean;
  host: string;
  rtmpPort: number;
  httpPort: number;
  publishSecret?: string | undefined;
  rtpHost: string;
  liveIdleTimeoutS: number;
}

/** The sensor ledger's say on GB/T 28181 devices (admission/ledger-admission.ts). */
export interface VideoLedgerAdmission {
  /** `admit` / `refuse` when the ledger decides, undefined when it has no say (no entry, enforcement off). */
  videoVerdict(deviceId: string): 'admit' | 'refuse' | undefined;
  /** Records a REGISTER refused because the ledger refuses the device. */
  videoRefused(deviceId: string, source: string): void;
}

/** Options of the service. */
export interface VideoServiceOptions {
  store: VideoStore;
  sip: VideoSipConfig;
  media: VideoMediaConfig;
  /**
   * The ledger's word, checked first: a device whose ledger entry refuses is refused even
   * when listed or auto-accepted; one whose entry admits registers even when not listed;
   * without an entry the list (`POST /v1/video/devices`) or `sip.autoAccept` decide as before.
   */
  ledger?: VideoLedgerAdmission | undefined;
  logger?: Logger | undefined;
}

/** GB/T 28181 device access backed by the database. */
export class VideoService {
  readonly #o: VideoServiceOptions;
  readonly #log: Logger;
  readonly #store: VideoStore;
  #platform: Gb28181Platform | undefined;
  #relay: MediaRelayServer | undefined;
  #live: LiveVideo | undefined;
  readonly #admitted = new Set<string>();
  readonly #pendingKeepalives = new Map<string, number>();
  #writes: Promise<void> = Promise.resolve();
  #flush: NodeJS.Timeout | undefined;
  #writeErrors = 0;

  constructor(o: VideoServiceOptions) {
    this.#o = o;
    this.#store = o.store;
    this.#log = componentLogger('video', o.logger);
  }

  /** The running platform; throws CS_ERR_VIDEO_DISABLED when SIP is off. */
  get platform(): Gb28181Platform {
    if (!this.#platform)
      throw new CitysenseError(
        'CS_ERR_VIDEO_DISABLED',
        'GB/T 28181 access is disabled on this hub (sip.enabled)',
        409,
      );
    return this.#platform;
  }

  /** The RTMP / HTTP-FLV relay; throws CS_ERR_VIDEO_MEDIA_DISABLED when media is off. */
  get relay(): MediaRelayServer {
    if (!this.#relay)
      throw new CitysenseError(
        'CS_ERR_VIDEO_MEDIA_DISABLED',
        'the media relay is disabled on this hub (media.enabled)',
        409,
      );
    return this.#relay;
  }

  /** Live GB/T 28181 sessions; needs both SIP and media. */
  get live(): LiveVideo {
    if (!this.#live)
      throw new CitysenseError(
        'CS_ERR_VIDEO_MEDIA_DISABLED',
        'live video needs sip.enabled and media.enabled on this hub',
        409,
      );
    return this.#live;
  }

  /** True when the SIP platform runs. */
  get enabled(): boolean {
    return this.#platform !== undefined;
  }

  /** Database write failures since start (logged each time). */
  get writeErrors(): number {
    return this.#writeErrors;
  }

  /** Starts the media relay, loads admissions and stored registrations, then serves SIP. Idempotent. */
  async start(): Promise<void> {
    const m = this.#o.media;
    if (m.enabled && !this.#relay) {
      const relay = new MediaRelayServer({
        host: m.host,
        rtmpPort: m.rtmpPort,
        httpPort: m.httpPort,
        publishSecret: m.publishSecret,
        logger: this.#log,
      });
      await relay.start();
      this.#relay = relay;
    }
    const c = this.#o.sip;
    if (!c.enabled || this.#platform) return;
    const advertised = advertisedAddress(c.host, c.publicAddress);
    for (const id of await this.#store.admittedIds()) this.#admitted.add(id);
    const platform = new Gb28181Platform({
      endpoint: new SipEndpoint({
        host: c.host,
        port: c.port,
        publicAddress: advertised,
        userAgent: 'citysense-hub',
        logger: this.#log,
      }),
      serverId: c.id,
      domain: c.domain,
      passwordOf: (id) => {
        const ledger = this.#o.ledger?.videoVerdict(id);
        if (ledger === 'refuse')
          return {
            code: LEDGER_NOT_ACTIVE,
            reason: 'the ledger entry of this device is not approved, installed or active',
          };
        return ledger === 'admit' || c.autoAccept || this.#admitted.has(id) ? c.password : undefined;
      },
      keepaliveIntervalMs: c.keepaliveIntervalS * 1000,
      keepaliveMissed: c.keepaliveMissed,
      logger: this.#log,
    });
    await this.#restore(platform);
    this.#wire(platform);
    await platform.start();
    this.#platform = platform;
    if (this.#relay)
      this.#live = new LiveVideo({
        platform,
        relay: this.#relay,
        deviceOfChannel: (channelId) => this.#store.deviceOfChannel(channelId),
        rtpHost: m.rtpHost,
        rtpAddress: advertised,
        idleTimeoutMs: m.liveIdleTimeoutS * 1000,
        logger: this.#log,
      });
    this.#flush = setInterval(() => this.#flushKeepalives(), 1000);
    this.#flush.unref();
  }

  /** Registrations still valid from before a restart come back as sessions. */
  async #restore(platform: Gb28181Platform): Promise<void> {
    const now = Date.now();
    let restored = 0;
    for (const d of await this.#store.listDevices()) {
      if (!d.expiresAt || d.expiresAt.getTime() <= now || !d.address || !d.port || !d.online) continue;
      platform.restoreSession({
        deviceId: d.deviceId,
        peer: { transport: d.transport === 'tcp' ? 'tcp' : 'udp', address: d.address, port: d.port },
        contact: undefined,
        userAgent: d.userAgent ?? undefined,
        registeredAt: d.registeredAt?.getTime() ?? now,
        expiresAt: d.expiresAt.getTime(),
      });
      restored++;
    }
    if (restored > 0) this.#log.info({ restored }, 'registrations restored from the database');
  }

  #wire(platform: Gb28181Platform): void {
    platform.on('registered', (s) => {
      // Auto-accept lists the device; a ledger admission does not (the ledger stays the record).
      const autoAdmitted =
        !this.#admitted.has(s.deviceId) && this.#o.ledger?.videoVerdict(s.deviceId) !== 'admit';
      this.#write('registration', () =>
        this.#store.registered({
          deviceId: s.deviceId,
          transport: s.peer.transport,
          address: s.peer.address,
          port: s.peer.port,
          userAgent: s.userAgent,
          registeredAt: Date.now(),
          expiresAt: s.expiresAt,
          autoAdmitted,
        }),
      );
    });
    platform.on('status', (change) => {
      this.#write('status', () =>
        this.#store.statusChanged(change.deviceId, change.online, change.reason, change.time),
      );
      if (change.online && change.reason === 'registered' && this.#o.sip.queryOnRegister)
        void this.#describe(change.deviceId);
    });
    platform.on('refused', (r) => {
      // The registrar answered 403 with the ledger's code; the hub records why for the owner.
      if (r.method === 'REGISTER' && r.code === LEDGER_NOT_ACTIVE && r.deviceId !== undefined)
        this.#o.ledger?.videoRefused(r.deviceId, `sip ${r.peer}`);
    });
    platform.on('keepalive', (deviceId, time) => this.#pendingKeepalives.set(deviceId, time));
    platform.on('alarm', (alarm, receivedAt) =>
      this.#write('alarm', () => this.#store.alarm(alarm, receivedAt)),
    );
    platform.on('catalog', (deviceId, items) =>
      this.#write('catalog', () => this.#store.channels(deviceId, items, false)),
    );
  }

  /** Asks a new device what it is and which channels it has. */
  async #describe(deviceId: string): Promise<void> {
    try {
      const info = await this.platform.queryDeviceInfo(deviceId);
      this.#write('device info', () => this.#store.deviceInfo(info));
    } catch (err) {
      this.#log.warn({ deviceId, err: errorMessage(err) }, 'DeviceInfo query failed');
    }
    try {
      await this.refreshCatalog(deviceId);
    } catch (err) {
      this.#log.warn({ deviceId, err: errorMessage(err) }, 'Catalog query failed');
    }
  }

  /** Queries a device's catalog now and replaces its stored channels. */
  async refreshCatalog(deviceId: string): Promise<number> {
    const items = await this.platform.queryCatalog(deviceId);
    await this.#write('catalog', () => this.#store.channels(deviceId, items, true));
    return items.length;
  }

  /** Admits a device to register. */
  async admit(deviceId: string, name?: string): Promise<void> {
    if (!isGbId(deviceId))
      throw new CitysenseError(
        'CS_ERR_GB_ID',
        `${JSON.stringify(deviceId)} is not a 20-digit GB/T 28181 ID`,
        400,
      );
    await this.#store.admit(deviceId, name);
    this.#admitted.add(deviceId);
  }

  /** Withdraws an admission; false when the device is unknown. */
  async revoke(deviceId: string): Promise<boolean> {
    this.#admitted.delete(deviceId);
    return this.#store.revoke(deviceId);
  }

  /** Writes in arrival order, one at a time; a failure is logged and counted, later writes go on. */
  #write(what: string, fn: () => Promise<void>): Promise<void> {
    const run = this.#writes.then(fn).catch((err: unknown) => {
      this.#writeErrors++;
      this.#log.error({ what, err: errorMessage(err) }, 'video store write failed');
    });
    this.#writes = run;
    return run;
  }

  #flushKeepalives(): void {
    if (this.#pendingKeepalives.size === 0) return;
    const batch = new Map(this.#pendingKeepalives);
    this.#pendingKeepalives.clear();
    void this.#write('keepalives', () => this.#store.keepalives(batch));
  }

  /** Waits until every accepted event is in the database (tests, shutdown). */
  async settled(): Promise<void> {
    this.#flushKeepalives();
    let last: Promise<void>;
    do {
      last = this.#writes;
      await last;
    } while (last !== this.#writes);
  }

  /** Ends live sessions, stops SIP and the relay, and writes what was accepted. Idempotent. */
  async stop(): Promise<void> {
    if (this.#flush) clearInterval(this.#flush);
    this.#flush = undefined;
    const live = this.#live;
    this.#live = undefined;
    await live?.stopAll();
    const platform = this.#platform;
    this.#platform = undefined;
    await platform?.stop();
    const relay = this.#relay;
    this.#relay = undefined;
    await relay?.stop();
    await this.settled();
  }
}
