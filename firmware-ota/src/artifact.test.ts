import { randomBytes } from 'node:crypto';
import { mkdtemp, open, readFile, rm, truncate, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { generateSigningKey, hasCode, type SigningKey } from '@citysense/protocol';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type ArtifactDescription,
  extractPayload,
  packArtifact,
  readArtifactHead,
  verifyArtifact,
} from './artifact.ts';
import { OTA_ERRORS } from './errors.ts';

let dir: string;
let payloadPath: string;
const payload = randomBytes(300_000);
const description: ArtifactDescription = {
  name: 'lamp-gateway-fw',
  version: '2.1.0',
  target: 'firmware',
  hardware: ['LPG-3'],
};

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'csota-'));
  payloadPath = join(dir, 'image.bin');
  await writeFile(payloadPath, payload);
});
afterAll(() => rm(dir, { recursive: true, force: true }));

async function packed(key: SigningKey, name = 'fw.csota'): Promise<string> {
  const out = join(dir, name);
  await packArtifact(description, payloadPath, out, key);
  return out;
}

async function flipByte(path: string, position: number): Promise<void> {
  const file = await open(path, 'r+');
  const one = Buffer.alloc(1);
  await file.read(one, 0, 1, position);
  one[0] = (one[0] ?? 0) ^ 0xff;
  await file.write(one, 0, 1, position);
  await file.close();
}

describe('OTA artifact', () => {
  it.each(['ed25519', 'sm2-sm3'] as const)('packs, verifies and extracts with %s', async (algorithm) => {
    const key = generateSigningKey(algorithm);
    const path = await packed(key, `fw-${algorithm}.csota`);
    const head = await verifyArtifact(path, { trustedKeys: [key.publicKey] });
    expect(head.manifest).toMatchObject({ ...description, payload: { bytes: payload.length } });
    expect(head.signature.algorithm).toBe(algorithm);
    const out = join(dir, `out-${algorithm}.bin`);
    await extractPayload(path, head, out);
    expect((await readFile(out)).equals(payload)).toBe(true);
  });

  it('refuses a corrupt payload, a changed manifest, a stranger key and a truncated file, each with its code', async () => {
    const key = generateSigningKey('ed25519');
    const corrupt = await packed(key, 'corrupt.csota');
    const { payloadOffset, fileBytes } = await readArtifactHead(corrupt);
    await flipByte(corrupt, payloadOffset + 1000);
    await expect(verifyArtifact(corrupt)).rejects.toSatisfy((e) => hasCode(e, OTA_ERRORS.digest));

    const altered = await packed(key, 'altered.csota');
    const text = await readFile(altered);
    // Same length, different version: the signature must catch it.
    await writeFile(altered, Buffer.from(text.toString('latin1').replace('"2.1.0"', '"2.1.9"'), 'latin1'));
    await expect(verifyArtifact(altered)).rejects.toSatisfy((e) => hasCode(e, OTA_ERRORS.signature));

    const stranger = await packed(generateSigningKey('ed25519'), 'stranger.csota');
    await expect(verifyArtifact(stranger, { trustedKeys: [key.publicKey] })).rejects.toSatisfy((e) =>
      hasCode(e, OTA_ERRORS.untrustedKey),
    );

    const short = await packed(key, 'short.csota');
    await truncate(short, fileBytes - 10);
    await expect(verifyArtifact(short)).rejects.toSatisfy((e) => hasCode(e, OTA_ERRORS.invalid));
  });

  it('refuses files that are not artifacts with a clear message', async () => {
    const garbage = join(dir, 'garbage.csota');
    await writeFile(garbage, randomBytes(4096));
    await expect(readArtifactHead(garbage)).rejects.toThrow(/does not start with "CSOTA\/1/);
    await writeFile(garbage, 'CSOTA/1 5 2\n{"a":1}{}');
    await expect(readArtifactHead(garbage)).rejects.toSatisfy((e) => hasCode(e, OTA_ERRORS.invalid));
    await expect(readArtifactHead(join(dir, 'missing.csota'))).rejects.toThrow(/cannot open artifact/);
    await expect(
      packArtifact(
        { ...description, version: 'not-semver' },
        payloadPath,
        join(dir, 'x.csota'),
        generateSigningKey('ed25519'),
      ),
    ).rejects.toThrow(/manifest is invalid at \/version/);
  });
});
