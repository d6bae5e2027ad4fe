/**
 * SIP messages (RFC 3261 §7): parse from bytes, build, serialise. Headers keep their
 * order and are looked up case-insensitively, compact forms included (§7.3.3).
 */
import { CitysenseError } from '@citysense/protocol';

/** Stable code of every refused SIP message. */
export const SIP_MALFORMED = 'CS_ERR_SIP_MALFORMED';

/** A SIP message that cannot be parsed or breaks a limit; `status` is the SIP answer when one is possible. */
export class SipParseError extends CitysenseError {
  /** SIP status to answer with when the request line and the dialog headers could be read. */
  readonly sipStatus: number;

  constructor(message: string, sipStatus = 400) {
    super(SIP_MALFORMED, message, 400);
    this.sipStatus = sipStatus;
  }
}

/** One header field, as received. */
export interface SipHeader {
  name: string;
  value: string;
}

interface SipCommon {
  headers: SipHeader[];
  body: Buffer;
}

/** A SIP request. */
export interface SipRequest extends SipCommon {
  kind: 'request';
  method: string;
  uri: string;
}

/** A SIP response. */
export interface SipResponse extends SipCommon {
  kind: 'response';
  status: number;
  reason: string;
}

/** A request or a response. */
export type SipMessage = SipRequest | SipResponse;

/** Limits applied to every received message. */
export interface SipLimits {
  /** Largest message, head and body, in bytes. */
  maxMessageBytes: number;
  /** Most header fields. */
  maxHeaders: number;
}

/** 64 KiB, like the largest UDP datagram a SIP server should expect, and 100 headers. */
export const DEFAULT_SIP_LIMITS: SipLimits = { maxMessageBytes: 65_535, maxHeaders: 100 };

const COMPACT: Readonly<Record<string, string>> = {
  i: 'call-id',
  f: 'from',
  t: 'to',
  v: 'via',
  m: 'contact',
  l: 'content-length',
  c: 'content-type',
  e: 'content-encoding',
  k: 'supported',
  s: 'subject',
  o: 'event',
};

/** The canonical lower-case name of a header, compact forms expanded. */
export function canonicalHeaderName(name: string): string {
  const lower = name.toLowerCase();
  return COMPACT[lower] ?? lower;
}

/** The first value of header `name`, or undefined. */
export function header(message: Pick<SipMessage, 'headers'>, name: string): string | undefined {
  const wanted = canonicalHeaderName(name);
  for (const h of message.headers) if (canonicalHeaderName(h.name) === wanted) return h.value;
  return undefined;
}

/** Every value of header `name`, comma-separated lists of Via split into entries. */
export function headers(message: Pick<SipMessage, 'headers'>, name: string): string[] {
  const wanted = canonicalHeaderName(name);
  const out: string[] = [];
  for (const h of message.headers) {
    if (canonicalHeaderName(h.name) !== wanted) continue;
    if (wanted === 'via') out.push(...splitTopLevel(h.value));
    else out.push(h.value);
  }
  return out;
}

/** Splits a header value on commas that are outside quotes and angle brackets. */
function splitTopLevel(value: string): string[] {
  const parts: string[] = [];
  let depth = 0;
  let quoted = false;
  let start = 0;
  for (let i = 0; i < value.length; i++) {
    const c = value[i];
    if (c === '"' && value[i - 1] !== '\\') quoted = !quoted;
    else if (!quoted && c === '<') depth++;
    else if (!quoted && c === '>') depth--;
    else if (!quoted && depth === 0 && c === ',') {
      parts.push(value.slice(start, i).trim());
      start = i + 1;
    }
  }
  parts.push(value.slice(start).trim());
  return parts.filter((p) => p.length > 0);
}

/** Where the head ends (index of the blank line), or -1. */
export function headEnd(buf: Buffer): number {
  return buf.indexOf('\r\n\r\n');
}

const TOKEN = /^[A-Za-z0-9.!%*_+`'~-]+$/;
const REQUEST_LINE = /^([A-Za-z0-9.!%*_+`'~-]+) (\S+) SIP\/2\.0$/;
const STATUS_LINE = /^SIP\/2\.0 ([1-6]\d\d) ?(.*)$/;

/** Parses one complete message (a UDP datagram, or one framed TCP message); throws SipParseError. */
export function parseSipMessage(buf: Buffer, limits: SipLimits = DEFAULT_SIP_LIMITS): SipMessage {
  if (buf.length > limits.maxMessageBytes)
    throw new SipParseError(`message is ${buf.length} bytes, more than ${limits.maxMessageBytes}`, 513);
  const end = headEnd(buf);
  if (end < 0) throw new SipParseError('message has no blank line after its headers');
  const head = buf.subarray(0, end).toString('latin1');
  if (/[^\t\r\n\x20-\x7e\x80-\xff]/.test(head))
    throw new SipParseError('header section has control characters');
  const lines = unfold(head.split('\r\n'));
  const first = lines.shift() ?? '';
  const parsedHeaders: SipHeader[] = [];
  for (const line of lines) {
    const colon = line.indexOf(':');
    const name = colon > 0 ? line.slice(0, colon).trim() : '';
    if (!TOKEN.test(name))
      throw new SipParseError(`header line ${JSON.stringify(line.slice(0, 40))} has no name`);
    parsedHeaders.push({ name, value: line.slice(colon + 1).trim() });
    if (parsedHeaders.length > limits.maxHeaders)
      throw new SipParseError(`more than ${limits.maxHeaders} headers`);
  }
  const rawBody = buf.subarray(end + 4);
  const body = sliceBody(rawBody, parsedHeaders);
  const request = REQUEST_LINE.exec(first);
  if (request) {
    const message: SipRequest = {
      kind: 'request',
      method: request[1] as string,
      uri: request[2] as string,
      headers: parsedHeaders,
      body,
    };
    requireDialogHeaders(message);
    return message;
  }
  const status = STATUS_LINE.exec(first);
  if (status) {
    const message: SipResponse = {
      kind: 'response',
      status: Number(status[1]),
      reason: status[2] ?? '',
      headers: parsedHeaders,
      body,
    };
    requireDialogHeaders(message);
    return message;
  }
  throw new SipParseError(
    `first line ${JSON.stringify(first.slice(0, 60))} is neither a SIP request nor a status line`,
  );
}

/** Joins continuation lines (leading whitespace) to the header they continue (§7.3.1). */
function unfold(lines: string[]): string[] {
  const out: string[] = [];
  for (const line of lines) {
    if (/^[ \t]/.test(line) && out.length > 1) out[out.length - 1] += ` ${line.trim()}`;
    else out.push(line);
  }
  return out;
}

function sliceBody(rawBody: Buffer, parsed: SipHeader[]): Buffer {
  const declared = header({ headers: parsed }, 'content-length');
  if (declared === undefined) return Buffer.from(rawBody);
  if (!/^\d{1,7}$/.test(declared))
    throw new SipParseError(`Content-Length ${JSON.stringify(declared)} is not a number`);
  const length = Number(declared);
  if (length > rawBody.length)
    throw new SipParseError(`Content-Length ${length} but only ${rawBody.length} body bytes arrived`);
  return Buffer.from(rawBody.subarray(0, length));
}

/** The headers every request and response must carry (RFC 3261 §8.1.1). */
const MANDATORY = ['via', 'from', 'to', 'call-id', 'cseq'];

function requireDialogHeaders(message: SipMessage): void {
  for (const name of MANDATORY)
    if (header(message, name) === undefined) throw new SipParseError(`${name} header is missing`);
  const cseq = parseCSeq(header(message, 'cseq') as string);
  if (message.kind === 'request' && cseq.method !== message.method)
    throw new SipParseError(`CSeq method ${cseq.method} differs from request method ${message.method}`);
}

/** A parsed CSeq header. */
export interface CSeq {
  seq: number;
  method: string;
}

/** Parses `CSeq: 1 REGISTER`; throws SipParseError. */
export function parseCSeq(value: string): CSeq {
  const m = /^(\d{1,10})\s+([A-Za-z]+)$/.exec(value.trim());
  if (!m) throw new SipParseError(`CSeq ${JSON.stringify(value.slice(0, 40))} is not "number METHOD"`);
  return { seq: Number(m[1]), method: (m[2] as string).toUpperCase() };
}

/** Serialises a message; Content-Length is always written from the body. */
export function serializeSipMessage(message: SipMessage): Buffer {
  const first =
    message.kind === 'request'
      ? `${message.method} ${message.uri} SIP/2.0`
      : `SIP/2.0 ${message.status} ${message.reason}`;
  const lines = [first];
  for (const h of message.headers)
    if (canonicalHeaderName(h.name) !== 'content-length') lines.push(`${h.name}: ${h.value}`);
  lines.push(`Content-Length: ${message.body.length}`);
  return Buffer.concat([Buffer.from(`${lines.join('\r\n')}\r\n\r\n`, 'latin1'), message.body]);
}

/** Parameters of a name-addr / Via / Authorization value: `;tag=x` or `a="b", c=d`. */
export function headerParams(value: string, separator: ';' | ','): Map<string, string> {
  const params = new Map<string, string>();
  const parts = separator === ',' ? splitTopLevel(value) : splitParams(value);
  for (const part of parts) {
    const eq = part.indexOf('=');
    const name = (eq < 0 ? part : part.slice(0, eq)).trim().toLowerCase();
    let v = eq < 0 ? '' : part.slice(eq + 1).trim();
    if (v.startsWith('"') && v.endsWith('"') && v.length >= 2) v = v.slice(1, -1).replace(/\\(.)/g, '$1');
    if (name) params.set(name, v);
  }
  return params;
}

/** Splits `<sip:a@b>;tag=1;x` into its parameters after the address (semicolons outside `<>` and quotes). */
function splitParams(value: string): string[] {
  const close = value.lastIndexOf('>');
  const rest =
    close >= 0
      ? value.slice(close + 1)
      : value.slice(value.indexOf(';') < 0 ? value.length : value.indexOf(';'));
  return rest
    .split(';')
    .map((p) => p.trim())
    .filter((p) => p.length > 0);
}

/** The `tag` parameter of a From/To value. */
export function tagOf(value: string | undefined): string | undefined {
  return value === undefined ? undefined : headerParams(value, ';').get('tag') || undefined;
}

/** The SIP URI inside a name-addr (`"x" <sip:u@h>;tag=1` → `sip:u@h`). */
export function uriOf(value: string): string {
  const open = value.indexOf('<');
  const close = value.indexOf('>', open + 1);
  if (open >= 0 && close > open) return value.slice(open + 1, close).trim();
  const semi = value.indexOf(';');
  return (semi < 0 ? value : value.slice(0, semi)).trim();
}

/** The user part of a SIP URI (`sip:34020000001320000001@3402000000` → the ID), or undefined. */
export function userOf(uri: string): string | undefined {
  const m = /^sips?:([^@;>]+)@/i.exec(uri.trim());
  return m?.[1];
}

/** True when `token` is a SIP method token. */
export function isMethodToken(token: string): boolean {
  return TOKEN.test(token);
}
