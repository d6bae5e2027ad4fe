/**
 * Test support only (not exported): the hub side of the assignments contract on a real
 * HTTP server on port 0 — GET assignments, package downloads with Range / If-Range and
 * a switch to cut a transfer mid-way, status PUTs recorded in order.
 */
import { EventEmitter } from 'node:events';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { type AssignmentStatus, type AssignmentsDocument, sha256Hex } from '@citysense/protocol';

/** One download request as the hub saw it. */
export interface SeenDownload {
  path: string;
  range: string | undefined;
  ifRange: string | undefined;
  status: number;
  /** Bytes actually written before the answer ended (or was cut). */
  sent: number;
}

/** One status report as the hub saw it. */
export interface SeenStatus {
  deploymentId: string;
  status: AssignmentStatus;
  /** What the hub answered. */
  answer: number;
}

/** A package the hub serves. */
export interface ServedPackage {
  path: string;
  sha256: string;
  bytes: number;
}

/** A hub stand-in for the inference runtime's tests. */
export class TestAssignmentsHub extends EventEmitter {
  readonly nodeId: string;
  readonly password = 'node-secret';
  /** The document GET answers with; null = 404 (a hub without the deployment routes). */
  document: AssignmentsDocument | null = null;
  /** Cut the next download after this many body bytes (then reset to null). */
  cutNextDownloadAfter: number | null = null;
  /** Serve whole files with 200, ignoring Range. */
  ignoreRange = false;
  /** Answer package downloads with this refusal (e.g. 403 CS_ERR_ALGO_NOT_GRANTED). */
  refuseDownloads: { status: number; code: string } | null = null;
  /** HTTP status for status PUTs; 204 = accept. */
  statusAnswer = 204;
  readonly downloads: SeenDownload[] = [];
  readonly statuses: SeenStatus[] = [];
  /** SHA-256 of packages the centre has filed (GET /v1/algorithm-packages/:sha256/status). */
  readonly filed = new Set<string>();
  assignmentGets = 0;
  url = '';
  readonly #packages = new Map<string, Buffer>();
  #server: Server | null = null;

  constructor(nodeId = 'gw-inference-1') {
    super();
    this.nodeId = nodeId;
  }

  /** Starts on 127.0.0.1 and a free port. */
  async start(): Promise<void> {
    const server = createServer((req, res) => {
      this.#handle(req, res).catch((err: unknown) => {
        res.destroy(err instanceof Error ? err : new Error(String(err)));
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    this.#server = server;
    this.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  }

  /** Serves `file` at `/v1/algorithms/<id>/versions/<version>/package`. */
  serve(id: string, version: string, file: Buffer): ServedPackage {
    const path = `/v1/algorithms/${id}/versions/${version}/package`;
    this.#packages.set(path, file);
    return { path, sha256: sha256Hex(file), bytes: file.length };
  }

  /** Resolves with the first status report (past or future) matching `match`. */
  waitForStatus(match: (s: SeenStatus) => boolean, what: string, timeoutMs = 30_000): Promise<SeenStatus> {
    const seen = this.statuses.find(match);
    if (seen) return Promise.resolve(seen);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.off('status', onStatus);
        reject(new Error(`timed out after ${timeoutMs} ms waiting for status: ${what}`));
      }, timeoutMs);
      const onStatus = (s: SeenStatus) => {
        if (!match(s)) return;
        clearTimeout(timer);
        this.off('status', onStatus);
        resolve(s);
      };
      this.on('status', onStatus);
    });
  }

  /** Resolves after `count` more assignments polls. */
  nextPolls(count: number, timeoutMs = 30_000): Promise<void> {
    const target = this.assignmentGets + count;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.off('poll', onPoll);
        reject(new Error(`timed out after ${timeoutMs} ms waiting for ${count} polls`));
      }, timeoutMs);
      const onPoll = () => {
        if (this.assignmentGets < target) return;
        clearTimeout(timer);
        this.off('poll', onPoll);
        resolve();
      };
      this.on('poll', onPoll);
    });
  }

  /** Forgets recorded requests. */
  reset(): void {
    this.document = null;
    this.cutNextDownloadAfter = null;
    this.ignoreRange = false;
    this.refuseDownloads = null;
    this.statusAnswer = 204;
    this.downloads.length = 0;
    this.statuses.length = 0;
    this.assignmentGets = 0;
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
    const json = (status: number, body: unknown) => {
      res.writeHead(status, { 'content-type': 'application/json' });
      res.end(JSON.stringify(body));
    };
    const expected = `Basic ${Buffer.from(`${this.nodeId}:${this.password}`).toString('base64')}`;
    if (req.headers.authorization !== expected)
      return json(401, { code: 'CS_ERR_AUTH_REQUIRED', message: 'node credentials required' });
    const url = req.url ?? '';
    const node = `/v1/nodes/${this.nodeId}/assignments`;
    if (req.method === 'GET' && url === node) {
      this.assignmentGets++;
      this.emit('poll');
      if (!this.document) return json(404, { message: `Route GET:${url} not found` });
      return json(200, this.document);
    }
    const packageStatus = /^\/v1\/algorithm-packages\/([0-9a-f]{64})\/status$/.exec(url);
    if (req.method === 'GET' && packageStatus?.[1])
      return json(200, { known: this.filed.has(packageStatus[1]), filed: this.filed.has(packageStatus[1]) });
    const status = new RegExp(`^${node}/([^/]+)/status$`).exec(url);
    if (req.method === 'PUT' && status?.[1]) {
      const seen: SeenStatus = {
        deploymentId: decodeURIComponent(status[1]),
        status: JSON.parse(Buffer.concat(chunks).toString('utf8')) as AssignmentStatus,
        answer: this.statusAnswer,
      };
      this.statuses.push(seen);
      this.emit('status', seen);
      if (this.statusAnswer >= 300) return json(this.statusAnswer, { code: 'CS_ERR_TEST', message: 'down' });
      res.writeHead(this.statusAnswer);
      res.end();
      return;
    }
    const file = this.#packages.get(url);
    if (req.method === 'GET' && file) return this.#download(req, res, url, file);
    json(404, { code: 'CS_ERR_NOT_FOUND', message: `${req.method} ${url} not found` });
  }

  #download(req: IncomingMessage, res: ServerResponse, path: string, file: Buffer): void {
    const refusal = this.refuseDownloads;
    if (refusal) {
      res.writeHead(refusal.status, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ code: refusal.code, message: 'this node is not granted the algorithm' }));
      this.downloads.push({ path, range: undefined, ifRange: undefined, status: refusal.status, sent: 0 });
      return;
    }
    const etag = `"${sha256Hex(file)}"`;
    const range = req.headers.range;
    const ifRange = req.headers['if-range'] as string | undefined;
    let start = 0;
    let end = file.length - 1;
    let status = 200;
    const m = /^bytes=(\d+)-(\d*)$/.exec(range ?? '');
    if (m && !this.ignoreRange && (ifRange === undefined || ifRange === etag)) {
      start = Number(m[1]);
      end = m[2] ? Math.min(Number(m[2]), end) : end;
      if (start > end) {
        res.writeHead(416, { 'content-range': `bytes */${file.length}` });
        res.end();
        this.downloads.push({ path, range, ifRange, status: 416, sent: 0 });
        return;
      }
      status = 206;
    }
    const body = file.subarray(start, end + 1);
    const headers: Record<string, string | number> = {
      'content-type': 'application/octet-stream',
      'content-length': body.length,
      'accept-ranges': 'bytes',
      etag,
    };
    if (status === 206) headers['content-range'] = `bytes ${start}-${end}/${file.length}`;
    res.writeHead(status, headers);
    const cut = this.cutNextDownloadAfter;
    this.cutNextDownloadAfter = null;
    const seen: SeenDownload = { path, range, ifRange, status, sent: body.length };
    this.downloads.push(seen);
    if (cut === null || cut >= body.length) {
      res.end(body);
      return;
    }
    seen.sent = cut;
    // The connection dies mid-body: the client has the headers and `cut` bytes, then a reset.
    res.write(body.subarray(0, cut), () => req.socket.destroy());
  }
}
