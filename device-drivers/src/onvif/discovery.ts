/**
 * WS-Discovery client for ONVIF cameras (WS-Discovery 1.0 §5.2, ONVIF Core §7.3):
 * sends a Probe for `dn:NetworkVideoTransmitter` over SOAP-over-UDP, by default to the
 * multicast group 239.255.255.250:3702, and collects the ProbeMatches that relate to
 * it. Our own small UDP code rather than the `onvif` package's Discovery singleton,
 * because tests (and sites without multicast routing) need a unicast target.
 */
import { randomUUID } from 'node:crypto';
import { createSocket, type RemoteInfo } from 'node:dgram';
import { CitysenseError, componentLogger, errorMessage, type Logger } from '@citysense/protocol';
import { XMLParser, XMLValidator } from 'fast-xml-parser';
import { ONVIF_ERRORS } from './errors.ts';

/** WS-Discovery multicast group and port (WS-Discovery 1.0 §2.4). */
export const WS_DISCOVERY_ADDRESS = { host: '239.255.255.250', port: 3702 } as const;

/** A camera that answered a probe. */
export interface DiscoveredCamera {
  /** Endpoint reference address, usually `urn:uuid:…`; stable across reboots and address changes. */
  endpoint: string;
  /** Device service URLs (http/https only). */
  xaddrs: string[];
  types: string[];
  scopes: string[];
  /** Address the ProbeMatches came from. */
  from: string;
}

/** Options of one probe. */
export interface ProbeOptions {
  /** Where to send the probe; default the multicast group. A unicast host:port also works. */
  target?: { host: string; port: number };
  /** How long to collect answers, ms; default 3000. */
  timeoutMs?: number;
  /** Probe repetitions (SOAP-over-UDP §3.4 retransmission, UDP is lossy); default 2. */
  repeats?: number;
  /** Local address to bind (selects the interface); default any. */
  bindAddress?: string;
  /** Probe Types; default `dn:NetworkVideoTransmitter`. */
  types?: string;
  /** Stops collecting early; the probe resolves with what it found. */
  signal?: AbortSignal;
  logger?: Logger;
}

const MAX_DATAGRAM = 64 * 1024;
const MAX_RESULTS = 1024;

const parser = new XMLParser({
  ignoreAttributes: true,
  removeNSPrefix: true,
  parseTagValue: false,
  trimValues: true,
  processEntities: false,
  isArray: (name) => name === 'ProbeMatch',
});

/** Probes for ONVIF cameras; resolves after `timeoutMs` with every distinct camera that answered. */
export async function probeOnvifCameras(options: ProbeOptions = {}): Promise<DiscoveredCamera[]> {
  const log = componentLogger('onvif-discovery', options.logger);
  const target = options.target ?? WS_DISCOVERY_ADDRESS;
  const messageId = `urn:uuid:${randomUUID()}`;
  const found = new Map<string, DiscoveredCamera>();
  const socket = createSocket({ type: 'udp4' });
  try {
    await new Promise<void>((resolve, reject) => {
      socket.once('error', reject);
      socket.bind(0, options.bindAddress, () => {
        socket.off('error', reject);
        resolve();
      });
    });
  } catch (err) {
    socket.close();
    throw new CitysenseError(
      ONVIF_ERRORS.discovery,
      `cannot open a UDP socket for WS-Discovery: ${errorMessage(err)}`,
    );
  }
  socket.on('error', (err) => log.warn({ err }, 'ws-discovery socket error'));
  socket.on('message', (msg: Buffer, rinfo: RemoteInfo) => {
    if (found.size >= MAX_RESULTS) return;
    for (const camera of parseProbeMatches(msg, messageId, rinfo.address)) {
      const key = camera.endpoint || camera.xaddrs.join(' ');
      const known = found.get(key);
      if (known) {
        for (const x of camera.xaddrs) if (!known.xaddrs.includes(x)) known.xaddrs.push(x);
      } else {
        found.set(key, camera);
      }
    }
  });
  try {
    const probe = Buffer.from(probeMessage(messageId, options.types ?? 'dn:NetworkVideoTransmitter'));
    const repeats = Math.max(1, options.repeats ?? 2);
    for (let i = 0; i < repeats; i++) {
      await new Promise<void>((resolve, reject) =>
        socket.send(probe, target.port, target.host, (err) => (err ? reject(err) : resolve())),
      );
    }
  } catch (err) {
    socket.close();
    throw new CitysenseError(
      ONVIF_ERRORS.discovery,
      `cannot send a WS-Discovery probe to ${target.host}:${target.port}: ${errorMessage(err)}`,
    );
  }
  await new Promise<void>((resolve) => {
    const done = () => {
      clearTimeout(timer);
      options.signal?.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, options.timeoutMs ?? 3000);
    if (options.signal?.aborted) done();
    else options.signal?.addEventListener('abort', done, { once: true });
  });
  socket.close();
  log.debug({ found: found.size, target }, 'ws-discovery probe finished');
  return [...found.values()];
}

/** The Probe message (WS-Discovery 1.0 §5.2, addressing of 2004/08). */
function probeMessage(messageId: string, types: string): string {
  return (
    '<?xml version="1.0" encoding="UTF-8"?>' +
    '<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope" xmlns:a="http://schemas.xmlsoap.org/ws/2004/08/addressing" ' +
    'xmlns:d="http://schemas.xmlsoap.org/ws/2005/04/discovery" xmlns:dn="http://www.onvif.org/ver10/network/wsdl">' +
    '<s:Header>' +
    `<a:MessageID>${messageId}</a:MessageID>` +
    '<a:To s:mustUnderstand="1">urn:schemas-xmlsoap-org:ws:2005:04:discovery</a:To>' +
    '<a:Action s:mustUnderstand="1">http://schemas.xmlsoap.org/ws/2005/04/discovery/Probe</a:Action>' +
    '</s:Header><s:Body>' +
    `<d:Probe><d:Types>${types.replace(/[<&>]/g, '')}</d:Types></d:Probe>` +
    '</s:Body></s:Envelope>'
  );
}

/** ProbeMatch entries of a datagram that answers `messageId`; anything else yields none. */
export function parseProbeMatches(datagram: Buffer, messageId: string, from: string): DiscoveredCamera[] {
  if (datagram.length > MAX_DATAGRAM) return [];
  const xml = datagram.toString('utf8');
  if (XMLValidator.validate(xml) !== true) return [];
  let doc: unknown;
  try {
    doc = parser.parse(xml);
  } catch {
    return []; // validated above; a stray parser error must still not end the probe
  }
  const envelope = field(doc, 'Envelope');
  if (text(field(field(envelope, 'Header'), 'RelatesTo')) !== messageId) return [];
  const matches = field(field(field(envelope, 'Body'), 'ProbeMatches'), 'ProbeMatch');
  if (!Array.isArray(matches)) return [];
  const cameras: DiscoveredCamera[] = [];
  for (const m of matches) {
    const xaddrs = words(field(m, 'XAddrs')).filter(isHttpUrl);
    if (xaddrs.length === 0) continue;
    cameras.push({
      endpoint: text(field(field(m, 'EndpointReference'), 'Address')) ?? '',
      xaddrs,
      types: words(field(m, 'Types')),
      scopes: words(field(m, 'Scopes')),
      from,
    });
  }
  return cameras;
}

function field(node: unknown, name: string): unknown {
  return typeof node === 'object' && node !== null ? (node as Record<string, unknown>)[name] : undefined;
}

function text(node: unknown): string | undefined {
  if (typeof node === 'string') return node;
  const t = field(node, '#text');
  return typeof t === 'string' ? t : undefined;
}

function words(node: unknown): string[] {
  return (text(node) ?? '').split(/\s+/).filter((w) => w.length > 0);
}

function isHttpUrl(value: string): boolean {
  try {
    const url = new URL(value);
    return url.protocol === 'http:' || url.protocol === 'https:';
  } catch {
    return false;
  }
}
