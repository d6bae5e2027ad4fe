import { execFileSync } from 'node:child_process';
import { cp, mkdir, mkdtemp, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { generateSigningKey, hasCode, sha256Hex } from '@citysense/protocol';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { keyFingerprint, openAlgorithmPackage, packAlgorithm, packageLabels } from './algorithm-package.ts';
import { readTar } from './tar.ts';

const REFERENCE = fileURLToPath(new URL('../../packages/yolox-nano', import.meta.url));
const MODEL_SHA256 = '695e750a5d5754bb5a8d5325643b59282191a7e7a564e435a415fd3c578eab14';

function codeOf(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (err) {
    return (err as { code?: string }).code;
  }
  return undefined;
}

describe('algorithm packages', () => {
  const key = generateSigningKey('ed25519');
  let file: Buffer;
  let dir: string;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'citysense-algo-'));
    ({ file } = await packAlgorithm(REFERENCE, key));
  });
  afterAll(() => rm(dir, { recursive: true, force: true }));

  it('packs the reference YOLOX-nano folder into one signed file with every part digested', () => {
    const pkg = openAlgorithmPackage(file, { trustedKeys: [key.publicKey] });
    expect(pkg.manifest).toMatchObject({ id: 'yolox-nano', version: '1.0.0', task: 'detection' });
    expect(pkg.manifest.parts['yolox_nano.onnx']).toEqual({ sha256: MODEL_SHA256, bytes: 3_660_092 });
    expect(Object.keys(pkg.manifest.parts).sort()).toEqual([
      'LICENSE',
      'coco_classes.txt',
      'samples/000000000139.jpg',
      'samples/000000000724.jpg',
      'yolox_nano.onnx',
    ]);
    expect(packageLabels(pkg)).toHaveLength(80);
    expect(packageLabels(pkg)[0]).toBe('person');
    expect(pkg.sha256).toBe(sha256Hex(file));
  });

  it('is a standard tar archive that GNU tar lists and extracts byte for byte', async () => {
    const path = join(dir, 'yolox-nano.csalgo');
    await writeFile(path, file);
    const listing = execFileSync('tar', ['tf', path], { encoding: 'utf8' }).trim().split('\n');
    expect(listing[0]).toBe('manifest.json');
    expect(listing.at(-1)).toBe('signature.json');
    const out = join(dir, 'x');
    await mkdir(out);
    execFileSync('tar', ['xf', path, '-C', out]);
    expect(sha256Hex(await readFile(join(out, 'yolox_nano.onnx')))).toBe(MODEL_SHA256);
  });

  it('packs deterministically: same folder and key give the same manifest digests', async () => {
    const again = await packAlgorithm(REFERENCE, key);
    expect(readTar(again.file).map((e) => e.path)).toEqual(readTar(file).map((e) => e.path));
    expect(again.manifest.parts).toEqual(openAlgorithmPackage(file).manifest.parts);
  });

  it('refuses a tampered model, a tampered manifest, a truncated file and garbage, each with its code', () => {
    const modelAt = file.indexOf(Buffer.from('yolox_nano.onnx\0'));
    const tamperedModel = Buffer.from(file);
    const inModel = modelAt + 512 + 4096;
    tamperedModel[inModel] = (tamperedModel[inModel] ?? 0) ^ 0xff;
    expect(codeOf(() => openAlgorithmPackage(tamperedModel))).toBe('CS_ERR_ALGO_PART_DIGEST');

    const tamperedManifest = Buffer.from(file);
    const versionAt = tamperedManifest.indexOf(Buffer.from('"1.0.0"'));
    tamperedManifest.write('"1.0.1"', versionAt, 'latin1');
    expect(codeOf(() => openAlgorithmPackage(tamperedManifest))).toBe('CS_ERR_ALGO_SIGNATURE');

    expect(codeOf(() => openAlgorithmPackage(file.subarray(0, file.length - 5000)))).toBe(
      'CS_ERR_ALGO_PACKAGE_CORRUPT',
    );
    expect(codeOf(() => openAlgorithmPackage(Buffer.from('not a package at all')))).toBe(
      'CS_ERR_ALGO_PACKAGE_CORRUPT',
    );
    expect(codeOf(() => openAlgorithmPackage(file, { maxBytes: 1024 }))).toBe(
      'CS_ERR_ALGO_PACKAGE_TOO_LARGE',
    );
  });

  it('refuses a package signed by a key the centre does not trust', () => {
    const other = generateSigningKey('ed25519');
    let err: unknown;
    try {
      openAlgorithmPackage(file, { trustedKeys: [other.publicKey] });
    } catch (e) {
      err = e;
    }
    expect(hasCode(err, 'CS_ERR_ALGO_UNTRUSTED_KEY')).toBe(true);
    expect(String(err)).toContain(keyFingerprint(key.publicKey));
  });

  it('signs and verifies with SM2/SM3 for national-cryptography deployments', async () => {
    const sm2 = generateSigningKey('sm2-sm3');
    const packed = await packAlgorithm(REFERENCE, sm2);
    const pkg = openAlgorithmPackage(packed.file, { trustedKeys: [sm2.publicKey] });
    expect(pkg.signature.algorithm).toBe('sm2-sm3');
    const tampered = Buffer.from(packed.file);
    tampered.write('"1.0.1"', tampered.indexOf(Buffer.from('"1.0.0"')), 'latin1');
    expect(codeOf(() => openAlgorithmPackage(tampered))).toBe('CS_ERR_ALGO_SIGNATURE');
  });

  it('refuses a source folder whose parts are missing, outside it, or symlinks', async () => {
    const src = join(dir, 'src');
    await cp(REFERENCE, src, { recursive: true });
    await rm(join(src, 'coco_classes.txt'));
    await expect(packAlgorithm(src, key)).rejects.toMatchObject({ code: 'CS_ERR_ALGO_SOURCE' });
    await symlink(join(REFERENCE, 'coco_classes.txt'), join(src, 'coco_classes.txt'));
    await expect(packAlgorithm(src, key)).rejects.toMatchObject({
      code: 'CS_ERR_ALGO_SOURCE',
      message: expect.stringContaining('symlinks'),
    });
    await writeFile(join(src, 'manifest.json'), '{"schema":"citysense.algorithm/v1","id":"X"}');
    await expect(packAlgorithm(src, key)).rejects.toMatchObject({ code: 'CS_ERR_ALGO_MANIFEST' });
  });
});
