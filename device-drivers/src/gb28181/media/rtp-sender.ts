/**
 * Simulated GB/T 28181 camera media: ffmpeg encodes a live test pattern, we cut it into access
 * units, mux them to PS and send RTP over UDP or actively over TCP (`a=setup:active`, RFC 4571).
 */
import { type ChildProcessByStdio, spawn } from 'node:child_process';
import { createSocket, type Socket as UdpSocket } from 'node:dgram';
import { connect, isIP, type Socket } from 'node:net';
import type { Readable } from 'node:stream';
import { resolveFfmpegPath } from '@citysense/algorithms';
import { CitysenseError, componentLogger, errorMessage, type Logger } from '@citysense/protocol';
import type { VideoCodec } from './access-unit.ts';
import { AccessUnitSplitter, type AnnexBAccessUnit } from './annexb.ts';
import { mediaError, RTP_SENDER_FAILED } from './errors.ts';
import { MediaEvents } from './media-events.ts';
import { PsMuxer } from './ps-mux.ts';
import { PsRtpPacketizer } from './ps-rtp-packetizer.ts';
import type { RtpTransport } from './rtp-receiver.ts';
import { frameRtpForTcp } from './rtp-tcp-framing.ts';

/** Settings of a simulated camera's media sender. */
export interface PsRtpSenderOptions {
  transport: RtpTransport;
  /** Receiver address from the INVITE's SDP (`c=` line). */
  host: string;
  /** Receiver port from the SDP `m=video` line. */
  port: number;
  /** SSRC from the SDP `y=` line. */
  ssrc: number;
  width?: number;
  height?: number;
  frameRate?: number;
  /** Stop after this many pictures (then 'end'); unset streams until `stop()`. */
  frames?: number;
  /** Default h264 (libx264); h265 uses libx265. */
  codec?: VideoCodec;
  payloadType?: number;
  maxPayloadBytes?: number;
  /** ffmpeg binary; default as `resolveFfmpegPath`. */
  ffmpegPath?: string;
  /** Wait this long after SIGTERM before SIGKILL (ms). Default 2000. */
  killGraceMs?: number;
  /** Pictures dropped instead of queued once this many bytes wait on a slow TCP receiver. Default 4 MiB. */
  maxTcpBacklogBytes?: number;
  logger?: Logger;
}

/** One picture the sender put on the wire. */
export interface SentFrame {
  pts90k: number;
  keyframe: boolean;
  /** PS bytes of the picture. */
  bytes: number;
  packets: number;
}

/** Events of a sender. */
export interface PsRtpSenderEvents {
  frame: (frame: SentFrame) => void;
  /** ffmpeg finished the requested number of frames; everything has been sent. */
  end: () => void;
  /** ffmpeg or the connection failed while running (CS_ERR_RTP_SENDER_FAILED). */
  error: (err: CitysenseError) => void;
}

/** Counters of a sender. */
export interface PsRtpSenderStats {
  frames: number;
  packets: number;
  /** Bytes put on the wire (RTP packets, plus the RFC 4571 prefixes over TCP). */
  bytes: number;
  droppedFrames: number;
}

/** Sends a live ffmpeg test pattern as GB/T 28181 PS over RTP; constructor assigns only. */
export class PsRtpSender {
  readonly #o: PsRtpSenderOptions;
  readonly #log: Logger;
  readonly #events: MediaEvents<PsRtpSenderEvents>;
  readonly #stats: PsRtpSenderStats = { frames: 0, packets: 0, bytes: 0, droppedFrames: 0 };
  #starting: Promise<void> | undefined;
  #stopping: Promise<void> | undefined;
  #child: ChildProcessByStdio<null, Readable, Readable> | undefined;
  #exited: Promise<void> = Promise.resolve();
  #udp: UdpSocket | undefined;
  #tcp: Socket | undefined;
  #splitter: AccessUnitSplitter;
  #muxer = new PsMuxer();
  #packetizer: PsRtpPacketizer;
  #stderrTail = '';

  constructor(options: PsRtpSenderOptions) {
    this.#o = options;
    this.#log = options.logger ?? componentLogger('gb28181-rtp-sender');
    this.#events = new MediaEvents(this.#log);
    this.#splitter = new AccessUnitSplitter(options.codec ?? 'h264');
    this.#packetizer = new PsRtpPacketizer({
      ssrc: options.ssrc,
      payloadType: options.payloadType,
      maxPayloadBytes: options.maxPayloadBytes,
    });
  }

  /** A snapshot of the counters. */
  get stats(): PsRtpSenderStats {
    return { ...this.#stats };
  }

  /** Adds a listener. */
  on<E extends keyof PsRtpSenderEvents>(event: E, listener: PsRtpSenderEvents[E]): this {
    this.#events.on(event, listener);
    return this;
  }

  /** Removes a listener. */
  off<E extends keyof PsRtpSenderEvents>(event: E, listener: PsRtpSenderEvents[E]): this {
    this.#events.off(event, listener);
    return this;
  }

  /** Connects (TCP) or opens the socket (UDP), then starts ffmpeg; rejects with CS_ERR_RTP_SENDER_FAILED. */
  start(signal?: AbortSignal): Promise<void> {
    this.#starting ??= this.#start(signal);
    return this.#starting;
  }

  /** Kills ffmpeg (SIGTERM, then SIGKILL) and closes the socket; idempotent. */
  stop(): Promise<void> {
    this.#stopping ??= this.#stop();
    return this.#stopping;
  }

  async #start(signal: AbortSignal | undefined): Promise<void> {
    if (signal?.aborted) throw new CitysenseError('CS_ERR_ABORTED', 'RTP sender start cancelled', 499);
    const { host, port } = this.#o;
    if (this.#o.transport === 'tcp') {
      this.#tcp = await this.#connectTcp(host, port, signal);
    } else {
      this.#udp = createSocket(isIP(host) === 6 ? 'udp6' : 'udp4');
      this.#udp.on('error', (err) => this.#log.warn({ err: errorMessage(err) }, 'UDP send error'));
    }
    if (this.#stopping) return;
    await this.#spawnFfmpeg();
  }

  #connectTcp(host: string, port: number, signal: AbortSignal | undefined): Promise<Socket> {
    return new Promise((resolve, reject) => {
      const socket = connect({ host, port, signal });
      socket.once('error', (err) => {
        reject(
          mediaError(RTP_SENDER_FAILED, `cannot connect to the RTP receiver ${host}:${port}: ${err.message}`),
        );
      });
      socket.once('connect', () => {
        socket.removeAllListeners('error');
        socket.setNoDelay(true);
        socket.on('error', (err) => this.#log.debug({ err: errorMessage(err) }, 'RTP TCP connection error'));
        socket.once('close', () => {
          if (this.#stopping) return;
          // The receiver hung up (BYE, or it went away): a camera stops sending then.
          this.#fail(`the RTP receiver ${host}:${port} closed the TCP connection`);
          void this.stop();
        });
        resolve(socket);
      });
    });
  }

  async #spawnFfmpeg(): Promise<void> {
    const ffmpegPath = await resolveFfmpegPath(this.#o.ffmpegPath);
    const args = this.#ffmpegArgs();
    this.#log.debug({ ffmpegPath, args }, 'starting ffmpeg test pattern');
    const child = spawn(ffmpegPath, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    this.#child = child;
    await new Promise<void>((resolve, reject) => {
      child.once('spawn', () => resolve());
      child.once('error', (err) => {
        this.#child = undefined;
        reject(
          mediaError(
            RTP_SENDER_FAILED,
            `cannot run ffmpeg at '${ffmpegPath}' (${err.message}); set CITYSENSE_FFMPEG`,
          ),
        );
      });
    });
    this.#exited = new Promise((resolve) => {
      child.once('close', (code, sig) => {
        this.#onFfmpegClosed(code, sig);
        resolve();
      });
    });
    child.stdout.on('data', (chunk: Buffer) => this.#sendAll(this.#splitter.push(chunk)));
    child.stderr.setEncoding('utf8');
    child.stderr.on('data', (text: string) => {
      this.#stderrTail = (this.#stderrTail + text).slice(-2000);
    });
  }

  #ffmpegArgs(): string[] {
    const width = this.#o.width ?? 320;
    const height = this.#o.height ?? 240;
    const rate = this.#o.frameRate ?? 25;
    const limit = this.#o.frames === undefined ? [] : ['-frames:v', String(this.#o.frames)];
    // Only literal inputs: the bundled static ffmpeg 4.1 crashes resolving host names.
    const input = ['-re', '-f', 'lavfi', '-i', `testsrc=size=${width}x${height}:rate=${rate}`];
    const encode =
      (this.#o.codec ?? 'h264') === 'h264'
        ? ['-c:v', 'libx264', '-preset', 'ultrafast', '-tune', 'zerolatency', '-g', String(rate), '-bf', '0']
        : ['-c:v', 'libx265', '-preset', 'ultrafast', '-tune', 'zerolatency', '-x265-params'].concat([
            `keyint=${rate}:bframes=0:log-level=error`,
          ]);
    const format = (this.#o.codec ?? 'h264') === 'h264' ? 'h264' : 'hevc';
    return ['-hide_banner', '-loglevel', 'error', '-nostdin', ...input, ...limit, ...encode].concat([
      '-pix_fmt',
      'yuv420p',
      '-f',
      format,
      'pipe:1',
    ]);
  }

  #sendAll(units: AnnexBAccessUnit[]): void {
    for (const unit of units) this.#send(unit);
  }

  #send(unit: AnnexBAccessUnit): void {
    if (this.#stopping) return;
    const rate = this.#o.frameRate ?? 25;
    const pts90k = Math.round((this.#stats.frames * 90_000) / rate);
    this.#stats.frames++;
    const tcp = this.#tcp;
    if (tcp && tcp.writableLength > (this.#o.maxTcpBacklogBytes ?? 4 * 1024 * 1024)) {
      this.#stats.droppedFrames++;
      return;
    }
    const codec = this.#o.codec ?? 'h264';
    const ps = this.#muxer.mux({ codec, pts90k, data: unit.data, keyframe: unit.keyframe });
    const packets = this.#packetizer.packetize(ps, pts90k);
    for (const packet of packets) {
      if (tcp) tcp.write(frameRtpForTcp(packet));
      else this.#udp?.send(packet, this.#o.port, this.#o.host);
      this.#stats.bytes += tcp ? packet.length + 2 : packet.length;
    }
    this.#stats.packets += packets.length;
    this.#events.emit('frame', {
      pts90k,
      keyframe: unit.keyframe,
      bytes: ps.length,
      packets: packets.length,
    });
  }

  #onFfmpegClosed(code: number | null, signal: NodeJS.Signals | null): void {
    this.#child = undefined;
    if (this.#stopping) return;
    if (code === 0) {
      this.#sendAll(this.#splitter.endAccessUnit());
      void this.#drained().then(() => this.#events.emit('end'));
      return;
    }
    this.#fail(`ffmpeg exited (code ${code}, signal ${signal}): ${this.#stderrTail.trim() || 'no output'}`);
  }

  /** Resolves once queued sends have left: TCP write buffer flushed, UDP send queue empty. */
  #drained(): Promise<void> {
    const tcp = this.#tcp;
    if (tcp) return new Promise((resolve) => tcp.write(Buffer.alloc(0), () => resolve()));
    const udp = this.#udp;
    if (!udp) return Promise.resolve();
    return new Promise((resolve) => {
      const poll = (): void => {
        if (udp.getSendQueueCount() === 0) resolve();
        else setImmediate(poll);
      };
      poll();
    });
  }

  #fail(message: string): void {
    const err = mediaError(RTP_SENDER_FAILED, message, { host: this.#o.host, port: this.#o.port });
    this.#log.error({ err: message }, 'RTP sender failed');
    this.#events.emit('error', err);
  }

  async #stop(): Promise<void> {
    await this.#starting?.catch(() => undefined);
    const child = this.#child;
    if (child && child.exitCode === null && child.signalCode === null) {
      child.stdout.resume();
      child.kill('SIGTERM');
      const killer = setTimeout(() => {
        this.#log.warn({ pid: child.pid }, 'ffmpeg ignored SIGTERM; sending SIGKILL');
        child.kill('SIGKILL');
      }, this.#o.killGraceMs ?? 2000);
      await this.#exited;
      clearTimeout(killer);
    }
    const tcp = this.#tcp;
    if (tcp && !tcp.destroyed) {
      // Let queued frames leave, but never hang on a receiver that stopped reading.
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, 1000);
        tcp.end(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
    tcp?.destroy();
    const udp = this.#udp;
    if (udp) await new Promise<void>((resolve) => udp.close(() => resolve()));
    this.#tcp = undefined;
    this.#udp = undefined;
  }
}
