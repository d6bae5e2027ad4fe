/**
 * The platform's subscriptions on devices (GB/T 28181-2016 §9.11, RFC 6665): one per device
 * and kind. The first SUBSCRIBE creates a dialog; a later subscribe refreshes inside it
 * (same Call-ID, tags and Event, next CSeq) and `Expires: 0` in it cancels. A refresh the
 * device answers 481 has lost its dialog (the device restarted): a new subscription is made.
 *
 * Event values as the standard's annex examples and common devices use them: `Catalog;id=SN`
 * for the catalog (§9.11.2), `presence` for alarms (§9.11.1), each with its Query body.
 */
import { CitysenseError } from '@citysense/protocol';
import { type SipEndpoint, sipToken } from '../sip/endpoint.ts';
import { header, type SipRequest, type SipResponse, uriOf } from '../sip/message.ts';
import type { SipPeer } from '../sip/transport.ts';
import { deviceRefused } from './errors.ts';

/** What the platform subscribes to on a device. */
export type SubscriptionKind = 'Catalog' | 'Alarm';

/** A subscription the platform holds on a device. */
export interface DeviceSubscription {
  deviceId: string;
  kind: SubscriptionKind;
  /** Call-ID of its dialog; the same for every refresh. */
  callId: string;
  /** When the Expires the device granted runs out, ms since the epoch. */
  expiresAt: number;
}

interface SubscriptionDialog extends DeviceSubscription {
  /** Our From, with our tag. */
  from: string;
  /** The device's To, with its tag once it answered. */
  to: string;
  /** Remote target: the Contact of the device's 200. */
  uri: string;
  event: string;
  cseq: number;
  /** The Query last sent, repeated in the cancel. */
  body: Uint8Array;
}

/** The device a SUBSCRIBE goes to: its ID and where it registered from. */
export interface SubscribedDevice {
  deviceId: string;
  peer: SipPeer;
}

/** What the subscriptions need from the platform. */
export interface PlatformSubscriptionsOptions {
  endpoint: SipEndpoint;
  serverId: string;
  domain: string;
  nextSn: () => number;
}

/** Subscriptions the platform holds. Constructor assigns only. */
export class PlatformSubscriptions {
  readonly #o: PlatformSubscriptionsOptions;
  readonly #dialogs = new Map<string, SubscriptionDialog>();

  constructor(options: PlatformSubscriptionsOptions) {
    this.#o = options;
  }

  /** Subscriptions held now. */
  list(): DeviceSubscription[] {
    return [...this.#dialogs.values()].map(publicOf);
  }

  /**
   * Subscribes, or refreshes the subscription held, for `expiresS`; `body` builds the Query
   * for an SN. Resolves with the subscription as granted; rejects CS_ERR_GB_DEVICE_REFUSED.
   */
  async subscribe(
    device: SubscribedDevice,
    kind: SubscriptionKind,
    expiresS: number,
    body: (sn: number) => Uint8Array,
  ): Promise<DeviceSubscription> {
    if (!Number.isInteger(expiresS) || expiresS < 1)
      throw new CitysenseError(
        'CS_ERR_GB_SUBSCRIPTION_EXPIRES',
        `a subscription lasts a positive whole number of seconds, not ${expiresS}; unsubscribe() ends one`,
        400,
      );
    const key = keyOf(device.deviceId, kind);
    const known = this.#dialogs.get(key);
    if (known) {
      known.body = body(this.#o.nextSn());
      const response = await this.#send(device, known, expiresS);
      // RFC 6665 §4.1.2.2: 481 means the subscription is gone; anything else answers the refresh.
      if (response.status !== 481) return publicOf(granted(device, known, response, expiresS));
      if (this.#dialogs.get(key) === known) this.#dialogs.delete(key);
    }
    const sn = this.#o.nextSn();
    const uri = `sip:${device.deviceId}@${this.#o.domain}`;
    const dialog: SubscriptionDialog = {
      deviceId: device.deviceId,
      kind,
      callId: sipToken(12),
      expiresAt: 0,
      from: `<sip:${this.#o.serverId}@${this.#o.domain}>;tag=${sipToken(4)}`,
      to: `<${uri}>`,
      uri,
      event: kind === 'Catalog' ? `Catalog;id=${sn}` : 'presence',
      cseq: 0,
      body: body(sn),
    };
    const response = await this.#send(device, dialog, expiresS);
    granted(device, dialog, response, expiresS);
    dialog.to = header(response, 'to') ?? dialog.to;
    const contact = header(response, 'contact');
    if (contact !== undefined) dialog.uri = uriOf(contact);
    this.#dialogs.set(key, dialog);
    return publicOf(dialog);
  }

  /**
   * Cancels a subscription with `Expires: 0` in its dialog (§9.11, RFC 6665 §4.1.2.3); it is
   * forgotten first, so NOTIFYs still on their way are the last. Without `device` (no longer
   * registered) it is only forgotten. Unknown subscriptions are ignored.
   */
  async unsubscribe(
    device: SubscribedDevice | undefined,
    deviceId: string,
    kind: SubscriptionKind,
  ): Promise<void> {
    const key = keyOf(deviceId, kind);
    const dialog = this.#dialogs.get(key);
    if (!dialog) return;
    this.#dialogs.delete(key);
    if (!device) return;
    const response = await this.#send(device, dialog, 0);
    if (response.status >= 300 && response.status !== 481)
      throw deviceRefused(deviceId, 'SUBSCRIBE', response);
  }

  /** Forgets a device's subscriptions (it unregistered or expired; its dialogs died with it). */
  forget(deviceId: string): void {
    for (const kind of ['Catalog', 'Alarm'] as const) this.#dialogs.delete(keyOf(deviceId, kind));
  }

  /** Forgets the subscription a `Subscription-State: terminated` NOTIFY ends (RFC 6665 §4.1.3). */
  onNotify(request: SipRequest): void {
    if (!/^\s*terminated/i.test(header(request, 'subscription-state') ?? '')) return;
    const callId = header(request, 'call-id');
    for (const [key, dialog] of this.#dialogs) if (dialog.callId === callId) this.#dialogs.delete(key);
  }

  /** Forgets everything. */
  clear(): void {
    this.#dialogs.clear();
  }

  #send(device: SubscribedDevice, dialog: SubscriptionDialog, expiresS: number): Promise<SipResponse> {
    const { endpoint, serverId } = this.#o;
    dialog.cseq++;
    return endpoint.request({
      method: 'SUBSCRIBE',
      uri: dialog.uri,
      peer: device.peer,
      from: dialog.from,
      to: dialog.to,
      callId: dialog.callId,
      cseq: dialog.cseq,
      headers: [
        { name: 'Event', value: dialog.event },
        { name: 'Expires', value: String(expiresS) },
        { name: 'Contact', value: endpoint.contact(serverId, device.peer) },
      ],
      body: dialog.body,
    });
  }
}

/** Takes the Expires a 2xx granted (RFC 6665 §4.1.2.1: it may be shorter than asked); throws on a refusal. */
function granted(
  device: SubscribedDevice,
  dialog: SubscriptionDialog,
  response: SipResponse,
  asked: number,
): SubscriptionDialog {
  if (response.status < 200 || response.status >= 300)
    throw deviceRefused(device.deviceId, 'SUBSCRIBE', response);
  const text = header(response, 'expires') ?? '';
  const seconds = /^\d{1,10}$/.test(text.trim()) ? Number(text) : asked;
  dialog.expiresAt = Date.now() + seconds * 1000;
  return dialog;
}

function keyOf(deviceId: string, kind: SubscriptionKind): string {
  return `${deviceId}|${kind}`;
}

function publicOf(d: SubscriptionDialog): DeviceSubscription {
  return { deviceId: d.deviceId, kind: d.kind, callId: d.callId, expiresAt: d.expiresAt };
}
