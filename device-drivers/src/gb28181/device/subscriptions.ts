/**
 * Catalog and presence subscriptions of a device (GB/T 28181-2016 §9.11, RFC 6665): a
 * SUBSCRIBE is accepted for its Expires (at most a day) and creates a dialog; catalog
 * changes go out as `Notify/Catalog` NOTIFYs in that dialog, paged like a Catalog answer.
 */
import { type CatalogChange, encodeManscdp, type ManscdpCharset } from '@citysense/protocol';
import {
  header,
  type SipEndpoint,
  type SipPeer,
  type SipRequest,
  sipToken,
  tagOf,
  uriOf,
} from '../sip/index.ts';

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

/** What the subscriptions need from the device. */
export interface SubscriptionsOptions {
  deviceId: string;
  /** `<sip:DEVICEID@DOMAIN>`, the To of a SUBSCRIBE without one. */
  aor: string;
  charset: Extract<ManscdpCharset, 'GB2312' | 'UTF-8'>;
  pageSize: number;
  nextSn: () => number;
  onNotifySent: () => void;
}

const MANSCDP = 'Application/MANSCDP+xml';

/** The live subscriptions of one device. Constructor assigns only. */
export class CatalogSubscriptions {
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

  /** Answers a SUBSCRIBE: 489 for other events, else 200 with the granted Expires. */
  async onSubscribe(endpoint: SipEndpoint, request: SipRequest, peer: SipPeer): Promise<void> {
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
    const known = this.#subs.get(callId);
    const contact = { name: 'Contact', value: endpoint.contact(this.#o.deviceId, peer) };
    const granted = { name: 'Expires', value: String(expires) };
    if (known) {
      // A refresh or, with Expires 0, an unsubscribe in the existing dialog.
      if (expires === 0) this.#subs.delete(callId);
      else known.expiresAt = Date.now() + expires * 1000;
      return endpoint.respond(request, peer, 200, { headers: [granted, contact], toTag: tagOf(known.local) });
    }
    if (expires === 0) return endpoint.respond(request, peer, 200, { headers: [granted, contact] });
    const toTag = sipToken(4);
    const from = header(request, 'from') ?? '';
    this.#subs.set(callId, {
      callId,
      event,
      eventHeader,
      local: `${header(request, 'to') ?? this.#o.aor};tag=${toTag}`,
      remote: from,
      remoteTarget: uriOf(header(request, 'contact') ?? from),
      peer,
      cseq: 0,
      expiresAt: Date.now() + expires * 1000,
    });
    await endpoint.respond(request, peer, 200, { headers: [granted, contact], toTag });
  }

  /** NOTIFYs `changes` to every live catalog subscription; resolves once all were answered. */
  async notify(endpoint: SipEndpoint, changes: readonly CatalogChange[]): Promise<void> {
    if (changes.length === 0) return;
    const now = Date.now();
    const sends: Promise<void>[] = [];
    for (const sub of this.#subs.values()) {
      if (sub.expiresAt <= now) {
        this.#subs.delete(sub.callId);
        continue;
      }
      if (sub.event === 'catalog') sends.push(this.#notifyPages(endpoint, sub, changes, now));
    }
    await Promise.all(sends);
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
          {
            kind: 'catalogNotify',
            sn,
            deviceId: this.#o.deviceId,
            sumNum: changes.length,
            items: changes.slice(from, from + size),
          },
          { encoding: this.#o.charset },
        ),
        contentType: MANSCDP,
      });
      this.#o.onNotifySent();
      // 481: the platform no longer knows the subscription (RFC 6665 §4.1.3).
      if (response.status === 481) {
        this.#subs.delete(sub.callId);
        return;
      }
    }
  }
}
