/**
 * SOAP 1.2 plumbing of the simulated ONVIF camera: parsing requests, building
 * envelopes and faults, and checking WS-UsernameToken credentials the way a real
 * camera does (ONVIF Core §5.9.4, WS-Security UsernameToken Profile 1.0 §3.1).
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import { XMLParser, XMLValidator } from 'fast-xml-parser';

/** Namespace declarations every response envelope carries. */
export const NAMESPACES: Record<string, string> = {
  s: 'http://www.w3.org/2003/05/soap-envelope',
  wsa: 'http://www.w3.org/2005/08/addressing',
  tt: 'http://www.onvif.org/ver10/schema',
  tds: 'http://www.onvif.org/ver10/device/wsdl',
  trt: 'http://www.onvif.org/ver10/media/wsdl',
  tev: 'http://www.onvif.org/ver10/events/wsdl',
  wsnt: 'http://docs.oasis-open.org/wsn/b-2',
  wstop: 'http://docs.oasis-open.org/wsn/t-1',
  tns1: 'http://www.onvif.org/ver10/topics',
  ter: 'http://www.onvif.org/ver10/error',
};

/** A parsed element: fast-xml-parser output with prefixes removed. */
export type XmlNode = Record<string, unknown>;

const parser = new XMLParser({
  ignoreAttributes: false,
  attributeNamePrefix: '@_',
  removeNSPrefix: true,
  parseTagValue: false,
  parseAttributeValue: false,
  trimValues: true,
  processEntities: false,
});

/** A SOAP request the camera understood well enough to dispatch. */
export interface SoapRequest {
  /** Local name of the first element of the Body, e.g. `GetProfiles`. */
  action: string;
  body: XmlNode;
  header: XmlNode;
}

/** Parses a SOAP envelope; returns undefined for anything that is not one. */
export function parseSoapRequest(xml: string): SoapRequest | undefined {
  if (XMLValidator.validate(xml) !== true) return undefined;
  let doc: XmlNode;
  try {
    doc = parser.parse(xml) as XmlNode;
  } catch {
    return undefined; // validated above; a parser bug still must not crash the camera
  }
  const envelope = child(doc, 'Envelope');
  const body = child(envelope, 'Body');
  if (!envelope || !body) return undefined;
  const action = Object.keys(body).find((k) => !k.startsWith('@_') && k !== '#text');
  if (!action) return undefined;
  const payload = body[action];
  return { action, body: isNode(payload) ? payload : {}, header: child(envelope, 'Header') ?? {} };
}

/** The element `name` of `node` (the first one if repeated), when it is an element. */
export function child(node: unknown, name: string): XmlNode | undefined {
  if (!isNode(node)) return undefined;
  const value = Array.isArray(node[name]) ? (node[name] as unknown[])[0] : node[name];
  if (isNode(value)) return value;
  if (typeof value === 'string') return { '#text': value };
  return undefined;
}

/** Text content of element `name` of `node`, if any. */
export function textOf(node: unknown, name: string): string | undefined {
  const value = child(node, name)?.['#text'];
  return typeof value === 'string' ? value : undefined;
}

function isNode(value: unknown): value is XmlNode {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Escapes text for XML content and attribute values. */
export function xmlEscape(text: string): string {
  return text
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/"/g, '&quot;')
    .replace(/'/g, '&apos;');
}

/** Wraps `body` (and optional header blocks) in a SOAP 1.2 envelope. */
export function envelope(body: string, header = ''): string {
  const ns = Object.entries(NAMESPACES)
    .map(([prefix, uri]) => `xmlns:${prefix}="${uri}"`)
    .join(' ');
  return `<?xml version="1.0" encoding="UTF-8"?><s:Envelope ${ns}><s:Header>${header}</s:Header><s:Body>${body}</s:Body></s:Envelope>`;
}

/** A SOAP fault and the HTTP status it travels with (SOAP 1.2 Part 2 §7.5.2). */
export interface SoapFault {
  status: number;
  code: 'Sender' | 'Receiver';
  subcode: string;
  reason: string;
}

/** Serialises a fault as a SOAP 1.2 envelope. */
export function faultEnvelope(fault: SoapFault): string {
  return envelope(
    `<s:Fault><s:Code><s:Value>s:${fault.code}</s:Value><s:Subcode><s:Value>${fault.subcode}</s:Value></s:Subcode></s:Code>` +
      `<s:Reason><s:Text xml:lang="en">${xmlEscape(fault.reason)}</s:Text></s:Reason></s:Fault>`,
  );
}

/** Faults the camera answers with. */
export const FAULTS = {
  /** ONVIF Core §5.11.2.1: bad or missing credentials; HTTP 400 for WS-Security, 401 when none were sent. */
  notAuthorized: (status: 400 | 401): SoapFault => ({
    status,
    code: 'Sender',
    subcode: 'ter:NotAuthorized',
    reason: 'Sender not Authorized',
  }),
  wellFormed: (): SoapFault => ({
    status: 400,
    code: 'Sender',
    subcode: 'ter:WellFormed',
    reason: 'The request is not a well-formed SOAP 1.2 envelope',
  }),
  actionNotSupported: (action: string): SoapFault => ({
    status: 400,
    code: 'Receiver',
    subcode: 'ter:ActionNotSupported',
    reason: `Optional action ${action.slice(0, 64)} not implemented`,
  }),
  invalidArg: (reason: string): SoapFault => ({
    status: 400,
    code: 'Sender',
    subcode: 'ter:InvalidArgVal',
    reason,
  }),
  resourceUnknown: (): SoapFault => ({
    status: 400,
    code: 'Sender',
    subcode: 'wsrf-rw:ResourceUnknownFault',
    reason: 'No such subscription (expired or unsubscribed)',
  }),
};

/** Credentials the camera accepts. */
export interface Credentials {
  username: string;
  password: string;
}

const PASSWORD_TEXT = '#PasswordText';

/**
 * Checks WS-UsernameToken headers: PasswordDigest = base64(SHA1(nonce + created +
 * password)) (or PasswordText), `Created` within `windowMs` of the camera clock, and a
 * nonce not seen inside that window (replay protection, UsernameToken Profile §3.1).
 */
export class UsernameTokenVerifier {
  readonly #credentials: Credentials;
  readonly #windowMs: number;
  readonly #seen = new Map<string, number>();

  constructor(credentials: Credentials, windowMs: number) {
    this.#credentials = credentials;
    this.#windowMs = windowMs;
  }

  /** Undefined when the header authenticates the request, else the fault to answer. */
  verify(header: XmlNode, now = Date.now()): SoapFault | undefined {
    const token = child(child(header, 'Security'), 'UsernameToken');
    if (!token) return FAULTS.notAuthorized(401);
    const username = textOf(token, 'Username');
    const password = child(token, 'Password');
    const passwordText = password?.['#text'];
    const nonce = textOf(token, 'Nonce') ?? '';
    const created = textOf(token, 'Created') ?? '';
    if (username !== this.#credentials.username || typeof passwordText !== 'string')
      return FAULTS.notAuthorized(400);
    const type = typeof password?.['@_Type'] === 'string' ? (password['@_Type'] as string) : '';
    if (type.endsWith(PASSWORD_TEXT)) {
      return safeEqual(passwordText, this.#credentials.password) ? undefined : FAULTS.notAuthorized(400);
    }
    const createdMs = Date.parse(created);
    if (!Number.isFinite(createdMs) || Math.abs(now - createdMs) > this.#windowMs || nonce.length === 0)
      return FAULTS.notAuthorized(400);
    const expected = createHash('sha1')
      .update(
        Buffer.concat([
          Buffer.from(nonce, 'base64'),
          Buffer.from(created),
          Buffer.from(this.#credentials.password),
        ]),
      )
      .digest('base64');
    if (!safeEqual(passwordText, expected)) return FAULTS.notAuthorized(400);
    this.#prune(now);
    if (this.#seen.has(nonce)) return FAULTS.notAuthorized(400);
    this.#seen.set(nonce, now + 2 * this.#windowMs);
    return undefined;
  }

  #prune(now: number): void {
    for (const [nonce, expires] of this.#seen) if (expires < now) this.#seen.delete(nonce);
  }
}

function safeEqual(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

/** Parses an xs:duration such as `PT1M`, `PT5S`, `PT0.5S`; undefined when not one. */
export function parseDurationMs(text: string | undefined): number | undefined {
  if (!text) return undefined;
  const m = /^P(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+(?:\.\d+)?)S)?)?$/.exec(text.trim());
  if (!m || text.trim() === 'P' || text.trim().endsWith('T')) return undefined;
  const [, d, h, min, s] = m;
  return ((Number(d ?? 0) * 24 + Number(h ?? 0)) * 60 + Number(min ?? 0)) * 60_000 + Number(s ?? 0) * 1000;
}
