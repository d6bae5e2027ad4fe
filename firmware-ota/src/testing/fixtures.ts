/** Test support only (not exported): agent bundles, firmware images and signed artifacts on disk. */
import { randomBytes } from 'node:crypto';
import { mkdir, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { OtaManifest, SigningKey } from '@citysense/protocol';
import { create as createTar } from 'tar';
import { type ArtifactDescription, packArtifact } from '../artifact.ts';
import { BUNDLE_ENTRY } from '../slots.ts';

/** `--import` value that makes a child node run TypeScript, as bin/citysense.mjs does. */
export const TSX_LOADER = pathToFileURL(createRequire(import.meta.url).resolve('tsx')).href;

/** Writes a directory tree: relative path → contents. */
export async function writeTree(root: string, files: Record<string, string | Buffer>): Promise<void> {
  for (const [path, data] of Object.entries(files)) {
    await mkdir(dirname(join(root, path)), { recursive: true });
    await writeFile(join(root, path), data);
  }
}

/** Packs `dir` into a .tar.gz at `out` (entries relative to `dir`). */
export async function tarGz(dir: string, out: string): Promise<string> {
  await createTar({ gzip: true, file: out, cwd: dir, portable: true }, ['.']);
  return out;
}

/**
 * An agent bundle whose entry runs `script` (plain JavaScript), plus `extraFiles` random
 * files of `fileBytes` each so that extraction takes a while.
 */
export async function agentBundle(
  dir: string,
  name: string,
  script: string,
  extraFiles = 0,
  fileBytes = 1024,
): Promise<string> {
  const root = join(dir, `${name}-tree`);
  const files: Record<string, string | Buffer> = { [BUNDLE_ENTRY]: script, VERSION: name };
  for (let i = 0; i < extraFiles; i++)
    files[`lib/m${Math.floor(i / 100)}/f${i}.bin`] = randomBytes(fileBytes);
  await writeTree(root, files);
  return tarGz(root, join(dir, `${name}.tar.gz`));
}

/** A manifest for a payload already on disk (as packArtifact would make it, unsigned). */
export function manifestFor(
  description: ArtifactDescription,
  payload: { bytes: number; sha256: string },
): OtaManifest {
  return { format: 'citysense.ota/1', ...description, createdAt: new Date().toISOString(), payload };
}

/** Packs a signed artifact for `payloadPath`. */
export async function signedArtifact(
  description: ArtifactDescription,
  payloadPath: string,
  out: string,
  key: SigningKey,
): Promise<{ path: string; manifest: OtaManifest }> {
  const head = await packArtifact(description, payloadPath, out, key);
  return { path: out, manifest: head.manifest };
}
