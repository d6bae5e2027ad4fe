/**
 * One algorithm version in one file (`.csalgo`): `manifest.json` (with the
 * SHA-256 and size of every part), the parts it names (ONNX graph, labels,
 * licence, test images), and `signature.json`, the centre's detached signature
 * over the exact manifest bytes. Trust flows signature → manifest → part digests.
 */
import { lstat, readFile, realpath } from 'node:fs/promises';
import { join, relative, resolve, sep } from 'node:path';
import {
  CitysenseError,
  type DetachedSignature,
  isSignatureAlgorithm,
  type SigningKey,
  sha256Hex,
  signDetached,
  verifyDetached,
} from '@citysense/protocol';
import { type Manifest, parseManifest, parseManifestSource, referencedParts } from '../manifest.ts';
import { readTar, writeTar } from './tar.ts';

/** File name extension of algorithm packages. */
export const PACKAGE_EXTENSION = '.csalgo';
/** Archive member holding the manifest. */
export const MANIFEST_ENTRY = 'manifest.json';
/** Archive member holding the signature. */
export const SIGNATURE_ENTRY = 'signature.json';
/** Largest package accepted by default: 512 MiB. */
export const DEFAULT_MAX_PACKAGE_BYTES = 512 * 1024 * 1024;

/** An opened, digest-checked and signature-checked package. */
export interface AlgorithmPackage {
  manifest: Manifest;
  /** The exact bytes the signature covers. */
  manifestBytes: Buffer;
  signature: DetachedSignature;
  /** Part path → bytes, each matching its manifest digest. */
  parts: ReadonlyMap<string, Buffer>;
  /** SHA-256 of the whole package file. */
  sha256: string;
  bytes: number;
}

/** Options of `openAlgorithmPackage`. */
export interface OpenPackageOptions {
  /** Public keys allowed to sign; when set, any other signer is refused (CS_ERR_ALGO_UNTRUSTED_KEY). */
  trustedKeys?: readonly string[];
  maxBytes?: number;
}

/**
 * Packs the source folder `dir` (a `manifest.json` and the files it names) and
 * signs it with `key`. Parts must be regular files inside `dir`.
 */
export async function packAlgorithm(
  dir: string,
  key: SigningKey,
): Promise<{ file: Buffer; manifest: Manifest }> {
  const root = await realpath(resolve(dir)).catch(() => {
    throw new CitysenseError('CS_ERR_ALGO_SOURCE', `package source folder ${dir} does not exist`, 400);
  });
  const source = parseManifestSource(await readJson(join(root, MANIFEST_ENTRY)));
  const parts: Array<{ path: string; data: Buffer }> = [];
  for (const path of referencedParts(source)) parts.push({ path, data: await readPart(root, path) });
  const manifest: Manifest = {
    ...source,
    parts: Object.fromEntries(
      parts.map((p) => [p.path, { sha256: sha256Hex(p.data), bytes: p.data.length }]),
    ),
  };
  const manifestBytes = Buffer.from(`${JSON.stringify(manifest, null, 2)}\n`);
  const signature = signDetached(key, manifestBytes);
  const file = writeTar([
    { path: MANIFEST_ENTRY, data: manifestBytes },
    ...parts,
    { path: SIGNATURE_ENTRY, data: Buffer.from(`${JSON.stringify(signature, null, 2)}\n`) },
  ]);
  return { file, manifest };
}

/**
 * Opens a package file: structure, manifest, every part's digest, and the
 * signature are checked before anything is returned. Coded errors:
 * CS_ERR_ALGO_PACKAGE_CORRUPT, CS_ERR_ALGO_PACKAGE_TOO_LARGE, CS_ERR_ALGO_MANIFEST,
 * CS_ERR_ALGO_PART_MISSING, CS_ERR_ALGO_PART_DIGEST, CS_ERR_ALGO_SIGNATURE,
 * CS_ERR_ALGO_UNTRUSTED_KEY.
 */
export function openAlgorithmPackage(file: Buffer, options: OpenPackageOptions = {}): AlgorithmPackage {
  const maxBytes = options.maxBytes ?? DEFAULT_MAX_PACKAGE_BYTES;
  if (file.length > maxBytes)
    throw new CitysenseError(
      'CS_ERR_ALGO_PACKAGE_TOO_LARGE',
      `package is ${file.length} bytes, more than the limit of ${maxBytes}`,
      413,
    );
  const entries = new Map(readTar(file).map((e) => [e.path, e.data]));
  const manifestBytes = entries.get(MANIFEST_ENTRY);
  const signatureBytes = entries.get(SIGNATURE_ENTRY);
  if (!manifestBytes || !signatureBytes)
    throw new CitysenseError(
      'CS_ERR_ALGO_PACKAGE_CORRUPT',
      `not an algorithm package: ${MANIFEST_ENTRY} and ${SIGNATURE_ENTRY} are required`,
      400,
    );

  const signature = parseSignature(signatureBytes);
  if (options.trustedKeys && !options.trustedKeys.some((k) => k.trim() === signature.publicKey.trim()))
    throw new CitysenseError(
      'CS_ERR_ALGO_UNTRUSTED_KEY',
      `package is signed by a key this centre does not trust (${keyFingerprint(signature.publicKey)})`,
      403,
      { fingerprint: keyFingerprint(signature.publicKey) },
    );
  if (!verifyDetached(signature, manifestBytes))
    throw new CitysenseError(
      'CS_ERR_ALGO_SIGNATURE',
      `package signature does not verify (${signature.algorithm}): the manifest was altered or signed by another key`,
      400,
    );

  const manifest = parseManifest(parseJson(manifestBytes, MANIFEST_ENTRY));
  const parts = new Map<string, Buffer>();
  for (const [path, digest] of Object.entries(manifest.parts)) {
    const data = entries.get(path);
    if (!data) throw new CitysenseError('CS_ERR_ALGO_PART_MISSING', `package lacks part ${path}`, 400);
    if (data.length !== digest.bytes || sha256Hex(data) !== digest.sha256)
      throw new CitysenseError(
        'CS_ERR_ALGO_PART_DIGEST',
        `part ${path} does not match its SHA-256 in the manifest (tampered or damaged)`,
        400,
        { part: path },
      );
    parts.set(path, data);
  }
  return { manifest, manifestBytes, signature, parts, sha256: sha256Hex(file), bytes: file.length };
}

/** Reads and opens a package file from disk. */
export async function readAlgorithmPackage(
  path: string,
  options: OpenPackageOptions = {},
): Promise<AlgorithmPackage> {
  const stat = await lstat(path).catch(() => {
    throw new CitysenseError('CS_ERR_ALGO_PACKAGE_NOT_FOUND', `no package file at ${path}`, 404);
  });
  if (!stat.isFile()) throw new CitysenseError('CS_ERR_ALGO_PACKAGE_NOT_FOUND', `${path} is not a file`, 400);
  return openAlgorithmPackage(await readFile(path), options);
}

/** The labels of a package, one per line, in class index order. */
export function packageLabels(pkg: AlgorithmPackage): string[] {
  const text = pkg.parts.get(pkg.manifest.labels)?.toString('utf8') ?? '';
  return text
    .split(/\r?\n/)
    .map((l) => l.trim())
    .filter((l) => l.length > 0);
}

/** Short, stable fingerprint of a public key for logs and listings: `sha256:` + 16 hex digits. */
export function keyFingerprint(publicKey: string): string {
  return `sha256:${sha256Hex(publicKey.trim()).slice(0, 16)}`;
}

function parseSignature(bytes: Buffer): DetachedSignature {
  const doc = parseJson(bytes, SIGNATURE_ENTRY) as Partial<DetachedSignature> | null;
  if (
    !doc ||
    !isSignatureAlgorithm(doc.algorithm) ||
    typeof doc.publicKey !== 'string' ||
    typeof doc.signature !== 'string'
  )
    throw new CitysenseError('CS_ERR_ALGO_SIGNATURE', `${SIGNATURE_ENTRY} is malformed`, 400);
  return { algorithm: doc.algorithm, publicKey: doc.publicKey, signature: doc.signature };
}

function parseJson(bytes: Buffer, what: string): unknown {
  try {
    return JSON.parse(bytes.toString('utf8'));
  } catch {
    throw new CitysenseError('CS_ERR_ALGO_PACKAGE_CORRUPT', `${what} is not valid JSON`, 400);
  }
}

async function readJson(path: string): Promise<unknown> {
  const text = await readFile(path, 'utf8').catch(() => {
    throw new CitysenseError('CS_ERR_ALGO_SOURCE', `no ${MANIFEST_ENTRY} at ${path}`, 400);
  });
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new CitysenseError(
      'CS_ERR_ALGO_MANIFEST',
      `${path} is not valid JSON: ${(err as Error).message}`,
      400,
    );
  }
}

/** Reads one part, refusing anything that is not a regular file inside `root` (symlinks included). */
async function readPart(root: string, path: string): Promise<Buffer> {
  const full = resolve(root, path);
  if (relative(root, full).startsWith(`..${sep}`) || full === root)
    throw new CitysenseError('CS_ERR_ALGO_SOURCE', `part ${path} lies outside the package folder`, 400);
  const stat = await lstat(full).catch(() => {
    throw new CitysenseError(
      'CS_ERR_ALGO_SOURCE',
      `manifest names ${path}, which does not exist in ${root}`,
      400,
    );
  });
  if (!stat.isFile())
    throw new CitysenseError(
      'CS_ERR_ALGO_SOURCE',
      `part ${path} is not a regular file (symlinks are refused)`,
      400,
    );
  return readFile(full);
}
