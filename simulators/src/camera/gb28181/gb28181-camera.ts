/**
 * A simulated GB/T 28181 device: an IPC with one channel or an NVR with several. It does
 * what a field device does towards a platform: REGISTER with digest and refresh it,
 * keepalive MESSAGEs, answers Catalog (paged), DeviceInfo and DeviceStatus queries, raises
 * alarms, accepts catalog subscriptions and notifies channel changes, and streams a test
 * pattern as PS over RTP for a live INVITE. Tests switch it offline or make it vanish to
 * exercise the platform's offline detection.
 */
import { EventEmitter } from 'node:events';
import {
  header,
  SipEndpoint,
  type SipPeer,
  type SipRequest,
  type SipResponse,
  sipToken,
  tagOf,
  uriOf,
} from '@citysense/device-drivers/sip';
import {
  type AlarmNotify,
  type CatalogItem,
  type CatalogStatus,
  type CitysenseError,
  componentLogger,
  decodeManscdp,
  encodeManscdp,
  errorMessage,
  isGbId,
  type Logger,
  type ManscdpMessage,
  type ManscdpOutgoing,
  type ManscdpQuery,
} from '@citysense/protocol';
import {
  GB_ALARM_REFUSED,
  GB_CAMERA_CONFIG,
  GB_CAMERA_NOT_REGISTERED,
  GB_CHANNEL_UNKNOWN,
  gbCameraError,
} from './errors.ts';
import { type LiveSession, type LiveSessionEnd, LiveVideo } from './live-video.ts';
import { DeviceRegistration } from './registration.ts';

/** The platform the camera registers with. */
export interface Gb28181ServerOptions {
  /** 20-digit SIP server ID (type 200). */
  id: string;
  /** SIP domain and digest realm; default the first 10 digits of the server ID. */
  domain?: string | undefined;
  host: string;
  port: number;
  /** Default 'udp'. */
  transport?: 'udp' | 'tcp' | undefined;
}

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
  /** Wait before registering again after a failed refresh, ms (default 10 000). */
  retryMs?: number | undefined;
  /** SIP timer T1, ms (default 500). */
  t1Ms?: number | undefined;
  logger?: Logger | undefined;
}

/** Counters of a camera since start. */
export interface Gb28181CameraStats {
  registered: boolean;
  /** Successful REGISTERs (first and refreshes). */
  registrations: number;
  registerFailures: number;
  keepalivesSent: number;
  keepalivesAnswered: number;
  queriesAnswered: number;
  catalogPagesSent: number;
  alarmsSent: number;
  notifiesSent: number;
  invites: number;
  sessionsStarted: number;
  sessionsEnded: number;
  subscriptions: number;
}

/** Events of a camera. */
export interface Gb28181CameraEvents {
  /** A REGISTER (first or refresh) was accepted for `expires` seconds. */
  registered: [expires: number];
  /** A refresh failed; the camera retries after `retryMs`. */
  registrationFailed: [error: CitysenseError | Error];
  /** A keepalive with this SN was sent. */
  keepalive: [sn: number];
  /** A query was answered (after every Catalog page went out). */
  query: [query: ManscdpQuery];
  sessionStarted: [session: LiveSession];
  sessionEnded: [session: LiveSession, reason: LiveSessionEnd];
}

type ChannelState = Gb28181Channel & { status: CatalogStatus };

interface Subscription {
  callId: string;
  /** `catalog` or `presence`. */
  event: string;
  eventHeader: string;
  local: string;
  remote: string;
  remoteTarget: string;
  peer: SipPeer;
  cseq: number;
  expiresAt: number;
}

/** The parts of a started camera. */
interface Running {
  endpoint: SipEndpoint;
  registration: DeviceRegistration;
  live: LiveVideo;
}

const ALLOW = 'INVITE, ACK, BYE, CANCEL, MESSAGE, SUBSCRIBE, OPTIONS';
const MANSCDP = 'Application/MANSCDP+xml';

/** A simulated GB/T 28181 IPC or NVR. Constructor assigns only; `start()` registers. */
export class Gb28181Camera extends EventEmitter<Gb28181CameraEvents> {
  readonly #o: Gb28181CameraOptions;
  readonly #log: Logger;
  /** What exists between start and stop. */
  #run: Running | undefined;
  #starting: Promise<void> | undefined;
  #stopping: Promise<void> | undefined;
  readonly #channels: Map<string, ChannelState>;
  readonly #subscriptions = new Map<string, Subscription>();
  #registered = false;
  #online = true;
  #vanished = false;
  #sn = 0;
  #keepaliveTimer: NodeJS.Timeout | undefined;
  #refreshTimer: NodeJS.Timeout | undefined;
  #stats = emptyStats();

  constructor(options: Gb28181CameraOptions) {
    super();
    this.#o = options;
    this.#log = componentLogger('gb28181-camera', options.logger).child({ deviceId: options.deviceId });
    const channels = options.channels ?? [{ id: options.deviceId, name: options.name ?? 'IPC' }];
    this.#channels = new Map(channels.map((c) => [c.id, { ...c, status: c.status ?? 'ON' }]));
  }

  /** The device ID. */
  get deviceId(): string {
    return this.#o.deviceId;
  }

  /** The port the camera's SIP endpoint listens on (after start). */
  get sipPort(): number {
    return this.#run?.endpoint.port ?? 0;
  }

  /** True while the last REGISTER is accepted and not expired. */
  get registered(): boolean {
    return this.#registered;
  }

  /** Counters since start. */
  stats(): Gb28181CameraStats {
    return {
      ...this.#stats,
      registered: this.#registered,
      subscriptions: this.#subscriptions.size,
    };
  }

  /** Live sessions now (answered or streaming). */
  liveSessions(): LiveSession[] {
    return this.#run?.live.list() ?? [];
  }

  /** The channels with their current status. */
  channels(): Gb28181Channel[] {
    return [...this.#channels.values()].map((c) => ({ ...c }));
  }

  /**
   * Binds the SIP endpoint and registers; resolves once the platform answered 200. Rejects
   * CS_ERR_GB_REGISTER_FORBIDDEN (403), CS_ERR_GB_REGISTER_UNAUTHORIZED (password refused),
   * CS_ERR_GB_REGISTER_REJECTED (other status), CS_ERR_SIP_TIMEOUT (no answer). Idempotent.
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
    this.#validate();
    this.#stats = emptyStats();
    this.#vanished = false;
    this.#online = true;
    const endpoint = new SipEndpoint({
      host: this.#o.local?.host ?? '127.0.0.1',
      port: this.#o.local?.port ?? 0,
      userAgent: `citysense-gb28181-camera/${this.#o.firmware ?? '1.0'}`,
      t1Ms: this.#o.t1Ms,
      logger: this.#o.logger,
    });
    const registration = new DeviceRegistration({
      endpoint,
      deviceId: this.#o.deviceId,
      password: this.#o.password,
      serverId: this.#o.server.id,
      domain: this.#domain,
      peer: this.#serverPeer,
    });
    const live = new LiveVideo({
      endpoint,
      domain: this.#domain,
      media: this.#o.media ?? {},
      t1Ms: this.#o.t1Ms ?? 500,
      log: this.#log,
      channelState: (id) => {
        const channel = this.#channels.get(id);
        return channel ? (channel.status === 'ON' ? 'ok' : 'off') : 'unknown';
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
    this.#run = { endpoint, registration, live };
    endpoint.on('request', (request, peer) => this.#onRequest(request, peer));
    await endpoint.start();
    signal?.throwIfAborted();
    const granted = await this.#register(this.#o.expires ?? 3600);
    signal?.throwIfAborted();
    this.#onRegistered(granted);
    this.#keepaliveTimer = setInterval(() => this.#sendKeepalive(), this.#o.keepaliveIntervalMs ?? 60_000);
    this.#sendKeepalive();
    this.#log.info({ sipPort: endpoint.port, expires: granted }, 'simulated GB/T 28181 camera registered');
  }

  #validate(): void {
    const o = this.#o;
    const problems: string[] = [];
    if (!isGbId(o.deviceId)) problems.push(`deviceId "${o.deviceId}" is not a 20-digit GB/T 28181 ID`);
    if (!isGbId(o.server.id)) problems.push(`server.id "${o.server.id}" is not a 20-digit GB/T 28181 ID`);
    const ids = new Set<string>();
    for (const c of o.channels ?? []) {
      if (!isGbId(c.id)) problems.push(`channel "${c.id}" is not a 20-digit GB/T 28181 ID`);
      if (ids.has(c.id)) problems.push(`channel "${c.id}" is listed twice`);
      ids.add(c.id);
    }
    const page = o.catalogPageSize ?? 2;
    if (!Number.isInteger(page) || page < 1)
      problems.push(`catalogPageSize ${page} must be a positive integer`);
    const expires = o.expires ?? 3600;
    if (!Number.isInteger(expires) || expires < 1)
      problems.push(`expires ${expires} must be a positive integer`);
    if ((o.keepaliveIntervalMs ?? 60_000) <= 0) problems.push('keepaliveIntervalMs must be positive');
    if (problems.length > 0)
      throw gbCameraError(
        GB_CAMERA_CONFIG,
        `invalid GB/T 28181 camera options: ${problems.join('; ')}`,
        400,
        { problems },
      );
  }

  get #domain(): string {
    return this.#o.server.domain ?? this.#o.server.id.slice(0, 10);
  }

  get #serverPeer(): SipPeer {
    const s = this.#o.server;
    return { transport: s.transport ?? 'udp', address: s.host, port: s.port };
  }

  get #serverUri(): string {
    return `sip:${this.#o.server.id}@${this.#domain}`;
  }

  /** `<sip:DEVICEID@DOMAIN>`: From and To of REGISTER and of the camera's MESSAGEs (§9.1.2.1). */
  get #aor(): string {
    return `<sip:${this.#o.deviceId}@${this.#domain}>`;
  }

  #require(): Running {
    if (!this.#run || this.#vanished)
      throw gbCameraError(GB_CAMERA_NOT_REGISTERED, 'the camera is not started; call start() first', 409);
    return this.#run;
  }

  /** One REGISTER exchange (`expires` 0 unregisters); resolves with the granted lifetime. */
  #register(expires: number, timeoutMs?: number): Promise<number> {
    return this.#require().registration.register(expires, timeoutMs);
  }

  #onRegistered(expires: number): void {
    this.#registered = true;
    this.#stats.registrations++;
    this.emit('registered', expires);
    // Refresh at half the lifetime, like most devices, so one lost refresh still leaves time.
    this.#scheduleRefresh((expires * 1000) / 2);
  }

  #scheduleRefresh(delayMs: number): void {
    if (this.#refreshTimer) clearTimeout(this.#refreshTimer);
    this.#refreshTimer = setTimeout(() => {
      this.#refreshTimer = undefined;
      this.#refresh().catch((err: unknown) => this.#log.error({ err: errorMessage(err) }, 'refresh crashed'));
    }, delayMs);
  }

  async #refresh(): Promise<void> {
    if (this.#vanished || !this.#run) return;
    try {
      this.#onRegistered(await this.#register(this.#o.expires ?? 3600));
    } catch (err) {
      if (this.#vanished || !this.#run) return;
      this.#registered = false;
      this.#stats.registerFailures++;
      this.#log.warn({ err: errorMessage(err) }, 'registration refresh failed; retrying');
      this.emit('registrationFailed', err instanceof Error ? err : new Error(String(err)));
      this.#scheduleRefresh(this.#o.retryMs ?? 10_000);
    }
  }

  /** Sends a MANSCDP MESSAGE to the platform and returns its final response. */
  #sendManscdp(message: ManscdpOutgoing, timeoutMs?: number): Promise<SipResponse> {
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

  #sendKeepalive(): void {
    if (!this.#online || !this.#registered || this.#vanished || !this.#run) return;
    const sn = ++this.#sn;
    this.#stats.keepalivesSent++;
    this.emit('keepalive', sn);
    // A keepalive that is not answered before the next one is due counts as lost.
    this.#sendManscdp(
      { kind: 'keepalive', sn, deviceId: this.#o.deviceId, status: 'OK' },
      this.#o.keepaliveIntervalMs ?? 60_000,
    ).then(
      (response) => {
        if (response.status < 300) {
          this.#stats.keepalivesAnswered++;
          return;
        }
        // A platform that forgot the device refuses its keepalive: register again (§9.6).
        if (!this.#registered) return;
        this.#log.warn({ status: response.status }, 'keepalive refused; registering again');
        this.#registered = false;
        this.#scheduleRefresh(0);
      },
      (err: unknown) => this.#log.warn({ sn, err: errorMessage(err) }, 'keepalive not answered'),
    );
  }

  /** Stops (false) or resumes (true) keepalives, so the platform sees the device go offline. */
  setOnline(online: boolean): void {
    if (this.#online === online) return;
    this.#online = online;
    this.#log.info({ online }, online ? 'keepalives resumed' : 'keepalives stopped');
    if (online) this.#sendKeepalive();
  }

  /**
   * The camera vanishes (power cut, cable pulled): timers and streams stop and every request
   * goes unanswered, without a BYE or an unregister. `stop()` then just frees the port.
   */
  vanish(): void {
    if (this.#vanished || !this.#run) return;
    this.#vanished = true;
    this.#registered = false;
    this.#clearTimers();
    void this.#run?.live.endAll('vanished', false);
    this.#subscriptions.clear();
    this.#log.info('camera vanished');
  }

  /** Sends a Notify/Alarm (§9.4) and resolves with its SN once the platform accepted it. */
  async raiseAlarm(alarm: {
    priority: AlarmNotify['priority'];
    method: AlarmNotify['method'];
    /** AlarmType (e.g. `2` for a video alarm's motion detection). */
    type?: string | undefined;
    description?: string | undefined;
    longitude?: number | undefined;
    latitude?: number | undefined;
    /** Channel that raised it; default the device. */
    channelId?: string | undefined;
  }): Promise<number> {
    if (alarm.channelId !== undefined && alarm.channelId !== this.#o.deviceId) this.#channel(alarm.channelId);
    const sn = ++this.#sn;
    const message: AlarmNotify = {
      kind: 'alarm',
      sn,
      deviceId: alarm.channelId ?? this.#o.deviceId,
      priority: alarm.priority,
      method: alarm.method,
      time: localTime(new Date()),
      description: alarm.description ?? '',
    };
    if (alarm.longitude !== undefined) message.longitude = alarm.longitude;
    if (alarm.latitude !== undefined) message.latitude = alarm.latitude;
    if (alarm.type !== undefined) message.alarmType = alarm.type;
    const response = await this.#sendManscdp(message);
    this.#stats.alarmsSent++;
    if (response.status >= 300)
      throw gbCameraError(
        GB_ALARM_REFUSED,
        `the platform answered ${response.status} to alarm SN ${sn}`,
        502,
        { status: response.status },
      );
    return sn;
  }

  /**
   * Changes a channel's status; every live Catalog subscription gets a NOTIFY with the
   * change (§9.11.2). Resolves once the platform answered the NOTIFYs.
   */
  async setChannelStatus(channelId: string, status: CatalogStatus): Promise<void> {
    const channel = this.#channel(channelId);
    if (channel.status === status) return;
    channel.status = status;
    const now = Date.now();
    const notifies: Promise<void>[] = [];
    for (const sub of this.#subscriptions.values()) {
      if (sub.expiresAt <= now) {
        this.#subscriptions.delete(sub.callId);
        continue;
      }
      if (sub.event !== 'catalog') continue;
      notifies.push(this.#notifyCatalog(sub, { ...this.#catalogItem(channel), event: status }, now));
    }
    await Promise.all(notifies);
  }

  async #notifyCatalog(
    sub: Subscription,
    item: CatalogItem & { event: CatalogStatus },
    now: number,
  ): Promise<void> {
    const { endpoint } = this.#require();
    const remaining = Math.max(0, Math.round((sub.expiresAt - now) / 1000));
    const response = await endpoint.request({
      method: 'NOTIFY',
      uri: sub.remoteTarget,
      peer: sub.peer,
      from: sub.local,
      to: sub.remote,
      callId: sub.callId,
      cseq: ++sub.cseq,
      headers: [
        { name: 'Event', value: sub.eventHeader },
        { name: 'Subscription-State', value: `active;expires=${remaining}` },
        { name: 'Contact', value: endpoint.contact(this.#o.deviceId, sub.peer) },
      ],
      body: encodeManscdp(
        { kind: 'catalogNotify', sn: ++this.#sn, deviceId: this.#o.deviceId, sumNum: 1, items: [item] },
        { encoding: this.#o.charset ?? 'GB2312' },
      ),
      contentType: MANSCDP,
    });
    this.#stats.notifiesSent++;
    // 481: the platform no longer knows the subscription (RFC 6665 §4.1.3).
    if (response.status === 481) this.#subscriptions.delete(sub.callId);
  }

  #channel(id: string): ChannelState {
    const channel = this.#channels.get(id);
    if (!channel) throw gbCameraError(GB_CHANNEL_UNKNOWN, `the camera has no channel ${id}`, 404);
    return channel;
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

  #onRequest(request: SipRequest, peer: SipPeer): void {
    // A vanished camera drops everything, like a device without power.
    if (this.#vanished) return;
    this.#handle(request, peer).catch((err: unknown) =>
      this.#log.warn({ method: request.method, err: errorMessage(err) }, 'request handling failed'),
    );
  }

  async #handle(request: SipRequest, peer: SipPeer): Promise<void> {
    const { endpoint } = this.#require();
    switch (request.method) {
      case 'MESSAGE':
        return this.#onMessage(request, peer);
      case 'INVITE':
        this.#stats.invites++;
        return this.#require().live.onInvite(request, peer);
      case 'ACK':
        return this.#require().live.onAck(request);
      case 'BYE':
        return this.#require().live.onBye(request, peer);
      case 'CANCEL':
        // The INVITE was answered at once, so there is nothing left to cancel (RFC 3261 §9.2).
        return endpoint.respond(
          request,
          peer,
          this.#require().live.has(header(request, 'call-id') ?? '') ? 200 : 481,
        );
      case 'SUBSCRIBE':
        return this.#onSubscribe(request, peer);
      case 'OPTIONS':
        return endpoint.respond(request, peer, 200, { headers: [{ name: 'Allow', value: ALLOW }] });
      default:
        return endpoint.respond(request, peer, 405, { headers: [{ name: 'Allow', value: ALLOW }] });
    }
  }

  /** MANSCDP from the platform: 200 first, then the answer in the camera's own MESSAGE(s) (§9.5). */
  async #onMessage(request: SipRequest, peer: SipPeer): Promise<void> {
    const { endpoint } = this.#require();
    let message: ManscdpMessage;
    try {
      message = decodeManscdp(request.body);
    } catch (err) {
      const why = errorMessage(err).replace(/"/g, "'").slice(0, 120);
      return endpoint.respond(request, peer, 400, {
        headers: [{ name: 'Warning', value: `399 citysense "${why}"` }],
      });
    }
    if (message.kind !== 'query') {
      // Controls and other commands are accepted and ignored: the simulator has no PTZ.
      this.#log.debug({ kind: message.kind }, 'MANSCDP message not interpreted');
      return endpoint.respond(request, peer, 200);
    }
    if (message.deviceId !== this.#o.deviceId && !this.#channels.has(message.deviceId))
      return endpoint.respond(request, peer, 404);
    await endpoint.respond(request, peer, 200);
    await this.#answer(message);
    this.#stats.queriesAnswered++;
    this.emit('query', message);
  }

  async #answer(query: ManscdpQuery): Promise<void> {
    const { sn, deviceId } = query;
    const channel = this.#channels.get(deviceId);
    switch (query.cmdType) {
      case 'Catalog': {
        // A channel has no children: its catalog is empty.
        const items =
          deviceId === this.#o.deviceId ? [...this.#channels.values()].map((c) => this.#catalogItem(c)) : [];
        const size = this.#o.catalogPageSize ?? 2;
        for (let from = 0; from === 0 || from < items.length; from += size) {
          const page = items.slice(from, from + size);
          const response = await this.#sendManscdp({
            kind: 'catalogResponse',
            sn,
            deviceId,
            sumNum: items.length,
            items: page,
          });
          this.#stats.catalogPagesSent++;
          if (response.status >= 300) {
            this.#log.warn({ sn, status: response.status }, 'platform refused a Catalog page; stopping');
            return;
          }
        }
        return;
      }
      case 'DeviceInfo':
        await this.#sendManscdp({
          kind: 'deviceInfo',
          sn,
          deviceId,
          deviceName:
            channel && deviceId !== this.#o.deviceId
              ? channel.name
              : (this.#o.name ?? 'citysense GB28181 camera'),
          manufacturer: this.#o.manufacturer ?? 'citysense',
          model: this.#o.model ?? 'GB28181-SIM',
          firmware: this.#o.firmware ?? '1.0.0',
          channel: deviceId === this.#o.deviceId ? this.#channels.size : 1,
          result: 'OK',
        });
        return;
      case 'DeviceStatus': {
        const on = !channel || deviceId === this.#o.deviceId || channel.status === 'ON';
        await this.#sendManscdp({
          kind: 'deviceStatus',
          sn,
          deviceId,
          online: on,
          status: on ? 'OK' : 'ERROR',
          result: 'OK',
        });
        return;
      }
    }
  }

  /** Catalog / presence SUBSCRIBE (§9.11): accepted for its Expires; changes go out as NOTIFY. */
  async #onSubscribe(request: SipRequest, peer: SipPeer): Promise<void> {
    const { endpoint } = this.#require();
    const eventHeader = header(request, 'event') ?? '';
    const event = (eventHeader.split(';')[0] ?? '').trim().toLowerCase();
    if (event !== 'catalog' && event !== 'presence')
      return endpoint.respond(request, peer, 489, {
        reason: 'Bad Event',
        headers: [{ name: 'Allow-Events', value: 'Catalog, presence' }],
      });
    const expiresText = header(request, 'expires') ?? '3600';
    const expires = /^\d{1,10}$/.test(expiresText) ? Math.min(Number(expiresText), 86_400) : 3600;
    const callId = header(request, 'call-id') ?? '';
    const known = this.#subscriptions.get(callId);
    const contact = { name: 'Contact', value: endpoint.contact(this.#o.deviceId, peer) };
    const granted = { name: 'Expires', value: String(expires) };
    if (known) {
      // A refresh or, with Expires 0, an unsubscribe in the existing dialog.
      if (expires === 0) this.#subscriptions.delete(callId);
      else known.expiresAt = Date.now() + expires * 1000;
      return endpoint.respond(request, peer, 200, { headers: [granted, contact], toTag: tagOf(known.local) });
    }
    if (expires === 0) return endpoint.respond(request, peer, 200, { headers: [granted, contact] });
    const toTag = sipToken(4);
    const from = header(request, 'from') ?? '';
    this.#subscriptions.set(callId, {
      callId,
      event,
      eventHeader,
      local: `${header(request, 'to') ?? this.#aor};tag=${toTag}`,
      remote: from,
      remoteTarget: uriOf(header(request, 'contact') ?? from),
      peer,
      cseq: 0,
      expiresAt: Date.now() + expires * 1000,
    });
    await endpoint.respond(request, peer, 200, { headers: [granted, contact], toTag });
  }

  #clearTimers(): void {
    if (this.#keepaliveTimer) clearInterval(this.#keepaliveTimer);
    if (this.#refreshTimer) clearTimeout(this.#refreshTimer);
    this.#keepaliveTimer = undefined;
    this.#refreshTimer = undefined;
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
    this.#clearTimers();
    const polite = graceful && !this.#vanished;
    await run.live.endAll('stopped', polite);
    if (polite && this.#registered) {
      try {
        await this.#register(0, 2000);
      } catch (err) {
        this.#log.warn({ err: errorMessage(err) }, 'unregister failed');
      }
    }
    this.#registered = false;
    this.#subscriptions.clear();
    this.#run = undefined;
    await run.endpoint.stop();
    this.#log.info('simulated GB/T 28181 camera stopped');
  }
}

function emptyStats(): Gb28181CameraStats {
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
