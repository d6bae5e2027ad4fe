/**
 * WS-Discovery target service of the simulated camera (WS-Discovery 1.0 §5.3,
 * ONVIF Core §7.3): answers a Probe for `dn:NetworkVideoTransmitter` (or an untyped
 * Probe) with a ProbeMatches unicast back to the sender, RelatesTo = the probe's
 * MessageID, XAddrs = the device service URL.
 */
import { randomUUID } from 'node:crypto';
import { createSocket, type RemoteInfo, type Socket } from 'node:dgram';
import type { AddressInfo } from 'node:net';
import type { Logger } from '@citysense/protocol';
import { child, parseSoapRequest, textOf, xmlEscape } from './soap.ts';

/** WS-Discovery multicast group and port (WS-Discovery 1.0 §2.4). */
export const WS_DISCOVERY_MULTICAST = { address: '239.255.255.250', port: 3702 } as const;

/** Where the responder listens. */
export interface DiscoveryResponderOptions {
  /** Multicast group (joined) or a unicast address to bind, e.g. `127.0.0.1` for tests. */
  address: string;
  port: number;
  /** Endpoint reference of the camera, `urn:uuid:…`. */
  endpoint: string;
  /** Device service URL(s) to advertise. */
  xaddrs: () => string;
  scopes: string[];
  log: Logger;
}

const MAX_DATAGRAM = 16 * 1024;

/** Answers WS-Discovery probes on UDP. */
export class WsDiscoveryResponder {
  readonly #o: DiscoveryResponderOptions;
  #socket: Socket | undefined;
  #probesAnswered = 0;

  constructor(options: DiscoveryResponderOptions) {
    this.#o = options;
  }

  /** Bound UDP port, once started. */
  get port(): number {
    return (this.#socket?.address() as AddressInfo | undefined)?.port ?? 0;
  }

  /** Probes answered so far. */
  get probesAnswered(): number {
    return this.#probesAnswered;
  }

  /** Binds the socket (and joins the group when the address is multicast); idempotent. */
  async start(): Promise<void> {
    if (this.#socket) return;
    const multicast = isMulticast(this.#o.address);
    const socket = createSocket({ type: 'udp4', reuseAddr: multicast });
    await new Promise<void>((resolve, reject) => {
      socket.once('error', reject);
      socket.bind(this.#o.port, multicast ? undefined : this.#o.address, () => {
        socket.off('error', reject);
        resolve();
      });
    });
    if (multicast) socket.addMembership(this.#o.address);
    socket.on('message', (msg, rinfo) => this.#onMessage(msg, rinfo));
    socket.on('error', (err) => this.#o.log.warn({ err }, 'ws-discovery socket error'));
    this.#socket = socket;
  }

  /** Closes the socket; idempotent. */
  async stop(): Promise<void> {
    const socket = this.#socket;
    this.#socket = undefined;
    if (socket) await new Promise<void>((resolve) => socket.close(() => resolve()));
  }

  #onMessage(msg: Buffer, rinfo: RemoteInfo): void {
    if (msg.length > MAX_DATAGRAM) return;
    const request = parseSoapRequest(msg.toString('utf8'));
    // Anything but a Probe (Hello, Bye, garbage) is ignored, as a real target service does.
    if (request?.action !== 'Probe') return;
    const messageId = textOf(request.header, 'MessageID');
    if (!messageId) return;
    const types = textOf(request.body, 'Types');
    if (
      types &&
      !/(^|[\s:])NetworkVideoTransmitter(\s|$)/.test(types) &&
      !/(^|[\s:])Device(\s|$)/.test(types)
    )
      return;
    const scopes = child(request.body, 'Scopes');
    if (scopes && typeof scopes['#text'] === 'string' && scopes['#text'].length > 0) {
      const wanted = scopes['#text'].split(/\s+/);
      if (!wanted.every((w) => this.#o.scopes.some((s) => s.startsWith(w)))) return;
    }
    const reply = Buffer.from(this.#probeMatches(messageId));
    this.#socket?.send(reply, rinfo.port, rinfo.address, (err) => {
      if (err) this.#o.log.warn({ err, to: rinfo.address }, 'could not send ProbeMatches');
    });
    this.#probesAnswered++;
  }

  #probeMatches(relatesTo: string): string {
    return (
      '<?xml version="1.0" encoding="UTF-8"?>' +
      '<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope" xmlns:a="http://schemas.xmlsoap.org/ws/2004/08/addressing" ' +
      'xmlns:d="http://schemas.xmlsoap.org/ws/2005/04/discovery" xmlns:dn="http://www.onvif.org/ver10/network/wsdl" ' +
      'xmlns:tds="http://www.onvif.org/ver10/device/wsdl">' +
      '<s:Header>' +
      `<a:MessageID>urn:uuid:${randomUUID()}</a:MessageID>` +
      `<a:RelatesTo>${xmlEscape(relatesTo)}</a:RelatesTo>` +
      '<a:To>http://schemas.xmlsoap.org/ws/2004/08/addressing/role/anonymous</a:To>' +
      '<a:Action>http://schemas.xmlsoap.org/ws/2005/04/discovery/ProbeMatches</a:Action>' +
      '</s:Header><s:Body><d:ProbeMatches><d:ProbeMatch>' +
      `<a:EndpointReference><a:Address>${xmlEscape(this.#o.endpoint)}</a:Address></a:EndpointReference>` +
      '<d:Types>dn:NetworkVideoTransmitter tds:Device</d:Types>' +
      `<d:Scopes>${xmlEscape(this.#o.scopes.join(' '))}</d:Scopes>` +
      `<d:XAddrs>${xmlEscape(this.#o.xaddrs())}</d:XAddrs>` +
      '<d:MetadataVersion>1</d:MetadataVersion>' +
      '</d:ProbeMatch></d:ProbeMatches></s:Body></s:Envelope>'
    );
  }
}

function isMulticast(address: string): boolean {
  const first = Number(address.split('.')[0]);
  return first >= 224 && first <= 239;
}
