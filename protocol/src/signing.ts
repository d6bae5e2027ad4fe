/**
 * Detached signatures over artefacts the centre publishes (algorithm packages,
 * later firmware). Ed25519 by default; SM2 with the SM3 digest (GB/T 32918,
 * GB/T 32905) for deployments that require national cryptography.
 */
import { sm2 } from 'sm-crypto';
import { generateEd25519, isEd25519PublicKey, signEd25519, verifyEd25519 } from './crypto.ts';
import { CitysenseError } from './errors.ts';

/** Signature algorithms the centre can sign with. */
export const SIGNATURE_ALGORITHMS = ['ed25519', 'sm2-sm3'] as const;
/** One of `SIGNATURE_ALGORITHMS`. */
export type SignatureAlgorithm = (typeof SIGNATURE_ALGORITHMS)[number];

/**
 * A signing key as stored in a key file: Ed25519 keys in PEM (SPKI / PKCS#8),
 * SM2 keys in hex (uncompressed public point `04…`, 32-byte private scalar).
 */
export interface SigningKey {
  algorithm: SignatureAlgorithm;
  publicKey: string;
  privateKey: string;
}

/** A detached signature with what is needed to check it. */
export interface DetachedSignature {
  algorithm: SignatureAlgorithm;
  publicKey: string;
  /** Base64 (Ed25519) or hex DER (SM2). */
  signature: string;
}

/** SM2 signer identity used in the Z value (GB/T 32918.2 default user id). */
const SM2_USER_ID = '1234567812345678';
const SM2_PUBLIC_KEY = /^04[0-9a-f]{128}$/i;

/** True when `value` names a supported signature algorithm. */
export function isSignatureAlgorithm(value: unknown): value is SignatureAlgorithm {
  return typeof value === 'string' && (SIGNATURE_ALGORITHMS as readonly string[]).includes(value);
}

/** Generates a new signing key pair. */
export function generateSigningKey(algorithm: SignatureAlgorithm): SigningKey {
  if (algorithm === 'ed25519') return { algorithm, ...generateEd25519() };
  const { publicKey, privateKey } = sm2.generateKeyPairHex();
  return { algorithm, publicKey, privateKey };
}

/** Signs `data` with `key`. */
export function signDetached(key: SigningKey, data: Uint8Array): DetachedSignature {
  const signature =
    key.algorithm === 'ed25519'
      ? signEd25519(key.privateKey, Buffer.from(data))
      : sm2.doSignature(Array.from(data), key.privateKey, {
          hash: true,
          der: true,
          publicKey: key.publicKey,
          userId: SM2_USER_ID,
        });
  return { algorithm: key.algorithm, publicKey: key.publicKey, signature };
}

/** Verifies a detached signature over `data`; false on any mismatch or malformed key or signature. */
export function verifyDetached(sig: DetachedSignature, data: Uint8Array): boolean {
  if (sig.algorithm === 'ed25519') return verifyEd25519(sig.publicKey, Buffer.from(data), sig.signature);
  if (!SM2_PUBLIC_KEY.test(sig.publicKey) || !/^[0-9a-f]+$/i.test(sig.signature)) return false;
  try {
    return sm2.doVerifySignature(Array.from(data), sig.signature, sig.publicKey, {
      hash: true,
      der: true,
      userId: SM2_USER_ID,
    });
  } catch {
    return false;
  }
}

/** Checks that `publicKey` is well-formed for `algorithm`; throws CS_ERR_SIGNING_KEY otherwise. */
export function assertPublicKey(algorithm: SignatureAlgorithm, publicKey: string): void {
  const ok = algorithm === 'ed25519' ? isEd25519PublicKey(publicKey) : SM2_PUBLIC_KEY.test(publicKey);
  if (!ok)
    throw new CitysenseError(
      'CS_ERR_SIGNING_KEY',
      `not a ${algorithm} public key (${algorithm === 'ed25519' ? 'PEM SPKI' : 'hex 04…, 130 digits'} expected)`,
      400,
    );
}

/** Parses a key file's JSON (`citysense algo keygen` writes it); throws CS_ERR_SIGNING_KEY when malformed. */
export function parseSigningKey(json: string): SigningKey {
  let doc: unknown;
  try {
    doc = JSON.parse(json);
  } catch {
    throw new CitysenseError('CS_ERR_SIGNING_KEY', 'signing key file is not JSON', 400);
  }
  const k = doc as Partial<SigningKey> | null;
  if (
    !k ||
    !isSignatureAlgorithm(k.algorithm) ||
    typeof k.publicKey !== 'string' ||
    typeof k.privateKey !== 'string'
  )
    throw new CitysenseError(
      'CS_ERR_SIGNING_KEY',
      `signing key file needs {algorithm: ${SIGNATURE_ALGORITHMS.join('|')}, publicKey, privateKey}`,
      400,
    );
  assertPublicKey(k.algorithm, k.publicKey);
  // A key whose halves do not belong together would sign packages nobody can verify.
  const probe = new TextEncoder().encode('citysense key check');
  const key = { algorithm: k.algorithm, publicKey: k.publicKey, privateKey: k.privateKey };
  let matches = false;
  try {
    matches = verifyDetached(signDetached(key, probe), probe);
  } catch {
    matches = false;
  }
  if (!matches)
    throw new CitysenseError('CS_ERR_SIGNING_KEY', 'the private key does not match the public key', 400);
  return key;
}
