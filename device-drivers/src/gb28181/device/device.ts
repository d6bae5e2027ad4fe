/**
 * The device side of GB/T 28181: what an IPC, an NVR or a lower-level platform does towards
 * the platform above it. REGISTER with digest and refresh it, keepalive MESSAGEs, answer
 * Catalog (paged), DeviceInfo and DeviceStatus queries, raise alarms, accept catalog and
 * alarm subscriptions and NOTIFY changes and alarms, and answer live INVITEs through a `LiveMediaHandler`.
 * The catalog comes from a `ChannelSource`, so a camera and a cascading gateway share it.
 */
import { EventEmitter } from 'node:events';
import {
  type AlarmNotify,
  type CatalogChange,
  type CitysenseError,
  componentLogger,
  decodeManscdp,
  encodeManscdp,
  errorMessage,
  type Logger,
  type ManscdpMessage,
  type ManscdpOutgoing,
  type ManscdpQuery,
} from '@citysense/protocol';
import { header, SipEndpoint, type SipPeer, type SipRequest, type SipResponse } from '../sip/index.ts';
import { channelsOf } from './channels.ts';
import {
  GB_ALARM_REFUSED,
  GB_CHANNEL_UNKNOWN,
  GB_DEVICE_CONFIG,
  GB_DEVICE_NOT_STARTED,
  gbDeviceError,
} from './errors.ts';
import { KeepaliveTimer } from './keepalive.ts';
import { type GbLiveSession, type GbLiveSessionEnd, LiveSessions } from './live-sessions.ts';
import { deviceOptionProblems, type Gb28181DeviceOptions } from './options.ts';
import { answerQuery, type DeviceIdentity, warning } from './queries.ts';
import { DeviceRegistration } from './registration.ts';
import { RegistrationKeeper } from './registration-keeper.ts';
import { DeviceSubscriptions } from './subscriptions.ts';

/** Counters of a device since start. */
export interface Gb28181DeviceStats {
  registered: boolean;
  /** Successful REGISTERs (first and refreshes). */
  registrations: number;
  registerFailures: number;
  keepalivesSent: number;
  keepalivesAnswered: number;
  queriesAnswered: number;
  catalogPagesSent: number;
  /** Alarms sent by MESSAGE (§9.4). */
  alarmsSent: number;
  /** NOTIFYs sent in subscription dialogs: catalog pages and alarms (§9.11). */
  notifiesSent: number;
  invites: number;
  sessionsStarted: number;
  sessionsEnded: number;
  subscriptions: number;
}

/** Events of a device. */
export interface Gb28181DeviceEvents {
  /** A REGISTER (first or refresh) was accepted for `expires` seconds. */
  registered: [expires: number];
  /** A REGISTER failed; the device retries with back-off. */
  registrationFailed: [error: CitysenseError | Error];
  /** A keepalive with this SN was sent. */
  keepalive: [sn: number];
  /** A query was answered (after every Catalog page went out). */
  query: [query: ManscdpQuery];
  sessionStarted: [session: GbLiveSession];
  sessionEnded: [session: GbLiveSession, reason: GbLiveSessionEnd];
}

/** An alarm to raise (GB/T 28181-2016 §9.4). */
export interface DeviceAlarm {
  priority: AlarmNotify['priority'];
  method: AlarmNotify['method'];
  /** AlarmType (e.g. `2` for a video alarm's motion detection). */
  type?: string | undefined;
  description?: string | undefined;
  longitude?: number | undefined;
  latitude?: number | undefined;
  /** Channel that raised it; default the device. */
  channelId?: string | undefined;
}

/** The parts of a started device. */
interface Running {
  endpoint: SipEndpoint;
  keeper: RegistrationKeeper;
  keepalive: KeepaliveTimer;
  live: LiveSessions;
  subscriptions: DeviceSubscriptions;
}

const ALLOW = 'INVITE, ACK, BYE, CANCEL, MESSAGE, SUBSCRIBE, OPTIONS';
const MANSCDP = 'Application/MANSCDP+xml';

/** A GB/T 28181 device-side user agent. Constructor assigns only; `start()` registers. */
export class Gb28181Device extends EventEmitter<Gb28181DeviceEvents> {
  readonly #o: Gb28181DeviceOptions;
  readonly #log: Logger;
  #run: Running | undefined;
  #starting: Promise<void> | undefined;
  #stopping: Promise<void> | undefined;
  /** Dropped without a word (power cut): requests unanswered, no BYE, no unregister. */
  #abandoned = false;
  #sn = 0;
  #stats = emptyStats();

  constructor(options: Gb28181DeviceOptions) {
    super();
    this.#o = options;
    this.#log = componentLogger('gb28181-device', options.logger).child({ deviceId: options.deviceId });
  }

  /** The device ID. */
  get deviceId(): string {
    return this.#o.deviceId;
  }

  /** SIP domain of the platform. */
  get domain(): string {
    return this.#o.server.domain ?? this.#o.server.id.slice(0, 10);
  }

  /** The port the device's SIP endpoint listens on (0 when not started). */
  get sipPort(): number {
    return this.#run?.endpoint.port ?? 0;
  }

  /** True while the last REGISTER is accepted and not lost. */
  get registered(): boolean {
    return this.#run?.keeper.registered ?? false;
  }

  /** Counters since start. */
  stats(): Gb28181DeviceStats {
    return { ...this.#stats, registered: this.registered, subscriptions: this.#run?.subscriptions.size ?? 0 };
  }

  /** Live sessions now (answered or streaming). */
  liveSessions(): GbLiveSession[] {
    return this.#run?.live.list() ?? [];
  }

  /**
   * Binds the SIP endpoint and registers. With `waitForRegistration` (default) resolves once
   * the platform answered 200 and rejects CS_ERR_GB_REGISTER_FORBIDDEN (403),
   * CS_ERR_GB_REGISTER_UNAUTHORIZED (password refused), CS_ERR_GB_REGISTER_REJECTED (other
   * status) or CS_ERR_SIP_TIMEOUT (no answer); otherwise resolves once bound. Rejects
   * CS_ERR_GB_DEVICE_CONFIG for unusable options. Idempotent.
   */
  start(signal?: AbortSignal): Promise<void> {
    this.#starting ??= this.#start(signal).catch(async (err: unknown) => {
      this.#starting = undefined;
      await this.#teardown(false);
      throw err;
    });
    return this.#starting;
  }

  async #start(signal: AbortSignal | undefined): Promise<void> {
    const problems = deviceOptionProblems(this.#o);
    if (problems.length > 0)
      throw gbDeviceError(
        GB_DEVICE_CONFIG,
        `invalid GB/T 28181 device options: ${problems.join('; ')}`,
        400,
        {
          problems,
        },
      );
    this.#stats = emptyStats();
    this.#abandoned = false;
    const run = this.#assemble();
    this.#run = run;
    run.endpoint.on('request', (request, peer) => this.#onRequest(request, peer));
    await run.endpoint.start();
    signal?.throwIfAborted();
    if (this.#o.waitForRegistration === false) {
      run.keeper.begin();
      this.#log.info({ sipPort: run.endpoint.port }, 'GB/T 28181 device up; registering');
      return;
    }
    const granted = await run.keeper.registerOnce();
    signal?.throwIfAborted();
    this.#log.info({ sipPort: run.endpoint.port, expires: granted }, 'GB/T 28181 device registered');
  }

  /** Builds the parts of one run; nothing is sent yet. */
  #assemble(): Running {
    const o = this.#o;
    const endpoint = new SipEndpoint({
      host: o.local?.host ?? '127.0.0.1',
      port: o.local?.port ?? 0,
      publicAddress: o.local?.publicAddress,
      userAgent: o.userAgent ?? 'citysense-gb28181-device',
      t1Ms: o.t1Ms,
      logger: o.logger,
    });
    const registration = new DeviceRegistration({
      endpoint,
      deviceId: o.deviceId,
      password: o.password,
      serverId: o.server.id,
      domain: this.domain,
      peer: this.#serverPeer,
    });
    const keepalive = new KeepaliveTimer({
      intervalMs: o.keepaliveIntervalMs ?? 60_000,
      missedLimit: o.keepaliveMissed ?? 3,
      log: this.#log,
      send: (sn, timeoutMs) =>
        this.#sendManscdp({ kind: 'keepalive', sn, deviceId: o.deviceId, status: 'OK' }, timeoutMs),
      nextSn: () => ++this.#sn,
      onSent: (sn) => {
        this.#stats.keepalivesSent++;
        this.emit('keepalive', sn);
      },
      onAnswered: () => this.#stats.keepalivesAnswered++,
      // A platform that forgot the device refuses its keepalive: register again (§9.6).
      onLost: (reason) => {
        keepalive.stop();
        keeper.lost(reason);
      },
    });
    const keeper = new RegistrationKeeper({
      registration,
      expires: o.expires ?? 3600,
      retryMs: o.retryMs ?? 10_000,
      maxRetryMs: Math.max(o.maxRetryMs ?? 60_000, o.retryMs ?? 10_000),
      log: this.#log,
      onRegistered: (expires, refresh) => {
        this.#stats.registrations++;
        this.emit('registered', expires);
        if (!refresh) keepalive.start();
      },
      onFailed: (err) => {
        this.#stats.registerFailures++;
        keepalive.stop();
        this.emit('registrationFailed', err);
      },
    });
    const live = new LiveSessions({
      endpoint,
      domain: this.domain,
      handler: o.live,
      t1Ms: o.t1Ms ?? 500,
      log: this.#log,
      channelState: (id) => {
        const item = this.#items().find((i) => i.deviceId === id);
        return item ? (item.status === 'OFF' ? 'off' : 'ok') : 'unknown';
      },
      onStarted: (session) => {
        this.#stats.sessionsStarted++;
        this.emit('sessionStarted', session);
      },
      onEnded: (session, reason) => {
        this.#stats.sessionsEnded++;
        this.emit('sessionEnded', session, reason);
      },
    });
    const subscriptions = new DeviceSubscriptions({
      deviceId: o.deviceId,
      aor: this.#aor,
      serverId: o.server.id,
      charset: o.charset ?? 'GB2312',
      pageSize: o.catalogPageSize ?? 2,
      nextSn: () => ++this.#sn,
      onNotifySent: () => this.#stats.notifiesSent++,
      log: this.#log,
    });
    return { endpoint, keeper, keepalive, live, subscriptions };
  }

  get #serverPeer(): SipPeer {
    const s = this.#o.server;
    return { transport: s.transport ?? 'udp', address: s.host, port: s.port };
  }

  get #serverUri(): string {
    return `sip:${this.#o.server.id}@${this.domain}`;
  }

  /** `<sip:DEVICEID@DOMAIN>`: From and To of REGISTER and of the device's MESSAGEs (§9.1.2.1). */
  get #aor(): string {
    return `<sip:${this.#o.deviceId}@${this.domain}>`;
  }

  #items() {
    return channelsOf(this.#o.channels);
  }

  #require(): Running {
    if (!this.#run || this.#abandoned)
      throw gbDeviceError(
        GB_DEVICE_NOT_STARTED,
        'the GB/T 28181 device is not started; call start() first',
        409,
      );
    return this.#run;
  }

  /** Sends a MANSCDP MESSAGE to the platform and returns its final response. */
  async #sendManscdp(message: ManscdpOutgoing, timeoutMs?: number): Promise<SipResponse> {
    const { endpoint } = this.#require();
    return endpoint.request({
      method: 'MESSAGE',
      uri: this.#serverUri,
      peer: this.#serverPeer,
      from: this.#aor,
      to: `<${this.#serverUri}>`,
      body: encodeManscdp(message, { encoding: this.#o.charset ?? 'GB2312' }),
      contentType: MANSCDP,
      timeoutMs,
    });
  }

  /** Pauses (false) or resumes (true) keepalives, e.g. so the platform sees the device go offline. */
  setKeepalivesEnabled(enabled: boolean): void {
    this.#run?.keepalive.setEnabled(enabled);
    this.#log.info({ enabled }, enabled ? 'keepalives resumed' : 'keepalives paused');
  }

  /**
   * Drops the device at once without a word to the platform, like a power cut: timers and
   * streams stop, requests go unanswered, no BYE and no unregister. `stop()` frees the port.
   */
  abandon(): void {
    const run = this.#run;
    if (this.#abandoned || !run) return;
    this.#abandoned = true;
    run.keepalive.stop();
    void run.keeper.stop(false);
    void run.live.endAll('vanished', false);
    run.subscriptions.clear();
    this.#log.info('device abandoned');
  }

  /**
   * Raises an alarm and resolves with its SN once the platform accepted it.
   *
   * Every live alarm subscription (§9.11.1) whose DeviceID and conditions the alarm meets
   * gets it as a `Notify/Alarm` NOTIFY in its dialog. The platform the device registers with
   * gets it exactly once: through its own alarm subscription when it holds one (so the
   * conditions it asked for hold, and nothing outside them reaches it), else by the
   * unsolicited MESSAGE of §9.4, also when its subscription ended (Expires 0, expiry, 481).
   * Rejects CS_ERR_GB_ALARM_REFUSED when the platform answers with an error status.
   */
  async raiseAlarm(alarm: DeviceAlarm): Promise<number> {
    const channelId = alarm.channelId ?? this.#o.deviceId;
    if (channelId !== this.#o.deviceId && !this.#items().some((i) => i.deviceId === channelId))
      throw gbDeviceError(GB_CHANNEL_UNKNOWN, `the device has no channel ${channelId}`, 404);
    const sn = ++this.#sn;
    const message: AlarmNotify = {
      kind: 'alarm',
      sn,
      deviceId: channelId,
      priority: alarm.priority,
      method: alarm.method,
      time: localTime(new Date()),
      description: alarm.description ?? '',
    };
    if (alarm.longitude !== undefined) message.longitude = alarm.longitude;
    if (alarm.latitude !== undefined) message.latitude = alarm.latitude;
    if (alarm.type !== undefined) message.alarmType = alarm.type;
    const { endpoint, subscriptions } = this.#require();
    const own = await subscriptions.notifyAlarm(endpoint, message);
    if (own.kind === 'filtered') return sn;
    let status: number;
    if (own.kind === 'notified') status = own.status;
    else {
      status = (await this.#sendManscdp(message)).status;
      this.#stats.alarmsSent++;
    }
    if (status >= 300)
      throw gbDeviceError(GB_ALARM_REFUSED, `the platform answered ${status} to alarm SN ${sn}`, 502, {
        status,
      });
    return sn;
  }

  /**
   * Tells every live Catalog subscription what changed (§9.11.2), by NOTIFY pages; call it
   * after the channel source changed. Resolves once the platform answered the NOTIFYs.
   */
  async notifyCatalog(changes: readonly CatalogChange[]): Promise<void> {
    const run = this.#run;
    if (!run || this.#abandoned) return;
    await run.subscriptions.notify(run.endpoint, changes);
  }

  #onRequest(request: SipRequest, peer: SipPeer): void {
    // An abandoned device drops everything, like a device without power.
    if (this.#abandoned) return;
    this.#handle(request, peer).catch((err: unknown) =>
      this.#log.warn({ method: request.method, err: errorMessage(err) }, 'request handling failed'),
    );
  }

  async #handle(request: SipRequest, peer: SipPeer): Promise<void> {
    const { endpoint, live, subscriptions } = this.#require();
    switch (request.method) {
      case 'MESSAGE':
        return this.#onMessage(request, peer);
      case 'INVITE':
        this.#stats.invites++;
        return live.onInvite(request, peer);
      case 'ACK':
        return live.onAck(request);
      case 'BYE':
        return live.onBye(request, peer);
      case 'CANCEL':
        // The INVITE was answered at once, so there is nothing left to cancel (RFC 3261 §9.2).
        return endpoint.respond(request, peer, live.has(header(request, 'call-id') ?? '') ? 200 : 481);
      case 'SUBSCRIBE':
        return subscriptions.onSubscribe(endpoint, request, peer);
      case 'OPTIONS':
        return endpoint.respond(request, peer, 200, { headers: [{ name: 'Allow', value: ALLOW }] });
      default:
        return endpoint.respond(request, peer, 405, { headers: [{ name: 'Allow', value: ALLOW }] });
    }
  }

  /** MANSCDP from the platform: 200 first, then the answer in the device's own MESSAGE(s) (§9.5). */
  async #onMessage(request: SipRequest, peer: SipPeer): Promise<void> {
    const { endpoint } = this.#require();
    let message: ManscdpMessage;
    try {
      message = decodeManscdp(request.body);
    } catch (err) {
      return endpoint.respond(request, peer, 400, { headers: [{ name: 'Warning', value: warning(err) }] });
    }
    if (message.kind !== 'query') {
      // Controls and other commands are accepted and not interpreted (no PTZ here).
      this.#log.debug({ kind: message.kind }, 'MANSCDP message not interpreted');
      return endpoint.respond(request, peer, 200);
    }
    const items = this.#items();
    if (message.deviceId !== this.#o.deviceId && !items.some((i) => i.deviceId === message.deviceId))
      return endpoint.respond(request, peer, 404);
    await endpoint.respond(request, peer, 200);
    await answerQuery(
      {
        deviceId: this.#o.deviceId,
        identity: this.#identity,
        items,
        pageSize: this.#o.catalogPageSize ?? 2,
        log: this.#log,
        send: (m) => this.#sendManscdp(m),
        onCatalogPage: () => this.#stats.catalogPagesSent++,
      },
      message,
    );
    this.#stats.queriesAnswered++;
    this.emit('query', message);
  }

  get #identity(): DeviceIdentity {
    const i = this.#o.identity;
    return {
      name: i?.name ?? 'citysense GB28181 device',
      manufacturer: i?.manufacturer ?? 'citysense',
      model: i?.model ?? 'citysense-gb28181',
      firmware: i?.firmware ?? '1.0.0',
    };
  }

  /** Hangs up live sessions, unregisters (`Expires: 0`) and frees the port. Idempotent. */
  stop(): Promise<void> {
    this.#stopping ??= this.#stop().finally(() => {
      this.#stopping = undefined;
    });
    return this.#stopping;
  }

  async #stop(): Promise<void> {
    await this.#starting?.catch(() => undefined);
    this.#starting = undefined;
    await this.#teardown(true);
  }

  async #teardown(graceful: boolean): Promise<void> {
    const run = this.#run;
    if (!run) return;
    const polite = graceful && !this.#abandoned;
    run.keepalive.stop();
    await run.live.endAll('stopped', polite);
    await run.keeper.stop(polite);
    run.subscriptions.clear();
    this.#run = undefined;
    await run.endpoint.stop();
    this.#log.info('GB/T 28181 device stopped');
  }
}

function emptyStats(): Gb28181DeviceStats {
  return {
    registered: false,
    registrations: 0,
    registerFailures: 0,
    keepalivesSent: 0,
    keepalivesAnswered: 0,
    queriesAnswered: 0,
    catalogPagesSent: 0,
    alarmsSent: 0,
    notifiesSent: 0,
    invites: 0,
    sessionsStarted: 0,
    sessionsEnded: 0,
    subscriptions: 0,
  };
}

/** Local time as GB/T 28181 writes it (`2026-11-23T10:00:00`, no zone). */
function localTime(d: Date): string {
  const p = (n: number) => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())}T${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}`;
}
