import { randomBytes } from 'node:crypto';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

/** File in the data dir holding the generated alarm webhook HMAC key. */
export function alarmWebhookSecretPath(dataDir: string): string {
  return join(dataDir, 'alarm-webhook-secret');
}

/**
 * The HMAC-SHA256 key of alarm webhooks: the configured one, else the one stored in the
 * data dir, else a new one generated there (32 random bytes, base64url text, mode 0600),
 * like the admin token. Receivers use the same text as their key.
 */
export async function resolveAlarmWebhookSecret(
  configured: string | undefined,
  dataDir: string,
): Promise<string> {
  if (configured) return configured;
  const path = alarmWebhookSecretPath(dataDir);
  const stored = await readFile(path, 'utf8').then(
    (t) => t.trim(),
    () => '',
  );
  if (stored.length >= 16) return stored;
  await mkdir(dataDir, { recursive: true });
  const secret = randomBytes(32).toString('base64url');
  await writeFile(path, `${secret}\n`, { mode: 0o600 });
  return secret;
}
