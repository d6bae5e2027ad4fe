/**
 * HTTP Digest authentication as SIP uses it (RFC 3261 §22.4, RFC 2617 MD5 with
 * `qop=auth`). GB/T 28181-2016 §9.1.2.1: the device's username is its ID and the realm
 * is the platform's SIP domain. Nonces are stateless: a timestamp and a random part
 * sealed with an HMAC, so a restart or a second hub node can check them.
 */
import { createHash, createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { headerParams } from './message.ts';

function md5(text: string): string {
  return createHash('md5').update(text, 'utf8').digest('hex');
}

/** The parameters of a Digest Authorization header. */
export interface DigestCredentials {
  username: string;
  realm: string;
  nonce: string;
  uri: string;
  response: string;
  algorithm?: string | undefined;
  qop?: string | undefined;
  nc?: string | undefined;
  cnonce?: string | undefined;
  opaque?: string | undefined;
}

/** Parses `Digest username="…", …`; undefined when the scheme is not Digest or a required field is missing. */
export function parseDigestCredentials(value: string): DigestCredentials | undefined {
  const m = /^\s*Digest\s+(.*)$/is.exec(value);
  if (!m) return undefined;
  const p = headerParams(m[1] as string, ',');
  const username = p.get('username');
  const realm = p.get('realm');
  const nonce = p.get('nonce');
  const uri = p.get('uri');
  const response = p.get('response');
  if (!username || realm === undefined || !nonce || !uri || !response) return undefined;
  return {
    username,
    realm,
    nonce,
    uri,
    response,
    algorithm: p.get('algorithm'),
    qop: p.get('qop'),
    nc: p.get('nc'),
    cnonce: p.get('cnonce'),
    opaque: p.get('opaque'),
  };
}

/** The digest `response` for a request (RFC 2617 §3.2.2.1). */
export function digestResponse(o: {
  username: string;
  realm: string;
  password: string;
  method: string;
  uri: string;
  nonce: string;
  qop?: string | undefined;
  nc?: string | undefined;
  cnonce?: string | undefined;
}): string {
  const ha1 = md5(`${o.username}:${o.realm}:${o.password}`);
  const ha2 = md5(`${o.method}:${o.uri}`);
  return o.qop
    ? md5(`${ha1}:${o.nonce}:${o.nc}:${o.cnonce}:${o.qop}:${ha2}`)
    : md5(`${ha1}:${o.nonce}:${ha2}`);
}

/** What a challenge offers. */
export interface DigestChallenge {
  realm: string;
  nonce: string;
  algorithm: string;
  qop: string | undefined;
  opaque: string | undefined;
  stale: boolean;
}

/** Parses a WWW-Authenticate / Proxy-Authenticate Digest challenge. */
export function parseDigestChallenge(value: string): DigestChallenge | undefined {
  const m = /^\s*Digest\s+(.*)$/is.exec(value);
  if (!m) return undefined;
  const p = headerParams(m[1] as string, ',');
  const realm = p.get('realm');
  const nonce = p.get('nonce');
  if (realm === undefined || !nonce) return undefined;
  const qop = p
    .get('qop')
    ?.split(',')
    .map((q) => q.trim())
    .includes('auth')
    ? 'auth'
    : undefined;
  return {
    realm,
    nonce,
    algorithm: p.get('algorithm') ?? 'MD5',
    qop,
    opaque: p.get('opaque'),
    stale: p.get('stale')?.toLowerCase() === 'true',
  };
}

/** A client's answer to a challenge: the Authorization header value (the device side). */
export function authorizationHeader(
  challenge: DigestChallenge,
  o: { username: string; password: string; method: string; uri: string; nc: number },
): string {
  const cnonce = randomBytes(8).toString('hex');
  const nc = o.nc.toString(16).padStart(8, '0');
  const response = digestResponse({
    ...o,
    realm: challenge.realm,
    nonce: challenge.nonce,
    qop: challenge.qop,
    nc,
    cnonce,
  });
  const parts = [
    `username="${o.username}"`,
    `realm="${challenge.realm}"`,
    `nonce="${challenge.nonce}"`,
    `uri="${o.uri}"`,
    `response="${response}"`,
    'algorithm=MD5',
  ];
  if (challenge.qop) parts.push(`cnonce="${cnonce}"`, `qop=${challenge.qop}`, `nc=${nc}`);
  if (challenge.opaque !== undefined) parts.push(`opaque="${challenge.opaque}"`);
  return `Digest ${parts.join(', ')}`;
}

/** Result of checking a request's credentials. */
export type DigestVerdict =
  | { ok: true; username: string }
  | { ok: false; reason: 'missing' | 'stale' | 'realm' | 'algorithm' | 'username' | 'wrong' };

/** The registrar side: issues challenges and checks answers. */
export class DigestAuthenticator {
  readonly realm: string;
  readonly #secret: Buffer;
  readonly #nonceTtlMs: number;

  constructor(realm: string, o: { nonceTtlMs?: number; secret?: Buffer } = {}) {
    this.realm = realm;
    this.#secret = o.secret ?? randomBytes(32);
    this.#nonceTtlMs = o.nonceTtlMs ?? 300_000;
  }

  /** A fresh WWW-Authenticate value; `stale` tells a client its password was right but the nonce old. */
  challenge(stale = false): string {
    const nonce = this.#nonce(Date.now());
    return `Digest realm="${this.realm}", nonce="${nonce}", algorithm=MD5, qop="auth"${stale ? ', stale=true' : ''}`;
  }

  #nonce(time: number): string {
    const body = Buffer.alloc(16);
    body.writeBigUInt64BE(BigInt(time));
    randomBytes(8).copy(body, 8);
    const mac = createHmac('sha256', this.#secret).update(body).digest().subarray(0, 12);
    return Buffer.concat([body, mac]).toString('hex');
  }

  #nonceFresh(nonce: string, now: number): boolean | undefined {
    if (!/^[0-9a-f]{56}$/.test(nonce)) return undefined;
    const raw = Buffer.from(nonce, 'hex');
    const body = raw.subarray(0, 16);
    const mac = createHmac('sha256', this.#secret).update(body).digest().subarray(0, 12);
    if (!timingSafeEqual(mac, raw.subarray(16))) return undefined;
    const issued = Number(body.readBigUInt64BE());
    return now - issued <= this.#nonceTtlMs;
  }

  /**
   * Checks an Authorization header against the password of its username. `passwordOf`
   * answers undefined for a username that may not register.
   */
  verify(
    authorization: string | undefined,
    method: string,
    passwordOf: (username: string) => string | undefined,
  ): DigestVerdict {
    if (authorization === undefined) return { ok: false, reason: 'missing' };
    const c = parseDigestCredentials(authorization);
    if (!c) return { ok: false, reason: 'missing' };
    if (c.algorithm && c.algorithm.toUpperCase() !== 'MD5') return { ok: false, reason: 'algorithm' };
    if (c.realm !== this.realm) return { ok: false, reason: 'realm' };
    const password = passwordOf(c.username);
    if (password === undefined) return { ok: false, reason: 'username' };
    const fresh = this.#nonceFresh(c.nonce, Date.now());
    // A nonce we never issued is answered with a new challenge, like an old one.
    if (fresh !== true) return { ok: false, reason: 'stale' };
    if (c.qop && c.qop !== 'auth') return { ok: false, reason: 'wrong' };
    const expected = digestResponse({ ...c, password, method, qop: c.qop });
    const given = Buffer.from(c.response.toLowerCase());
    const want = Buffer.from(expected);
    if (given.length !== want.length || !timingSafeEqual(given, want)) return { ok: false, reason: 'wrong' };
    return { ok: true, username: c.username };
  }
}
