/**
 * The GB/T 28181 platform (SIP server side): registrar, keepalive and offline detection,
 * MANSCDP queries answered by SN, alarms, subscriptions, and live INVITE/BYE dialogs.
 * Media is not handled here: `invite` takes the address an RTP receiver listens on.
 * One device's bad message is answered with a SIP error and counted; every other device
 * keeps being served.
 */
import { EventEmitter } from 'node:events';
import {
  type AlarmFilter,
  type AlarmNotify,
  buildGbSdp,
  type CatalogItem,
  CitysenseError,
  componentLogger,
  type DeviceInfoResponse,
  type DeviceStatusResponse,
  decodeManscdp,
  encodeManscdp,
  errorMessage,
  type GbMediaDescription,
  type GbMediaTransport,
  type Logger,
  type ManscdpMessage,
  parseGbId,
  parseGbSdp,
} from '@citysense/protocol';
import { DigestAuthenticator } from '../sip/digest.ts';
import type { SipEndpoint, SipEndpointStats } from '../sip/endpoint.ts';
import { header, type SipRequest, type SipResponse } from '../sip/message.ts';
import { peerKey, type SipPeer } from '../sip/transport.ts';
import { deviceRefused } from './errors.ts';
import { type QueryCmd, QueryWaiter } from './query-waiter.ts';
import { type PasswordLookup, Registrar, registeredHeaders } from './registrar.ts';
import { SsrcAllocator } from './ssrc.ts';
import { type DeviceSubscription, PlatformSubscriptions, type SubscriptionKind } from './subscriptions.ts';

/** Options of a platform. */
export interface Gb28181PlatformOptions {
  /** The SIP endpoint the platform serves on (started by the platform). */
  endpoint: SipEndpoint;
  /** The platform's 20-digit SIP server ID (type 200). */
  serverId: string;
  /** SIP domain; default the first 10 digits of the server ID. */
  domain?: string | undefined;
  /** Password of a device that may register; a coded refusal or undefined refuses it. */
  passwordOf: PasswordLookup;
  /** Expected keepalive interval, ms (default 60 000). */
  keepaliveIntervalMs?: number | undefined;
  /** Missed keepalives before a device is offline (default 3). */
  keepaliveMissed?: number | undefined;
  /** How long a query waits for its answer, ms (default 10 000). */
  queryTimeoutMs?: number | undefined;
  minExpiresS?: number | undefined;
  maxExpiresS?: number | undefined;
  logger?: Logger | undefined;
}

/** A registered device as the platform sees it. */
export interface VideoDeviceSession {
  deviceId: string;
  peer: SipPeer;
  contact: string | undefined;
  userAgent: string | undefined;
  registeredAt: number;
  expiresAt: number;
  lastKeepaliveAt: number | undefined;
  online: boolean;
}

/** Why a device's state changed. */
export type DeviceStatusReason = 'registered' | 'keepalive' | 'keepalive-missed' | 'expired' | 'unregistered';

/** A change of a device's online state. */
export interface DeviceStatusChange {
  deviceId: string;
  online: boolean;
  reason: DeviceStatusReason;
  time: number;
}

/** A live dialog with a device (one INVITE). */
export interface LiveDialog {
  id: string;
  deviceId: string;
  channelId: string;
  ssrc: string;
  /** What the device said it sends. */
  answer: GbMediaDescription;
  startedAt: number;
}

/** A refused request, for logs and counters. */
export interface RefusedRequest {
  deviceId: string | undefined;
  method: string;
  status: number;
  code: string;
  reason: string;
  peer: string;
}

/** Events of a platform. */
export interface Gb28181PlatformEvents {
  status: [change: DeviceStatusChange];
  registered: [session: VideoDeviceSession];
  keepalive: [deviceId: string, time: number];
  alarm: [alarm: AlarmNotify, receivedAt: number];
  /** Catalog items a device pushed by NOTIFY (subscription) or answered. */
  catalog: [deviceId: string, items: CatalogItem[]];
  refused: [refused: RefusedRequest];
  /** A live dialog ended from the device side (BYE) or by the platform. */
  liveEnded: [dialog: LiveDialog, by: 'device' | 'platform'];
}

/** Counters of a platform. */
export interface Gb28181PlatformStats {
  sip: SipEndpointStats;
  devices: number;
  online: number;
  registrations: number;
  keepalives: number;
  alarms: number;
  refused: Record<string, number>;
  pendingQueries: number;
  liveDialogs: number;
}

/** The SIP side of a dialog: where in-dialog requests go and with which headers. */
interface DialogLeg {
  peer: SipPeer;
  callId: string;
  from: string;
  to: string;
  uri: string;
}

interface DialogState extends LiveDialog, DialogLeg {
  cseq: number;
}

const ALLOWED = 'REGISTER, MESSAGE, NOTIFY, BYE, ACK, OPTIONS, INFO';
const MANSCDP = /^application\/manscdp\+xml/i;

/** A GB/T 28181 SIP platform on one endpoint. */
export class Gb28181Platform extends EventEmitter<Gb28181PlatformEvents> {
  readonly serverId: string;
  readonly domain: string;
  readonly #o: Gb28181PlatformOptions;
  readonly #log: Logger;
  readonly #endpoint: SipEndpoint;
  readonly #registrar: Registrar;
  readonly #auth: DigestAuthenticator;
  readonly #sessions = new Map<string, VideoDeviceSession>();
  readonly #queries = new QueryWaiter();
  readonly #dialogs = new Map<string, DialogState>();
  readonly #ssrc: SsrcAllocator;
  readonly #subscriptions: PlatformSubscriptions;
  readonly #refusedCounts: Record<string, number> = {};
  #registrations = 0;
  #keepalives = 0;
  #alarms = 0;
  #sweep: NodeJS.Timeout | undefined;
  #started = false;

  constructor(o: Gb28181PlatformOptions) {
    super();
    parseGbId(o.serverId);
    this.#o = o;
    this.serverId = o.serverId;
    this.domain = o.domain ?? o.serverId.slice(0, 10);
    this.#log = componentLogger('gb28181', o.logger);
    this.#endpoint = o.endpoint;
    this.#auth = new DigestAuthenticator(this.domain);
    this.#registrar = new Registrar({
      authenticator: this.#auth,
      passwordOf: o.passwordOf,
      ...(o.minExpiresS !== undefined ? { minExpiresS: o.minExpiresS } : {}),
      ...(o.maxExpiresS !== undefined ? { maxExpiresS: o.maxExpiresS } : {}),
    });
    this.#ssrc = new SsrcAllocator(this.domain);
    this.#subscriptions = new PlatformSubscriptions({
      endpoint: o.endpoint,
      serverId: o.serverId,
      domain: this.domain,
      nextSn: () => this.#queries.nextSn(),
    });
    this.#endpoint.on('request', (request, peer) => {
      this.#onRequest(request, peer).catch((err: unknown) =>
        this.#log.error({ err: errorMessage(err), method: request.method }, 'request handling failed'),
      );
    });
  }

  /** Starts the SIP endpoint and the keepalive sweep. Idempotent. */
  async start(): Promise<void> {
    if (this.#started) return;
    this.#started = true;
    await this.#endpoint.start();
    const interval = Math.max(50, Math.min(1000, this.#keepaliveMs / 4));
    this.#sweep = setInterval(() => this.#sweepSessions(Date.now()), interval);
    this.#sweep.unref();
    this.#log.info(
      { serverId: this.serverId, domain: this.domain, port: this.#endpoint.port },
      'GB/T 28181 platform up',
    );
  }

  /** Ends live dialogs, fails pending queries and stops the endpoint. Idempotent. */
  async stop(): Promise<void> {
    if (!this.#started) return;
    this.#started = false;
    if (this.#sweep) clearInterval(this.#sweep);
    await Promise.allSettled([...this.#dialogs.keys()].map((id) => this.bye(id)));
    // Subscriptions are left to expire on the devices: a stopping platform answers no NOTIFY.
    this.#subscriptions.clear();
    this.#queries.cancelAll(new CitysenseError('CS_ERR_GB_STOPPED', 'the GB/T 28181 platform stopped', 503));
    await this.#endpoint.stop();
  }

  get #keepaliveMs(): number {
    return this.#o.keepaliveIntervalMs ?? 60_000;
  }

  /** The SIP port devices register on. */
  get port(): number {
    return this.#endpoint.port;
  }

  /**
   * Takes back a registration stored before a restart; it lives until its expiry and gets
   * a full keepalive window from now, so a device that is still alive never flaps offline.
   */
  restoreSession(session: Omit<VideoDeviceSession, 'lastKeepaliveAt' | 'online'>): void {
    if (session.expiresAt <= Date.now() || this.#sessions.has(session.deviceId)) return;
    this.#sessions.set(session.deviceId, { ...session, lastKeepaliveAt: Date.now(), online: true });
  }

  /** Registered devices. */
  sessions(): VideoDeviceSession[] {
    return [...this.#sessions.values()].map((s) => ({ ...s }));
  }

  /** One device's session, or undefined. */
  session(deviceId: string): VideoDeviceSession | undefined {
    const s = this.#sessions.get(deviceId);
    return s ? { ...s } : undefined;
  }

  /** Counters. */
  stats(): Gb28181PlatformStats {
    let online = 0;
    for (const s of this.#sessions.values()) if (s.online) online++;
    return {
      sip: this.#endpoint.stats(),
      devices: this.#sessions.size,
      online,
      registrations: this.#registrations,
      keepalives: this.#keepalives,
      alarms: this.#alarms,
      refused: { ...this.#refusedCounts },
      pendingQueries: this.#queries.size,
      liveDialogs: this.#dialogs.size,
    };
  }

  async #onRequest(request: SipRequest, peer: SipPeer): Promise<void> {
    switch (request.method) {
      case 'REGISTER':
        return this.#onRegister(request, peer);
      case 'NOTIFY':
        this.#subscriptions.onNotify(request);
        return this.#onMessage(request, peer);
      case 'MESSAGE':
        return this.#onMessage(request, peer);
      case 'BYE':
        return this.#onBye(request, peer);
      case 'OPTIONS':
        return this.#endpoint.respond(request, peer, 200, { headers: [{ name: 'Allow', value: ALLOWED }] });
      case 'ACK':
        return;
      default:
        this.#refuse(request, peer, 405, 'CS_ERR_SIP_METHOD', `method ${request.method} is not served here`);
        return this.#endpoint.respond(request, peer, 405, { headers: [{ name: 'Allow', value: ALLOWED }] });
    }
  }

  async #onRegister(request: SipRequest, peer: SipPeer): Promise<void> {
    const outcome = this.#registrar.decide(request);
    const now = Date.now();
    switch (outcome.kind) {
      case 'challenge':
        await this.#endpoint.respond(request, peer, 401, {
          headers: [{ name: 'WWW-Authenticate', value: this.#auth.challenge(outcome.stale) }],
        });
        return;
      case 'refused':
        this.#refuse(request, peer, outcome.status, outcome.code, outcome.reason, outcome.deviceId);
        await this.#endpoint.respond(request, peer, outcome.status, {
          headers: [
            ...(outcome.status === 423
              ? [{ name: 'Min-Expires', value: String(this.#o.minExpiresS ?? 60) }]
              : []),
            { name: 'Warning', value: `399 citysense "${outcome.code}: ${outcome.reason}"` },
          ],
        });
        return;
      case 'unregistered': {
        await this.#endpoint.respond(request, peer, 200, { headers: registeredHeaders(0, undefined) });
        const session = this.#sessions.get(outcome.deviceId);
        this.#sessions.delete(outcome.deviceId);
        this.#subscriptions.forget(outcome.deviceId);
        if (session?.online) this.#changeStatus(outcome.deviceId, false, 'unregistered', now);
        this.#log.info({ deviceId: outcome.deviceId }, 'device unregistered');
        return;
      }
      case 'registered': {
        await this.#endpoint.respond(request, peer, 200, {
          headers: registeredHeaders(outcome.expiresS, outcome.contact),
        });
        const known = this.#sessions.get(outcome.deviceId);
        const session: VideoDeviceSession = {
          deviceId: outcome.deviceId,
          peer,
          contact: outcome.contact,
          userAgent: header(request, 'user-agent'),
          registeredAt: known?.registeredAt ?? now,
          expiresAt: now + outcome.expiresS * 1000,
          // A (re-)registration counts as a sign of life.
          lastKeepaliveAt: now,
          online: true,
        };
        this.#sessions.set(outcome.deviceId, session);
        this.#registrations++;
        if (!known) this.#log.info({ deviceId: outcome.deviceId, peer: peerKey(peer) }, 'device registered');
        this.emit('registered', { ...session });
        if (!known?.online) this.#changeStatus(outcome.deviceId, true, 'registered', now);
        return;
      }
    }
  }

  async #onMessage(request: SipRequest, peer: SipPeer): Promise<void> {
    const contentType = header(request, 'content-type') ?? '';
    if (request.body.length === 0 || !MANSCDP.test(contentType)) {
      // A NOTIFY without a MANSCDP body (SUBSCRIBE state) is still acknowledged.
      if (request.method === 'NOTIFY' && request.body.length === 0)
        return this.#endpoint.respond(request, peer, 200);
      this.#refuse(
        request,
        peer,
        415,
        'CS_ERR_GB_CONTENT_TYPE',
        `Content-Type ${JSON.stringify(contentType)} is not MANSCDP`,
      );
      return this.#endpoint.respond(request, peer, 415, {
        headers: [{ name: 'Accept', value: 'Application/MANSCDP+xml' }],
      });
    }
    let message: ManscdpMessage;
    try {
      message = decodeManscdp(request.body);
    } catch (err) {
      const code = err instanceof CitysenseError ? err.code : 'CS_ERR_MANSCDP_INVALID';
      this.#refuse(request, peer, 400, code, errorMessage(err));
      return this.#endpoint.respond(request, peer, 400, {
        headers: [
          {
            name: 'Warning',
            value: `399 citysense "${code}: ${errorMessage(err).replace(/"/g, "'").slice(0, 120)}"`,
          },
        ],
      });
    }
    const deviceId = message.kind === 'unknown' ? undefined : message.deviceId;
    const session = this.#sessionOf(deviceId, request);
    if (!session) {
      // GB/T 28181 devices re-register when the platform does not know them.
      this.#refuse(request, peer, 403, 'CS_ERR_GB_NOT_REGISTERED', 'the sender is not registered', deviceId);
      return this.#endpoint.respond(request, peer, 403);
    }
    await this.#endpoint.respond(request, peer, 200);
    const now = Date.now();
    switch (message.kind) {
      case 'keepalive':
        this.#keepalives++;
        session.lastKeepaliveAt = now;
        session.peer = peer;
        this.emit('keepalive', session.deviceId, now);
        if (!session.online) {
          session.online = true;
          this.#changeStatus(session.deviceId, true, 'keepalive', now);
        }
        return;
      case 'alarm':
        this.#alarms++;
        this.emit('alarm', message, now);
        return;
      case 'catalog':
        // A page of a subscription NOTIFY carries no pending SN; it updates channels directly.
        if (!this.#queries.offer(message)) this.emit('catalog', session.deviceId, message.items);
        return;
      case 'unknown':
        this.#log.debug({ root: message.root, cmdType: message.cmdType }, 'MANSCDP message not interpreted');
        return;
      default:
        this.#queries.offer(message);
    }
  }

  /** The session a message belongs to: by the body's DeviceID, a channel's parent, else the From user. */
  #sessionOf(deviceId: string | undefined, request: SipRequest): VideoDeviceSession | undefined {
    if (deviceId !== undefined) {
      const direct = this.#sessions.get(deviceId);
      if (direct) return direct;
    }
    const from = /sip:(\d{20})@/.exec(header(request, 'from') ?? '')?.[1];
    return from === undefined ? undefined : this.#sessions.get(from);
  }

  #sweepSessions(now: number): void {
    const limit = this.#keepaliveMs * (this.#o.keepaliveMissed ?? 3);
    for (const session of this.#sessions.values()) {
      if (now > session.expiresAt) {
        this.#sessions.delete(session.deviceId);
        this.#subscriptions.forget(session.deviceId);
        if (session.online) this.#changeStatus(session.deviceId, false, 'expired', now);
        continue;
      }
      if (session.online && now - (session.lastKeepaliveAt ?? session.registeredAt) > limit) {
        session.online = false;
        this.#changeStatus(session.deviceId, false, 'keepalive-missed', now);
      }
    }
  }

  #changeStatus(deviceId: string, online: boolean, reason: DeviceStatusReason, time: number): void {
    this.#log.info({ deviceId, online, reason }, online ? 'device online' : 'device offline');
    this.emit('status', { deviceId, online, reason, time });
  }

  #refuse(
    request: SipRequest,
    peer: SipPeer,
    status: number,
    code: string,
    reason: string,
    deviceId?: string,
  ): void {
    this.#refusedCounts[code] = (this.#refusedCounts[code] ?? 0) + 1;
    const refused: RefusedRequest = {
      deviceId,
      method: request.method,
      status,
      code,
      reason,
      peer: peerKey(peer),
    };
    this.#log.warn(refused, 'request refused');
    this.emit('refused', refused);
  }

  #online(deviceId: string): VideoDeviceSession {
    const session = this.#sessions.get(deviceId);
    if (!session)
      throw new CitysenseError(
        'CS_ERR_GB_DEVICE_OFFLINE',
        `device ${deviceId} is not registered with this platform`,
        409,
      );
    return session;
  }

  #deviceUri(deviceId: string): string {
    return `sip:${deviceId}@${this.domain}`;
  }

  #from(): string {
    return `<sip:${this.serverId}@${this.domain}>`;
  }

  /** Sends a MANSCDP MESSAGE to a device and checks its 200. */
  async #message(session: VideoDeviceSession, body: Uint8Array): Promise<void> {
    const response = await this.#endpoint.request({
      method: 'MESSAGE',
      uri: this.#deviceUri(session.deviceId),
      peer: session.peer,
      from: this.#from(),
      to: `<${this.#deviceUri(session.deviceId)}>`,
      body,
    });
    if (response.status !== 200) throw deviceRefused(session.deviceId, 'MESSAGE', response);
  }

  async #query(deviceId: string, cmd: QueryCmd): Promise<Awaited<ReturnType<QueryWaiter['wait']>>> {
    const session = this.#online(deviceId);
    const sn = this.#queries.nextSn();
    const answer = this.#queries.wait(deviceId, cmd, sn, this.#o.queryTimeoutMs ?? 10_000);
    const sent = this.#message(session, encodeManscdp({ kind: 'query', cmdType: cmd, sn, deviceId }));
    // Both outcomes are awaited together: the answer may time out while the MESSAGE is
    // still being retransmitted, and a refused MESSAGE releases the waiter at once.
    try {
      const [, result] = await Promise.all([sent, answer]);
      return result;
    } catch (err) {
      this.#queries.cancel(deviceId, cmd, sn, err as Error);
      throw err;
    }
  }

  /** Asks a device for its channels; resolves with every item once SumNum arrived. */
  async queryCatalog(deviceId: string): Promise<CatalogItem[]> {
    const answer = await this.#query(deviceId, 'Catalog');
    const items = answer.kind === 'catalogDone' ? answer.items : [];
    this.emit('catalog', deviceId, items);
    return items;
  }

  /** Asks a device for its information. */
  async queryDeviceInfo(deviceId: string): Promise<DeviceInfoResponse> {
    const answer = await this.#query(deviceId, 'DeviceInfo');
    if (answer.kind !== 'deviceInfo') throw new Error('unreachable: DeviceInfo answered with another kind');
    return answer;
  }

  /** Asks a device for its status. */
  async queryDeviceStatus(deviceId: string): Promise<DeviceStatusResponse> {
    const answer = await this.#query(deviceId, 'DeviceStatus');
    if (answer.kind !== 'deviceStatus')
      throw new Error('unreachable: DeviceStatus answered with another kind');
    return answer;
  }

  /**
   * Subscribes to a device's catalog changes (GB/T 28181-2016 §9.11.2): SUBSCRIBE with
   * `Event: Catalog;id=SN` and a Catalog query body; changes arrive by NOTIFY as `catalog`
   * events. Called again, it refreshes the subscription inside its dialog.
   */
  async subscribeCatalog(deviceId: string, expiresS = 3600): Promise<DeviceSubscription> {
    return this.#subscriptions.subscribe(this.#online(deviceId), 'Catalog', expiresS, (sn) =>
      encodeManscdp({ kind: 'query', cmdType: 'Catalog', sn, deviceId }),
    );
  }

  /**
   * Subscribes to a device's alarms (GB/T 28181-2016 §9.11.1): SUBSCRIBE with `Event: presence`
   * and a `Query/Alarm` body carrying `filter` (§A.2.4 e); alarms that meet it arrive by NOTIFY
   * as `alarm` events. Called again, it refreshes inside the dialog and replaces the filter.
   */
  async subscribeAlarm(
    deviceId: string,
    o: { expiresS?: number | undefined; filter?: AlarmFilter | undefined } = {},
  ): Promise<DeviceSubscription> {
    return this.#subscriptions.subscribe(this.#online(deviceId), 'Alarm', o.expiresS ?? 3600, (sn) =>
      encodeManscdp({ ...o.filter, kind: 'query', cmdType: 'Alarm', sn, deviceId }),
    );
  }

  /** Ends a catalog or alarm subscription with `Expires: 0` in its dialog; unknown ones are ignored. */
  async unsubscribe(deviceId: string, kind: SubscriptionKind): Promise<void> {
    await this.#subscriptions.unsubscribe(this.#sessions.get(deviceId), deviceId, kind);
  }

  /** Catalog and alarm subscriptions held on devices now. */
  subscriptions(): DeviceSubscription[] {
    return this.#subscriptions.list();
  }

  /**
   * Opens live video of `channelId` on `deviceId` (GB/T 28181-2016 §9.2.2.1): INVITE with
   * our receiver's address, the device's 200 carries its SDP, and ACK completes the dialog.
   */
  async invite(o: {
    deviceId: string;
    channelId: string;
    /** Where the RTP receiver listens, as the device reaches it. */
    mediaAddress: string;
    mediaPort: number;
    transport: GbMediaTransport;
    /** SSRC to use; one is allocated when absent. */
    ssrc?: string | undefined;
  }): Promise<LiveDialog> {
    parseGbId(o.channelId);
    const session = this.#online(o.deviceId);
    const ssrc = o.ssrc ?? this.#ssrc.allocate();
    const uri = `sip:${o.channelId}@${this.domain}`;
    const from = `<sip:${this.serverId}@${this.domain}>`;
    const to = `<${uri}>`;
    const sdp = buildGbSdp({
      user: this.serverId,
      host: o.mediaAddress,
      port: o.mediaPort,
      transport: o.transport,
      direction: 'recvonly',
      ssrc,
    });
    let response: SipResponse;
    const callId = `${Date.now().toString(36)}${Math.random().toString(36).slice(2, 10)}`;
    const fromTagged = `${from};tag=${callId.slice(-8)}`;
    try {
      response = await this.#endpoint.request({
        method: 'INVITE',
        uri,
        peer: session.peer,
        from: fromTagged,
        to,
        callId,
        cseq: 1,
        headers: [
          { name: 'Contact', value: this.#endpoint.contact(this.serverId, session.peer) },
          { name: 'Subject', value: `${o.channelId}:${ssrc},${this.serverId}:0` },
        ],
        body: Buffer.from(sdp, 'latin1'),
        contentType: 'APPLICATION/SDP',
      });
    } catch (err) {
      if (o.ssrc === undefined) this.#ssrc.release(ssrc);
      throw err;
    }
    const toValue = header(response, 'to') ?? to;
    if (response.status !== 200) {
      if (o.ssrc === undefined) this.#ssrc.release(ssrc);
      throw deviceRefused(o.deviceId, 'INVITE', response);
    }
    const leg: DialogLeg = { peer: session.peer, callId, from: fromTagged, to: toValue, uri };
    // A 2xx is always ACKed (RFC 3261 §13.2.2.4), also when its SDP is unusable; then BYE ends it.
    await this.#endpoint.sendStateless(this.#inDialog(leg, 'ACK', 1), session.peer);
    let answer: GbMediaDescription;
    try {
      answer = parseGbSdp(response.body.toString('latin1'));
    } catch (err) {
      if (o.ssrc === undefined) this.#ssrc.release(ssrc);
      await this.#endpoint
        .send(this.#inDialog(leg, 'BYE', 2), session.peer, 4000)
        .catch((byeErr: unknown) =>
          this.#log.warn({ err: errorMessage(byeErr) }, 'BYE after a bad SDP failed'),
        );
      throw new CitysenseError(
        'CS_ERR_GB_SDP_INVALID',
        `device ${o.deviceId} answered INVITE of ${o.channelId} with an unusable SDP: ${errorMessage(err)}`,
        502,
      );
    }
    const dialog: DialogState = {
      ...leg,
      id: callId,
      deviceId: o.deviceId,
      channelId: o.channelId,
      ssrc,
      answer,
      startedAt: Date.now(),
      cseq: 1,
    };
    this.#dialogs.set(callId, dialog);
    return publicDialog(dialog);
  }

  /** A request inside a dialog (ACK, BYE). */
  #inDialog(dialog: DialogLeg, method: string, cseq: number): SipRequest {
    return {
      kind: 'request',
      method,
      uri: dialog.uri,
      headers: [
        {
          name: 'Via',
          value: this.#endpoint.via(dialog.peer, `z9hG4bK${Math.random().toString(36).slice(2, 14)}`),
        },
        { name: 'From', value: dialog.from },
        { name: 'To', value: dialog.to },
        { name: 'Call-ID', value: dialog.callId },
        { name: 'CSeq', value: `${cseq} ${method}` },
        { name: 'Max-Forwards', value: '70' },
      ],
      body: Buffer.alloc(0),
    };
  }

  /** Ends a live dialog with BYE. Unknown ids are ignored. */
  async bye(dialogId: string): Promise<void> {
    const dialog = this.#dialogs.get(dialogId);
    if (!dialog) return;
    this.#dialogs.delete(dialogId);
    this.#ssrc.release(dialog.ssrc);
    dialog.cseq++;
    try {
      await this.#endpoint.send(this.#inDialog(dialog, 'BYE', dialog.cseq), dialog.peer, 4000);
    } catch (err) {
      this.#log.warn(
        { dialog: dialogId, err: errorMessage(err) },
        'BYE not answered; the dialog is closed anyway',
      );
    }
    this.emit('liveEnded', publicDialog(dialog), 'platform');
  }

  /** Live dialogs open now. */
  dialogs(): LiveDialog[] {
    return [...this.#dialogs.values()].map(publicDialog);
  }

  async #onBye(request: SipRequest, peer: SipPeer): Promise<void> {
    const callId = header(request, 'call-id') ?? '';
    const dialog = this.#dialogs.get(callId);
    if (!dialog) return this.#endpoint.respond(request, peer, 481);
    this.#dialogs.delete(callId);
    this.#ssrc.release(dialog.ssrc);
    await this.#endpoint.respond(request, peer, 200);
    this.emit('liveEnded', publicDialog(dialog), 'device');
  }
}

function publicDialog(d: DialogState): LiveDialog {
  return {
    id: d.id,
    deviceId: d.deviceId,
    channelId: d.channelId,
    ssrc: d.ssrc,
    answer: d.answer,
    startedAt: d.startedAt,
  };
}
