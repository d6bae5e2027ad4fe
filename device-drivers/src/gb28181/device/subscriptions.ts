/**
 * Catalog and alarm subscriptions of a device (GB/T 28181-2016 §9.11, RFC 6665): a SUBSCRIBE
 * is accepted for its Expires (at most a day) and creates a dialog; a SUBSCRIBE inside that
 * dialog refreshes it (a new body replaces the alarm conditions) and `Expires: 0` ends it.
 * Catalog changes go out as `Notify/Catalog` NOTIFYs in the dialog, paged like a Catalog
 * answer; alarms as `Notify/Alarm` NOTIFYs to the subscriptions whose conditions they meet.
 *
 * Which Event means what: the 2016 annex example of an alarm subscription (报警订阅) uses
 * `Event: presence` with a `Query/Alarm` body, as do the common platforms; `Event: Alarm` is
 * accepted as well. `presence` with any other body (mobile position) is accepted and not
 * notified, as before.
 */
import {
  type AlarmFilter,
  type AlarmNotify,
  type AlarmQuery,
  alarmMatches,
  type CatalogChange,
  decodeManscdp,
  encodeManscdp,
  errorMessage,
  type Logger,
  type ManscdpCharset,
  type ManscdpMessage,
} from '@citysense/protocol';
import {
  header,
  type SipEndpoint,
  type SipPeer,
  type SipRequest,
  sipToken,
  tagOf,
  uriOf,
  userOf,
} from '../sip/index.ts';
import { warning } from './queries.ts';

/** What a subscription is for: catalog changes, alarms, or a presence event this device does not send. */
type SubscriptionKind = 'catalog' | 'alarm' | 'presence';

interface Subscription {
  callId: string;
  kind: SubscriptionKind;
  eventHeader: string;
  /** Our side of the dialog, with our tag: From of our NOTIFYs. */
  local: string;
  remote: string;
  remoteTarget: string;
  peer: SipPeer;
  cseq: number;
  expiresAt: number;
  /** An alarm subscription's DeviceID: the device (every alarm) or one channel. */
  targetId: string;
  /** An alarm subscription's conditions (§A.2.4 e). */
  filter: AlarmFilter;
}

/** What the subscriptions need from the device. */
export interface SubscriptionsOptions {
  deviceId: string;
  /** `<sip:DEVICEID@DOMAIN>`, the To of a SUBSCRIBE without one. */
  aor: string;
  /** The platform the device registers with: its alarm subscription replaces the alarm MESSAGE. */
  serverId: string;
  charset: Extract<ManscdpCharset, 'GB2312' | 'UTF-8'>;
  pageSize: number;
  nextSn: () => number;
  onNotifySent: () => void;
  log: Logger;
}

/** How the registering platform's own alarm subscriptions took an alarm. */
export type OwnAlarmDelivery =
  /** It holds none (or no longer: its NOTIFY was answered 481): the alarm goes by MESSAGE. */
  | { kind: 'none' }
  /** Its conditions keep this alarm out: nothing is sent to it. */
  | { kind: 'filtered' }
  /** NOTIFYed; the final status of its NOTIFY. */
  | { kind: 'notified'; status: number };

const MANSCDP = 'Application/MANSCDP+xml';
const ALLOW_EVENTS = 'Catalog, Alarm, presence';

/** The live subscriptions of one device. Constructor assigns only. */
export class DeviceSubscriptions {
  readonly #o: SubscriptionsOptions;
  readonly #subs = new Map<string, Subscription>();

  constructor(options: SubscriptionsOptions) {
    this.#o = options;
  }

  /** Subscriptions now (expired ones included until the next notification). */
  get size(): number {
    return this.#subs.size;
  }

  /** Forgets every subscription. */
  clear(): void {
    this.#subs.clear();
  }

  /**
   * Answers a SUBSCRIBE: 489 for other events, 400 for an unreadable body, 481 inside a
   * dialog the device does not know (RFC 6665 §4.1.2.2: the subscriber then starts anew),
   * else 200 with the granted Expires.
   */
  async onSubscribe(endpoint: SipEndpoint, request: SipRequest, peer: SipPeer): Promise<void> {
    const eventHeader = header(request, 'event') ?? '';
    const event = (eventHeader.split(';')[0] ?? '').trim().toLowerCase();
    if (event !== 'catalog' && event !== 'alarm' && event !== 'presence')
      return endpoint.respond(request, peer, 489, {
        reason: 'Bad Event',
        headers: [{ name: 'Allow-Events', value: ALLOW_EVENTS }],
      });
    let body: ManscdpMessage | undefined;
    try {
      body = request.body.length > 0 ? decodeManscdp(request.body) : undefined;
    } catch (err) {
      return endpoint.respond(request, peer, 400, { headers: [{ name: 'Warning', value: warning(err) }] });
    }
    const alarmQuery = body?.kind === 'query' && body.cmdType === 'Alarm' ? body : undefined;
    const kind: SubscriptionKind =
      event === 'catalog' ? 'catalog' : event === 'alarm' || alarmQuery ? 'alarm' : 'presence';
    const expiresText = header(request, 'expires') ?? '3600';
    const expires = /^\d{1,10}$/.test(expiresText) ? Math.min(Number(expiresText), 86_400) : 3600;
    const callId = header(request, 'call-id') ?? '';
    const contact = { name: 'Contact', value: endpoint.contact(this.#o.deviceId, peer) };
    const granted = { name: 'Expires', value: String(expires) };
    const toTag = tagOf(header(request, 'to'));
    if (toTag !== undefined) {
      const known = this.#subs.get(callId);
      if (!known || tagOf(known.local) !== toTag) return endpoint.respond(request, peer, 481);
      // A refresh or, with Expires 0, an unsubscribe in the existing dialog (§9.11.1, RFC 6665 §4.1.2).
      if (expires === 0) this.#subs.delete(callId);
      else {
        known.expiresAt = Date.now() + expires * 1000;
        known.peer = peer;
        if (alarmQuery) {
          known.filter = filterOf(alarmQuery);
          known.targetId = alarmQuery.deviceId;
        }
      }
      return endpoint.respond(request, peer, 200, { headers: [granted, contact] });
    }
    if (expires === 0) return endpoint.respond(request, peer, 200, { headers: [granted, contact] });
    const localTag = sipToken(4);
    const from = header(request, 'from') ?? '';
    this.#subs.set(callId, {
      callId,
      kind,
      eventHeader,
      local: `${header(request, 'to') ?? this.#o.aor};tag=${localTag}`,
      remote: from,
      remoteTarget: uriOf(header(request, 'contact') ?? from),
      peer,
      cseq: 0,
      expiresAt: Date.now() + expires * 1000,
      targetId: alarmQuery?.deviceId ?? this.#o.deviceId,
      filter: alarmQuery ? filterOf(alarmQuery) : {},
    });
    await endpoint.respond(request, peer, 200, { headers: [granted, contact], toTag: localTag });
  }

  /** NOTIFYs `changes` to every live catalog subscription; resolves once all were answered. */
  async notify(endpoint: SipEndpoint, changes: readonly CatalogChange[]): Promise<void> {
    if (changes.length === 0) return;
    const now = Date.now();
    const sends = this.#live(now)
      .filter((sub) => sub.kind === 'catalog')
      .map((sub) => this.#notifyPages(endpoint, sub, changes, now));
    await Promise.all(sends);
  }

  /**
   * NOTIFYs `alarm` in every live alarm subscription whose DeviceID and conditions it meets
   * (§9.11.1: the event source notifies its observers at once). Failures towards other
   * subscribers are logged; those of the registering platform's NOTIFY reject, like its MESSAGE.
   */
  async notifyAlarm(endpoint: SipEndpoint, alarm: AlarmNotify): Promise<OwnAlarmDelivery> {
    const now = Date.now();
    const body = encodeManscdp(alarm, { encoding: this.#o.charset });
    let filtered = false;
    const own: Array<Promise<number>> = [];
    const others: Array<Promise<number>> = [];
    for (const sub of this.#live(now)) {
      if (sub.kind !== 'alarm') continue;
      const isOwn = userOf(uriOf(sub.remote)) === this.#o.serverId;
      const wanted =
        (sub.targetId === this.#o.deviceId || sub.targetId === alarm.deviceId) &&
        alarmMatches(sub.filter, alarm);
      if (!wanted) {
        filtered ||= isOwn;
        continue;
      }
      (isOwn ? own : others).push(this.#send(endpoint, sub, body, now));
    }
    const [ownStatuses, otherResults] = await Promise.all([Promise.all(own), Promise.allSettled(others)]);
    for (const result of otherResults)
      if (result.status === 'rejected')
        this.#o.log.warn(
          { sn: alarm.sn, err: errorMessage(result.reason) },
          'alarm NOTIFY to a subscriber failed',
        );
    const answered = ownStatuses.filter((status) => status !== 481);
    if (answered.length > 0) return { kind: 'notified', status: Math.max(...answered) };
    return filtered ? { kind: 'filtered' } : { kind: 'none' };
  }

  /** Live subscriptions; expired ones are dropped on the way. */
  #live(now: number): Subscription[] {
    const live: Subscription[] = [];
    for (const sub of this.#subs.values()) {
      if (sub.expiresAt <= now) this.#subs.delete(sub.callId);
      else live.push(sub);
    }
    return live;
  }

  async #notifyPages(
    endpoint: SipEndpoint,
    sub: Subscription,
    changes: readonly CatalogChange[],
    now: number,
  ): Promise<void> {
    const size = this.#o.pageSize;
    const sn = this.#o.nextSn();
    for (let from = 0; from < changes.length; from += size) {
      const body = encodeManscdp(
        {
          kind: 'catalogNotify',
          sn,
          deviceId: this.#o.deviceId,
          sumNum: changes.length,
          items: changes.slice(from, from + size),
        },
        { encoding: this.#o.charset },
      );
      if ((await this.#send(endpoint, sub, body, now)) === 481) return;
    }
  }

  /** One NOTIFY in the subscription's dialog; resolves with its final status. */
  async #send(endpoint: SipEndpoint, sub: Subscription, body: Uint8Array, now: number): Promise<number> {
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
      body,
      contentType: MANSCDP,
    });
    this.#o.onNotifySent();
    // 481: the subscriber no longer knows the subscription (RFC 6665 §4.1.3).
    if (response.status === 481) this.#subs.delete(sub.callId);
    return response.status;
  }
}

/** The conditions of an alarm subscription body, without its head. */
function filterOf(query: AlarmQuery): AlarmFilter {
  const { kind: _kind, cmdType: _cmdType, sn: _sn, deviceId: _deviceId, ...filter } = query;
  return filter;
}
