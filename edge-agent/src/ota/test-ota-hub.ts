/**
 * Test support only (not exported): the hub side of the OTA contract (protocol/src/ota.ts)
 * on a real HTTP server on port 0 — GET the node's OTA document, PUT status reports, and
 * artifact downloads with Range / If-Range and a switch to cut a transfer mid-way.
 * Enrolment requests are passed on to `enrollUrl`, so an agent can enrol through it.
 */
import { EventEmitter } from 'node:events';
import { readFile } from 'node:fs/promises';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { type OtaDocument, type OtaStatus, sha256Hex } from '@citysense/protocol';

/** One status report as the hub saw it. */
export interface SeenOtaStatus {
  campaignId: string;
  status: OtaStatus;
}

/** One artifact download as the hub saw it. */
export interface SeenArtifactDownload {
  range: string | undefined;
  status: number;
  sent: number;
}

/** An artifact the hub serves. */
export interface ServedArtifact {
  artifactId: string;
  filePath: string;
  sha256: string;
  bytes: number;
}

/** A hub stand-in for the OTA updater's tests. */
export class TestOtaHub extends EventEmitter {
  /** The document GET answers with; null = 404. */
  document: OtaDocument | null = null;
  /** Cut the next download after this many body bytes (then reset to null). */
  cutNextDownloadAfter: number | null = null;
  /** Where `POST /v1/nodes/enroll` is forwarded. */
  enrollUrl: string | null = null;
  /** node id → password (HTTP Basic); empty = anyone. */
  readonly credentials = new Map<string, string>();
  readonly statuses: SeenOtaStatus[] = [];
  readonly downloads: SeenArtifactDownload[] = [];
  documentGets = 0;
  url = '';
  readonly #artifacts = new Map<string, Buffer>();
  #server: Server | null = null;

  /** Starts on 127.0.0.1 and a free port. */
  async start(): Promise<void> {
    const server = createServer((req, res) => {
      this.#handle(req, res).catch((err: unknown) =>
        res.destroy(err instanceof Error ? err : new Error(String(err))),
      );
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    this.#server = server;
    this.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  }

  /** Serves an artifact file at `/v1/ota/artifacts/<id>/file`. */
  async serve(artifactId: string, path: string): Promise<ServedArtifact> {
    const file = await readFile(path);
    const filePath = `/v1/ota/artifacts/${artifactId}/file`;
    this.#artifacts.set(filePath, file);
    return { artifactId, filePath, sha256: sha256Hex(file), bytes: file.length };
  }

  /** Resolves with the first status report (past or future) matching `match`. */
  waitForStatus(
    match: (s: SeenOtaStatus) => boolean,
    what: string,
    timeoutMs = 20_000,
  ): Promise<SeenOtaStatus> {
    const seen = this.statuses.find(match);
    if (seen) return Promise.resolve(seen);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.off('status', onStatus);
        reject(
          new Error(
            `timed out after ${timeoutMs} ms waiting for OTA status ${what}; seen: ${this.statuses.map((s) => s.status.state).join(', ')}`,
          ),
        );
      }, timeoutMs);
      const onStatus = (s: SeenOtaStatus) => {
        if (!match(s)) return;
        clearTimeout(timer);
        this.off('status', onStatus);
        resolve(s);
      };
      this.on('status', onStatus);
    });
  }

  /** Closes the server and every connection. */
  async close(): Promise<void> {
    const server = this.#server;
    if (!server) return;
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  async #handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const body = Buffer.concat(chunks);
    const json = (status: number, value: unknown) => {
      res.writeHead(status, { 'content-type': 'application/json' });
      res.end(JSON.stringify(value));
    };
    const url = req.url ?? '';
    if (req.method === 'POST' && url === '/v1/nodes/enroll' && this.enrollUrl) {
      const answer = await fetch(`${this.enrollUrl}${url}`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body,
      });
      return json(answer.status, await answer.json());
    }
    const [user, password] = Buffer.from((req.headers.authorization ?? '').replace(/^Basic /, ''), 'base64')
      .toString()
      .split(':');
    if (this.credentials.size > 0 && (!user || this.credentials.get(user) !== password))
      return json(401, { code: 'CS_ERR_AUTH_REQUIRED', message: 'node credentials required' });
    const node = /^\/v1\/nodes\/([^/]+)\/ota(?:\/([^/]+)\/status)?$/.exec(url);
    if (req.method === 'GET' && node && !node[2]) {
      this.documentGets++;
      if (!this.document) return json(404, { message: `Route GET:${url} not found` });
      return json(200, this.document);
    }
    if (req.method === 'PUT' && node?.[2]) {
      const seen = {
        campaignId: decodeURIComponent(node[2]),
        status: JSON.parse(body.toString()) as OtaStatus,
      };
      this.statuses.push(seen);
      this.emit('status', seen);
      res.writeHead(204);
      res.end();
      return;
    }
    const file = this.#artifacts.get(url);
    if (req.method === 'GET' && file) return this.#download(req, res, file);
    json(404, { code: 'CS_ERR_NOT_FOUND', message: `${req.method} ${url} not found` });
  }

  #download(req: IncomingMessage, res: ServerResponse, file: Buffer): void {
    const etag = `"${sha256Hex(file)}"`;
    const range = req.headers.range;
    const ifRange = req.headers['if-range'] as string | undefined;
    let start = 0;
    let status = 200;
    const m = /^bytes=(\d+)-$/.exec(range ?? '');
    if (m && (ifRange === undefined || ifRange === etag)) {
      start = Number(m[1]);
      if (start >= file.length) {
        res.writeHead(416, { 'content-range': `bytes */${file.length}` });
        res.end();
        this.downloads.push({ range, status: 416, sent: 0 });
        return;
      }
      status = 206;
    }
    const part = file.subarray(start);
    const headers: Record<string, string | number> = {
      'content-type': 'application/octet-stream',
      'content-length': part.length,
      'accept-ranges': 'bytes',
      etag,
    };
    if (status === 206) headers['content-range'] = `bytes ${start}-${file.length - 1}/${file.length}`;
    res.writeHead(status, headers);
    const cut = this.cutNextDownloadAfter;
    this.cutNextDownloadAfter = null;
    const seen: SeenArtifactDownload = { range, status, sent: part.length };
    this.downloads.push(seen);
    if (cut === null || cut >= part.length) {
      res.end(part);
      return;
    }
    seen.sent = cut;
    // The connection dies mid-body: the client has the headers and `cut` bytes, then a reset.
    res.write(part.subarray(0, cut), () => req.socket.destroy());
  }
}
