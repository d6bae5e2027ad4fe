/**
 * Live updates from `GET /v1/events` (server-sent events). Read with fetch() and a
 * stream reader so the session token goes in the Authorization header, never in a
 * URL; reconnects with back-off, as EventSource would (WHATWG HTML §9.2 parsing).
 */
import type { ApiClient, HealthSummary } from './api.ts';
import { signal } from './signal.ts';

/** One event from the hub. */
export interface LiveEvent {
  event: string;
  data: unknown;
}

/** Latest platform health from the stream (or the summary route). */
export const health = signal<HealthSummary | null>(null);
/** Whether the stream is connected. */
export const liveConnected = signal(false);
/** Why the stream last dropped (shown in the header's tooltip). */
export const liveError = signal<string | null>(null);

const listeners = new Set<(e: LiveEvent) => void>();

/** Receives every live event (node, alarm, rollout, summary). */
export function onLiveEvent(listener: (e: LiveEvent) => void): () => void {
  listeners.add(listener);
  return () => listeners.delete(listener);
}

/** Keeps a stream open until `signal` aborts. */
export async function runLiveStream(client: ApiClient, signal: AbortSignal): Promise<void> {
  let delay = 1000;
  while (!signal.aborted) {
    try {
      const res = await client.stream('/v1/events', signal);
      if (res.status === 401) {
        // The session is over: let the API client's 401 path take the user to login.
        await client.get('/v1/auth/me').catch(() => undefined);
        return;
      }
      if (!res.ok || !res.body) throw new Error(`event stream answered ${res.status}`);
      liveConnected.set(true);
      delay = 1000;
      await readEvents(res.body, (e) => {
        if (e.event === 'summary') health.set(e.data as HealthSummary);
        for (const l of [...listeners]) l(e);
      });
    } catch (e) {
      if (signal.aborted) break;
      // A dropped stream is expected (hub restart, network): remember why, retry below.
      liveError.set(e instanceof Error ? e.message : String(e));
    }
    liveConnected.set(false);
    if (signal.aborted) break;
    await new Promise((r) => setTimeout(r, delay));
    delay = Math.min(delay * 2, 30_000);
  }
  liveConnected.set(false);
}

async function readEvents(body: ReadableStream<Uint8Array>, emit: (e: LiveEvent) => void): Promise<void> {
  const reader = body.getReader();
  const decoder = new TextDecoder();
  let buffer = '';
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer += decoder.decode(value, { stream: true });
    let end = buffer.search(/\r?\n\r?\n/);
    while (end >= 0) {
      const block = buffer.slice(0, end);
      buffer = buffer.slice(buffer[end] === '\r' ? end + 4 : end + 2);
      let event = 'message';
      const data: string[] = [];
      for (const line of block.split(/\r?\n/)) {
        if (line.startsWith(':')) continue;
        const colon = line.indexOf(':');
        const field = colon < 0 ? line : line.slice(0, colon);
        const value = colon < 0 ? '' : line.slice(colon + 1).replace(/^ /, '');
        if (field === 'event') event = value;
        else if (field === 'data') data.push(value);
      }
      if (data.length > 0) {
        try {
          emit({ event, data: JSON.parse(data.join('\n')) });
        } catch {
          emit({ event, data: data.join('\n') });
        }
      }
      end = buffer.search(/\r?\n\r?\n/);
    }
  }
}
