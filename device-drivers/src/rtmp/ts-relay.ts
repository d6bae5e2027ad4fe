/**
 * MPEG-TS over HTTP: a publisher POSTs a transport stream to `/app/stream.ts`, players GET the
 * same path. This carries H.265, which FLV (and so RTMP/HTTP-FLV) cannot in ffmpeg 4.1: its FLV
 * muxer knows no HEVC codec id, and the `codec id 12` of some CDNs is not a standard.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Logger } from '@citysense/protocol';

/** TS packets are 188 bytes (ISO/IEC 13818-1 §2.4.3.2); players join on a packet boundary. */
const TS_PACKET = 188;
/** Bytes queued for one slow player before its data is dropped instead of buffered. */
const MAX_PLAYER_BACKLOG = 4 * 1024 * 1024;

/** A publisher asking to POST a stream. */
export interface TsPublishAttempt {
  app: string;
  stream: string;
  remoteAddress: string;
  query: URLSearchParams;
}

/** What the relay owner decides and hears about. */
export interface TsRelayHooks {
  /** Undefined to accept the publisher, else the reason it is refused. */
  authorize(attempt: TsPublishAttempt): string | undefined;
  published(id: string, attempt: TsPublishAttempt): void;
  unpublished(id: string): void;
}

interface TsStream {
  id: string;
  publisher: IncomingMessage | undefined;
  players: Set<ServerResponse>;
  /** Bytes of an incomplete TS packet carried to the next chunk. */
  carry: Buffer;
  startedAt: number;
  bytesIn: number;
}

const PATH = /^\/([A-Za-z0-9_-]+)\/([A-Za-z0-9_-]+)\.ts$/;

/** Fan-out of HTTP-posted MPEG-TS streams to HTTP players. */
export class TsRelay {
  readonly #hooks: TsRelayHooks;
  readonly #log: Logger;
  readonly #streams = new Map<string, TsStream>();
  #nextId = 1;

  constructor(hooks: TsRelayHooks, log: Logger) {
    this.#hooks = hooks;
    this.#log = log;
  }

  /** Players currently reading `app/stream`. */
  players(path: string): number {
    return this.#streams.get(path)?.players.size ?? 0;
  }

  /** Bytes received from the publisher of `app/stream` and when it started. */
  publisherStats(path: string): { bytesIn: number; startedAt: number } | undefined {
    const s = this.#streams.get(path);
    return s?.publisher ? { bytesIn: s.bytesIn, startedAt: s.startedAt } : undefined;
  }

  /** Serves `req` when it is a `.ts` request; false leaves it to the FLV routes. */
  handle(req: IncomingMessage, res: ServerResponse): boolean {
    const url = new URL(req.url ?? '/', 'http://relay');
    const match = PATH.exec(url.pathname);
    if (!match) return false;
    const app = match[1] ?? '';
    const stream = match[2] ?? '';
    if (req.method === 'POST' || req.method === 'PUT') this.#publish(req, res, app, stream, url.searchParams);
    else if (req.method === 'GET') this.#play(res, `${app}/${stream}`);
    else res.writeHead(405, { allow: 'GET, POST, PUT' }).end();
    return true;
  }

  /** Ends every publisher and player. */
  close(): void {
    for (const [path, s] of this.#streams) {
      s.publisher?.destroy();
      this.#endPublish(path, s);
      for (const p of s.players) p.destroy();
    }
    this.#streams.clear();
  }

  #publish(
    req: IncomingMessage,
    res: ServerResponse,
    app: string,
    stream: string,
    query: URLSearchParams,
  ): void {
    const path = `${app}/${stream}`;
    const attempt: TsPublishAttempt = { app, stream, remoteAddress: req.socket.remoteAddress ?? '', query };
    const refusal = this.#hooks.authorize(attempt);
    if (refusal !== undefined) {
      res.writeHead(403, { 'content-type': 'text/plain' }).end(`${refusal}\n`);
      req.resume();
      return;
    }
    const s = this.#stream(path);
    if (s.publisher) {
      res.writeHead(409, { 'content-type': 'text/plain' }).end(`${path} already has a publisher\n`);
      req.resume();
      return;
    }
    s.publisher = req;
    s.id = `ts-${this.#nextId++}`;
    s.startedAt = Date.now();
    s.bytesIn = 0;
    s.carry = Buffer.alloc(0);
    this.#hooks.published(s.id, attempt);
    req.on('data', (chunk: Buffer) => this.#forward(s, chunk));
    req.on('error', (err) => this.#log.debug({ err, path }, 'TS publisher connection failed'));
    req.on('close', () => {
      if (s.publisher !== req) return;
      if (!res.headersSent) res.writeHead(200).end();
      this.#endPublish(path, s);
    });
  }

  #endPublish(path: string, s: TsStream): void {
    if (!s.publisher) return;
    s.publisher = undefined;
    this.#hooks.unpublished(s.id);
    if (s.players.size === 0) this.#streams.delete(path);
  }

  #play(res: ServerResponse, path: string): void {
    const s = this.#stream(path);
    // Players wait for a publisher like HTTP-FLV players do, so a viewer may connect first.
    res.writeHead(200, { 'content-type': 'video/mp2t', 'cache-control': 'no-store' });
    res.flushHeaders();
    s.players.add(res);
    res.on('close', () => {
      s.players.delete(res);
      if (!s.publisher && s.players.size === 0 && this.#streams.get(path) === s) this.#streams.delete(path);
    });
  }

  #forward(s: TsStream, chunk: Buffer): void {
    s.bytesIn += chunk.length;
    const data = s.carry.length > 0 ? Buffer.concat([s.carry, chunk]) : chunk;
    const whole = data.length - (data.length % TS_PACKET);
    s.carry = Buffer.from(data.subarray(whole));
    if (whole === 0) return;
    const packets = data.subarray(0, whole);
    for (const p of s.players) {
      // A player that cannot keep up loses packets rather than growing our memory.
      if (p.writableLength > MAX_PLAYER_BACKLOG) continue;
      p.write(packets);
    }
  }

  #stream(path: string): TsStream {
    let s = this.#streams.get(path);
    if (!s) {
      s = {
        id: '',
        publisher: undefined,
        players: new Set(),
        carry: Buffer.alloc(0),
        startedAt: 0,
        bytesIn: 0,
      };
      this.#streams.set(path, s);
    }
    return s;
  }
}
