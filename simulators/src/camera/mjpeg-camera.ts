/**
 * A simulated IP camera: serves a scene as an MJPEG stream over HTTP
 * (`multipart/x-mixed-replace`), the way many real street cameras expose a
 * preview stream, so the edge pipeline reads it with the same ffmpeg input it
 * uses for a real camera. The scene is a list of JPEG images played in a loop.
 */
import { readFile } from 'node:fs/promises';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { CitysenseError, componentLogger, errorMessage, type Logger } from '@citysense/protocol';
import sharp from 'sharp';

/** Options of a simulated MJPEG camera. */
export interface MjpegCameraOptions {
  /** JPEG files of the scene, played in order and looped. */
  images: string[];
  /** Frames per second sent to each viewer; default 2. */
  fps?: number;
  /** Frame size every image is fitted into (like a camera's fixed resolution); default 640×480. */
  width?: number;
  height?: number;
  /** Bind address; default 127.0.0.1. */
  host?: string;
  /** Port; default 0 (any free port). */
  port?: number;
  /** Stream path; default `/video.mjpg`. */
  path?: string;
  logger?: Logger;
}

const BOUNDARY = 'citysenseframe';

/** An HTTP MJPEG camera on a local port. */
export class MjpegCamera {
  readonly #o: MjpegCameraOptions;
  readonly #log: Logger;
  #server: Server | undefined;
  #frames: Buffer[] = [];
  readonly #viewers = new Set<ServerResponse>();
  #timer: NodeJS.Timeout | undefined;
  #frame = 0;

  constructor(options: MjpegCameraOptions) {
    this.#o = options;
    this.#log = componentLogger('mjpeg-camera', options.logger);
  }

  /** URL of the stream, once started. */
  get url(): string {
    const address = this.#server?.address() as AddressInfo | null | undefined;
    if (!address) throw new Error('camera is not started');
    return `http://${this.#o.host ?? '127.0.0.1'}:${address.port}${this.#o.path ?? '/video.mjpg'}`;
  }

  /** Viewers connected now. */
  get viewers(): number {
    return this.#viewers.size;
  }

  /** Loads the scene and starts serving; idempotent. */
  async start(): Promise<void> {
    if (this.#server) return;
    if (this.#o.images.length === 0)
      throw new CitysenseError(
        'CS_ERR_CAMERA_SCENE',
        'a simulated camera needs at least one JPEG image',
        400,
      );
    const width = this.#o.width ?? 640;
    const height = this.#o.height ?? 480;
    this.#frames = await Promise.all(
      this.#o.images.map(async (path) => {
        try {
          // Fitted, not cropped: the whole scene stays in view, the rest is black like a letterboxed feed.
          return await sharp(await readFile(path))
            .resize(width, height, { fit: 'contain', background: { r: 0, g: 0, b: 0 } })
            .jpeg({ quality: 85 })
            .toBuffer();
        } catch (err) {
          throw new CitysenseError(
            'CS_ERR_CAMERA_SCENE',
            `${path} is not a readable image: ${errorMessage(err)}`,
            400,
          );
        }
      }),
    );
    const server = createServer((req, res) => this.#serve(req, res));
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.#o.port ?? 0, this.#o.host ?? '127.0.0.1', () => resolve());
    });
    this.#server = server;
    const periodMs = 1000 / (this.#o.fps ?? 2);
    this.#timer = setInterval(() => this.#broadcast(), periodMs);
    this.#log.info(
      { url: this.url, frames: this.#frames.length, fps: this.#o.fps ?? 2 },
      'simulated camera streaming',
    );
  }

  /** Closes every viewer and the server; idempotent. */
  async stop(): Promise<void> {
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = undefined;
    for (const v of this.#viewers) v.destroy();
    this.#viewers.clear();
    const server = this.#server;
    this.#server = undefined;
    if (server) await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  #serve(req: IncomingMessage, res: ServerResponse): void {
    const path = (req.url ?? '/').split('?')[0];
    if (req.method !== 'GET' || path !== (this.#o.path ?? '/video.mjpg')) {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('no such stream\n');
      return;
    }
    res.writeHead(200, {
      'content-type': `multipart/x-mixed-replace; boundary=${BOUNDARY}`,
      'cache-control': 'no-store',
      connection: 'close',
    });
    this.#viewers.add(res);
    res.on('close', () => this.#viewers.delete(res));
    this.#send(res, this.#frames[this.#frame % this.#frames.length]);
  }

  #broadcast(): void {
    this.#frame++;
    const jpeg = this.#frames[this.#frame % this.#frames.length];
    for (const v of this.#viewers) {
      // A viewer that cannot keep up misses frames instead of buffering them (like a camera).
      if (v.writableLength > 4 * 1024 * 1024) continue;
      this.#send(v, jpeg);
    }
  }

  #send(res: ServerResponse, jpeg: Buffer | undefined): void {
    if (!jpeg) return;
    res.write(`--${BOUNDARY}\r\nContent-Type: image/jpeg\r\nContent-Length: ${jpeg.length}\r\n\r\n`);
    res.write(jpeg);
    res.write('\r\n');
  }
}
