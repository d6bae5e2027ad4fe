/**
 * Outbound webhook delivery shared by the ledger chain push and alarm notifications:
 * one JSON POST with a timeout, an optional HMAC-SHA256 signature, and the exponential
 * backoff both outboxes use between attempts. Callers keep their own outbox state.
 */
import { createHmac } from 'node:crypto';
import { errorMessage } from '@citysense/protocol';

/** Header carrying `sha256=<hex HMAC-SHA256 of the raw body>` when a secret is configured. */
export const WEBHOOK_SIGNATURE_HEADER = 'x-citysense-signature-256';

/** How one webhook POST is made. */
export interface WebhookPostOptions {
  /** Extra headers (content-type is always `application/json`). */
  headers?: Record<string, string>;
  /** HMAC-SHA256 key; when set the body is signed into `WEBHOOK_SIGNATURE_HEADER`. */
  secret?: string | Buffer | undefined;
  /** Per-request timeout; default 10 s. */
  timeoutMs?: number | undefined;
  /** Aborts the request (component stopping). */
  signal?: AbortSignal | undefined;
}

/** `sha256=<hex>`: the signature a receiver recomputes over the raw body with the shared secret. */
export function webhookSignature(secret: string | Buffer, body: string): string {
  return `sha256=${createHmac('sha256', secret).update(body).digest('hex')}`;
}

/** Delay before attempt `attempts + 1`: `base · 2^attempts`, capped at `max`. */
export function webhookBackoffMs(attempts: number, baseMs: number, maxMs: number): number {
  return Math.min(maxMs, baseMs * 2 ** Math.min(Math.max(0, attempts), 30));
}

/** POSTs `body` (already JSON) to `url`; resolves null on a 2xx answer, else what went wrong. Never throws. */
export async function postWebhook(
  url: string,
  body: string,
  options: WebhookPostOptions = {},
): Promise<string | null> {
  const headers: Record<string, string> = { 'content-type': 'application/json', ...options.headers };
  if (options.secret !== undefined)
    headers[WEBHOOK_SIGNATURE_HEADER] = webhookSignature(options.secret, body);
  const timeout = AbortSignal.timeout(options.timeoutMs ?? 10_000);
  try {
    const res = await fetch(url, {
      method: 'POST',
      headers,
      body,
      signal: options.signal ? AbortSignal.any([options.signal, timeout]) : timeout,
    });
    // Drain the body so the connection is reused.
    await res.arrayBuffer().catch(() => undefined);
    return res.ok ? null : `HTTP ${res.status}`;
  } catch (err) {
    return errorMessage(err);
  }
}
