import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { randomSecret } from '@citysense/protocol';

/** The admin token in force and whether this start generated it. */
export interface AdminToken {
  token: string;
  source: 'config' | 'data-dir' | 'generated';
  path: string | null;
}

/** File in the data dir that holds a generated admin token. */
export function adminTokenPath(dataDir: string): string {
  return join(dataDir, 'admin-token');
}

/** Uses the configured token, else the one stored in the data dir, else generates and stores one (mode 0600). */
export async function resolveAdminToken(
  configured: string | undefined,
  dataDir: string,
): Promise<AdminToken> {
  if (configured) return { token: configured, source: 'config', path: null };
  const path = adminTokenPath(dataDir);
  const stored = await readFile(path, 'utf8').then(
    (t) => t.trim(),
    () => '',
  );
  if (stored.length >= 16) return { token: stored, source: 'data-dir', path };
  await mkdir(dataDir, { recursive: true });
  const token = `csa_${randomSecret(24)}`;
  await writeFile(path, `${token}\n`, { mode: 0o600 });
  return { token, source: 'generated', path };
}
