import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import {
  CitysenseError,
  generateSigningKey,
  parseSigningKey,
  type SignatureAlgorithm,
  type SigningKey,
} from '@citysense/protocol';

/** The centre signing key in force and whether this start generated it. */
export interface CentreKey {
  key: SigningKey;
  path: string;
  source: 'data-dir' | 'generated';
}

/** File in the data dir holding the centre signing key, in the format of `citysense algo keygen`. */
export function centreKeyPath(dataDir: string): string {
  return join(dataDir, 'centre-signing-key.json');
}

/**
 * Loads the centre signing key from the data dir, or generates one with
 * `algorithm` and stores it (mode 0600). An existing key of another algorithm is
 * refused rather than replaced: every package signed with it would stop verifying.
 */
export async function resolveCentreKey(dataDir: string, algorithm: SignatureAlgorithm): Promise<CentreKey> {
  const path = centreKeyPath(dataDir);
  const stored = await readFile(path, 'utf8').catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'ENOENT') return null;
    throw new CitysenseError(
      'CS_ERR_ALGO_CENTRE_KEY',
      `could not read the centre key ${path}: ${err.message}`,
    );
  });
  if (stored !== null) {
    let key: SigningKey;
    try {
      key = parseSigningKey(stored);
    } catch (err) {
      throw new CitysenseError(
        'CS_ERR_ALGO_CENTRE_KEY',
        `centre key ${path} is unusable (${(err as Error).message}): restore it from a backup`,
      );
    }
    if (key.algorithm !== algorithm)
      throw new CitysenseError(
        'CS_ERR_ALGO_CENTRE_KEY',
        `centre key ${path} is ${key.algorithm} but centreKeyAlgorithm is ${algorithm}: ` +
          `set centreKeyAlgorithm to ${key.algorithm}, or move the file away to generate a new key`,
      );
    return { key, path, source: 'data-dir' };
  }
  await mkdir(dataDir, { recursive: true });
  const key = generateSigningKey(algorithm);
  // 'wx': a second hub starting on the same data dir must not overwrite a key just written.
  await writeFile(path, `${JSON.stringify(key, null, 2)}\n`, { mode: 0o600, flag: 'wx' });
  return { key, path, source: 'generated' };
}
