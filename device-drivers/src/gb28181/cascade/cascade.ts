/**
 * GB/T 28181 cascade (GB/T 28181-2016 §5.3, §9.1 between platforms): the gateway registers
 * upward to a higher platform as a lower-level platform (type 200) and answers its Catalog
 * with every device and channel its own, lower platform holds. It watches the lower
 * platform (registrations, offline, catalog answers and NOTIFYs), keeps the upper platform's
 * subscriptions current by NOTIFY, and forwards live INVITEs to the camera that has the
 * channel. When the upper platform is down or restarts it registers again with back-off.
 */
import { EventEmitter } from 'node:events';
import {
  type CatalogChange,
  type CatalogItem,
  type CitysenseError,
  componentLogger,
  errorMessage,
  isGbId,
  type Logger,
} from '@citysense/protocol';
import { Gb28181Device } from '../device/device.ts';
import type { Gb28181Platform } from '../platform/platform.ts';
import { CascadeCatalog } from './cascade-catalog.ts';
import { GB_CASCADE_CONFIG, gbCascadeError } from './errors.ts';
import { CascadeLiveForwarder } from './live-forwarder.ts';

/** The higher platform the gateway registers with. */
export interface CascadeUpstreamOptions {
  /** 20-digit SIP server ID of the upper platform (type 200). */
  serverId: string;
  /** SIP domain and digest realm; default the first 10 digits of the server ID. */
  domain?: string | undefined;
  host: string;
  port: number;
  transport: 'udp' | 'tcp';
  /** Password the upper platform expects for `localId`. */
  password: string;
}

/** Options of a cascade. */
export interface Gb28181CascadeOptions {
  /** The lower platform holding the cameras (started by its owner). */
  platform: Gb28181Platform;
  upstream: CascadeUpstreamOptions;
  /** 20-digit ID of this gateway as a platform (type 200); the digest username upward. */
  localId: string;
  /** Name of the gateway in the upper platform's catalog. */
  name: string;
  /** Keepalive period towards the upper platform, ms (default 60 000). */
  keepaliveIntervalMs?: number | undefined;
  /** Requested registration lifetime, s (default 3600). */
  expires?: number | undefined;
  /** Where the upward SIP endpoint binds; default 127.0.0.1 and a free port. */
  local?:
    | { host?: string | undefined; port?: number | undefined; publicAddress?: string | undefined }
    | undefined;
  /** First wait before registering again after a failure, ms (default 2000); doubles up to `maxRetryMs`. */
  retryMs?: number | undefined;
  /** Longest wait between registration attempts, ms (default 60 000). */
  maxRetryMs?: number | undefined;
  /** Forward the upper platform's live INVITEs to the cameras (default true); false answers them 488. */
  forwardLive?: boolean | undefined;
  /** Lifetime of the catalog subscriptions the gateway holds on each device, s (default 3600). */
  deviceSubscriptionS?: number | undefined;
  /** SIP timer T1 of the upward endpoint, ms (default 500). */
  t1Ms?: number | undefined;
  logger?: Logger | undefined;
}

/** Events of a cascade. */
export interface Gb28181CascadeEvents {
  /** The upper platform accepted a REGISTER (first, refresh or after a restart). */
  registered: [expires: number];
  /** A REGISTER upward failed (CS_ERR_GB_REGISTER_*, CS_ERR_SIP_TIMEOUT); retried with back-off. */
  registrationFailed: [error: CitysenseError | Error];
  /** A device's catalog was read and a change subscription on it was tried (`subscribed` says if accepted). */
  deviceLearned: [deviceId: string, subscribed: boolean];
  /** The catalog changed; subscribed upper platforms are being notified. */
  catalogChanged: [changes: CatalogChange[]];
}

/** Counters of a cascade. */
export interface Gb28181CascadeStats {
  registered: boolean;
  registrations: number;
  registerFailures: number;
  devices: number;
  items: number;
  notifiesSent: number;
  subscriptions: number;
  liveSessions: number;
}

/** What exists between start and stop. */
interface Running {
  device: Gb28181Device;
  detach: () => void;
}

/** A gateway as a lower-level platform of a higher GB/T 28181 platform. Constructor assigns only. */
export class Gb28181Cascade extends EventEmitter<Gb28181CascadeEvents> {
  readonly #o: Gb28181CascadeOptions;
  readonly #log: Logger;
  readonly #catalog: CascadeCatalog;
  /** When each device's catalog subscription was last made, ms. */
  readonly #subscribedAt = new Map<string, number>();
  #run: Running | undefined;
  #starting: Promise<void> | undefined;
  #stopping: Promise<void> | undefined;
  /** NOTIFYs go out one change set after the other, so the upper platform sees them in order. */
  #notifying: Promise<void> = Promise.resolve();

  constructor(options: Gb28181CascadeOptions) {
    super();
    this.#o = options;
    this.#log = componentLogger('gb28181-cascade', options.logger).child({ localId: options.localId });
    this.#catalog = new CascadeCatalog({ localId: options.localId, name: options.name });
  }

  /** The gateway's ID towards the upper platform. */
  get localId(): string {
    return this.#o.localId;
  }

  /** True while the upper platform holds the gateway's registration. */
  get registered(): boolean {
    return this.#run?.device.registered ?? false;
  }

  /** The port of the upward SIP endpoint (0 when stopped). */
  get sipPort(): number {
    return this.#run?.device.sipPort ?? 0;
  }

  /** The catalog the upper platform gets now. */
  items(): CatalogItem[] {
    return this.#catalog.items();
  }

  /** Counters since start. */
  stats(): Gb28181CascadeStats {
    const device = this.#run?.device.stats();
    const items = this.#catalog.items();
    return {
      registered: this.registered,
      registrations: device?.registrations ?? 0,
      registerFailures: device?.registerFailures ?? 0,
      devices: items.filter((i) => i.parentId === this.#o.localId).length,
      items: items.length,
      notifiesSent: device?.notifiesSent ?? 0,
      subscriptions: device?.subscriptions ?? 0,
      liveSessions: this.#run?.device.liveSessions().length ?? 0,
    };
  }

  /**
   * Watches the lower platform, learns the devices already registered with it, binds the
   * upward endpoint and starts registering; resolves once bound (registration failures are
   * `registrationFailed` events and are retried). Rejects CS_ERR_GB_CASCADE_CONFIG. Idempotent.
   */
  start(signal?: AbortSignal): Promise<void> {
    this.#starting ??= this.#start(signal).catch(async (err: unknown) => {
      this.#starting = undefined;
      await this.#teardown();
      throw err;
    });
    return this.#starting;
  }

  async #start(signal: AbortSignal | undefined): Promise<void> {
    this.#validate();
    const o = this.#o;
    const device = new Gb28181Device({
      deviceId: o.localId,
      password: o.upstream.password,
      server: {
        id: o.upstream.serverId,
        domain: o.upstream.domain,
        host: o.upstream.host,
        port: o.upstream.port,
        transport: o.upstream.transport,
      },
      local: o.local,
      channels: () => this.#catalog.items(),
      live:
        o.forwardLive === false
          ? undefined
          : new CascadeLiveForwarder(o.platform, (channelId) => this.#catalog.ownerOf(channelId)),
      identity: { name: o.name, model: 'citysense-gb28181-gateway' },
      userAgent: 'citysense-gb28181-gateway',
      expires: o.expires,
      keepaliveIntervalMs: o.keepaliveIntervalMs,
      catalogPageSize: 20,
      waitForRegistration: false,
      retryMs: o.retryMs ?? 2000,
      maxRetryMs: o.maxRetryMs,
      t1Ms: o.t1Ms,
      logger: o.logger,
    });
    device.on('registered', (expires) => this.emit('registered', expires));
    device.on('registrationFailed', (err) => this.emit('registrationFailed', err));
    this.#run = { device, detach: this.#watch(o.platform) };
    for (const session of o.platform.sessions())
      if (session.online) this.#apply(this.#catalog.deviceStatus(session.deviceId, true));
    for (const session of o.platform.sessions()) if (session.online) this.#learn(session.deviceId);
    signal?.throwIfAborted();
    await device.start(signal);
    this.#log.info({ upstream: `${o.upstream.host}:${o.upstream.port}` }, 'GB/T 28181 cascade up');
  }

  #validate(): void {
    const o = this.#o;
    const problems: string[] = [];
    if (!isGbId(o.localId) || o.localId.slice(10, 13) !== '200')
      problems.push(`localId "${o.localId}" is not a 20-digit GB/T 28181 platform ID (type 200)`);
    if (!isGbId(o.upstream.serverId))
      problems.push(`upstream.serverId "${o.upstream.serverId}" is not a 20-digit GB/T 28181 ID`);
    if (o.localId === o.platform.serverId)
      problems.push(
        'localId must differ from the lower platform serverId: the upper platform would see one ID twice',
      );
    if (!Number.isInteger(o.upstream.port) || o.upstream.port < 1 || o.upstream.port > 65535)
      problems.push(`upstream.port ${o.upstream.port} is not a port`);
    if (problems.length > 0)
      throw gbCascadeError(GB_CASCADE_CONFIG, `invalid GB/T 28181 cascade options: ${problems.join('; ')}`, {
        problems,
      });
  }

  /** Follows the lower platform; returns what undoes it. */
  #watch(platform: Gb28181Platform): () => void {
    const onStatus = (change: { deviceId: string; online: boolean; reason: string }): void => {
      this.#apply(this.#catalog.deviceStatus(change.deviceId, change.online));
      if (change.online) this.#learn(change.deviceId);
      else this.#subscribedAt.delete(change.deviceId);
    };
    const onRegistered = (session: { deviceId: string }): void => {
      // Registration refreshes renew the catalog subscription on the device before it lapses.
      const at = this.#subscribedAt.get(session.deviceId);
      if (at !== undefined && Date.now() - at > (this.#subscriptionS * 1000) / 2)
        this.#subscribe(session.deviceId);
    };
    const onCatalog = (deviceId: string, items: CatalogItem[]): void => {
      this.#apply(this.#catalog.deviceCatalog(deviceId, items));
    };
    platform.on('status', onStatus);
    platform.on('registered', onRegistered);
    platform.on('catalog', onCatalog);
    return () => {
      platform.off('status', onStatus);
      platform.off('registered', onRegistered);
      platform.off('catalog', onCatalog);
    };
  }

  get #subscriptionS(): number {
    return this.#o.deviceSubscriptionS ?? 3600;
  }

  /** Asks a device for its channels (answered as a `catalog` event) and subscribes to their changes. */
  #learn(deviceId: string): void {
    this.#o.platform
      .queryCatalog(deviceId)
      .then(async () => this.emit('deviceLearned', deviceId, await this.#subscribe(deviceId)))
      .catch((err: unknown) =>
        this.#log.warn({ deviceId, err: errorMessage(err) }, 'catalog of a device could not be read'),
      );
  }

  /** Subscribes to a device's catalog changes; resolves false when it refused (logged). */
  async #subscribe(deviceId: string): Promise<boolean> {
    if (!this.#run) return false;
    this.#subscribedAt.set(deviceId, Date.now());
    try {
      await this.#o.platform.subscribeCatalog(deviceId, this.#subscriptionS);
      return true;
    } catch (err) {
      this.#log.info({ deviceId, err: errorMessage(err) }, 'device refused a catalog subscription');
      return false;
    }
  }

  /** Sends changes up to subscribed platforms, in order; failures are logged. */
  #apply(changes: CatalogChange[]): void {
    const run = this.#run;
    if (changes.length === 0 || !run) return;
    this.emit('catalogChanged', changes);
    this.#notifying = this.#notifying
      .then(() => run.device.notifyCatalog(changes))
      .catch((err: unknown) =>
        this.#log.warn({ err: errorMessage(err), changes: changes.length }, 'catalog NOTIFY upward failed'),
      );
  }

  /** Unregisters from the upper platform, hangs up forwarded streams and stops watching. Idempotent. */
  stop(): Promise<void> {
    this.#stopping ??= this.#stop().finally(() => {
      this.#stopping = undefined;
    });
    return this.#stopping;
  }

  async #stop(): Promise<void> {
    await this.#starting?.catch(() => undefined);
    this.#starting = undefined;
    await this.#teardown();
  }

  async #teardown(): Promise<void> {
    const run = this.#run;
    if (!run) return;
    this.#run = undefined;
    run.detach();
    this.#subscribedAt.clear();
    await this.#notifying;
    await run.device.stop();
    this.#log.info('GB/T 28181 cascade stopped');
  }
}
