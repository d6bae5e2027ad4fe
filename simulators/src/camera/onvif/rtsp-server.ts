/**
 * A small RTSP server for the simulated ONVIF camera: one H.264 stream, encoded by
 * ffmpeg from its lavfi `testsrc`, sent as RTP (RFC 6184, packetization-mode 1:
 * single NAL units and FU-A) interleaved on the RTSP TCP connection (RFC 2326 §10.12).
 * That is the `RTP-Unicast` over `RTSP` transport ONVIF Streaming §5.1.1 requires of
 * every camera; UDP transport is refused with 461 so clients fall back to TCP.
 */
import { type ChildProcessWithoutNullStreams, spawn } from 'node:child_process';
import { randomBytes, randomInt } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import { createServer, type Server, type Socket } from 'node:net';
import { CitysenseError, errorMessage, type Logger } from '@citysense/protocol';

/** Options of the RTSP server. */
export interface RtspServerOptions {
  host: string;
  port: number;
  /** Stream path, e.g. `/onvif/profile_1`. */
  path: string;
  width: number;
  height: number;
  fps: number;
  /** ffmpeg binary that encodes the test pattern. */
  ffmpegPath: () => Promise<string>;
  log: Logger;
}

const MTU_PAYLOAD = 1400;
const MAX_REQUEST_BYTES = 64 * 1024;
const MAX_SOCKET_BACKLOG = 2 * 1024 * 1024;
const HEADERS_TIMEOUT_MS = 10_000;
const RTP_CLOCK = 90_000;
const PAYLOAD_TYPE = 96;

interface RtspSession {
  id: string;
  socket: Socket;
  channel: number;
  ssrc: number;
  seq: number;
  playing: boolean;
  /** A new viewer starts at the next SPS (x264 repeats SPS/PPS before every IDR). */
  waitingForKeyframe: boolean;
}

interface RtspRequest {
  method: string;
  url: string;
  headers: Map<string, string>;
}

/** Serves one H.264 test stream over RTSP/TCP. */
export class H264RtspServer {
  readonly #o: RtspServerOptions;
  #server: Server | undefined;
  readonly #sockets = new Set<Socket>();
  readonly #sessions = new Map<string, RtspSession>();
  #encoder: ChildProcessWithoutNullStreams | undefined;
  #sps: Buffer | undefined;
  #pps: Buffer | undefined;
  #headerWaiters: Array<(err?: Error) => void> = [];
  #pending: Buffer = Buffer.alloc(0);
  #frame = 0;
  readonly #rtpBase = randomInt(0, 2 ** 31);

  constructor(options: RtspServerOptions) {
    this.#o = options;
  }

  /** `rtsp://host:port/path`, once started. */
  get url(): string {
    const address = this.#server?.address() as AddressInfo | null | undefined;
    if (!address) throw new Error('RTSP server is not started');
    return `rtsp://${this.#o.host}:${address.port}${this.#o.path}`;
  }

  /** Viewers playing now. */
  get viewers(): number {
    return [...this.#sessions.values()].filter((s) => s.playing).length;
  }

  /** Listens; the encoder starts on the first DESCRIBE. Idempotent. */
  async start(): Promise<void> {
    if (this.#server) return;
    const server = createServer((socket) => this.#accept(socket));
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.#o.port, this.#o.host, () => {
        server.off('error', reject);
        resolve();
      });
    });
    this.#server = server;
  }

  /** Closes every viewer, the encoder and the listener. Idempotent. */
  async stop(): Promise<void> {
    const server = this.#server;
    this.#server = undefined;
    for (const s of this.#sockets) s.destroy();
    this.#sockets.clear();
    this.#sessions.clear();
    this.#stopEncoder();
    if (server) await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  #accept(socket: Socket): void {
    this.#sockets.add(socket);
    let buffer = Buffer.alloc(0);
    socket.on('data', (chunk: Buffer) => {
      buffer = Buffer.concat([buffer, chunk]);
      for (;;) {
        // Interleaved data from the client (RTCP receiver reports): skip it.
        if (buffer.length > 0 && buffer[0] === 0x24) {
          if (buffer.length < 4) break;
          const len = buffer.readUInt16BE(2);
          if (buffer.length < 4 + len) break;
          buffer = buffer.subarray(4 + len);
          continue;
        }
        const end = buffer.indexOf('\r\n\r\n');
        if (end < 0) break;
        const head = buffer.subarray(0, end).toString('latin1');
        const request = parseRequest(head);
        const bodyLength = Number(request?.headers.get('content-length') ?? 0);
        if (!Number.isSafeInteger(bodyLength) || bodyLength < 0 || bodyLength > MAX_REQUEST_BYTES) {
          socket.end('RTSP/1.0 400 Bad Request\r\n\r\n');
          return;
        }
        if (buffer.length < end + 4 + bodyLength) break;
        buffer = buffer.subarray(end + 4 + bodyLength);
        if (!request) {
          socket.end('RTSP/1.0 400 Bad Request\r\n\r\n');
          return;
        }
        this.#handle(socket, request).catch((err: unknown) => {
          this.#o.log.warn({ err }, 'RTSP request failed');
          this.#reply(socket, request, 500, 'Internal Server Error');
        });
      }
      if (buffer.length > MAX_REQUEST_BYTES) socket.destroy();
    });
    socket.on('error', () => socket.destroy());
    socket.on('close', () => {
      this.#sockets.delete(socket);
      for (const [id, s] of this.#sessions) if (s.socket === socket) this.#sessions.delete(id);
    });
  }

  async #handle(socket: Socket, req: RtspRequest): Promise<void> {
    const base = this.#server ? this.url : '';
    const underStream = req.url === base || req.url.startsWith(`${base}/`) || req.url === '*';
    switch (req.method) {
      case 'OPTIONS':
        this.#reply(socket, req, 200, 'OK', {
          Public: 'OPTIONS, DESCRIBE, SETUP, PLAY, TEARDOWN, GET_PARAMETER, SET_PARAMETER',
        });
        return;
      case 'DESCRIBE': {
        if (!underStream) {
          this.#reply(socket, req, 404, 'Not Found');
          return;
        }
        await this.#ensureEncoder();
        const sdp = this.#sdp();
        this.#reply(
          socket,
          req,
          200,
          'OK',
          { 'Content-Base': `${base}/`, 'Content-Type': 'application/sdp' },
          sdp,
        );
        return;
      }
      case 'SETUP': {
        if (!underStream) {
          this.#reply(socket, req, 404, 'Not Found');
          return;
        }
        const transport = req.headers.get('transport') ?? '';
        const interleaved = /RTP\/AVP\/TCP.*interleaved=(\d+)(?:-(\d+))?/i.exec(transport);
        if (!interleaved) {
          this.#reply(socket, req, 461, 'Unsupported Transport');
          return;
        }
        const channel = Number(interleaved[1]);
        const session: RtspSession = {
          id: randomBytes(8).toString('hex'),
          socket,
          channel,
          ssrc: randomInt(0, 2 ** 32),
          seq: randomInt(0, 65536),
          playing: false,
          waitingForKeyframe: true,
        };
        this.#sessions.set(session.id, session);
        this.#reply(socket, req, 200, 'OK', {
          Transport: `RTP/AVP/TCP;unicast;interleaved=${channel}-${channel + 1};ssrc=${session.ssrc.toString(16).padStart(8, '0')}`,
          Session: `${session.id};timeout=60`,
        });
        return;
      }
      case 'PLAY': {
        const session = this.#session(req);
        if (!session) {
          this.#reply(socket, req, 454, 'Session Not Found');
          return;
        }
        this.#reply(socket, req, 200, 'OK', {
          Session: session.id,
          Range: 'npt=0.000-',
          'RTP-Info': `url=${base}/trackID=0;seq=${session.seq};rtptime=${this.#timestamp()}`,
        });
        session.playing = true;
        return;
      }
      case 'TEARDOWN': {
        const session = this.#session(req);
        if (session) this.#sessions.delete(session.id);
        this.#reply(socket, req, 200, 'OK');
        return;
      }
      case 'GET_PARAMETER':
      case 'SET_PARAMETER':
        this.#reply(socket, req, 200, 'OK');
        return;
      default:
        this.#reply(socket, req, 501, 'Not Implemented');
    }
  }

  #session(req: RtspRequest): RtspSession | undefined {
    const id = req.headers.get('session')?.split(';')[0]?.trim();
    return id ? this.#sessions.get(id) : undefined;
  }

  #reply(
    socket: Socket,
    req: RtspRequest,
    status: number,
    reason: string,
    headers: Record<string, string> = {},
    body = '',
  ): void {
    if (socket.destroyed) return;
    const lines = [`RTSP/1.0 ${status} ${reason}`, `CSeq: ${req.headers.get('cseq') ?? '0'}`];
    lines.push('Server: citysense-onvif-sim');
    for (const [k, v] of Object.entries(headers)) lines.push(`${k}: ${v}`);
    if (body) lines.push(`Content-Length: ${Buffer.byteLength(body)}`);
    socket.write(`${lines.join('\r\n')}\r\n\r\n${body}`);
  }

  #sdp(): string {
    const sps = this.#sps ?? Buffer.alloc(0);
    const pps = this.#pps ?? Buffer.alloc(0);
    const profileLevelId = sps.subarray(1, 4).toString('hex');
    return [
      'v=0',
      `o=- ${this.#rtpBase} 1 IN IP4 ${this.#o.host}`,
      's=citysense ONVIF simulator',
      'c=IN IP4 0.0.0.0',
      't=0 0',
      'a=control:*',
      `m=video 0 RTP/AVP ${PAYLOAD_TYPE}`,
      `a=rtpmap:${PAYLOAD_TYPE} H264/${RTP_CLOCK}`,
      `a=fmtp:${PAYLOAD_TYPE} packetization-mode=1;profile-level-id=${profileLevelId};sprop-parameter-sets=${sps.toString('base64')},${pps.toString('base64')}`,
      `a=framerate:${this.#o.fps}`,
      'a=control:trackID=0',
      '',
    ].join('\r\n');
  }

  /** Starts ffmpeg once and waits until it has produced SPS and PPS (for the SDP). */
  async #ensureEncoder(): Promise<void> {
    if (!this.#encoder) await this.#startEncoder();
    if (this.#sps && this.#pps) return;
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#headerWaiters = this.#headerWaiters.filter((w) => w !== done);
        reject(new CitysenseError('CS_ERR_CAMERA_STREAM', 'the H.264 encoder produced no SPS/PPS in time'));
      }, HEADERS_TIMEOUT_MS);
      const done = (err?: Error) => {
        clearTimeout(timer);
        if (err) reject(err);
        else resolve();
      };
      this.#headerWaiters.push(done);
    });
  }

  async #startEncoder(): Promise<void> {
    const ffmpeg = await this.#o.ffmpegPath();
    if (this.#encoder || !this.#server) return;
    const { width, height, fps } = this.#o;
    const args = [
      '-hide_banner',
      '-loglevel',
      'error',
      '-re',
      '-f',
      'lavfi',
      '-i',
      `testsrc=size=${width}x${height}:rate=${fps}`,
      '-c:v',
      'libx264',
      '-preset',
      'ultrafast',
      '-tune',
      'zerolatency',
      '-profile:v',
      'baseline',
      '-pix_fmt',
      'yuv420p',
      '-g',
      String(fps),
      '-threads',
      '1',
      '-x264-params',
      'repeat-headers=1:sliced-threads=0',
      '-f',
      'h264',
      'pipe:1',
    ];
    const child = spawn(ffmpeg, args, { stdio: ['pipe', 'pipe', 'pipe'] });
    this.#encoder = child;
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => {
      stderr = (stderr + d.toString()).slice(-2000);
    });
    child.stdout.on('data', (chunk: Buffer) => this.#onEncoded(chunk));
    const failWaiters = (why: string) => {
      const err = new CitysenseError('CS_ERR_CAMERA_STREAM', `the H.264 encoder (${ffmpeg}) failed: ${why}`);
      for (const w of this.#headerWaiters.splice(0)) w(err);
    };
    child.on('error', (err) => {
      this.#o.log.error({ err: errorMessage(err) }, 'could not run ffmpeg for the RTSP stream');
      failWaiters(errorMessage(err));
    });
    child.on('exit', (code, signal) => {
      failWaiters(`exited with ${code ?? signal}: ${stderr.trim().slice(-300)}`);
      if (this.#encoder === child) {
        this.#encoder = undefined;
        this.#pending = Buffer.alloc(0);
        if (this.#server) this.#o.log.warn({ code, signal, stderr }, 'RTSP stream encoder exited');
      }
    });
  }

  #stopEncoder(): void {
    const encoder = this.#encoder;
    this.#encoder = undefined;
    this.#pending = Buffer.alloc(0);
    if (encoder && encoder.exitCode === null) encoder.kill('SIGKILL');
  }

  /** Splits the Annex B byte stream into NAL units (ITU-T H.264 Annex B.2). */
  #onEncoded(chunk: Buffer): void {
    this.#pending = this.#pending.length ? Buffer.concat([this.#pending, chunk]) : chunk;
    let start = findStartCode(this.#pending, 0);
    if (!start) return;
    for (;;) {
      const next = findStartCode(this.#pending, start.index + start.length);
      if (!next) break;
      this.#onNal(this.#pending.subarray(start.index + start.length, next.index));
      start = next;
    }
    this.#pending = Buffer.from(this.#pending.subarray(start.index));
  }

  #onNal(nal: Buffer): void {
    if (nal.length === 0) return;
    const type = (nal[0] ?? 0) & 0x1f;
    if (type === 7) this.#sps = Buffer.from(nal);
    if (type === 8) this.#pps = Buffer.from(nal);
    if (this.#sps && this.#pps && this.#headerWaiters.length > 0) {
      for (const w of this.#headerWaiters.splice(0)) w();
    }
    const vcl = type === 1 || type === 5;
    const timestamp = this.#timestamp();
    for (const session of this.#sessions.values()) {
      if (!session.playing) continue;
      if (session.waitingForKeyframe) {
        if (type !== 7) continue;
        session.waitingForKeyframe = false;
      }
      if (session.socket.writableLength > MAX_SOCKET_BACKLOG) {
        // A viewer that cannot keep up skips to the next keyframe instead of buffering.
        session.waitingForKeyframe = true;
        continue;
      }
      this.#sendNal(session, nal, timestamp, vcl);
    }
    // One slice per frame (sliced-threads off): a VCL NAL ends the access unit.
    if (vcl) this.#frame++;
  }

  #timestamp(): number {
    return (this.#rtpBase + Math.round((this.#frame * RTP_CLOCK) / this.#o.fps)) >>> 0;
  }

  #sendNal(session: RtspSession, nal: Buffer, timestamp: number, lastOfFrame: boolean): void {
    if (nal.length <= MTU_PAYLOAD) {
      this.#sendRtp(session, nal, timestamp, lastOfFrame);
      return;
    }
    // FU-A fragmentation (RFC 6184 §5.8).
    const header = nal[0] ?? 0;
    const indicator = (header & 0xe0) | 28;
    const type = header & 0x1f;
    for (let offset = 1; offset < nal.length; offset += MTU_PAYLOAD) {
      const first = offset === 1;
      const last = offset + MTU_PAYLOAD >= nal.length;
      const fu = Buffer.from([indicator, (first ? 0x80 : 0) | (last ? 0x40 : 0) | type]);
      this.#sendRtp(
        session,
        Buffer.concat([fu, nal.subarray(offset, offset + MTU_PAYLOAD)]),
        timestamp,
        last && lastOfFrame,
      );
    }
  }

  #sendRtp(session: RtspSession, payload: Buffer, timestamp: number, marker: boolean): void {
    const packet = Buffer.alloc(4 + 12 + payload.length);
    packet[0] = 0x24;
    packet[1] = session.channel;
    packet.writeUInt16BE(12 + payload.length, 2);
    packet[4] = 0x80;
    packet[5] = (marker ? 0x80 : 0) | PAYLOAD_TYPE;
    packet.writeUInt16BE(session.seq, 6);
    packet.writeUInt32BE(timestamp, 8);
    packet.writeUInt32BE(session.ssrc, 12);
    payload.copy(packet, 16);
    session.seq = (session.seq + 1) & 0xffff;
    session.socket.write(packet);
  }
}

function parseRequest(head: string): RtspRequest | undefined {
  const [line, ...rest] = head.split('\r\n');
  const m = /^([A-Z_]+) (\S+) RTSP\/1\.0$/.exec(line ?? '');
  if (!m?.[1] || !m[2]) return undefined;
  const headers = new Map<string, string>();
  for (const h of rest) {
    const colon = h.indexOf(':');
    if (colon > 0) headers.set(h.slice(0, colon).trim().toLowerCase(), h.slice(colon + 1).trim());
  }
  return { method: m[1], url: m[2], headers };
}

function findStartCode(buf: Buffer, from: number): { index: number; length: number } | undefined {
  const i = buf.indexOf(START_CODE, from);
  if (i < 0) return undefined;
  return i > from && buf[i - 1] === 0 ? { index: i - 1, length: 4 } : { index: i, length: 3 };
}

const START_CODE = Buffer.from([0, 0, 1]);
