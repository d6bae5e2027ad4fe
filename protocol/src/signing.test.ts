import { describe, expect, it } from 'vitest';
import { hasCode } from './errors.ts';
import {
  generateSigningKey,
  parseSigningKey,
  SIGNATURE_ALGORITHMS,
  signDetached,
  verifyDetached,
} from './signing.ts';

const data = new TextEncoder().encode('{"id":"yolox-nano","version":"1.0.0"}');

describe.each(SIGNATURE_ALGORITHMS)('%s detached signatures', (algorithm) => {
  const key = generateSigningKey(algorithm);

  it('verifies what it signed and nothing else', () => {
    const sig = signDetached(key, data);
    expect(sig.algorithm).toBe(algorithm);
    expect(verifyDetached(sig, data)).toBe(true);
    const tampered = Uint8Array.from(data);
    tampered[3] = (tampered[3] ?? 0) ^ 1;
    expect(verifyDetached(sig, tampered)).toBe(false);
    const other = generateSigningKey(algorithm);
    expect(verifyDetached({ ...sig, publicKey: other.publicKey }, data)).toBe(false);
    expect(verifyDetached({ ...sig, signature: 'garbage' }, data)).toBe(false);
    expect(verifyDetached({ ...sig, publicKey: 'garbage' }, data)).toBe(false);
  });

  it('round-trips a key file and refuses mismatched halves', () => {
    expect(parseSigningKey(JSON.stringify(key))).toEqual(key);
    const other = generateSigningKey(algorithm);
    const mixed = JSON.stringify({ ...key, publicKey: other.publicKey });
    expect(() => parseSigningKey(mixed)).toThrow(/does not match/);
  });
});

describe('signing key files', () => {
  it('refuses malformed files with CS_ERR_SIGNING_KEY', () => {
    for (const bad of ['not json', '{}', '{"algorithm":"rsa","publicKey":"a","privateKey":"b"}']) {
      let err: unknown;
      try {
        parseSigningKey(bad);
      } catch (e) {
        err = e;
      }
      expect(hasCode(err, 'CS_ERR_SIGNING_KEY')).toBe(true);
    }
  });

  it('does not verify an Ed25519 signature as SM2 or the reverse', () => {
    const ed = signDetached(generateSigningKey('ed25519'), data);
    const sm = signDetached(generateSigningKey('sm2-sm3'), data);
    expect(verifyDetached({ ...ed, algorithm: 'sm2-sm3' }, data)).toBe(false);
    expect(verifyDetached({ ...sm, algorithm: 'ed25519' }, data)).toBe(false);
  });
});
