/**
 * The GB/T 28181 registrar (GB/T 28181-2016 §9.1.2): REGISTER with Digest, realm the
 * platform's SIP domain (first 10 digits of its ID). No credentials → 401 with a
 * challenge; wrong password → 403; no Expires → 400; `Expires: 0` unregisters; success →
 * 200 with the granted Expires and `Date` in the standard's format (§9.1.2.1 f).
 */
import { isGbId } from '@citysense/protocol';
import type { DigestAuthenticator, DigestVerdict } from '../sip/digest.ts';
import { header, type SipHeader, type SipRequest, uriOf, userOf } from '../sip/message.ts';

/** What the registrar decided for one REGISTER. */
export type RegisterOutcome =
  | { kind: 'registered'; deviceId: string; expiresS: number; contact: string | undefined }
  | { kind: 'unregistered'; deviceId: string }
  | { kind: 'challenge'; deviceId: string; stale: boolean }
  | { kind: 'refused'; deviceId: string | undefined; status: number; code: string; reason: string };

/** A refusal code per cause, so operators can count and search them. */
export const REGISTER_CODES = {
  badId: 'CS_ERR_GB_REGISTER_BAD_ID',
  noExpires: 'CS_ERR_GB_REGISTER_NO_EXPIRES',
  unknownDevice: 'CS_ERR_GB_REGISTER_UNKNOWN_DEVICE',
  wrongPassword: 'CS_ERR_GB_REGISTER_WRONG_PASSWORD',
  badAuth: 'CS_ERR_GB_REGISTER_BAD_AUTH',
  tooBrief: 'CS_ERR_GB_REGISTER_TOO_BRIEF',
} as const;

/** Why a known device may not register now (e.g. its ledger entry is not active), with a stable code. */
export interface DeviceRefusal {
  code: string;
  reason: string;
}

/** A device's password, a coded refusal, or undefined for a device nobody admitted. */
export type PasswordLookup = (deviceId: string) => string | DeviceRefusal | undefined;

/** Options of the registrar. */
export interface RegistrarOptions {
  authenticator: DigestAuthenticator;
  /** Password of a device allowed to register; a refusal or undefined refuses it with 403. */
  passwordOf: PasswordLookup;
  /** Shortest registration granted, s (default 60); shorter requests get 423 with Min-Expires. */
  minExpiresS?: number;
  /** Longest registration granted, s (default 86 400); longer requests are cut to it. */
  maxExpiresS?: number;
}

/** Decides REGISTER requests; sessions and answers are the platform's job. */
export class Registrar {
  readonly #o: RegistrarOptions;

  constructor(o: RegistrarOptions) {
    this.#o = o;
  }

  /** The outcome of one REGISTER. */
  decide(request: SipRequest): RegisterOutcome {
    const deviceId =
      userOf(uriOf(header(request, 'to') ?? '')) ?? userOf(uriOf(header(request, 'from') ?? ''));
    if (deviceId === undefined || !isGbId(deviceId))
      return refuse(
        deviceId,
        400,
        REGISTER_CODES.badId,
        'the To user is not a 20-digit GB/T 28181 device ID',
      );
    const expiresText = header(request, 'expires') ?? contactExpires(header(request, 'contact'));
    if (expiresText === undefined || !/^\d{1,10}$/.test(expiresText.trim()))
      return refuse(
        deviceId,
        400,
        REGISTER_CODES.noExpires,
        'REGISTER needs an Expires header (GB/T 28181 §9.1.2.1)',
      );
    const expires = Number(expiresText.trim());
    const password = this.#o.passwordOf(deviceId);
    if (password === undefined)
      return refuse(
        deviceId,
        403,
        REGISTER_CODES.unknownDevice,
        'the device is not in the ledger and auto-accept is off',
      );
    if (typeof password !== 'string') return refuse(deviceId, 403, password.code, password.reason);
    const verdict = this.#o.authenticator.verify(header(request, 'authorization'), 'REGISTER', (username) =>
      username === deviceId ? password : undefined,
    );
    if (!verdict.ok) return this.#authFailure(deviceId, verdict);
    if (expires === 0) return { kind: 'unregistered', deviceId };
    const min = this.#o.minExpiresS ?? 60;
    if (expires < min)
      return refuse(
        deviceId,
        423,
        REGISTER_CODES.tooBrief,
        `Expires ${expires} is below the minimum of ${min} s`,
      );
    return {
      kind: 'registered',
      deviceId,
      expiresS: Math.min(expires, this.#o.maxExpiresS ?? 86_400),
      contact: header(request, 'contact'),
    };
  }

  #authFailure(deviceId: string, verdict: Exclude<DigestVerdict, { ok: true }>): RegisterOutcome {
    switch (verdict.reason) {
      case 'missing':
        return { kind: 'challenge', deviceId, stale: false };
      case 'stale':
        return { kind: 'challenge', deviceId, stale: true };
      case 'wrong':
        return refuse(deviceId, 403, REGISTER_CODES.wrongPassword, 'wrong password');
      case 'username':
        return refuse(deviceId, 403, REGISTER_CODES.badAuth, 'the digest username is not the device ID');
      case 'realm':
        return refuse(
          deviceId,
          403,
          REGISTER_CODES.badAuth,
          `the digest realm is not ${this.#o.authenticator.realm}`,
        );
      case 'algorithm':
        return refuse(deviceId, 400, REGISTER_CODES.badAuth, 'only the MD5 digest algorithm is supported');
    }
  }
}

function refuse(deviceId: string | undefined, status: number, code: string, reason: string): RegisterOutcome {
  return { kind: 'refused', deviceId, status, code, reason };
}

function contactExpires(contact: string | undefined): string | undefined {
  if (contact === undefined) return undefined;
  const m = /;\s*expires=(\d+)/i.exec(contact);
  return m?.[1];
}

/** `Date` of a 200 to REGISTER: local time `YYYY-MM-DDThh:mm:ss.SSS` (GB/T 28181-2016 §9.1.2.1), which devices use to set their clocks. */
export function gbDate(time: Date = new Date()): string {
  const p = (n: number, w = 2) => String(n).padStart(w, '0');
  return (
    `${time.getFullYear()}-${p(time.getMonth() + 1)}-${p(time.getDate())}T` +
    `${p(time.getHours())}:${p(time.getMinutes())}:${p(time.getSeconds())}.${p(time.getMilliseconds(), 3)}`
  );
}

/** Headers of a 200 to REGISTER. */
export function registeredHeaders(
  expiresS: number,
  contact: string | undefined,
  now = new Date(),
): SipHeader[] {
  const list: SipHeader[] = [
    { name: 'Date', value: gbDate(now) },
    { name: 'Expires', value: String(expiresS) },
  ];
  if (contact)
    list.push({ name: 'Contact', value: `${contact.replace(/;\s*expires=\d+/i, '')};expires=${expiresS}` });
  return list;
}
