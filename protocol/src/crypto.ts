import {
  createHash,
  createPrivateKey,
  createPublicKey,
  generateKeyPairSync,
  randomBytes,
  sign,
  timingSafeEqual,
  verify,
} from 'node:crypto';

/** An Ed25519 key pair in PEM (SPKI / PKCS#8), as stored in a node's state dir. */
export interface KeyPairPem {
  publicKey: string;
  privateKey: string;
}

/** Generates a new Ed25519 key pair. */
export function generateEd25519(): KeyPairPem {
  const { publicKey, privateKey } = generateKeyPairSync('ed25519');
  return {
    publicKey: publicKey.export({ type: 'spki', format: 'pem' }).toString(),
    privateKey: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
  };
}

/** Ed25519 signature of `data`, base64. */
export function signEd25519(privateKeyPem: string, data: Buffer | string): string {
  return sign(null, Buffer.from(data), createPrivateKey(privateKeyPem)).toString('base64');
}

/** Verifies an Ed25519 signature; false on any malformed key or signature. */
export function verifyEd25519(publicKeyPem: string, data: Buffer | string, signatureB64: string): boolean {
  try {
    return verify(
      null,
      Buffer.from(data),
      createPublicKey(publicKeyPem),
      Buffer.from(signatureB64, 'base64'),
    );
  } catch {
    return false;
  }
}

/** True when `pem` parses as an Ed25519 public key. */
export function isEd25519PublicKey(pem: string): boolean {
  try {
    return createPublicKey(pem).asymmetricKeyType === 'ed25519';
  } catch {
    return false;
  }
}

/** Hex SHA-256 of `data`. */
export function sha256Hex(data: Buffer | string): string {
  return createHash('sha256').update(data).digest('hex');
}

/** A URL-safe random secret with `bytes` of entropy (tokens, credentials). */
export function randomSecret(bytes = 24): string {
  return randomBytes(bytes).toString('base64url');
}

/** Constant-time comparison of two hex digests. */
export function digestEquals(aHex: string, bHex: string): boolean {
  const a = Buffer.from(aHex, 'hex');
  const b = Buffer.from(bHex, 'hex');
  return a.length === b.length && a.length > 0 && timingSafeEqual(a, b);
}
