/**
 * The filing log (上链备案) as data: canonical JSON, the entry hash, the centre's signature
 * over it, and a verifier that walks the chain in order and names the first broken link.
 * The format is documented in README.md next to this file; the city big-data platform
 * re-implements `entryHash` and `verifyDetached` to check what it receives.
 */
import { createPrivateKey, createPublicKey, type KeyObject, sign, verify } from 'node:crypto';
import {
  type DetachedSignature,
  type SignatureAlgorithm,
  type SigningKey,
  sha256Hex,
  signDetached,
  verifyDetached,
} from '@citysense/protocol';

/** `prevHash` of the first entry. */
export const GENESIS_HASH = '0'.repeat(64);

/** Name and version of the export format (README.md). */
export const CHAIN_FORMAT = 'citysense.ledger.chain/1';

/** One entry of the filing log, as stored and exported. */
export interface LedgerEntry {
  seq: number;
  /** ISO 8601 UTC with milliseconds, exactly as hashed. */
  time: string;
  action: string;
  deviceCode: string;
  /** Canonical JSON (sorted keys, no spaces), exactly as hashed. */
  content: string;
  prevHash: string;
  hash: string;
  signature: { algorithm: SignatureAlgorithm; keyFingerprint: string; value: string };
}

/** Why a link of the chain is broken. */
export type BrokenReason =
  | 'seq-gap'
  | 'link-broken'
  | 'content-changed'
  | 'signature-invalid'
  | 'device-changed'
  | 'device-deleted'
  | 'device-unfiled';

/** One problem found by verification. */
export interface BrokenLink {
  seq: number;
  reason: BrokenReason;
  /** Device concerned, for device-table problems and where the entry names one. */
  deviceCode?: string;
  message: string;
}

/** JSON with object keys sorted at every level and no whitespace (RFC 8785 for the values the ledger uses). */
export function canonicalJson(value: unknown): string {
  if (value === null || typeof value !== 'object') {
    if (typeof value === 'number' && !Number.isFinite(value)) return 'null';
    return JSON.stringify(value) ?? 'null';
  }
  if (Array.isArray(value))
    return `[${value.map((v) => canonicalJson(v === undefined ? null : v)).join(',')}]`;
  const keys = Object.keys(value)
    .filter((k) => (value as Record<string, unknown>)[k] !== undefined)
    .sort();
  return `{${keys.map((k) => `${JSON.stringify(k)}:${canonicalJson((value as Record<string, unknown>)[k])}`).join(',')}}`;
}

/** SHA-256 hex of `prevHash \n content \n seq \n time` (the separators keep the fields unambiguous). */
export function entryHash(prevHash: string, content: string, seq: number, time: string): string {
  return sha256Hex(`${prevHash}\n${content}\n${seq}\n${time}`);
}

/** Parsed Ed25519 keys: parsing the PEM costs more than the signature itself. */
const keyObjects = new Map<string, KeyObject>();
function keyObject(pem: string, kind: 'private' | 'public'): KeyObject {
  let k = keyObjects.get(pem);
  if (!k) {
    k = kind === 'private' ? createPrivateKey(pem) : createPublicKey(pem);
    if (keyObjects.size > 16) keyObjects.clear();
    keyObjects.set(pem, k);
  }
  return k;
}

/**
 * Signs an entry hash (its 64 hex characters as UTF-8) with the centre key: the detached
 * signature of protocol/signing.ts (Ed25519 base64, or SM2-SM3 hex DER); Ed25519 keys are
 * parsed once instead of per entry.
 */
export function signHash(key: SigningKey, hash: string): string {
  const data = Buffer.from(hash, 'utf8');
  if (key.algorithm === 'ed25519')
    return sign(null, data, keyObject(key.privateKey, 'private')).toString('base64');
  return signDetached(key, data).signature;
}

/** Checks a signature made by `signHash`. */
export function verifyHash(
  key: Omit<DetachedSignature, 'signature'>,
  hash: string,
  signature: string,
): boolean {
  const data = Buffer.from(hash, 'utf8');
  if (key.algorithm !== 'ed25519') return verifyDetached({ ...key, signature }, data);
  try {
    return verify(null, data, keyObject(key.publicKey, 'public'), Buffer.from(signature, 'base64'));
  } catch {
    return false;
  }
}

/** Builds the next entry after `prev`. */
export function makeEntry(
  prev: { seq: number; hash: string },
  o: { time: Date; action: string; deviceCode: string; content: unknown },
  key: SigningKey,
  keyFingerprint: string,
): LedgerEntry {
  const seq = prev.seq + 1;
  const time = o.time.toISOString();
  const content = canonicalJson(o.content);
  const hash = entryHash(prev.hash, content, seq, time);
  return {
    seq,
    time,
    action: o.action,
    deviceCode: o.deviceCode,
    content,
    prevHash: prev.hash,
    hash,
    signature: { algorithm: key.algorithm, keyFingerprint, value: signHash(key, hash) },
  };
}

/**
 * Walks entries in seq order and records what is wrong with each: the sequence must
 * step by one, each entry must name its predecessor's hash, its own hash must match its
 * fields, and the centre key must have signed that hash. A verifier also remembers the
 * last filed content of every device so that the device table can be checked after.
 */
export class ChainVerifier {
  readonly #key: DetachedSignature;
  readonly #problems: BrokenLink[] = [];
  readonly #maxProblems: number;
  /** Device code → hash of the device snapshot in its latest entry. */
  readonly filedDevices = new Map<string, { seq: number; snapshotHash: string | null }>();
  #prev: { seq: number; hash: string } = { seq: 0, hash: GENESIS_HASH };
  #entries = 0;

  constructor(publicKey: { algorithm: SignatureAlgorithm; publicKey: string }, maxProblems = 100) {
    this.#key = { ...publicKey, signature: '' };
    this.#maxProblems = maxProblems;
  }

  /** Entries seen so far. */
  get entries(): number {
    return this.#entries;
  }

  /** Seq and hash of the last entry seen. */
  get last(): { seq: number; hash: string } {
    return this.#prev;
  }

  /** Problems in the order found (chain order, then device checks). */
  get problems(): BrokenLink[] {
    return this.#problems;
  }

  /** Records a problem (kept up to the limit). */
  report(problem: BrokenLink): void {
    if (this.#problems.length < this.#maxProblems) this.#problems.push(problem);
  }

  /** Checks the next entry. */
  push(e: LedgerEntry): void {
    this.#entries++;
    const at = { seq: e.seq, deviceCode: e.deviceCode };
    if (e.seq !== this.#prev.seq + 1)
      this.report({
        ...at,
        reason: 'seq-gap',
        message:
          e.seq > this.#prev.seq + 1
            ? `entries ${this.#prev.seq + 1}–${e.seq - 1} are missing`
            : `seq ${e.seq} follows ${this.#prev.seq}`,
      });
    else if (e.prevHash !== this.#prev.hash)
      this.report({
        ...at,
        reason: 'link-broken',
        message: `prevHash ${e.prevHash.slice(0, 12)}… is not the hash of entry ${this.#prev.seq}`,
      });
    if (entryHash(e.prevHash, e.content, e.seq, e.time) !== e.hash)
      this.report({
        ...at,
        reason: 'content-changed',
        message: `entry ${e.seq} does not hash to its stored hash: its content, time or action was edited`,
      });
    else if (!verifyHash(this.#key, e.hash, e.signature.value))
      this.report({
        ...at,
        reason: 'signature-invalid',
        message: `the centre key did not sign entry ${e.seq} (signed by ${e.signature.keyFingerprint})`,
      });
    let snapshotHash: string | null = null;
    try {
      const parsed = JSON.parse(e.content) as { device?: unknown; action?: unknown };
      if (parsed.action !== e.action)
        this.report({
          ...at,
          reason: 'content-changed',
          message: `entry ${e.seq} action column says ${e.action}, its content says ${String(parsed.action)}`,
        });
      snapshotHash = parsed.device === undefined ? null : sha256Hex(canonicalJson(parsed.device));
    } catch {
      this.report({ ...at, reason: 'content-changed', message: `entry ${e.seq} content is not JSON` });
    }
    this.filedDevices.set(e.deviceCode, { seq: e.seq, snapshotHash });
    // Continue from what the entry claims, so one edit is reported once, not at every later entry.
    this.#prev = { seq: e.seq, hash: e.hash };
  }
}
