/** Test fixtures: clips made by the real ffmpeg, a one-file HTTP server, a closed port. */
import { execFile } from 'node:child_process';
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { resolveFfmpegPath } from './ffmpeg-path.ts';
import type { Frame, FrameSource } from './frame.ts';

const run = promisify(execFile);

/** Runs the resolved ffmpeg quietly with `args` (after the common `-hide_banner -loglevel error -y`). */
export async function runFfmpeg(args: string[]): Promise<void> {
  await run(await resolveFfmpegPath(), ['-hide_banner', '-loglevel', 'error', '-y', ...args]);
}

/** Encodes `seconds` of an ffmpeg lavfi source (`testsrc=size=320x240:rate=10`) to `dir/name`. */
export async function makeClip(dir: string, name: string, lavfi: string, seconds: number): Promise<string> {
  const path = join(dir, name);
  await runFfmpeg(
    ['-f', 'lavfi', '-i', lavfi, '-t', String(seconds)].concat([
      '-c:v',
      'libx264',
      '-preset',
      'ultrafast',
      '-pix_fmt',
      'yuv420p',
      path,
    ]),
  );
  return path;
}

/** Writes one PNG still of a lavfi source. */
export async function makePng(dir: string, name: string, lavfi = 'color=c=blue:size=16x16'): Promise<string> {
  const path = join(dir, name);
  await runFfmpeg(['-f', 'lavfi', '-i', lavfi, '-frames:v', '1', path]);
  return path;
}

/** An HTTP server on port 0 that serves one file at any path, recording Host headers. */
export interface FileServer {
  url: (path: string) => string;
  port: number;
  hosts: string[];
  requests: () => number;
  close: () => Promise<void>;
}

/** Serves `file` over HTTP on 127.0.0.1 and a free port. */
export async function serveFile(file: string): Promise<FileServer> {
  const { size } = await stat(file);
  const hosts: string[] = [];
  let requests = 0;
  const server: Server = createServer((req, res) => {
    requests++;
    hosts.push(req.headers.host ?? '');
    res.writeHead(200, { 'content-type': 'video/mp2t', 'content-length': size });
    createReadStream(file).pipe(res);
  });
  return listen(server, hosts, () => requests);
}

/** A TCP port nothing listens on (bound, then released). */
export async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

/** Listens on a free loopback port and describes the server as a FileServer. */
async function listen(server: Server, hosts: string[], requests: () => number): Promise<FileServer> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    port,
    url: (path) => `http://127.0.0.1:${port}${path}`,
    hosts,
    requests,
    close: () =>
      new Promise<void>((resolve, reject) => {
        server.closeAllConnections();
        server.close((err) => (err ? reject(err) : resolve()));
      }),
  };
}

/** All frames of a source (at most `limit`), leaving the loop early when the limit is reached. */
export async function collect(source: FrameSource, limit = Number.POSITIVE_INFINITY): Promise<Frame[]> {
  const frames: Frame[] = [];
  if (limit <= 0) return frames;
  for await (const frame of source.frames()) {
    frames.push(frame);
    if (frames.length >= limit) break;
  }
  return frames;
}

/** True while a process with this id exists (zombies included: they still hold the id). */
export function processExists(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ESRCH') return false;
    throw err;
  }
}

/** The RGB triple at (x, y) of a raw frame. */
export function pixel(frame: Frame, x: number, y: number): [number, number, number] {
  if (frame.image.kind !== 'raw') throw new Error('not a raw frame');
  const { rgb, width } = frame.image;
  const i = (y * width + x) * 3;
  return [rgb[i] ?? -1, rgb[i + 1] ?? -1, rgb[i + 2] ?? -1];
}

/** An HTTP server that answers 200 with the first `bytes` of `file`, then stays silent without closing. */
export async function serveStalling(file: string, bytes: number): Promise<FileServer> {
  const { readFile } = await import('node:fs/promises');
  const head = (await readFile(file)).subarray(0, bytes);
  const hosts: string[] = [];
  let requests = 0;
  const server: Server = createServer((req, res) => {
    requests++;
    hosts.push(req.headers.host ?? '');
    res.writeHead(200, { 'content-type': 'video/mp2t' });
    res.write(head);
  });
  return listen(server, hosts, () => requests);
}
