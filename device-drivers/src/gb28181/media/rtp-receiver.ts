/**
 * Receives one GB/T 28181 live stream: RTP/PS over UDP, or over TCP in passive mode
 * (`a=setup:passive`, RFC 4571 framing, GB/T 28181-2016 §C.2), and yields video access units.
 */
import { createSocket, type Socket as UdpSocket } from 'node:dgram';
import { type AddressInfo, createServer, type Server, type Socket } from 'node:net';
import { CitysenseError, componentLogger, errorMessage, type Logger } from '@citysense/protocol';
import type { VideoAccessUnit, VideoCodec } from './access-unit.ts';
import { AccessUnitQueue } from './access-unit-queue.ts';
import { mediaError, RTP_RECEIVER_BIND } from './errors.ts';
import { MediaEvents } from './media-events.ts';
import { PsDemuxer, type PsDemuxerStats } from './ps-demux.ts';
import { parseRtp } from './rtp.ts';
import { type ReorderResult, RtpReorderBuffer } from './rtp-reorder.ts';
import { RtpTcpDeframer } from './rtp-tcp-framing.ts';

/** How the media arrives: RTP/AVP over UDP, or TCP/RTP/AVP where the camera connects to us. */
export type RtpTransport = 'udp' | 'tcp';

/** Settings of an RTP receiver. */
export interface RtpReceiverOptions {
  transport: RtpTransport;
  /** Address to bind; default 0.0.0.0. */
  host?: string;
  /** Port to bind; 0 (default) picks a free one, read it from `port` after `start()`. */
  port?: number;
  /** SSRC from the SDP `y=` line; packets of other SSRCs are counted and dropped. Unset: lock onto the first. */
  ssrc?: number;
  /** Codec until the PSM says otherwise (GB/T 28181-2022 may negotiate H.265). Default h264. */
  codec?: VideoCodec;
  /** Packets held to put a reordered stream back in order. Default 32. */
  reorderWindow?: number;
  /** Longest a packet waits for a missing predecessor before the gap is given up (ms). Default 100. */
  reorderDelayMs?: number;
  /** Emit 'timeout' when no packet of the stream arrives for this long (ms); 0 or unset disables. */
  idleTimeoutMs?: number;
  /** Treat the RTP marker bit as end of picture, for one frame less latency. Default true. */
  markerEndsFrame?: boolean;
  /** Access units buffered for `for await` consumers before the oldest is dropped. Default 64. */
  maxQueuedAccessUnits?: number;
  logger?: Logger;
}

/** Counters of a receiver. */
export interface RtpReceiverStats {
  /** RTP packets of the expected SSRC. */
  packets: number;
  /** Bytes received on the port(s), garbage included. */
  bytes: number;
  /** Sequence numbers never received. */
  lost: number;
  /** Duplicates and packets arriving after their gap was given up. */
  late: number;
  /** Datagrams or TCP frames that are not RTP, plus TCP bytes skipped to regain framing. */
  garbage: number;
  /** RTP packets of another SSRC. */
  foreignSsrc: number;
  accessUnits: number;
  /** Wall clock (ms since epoch) of the last packet of the stream. */
  lastPacketAt: number | undefined;
  /** What the PS demuxer skipped or counted. */
  demux: PsDemuxerStats;
}

/** Events of an RTP receiver. */
export interface RtpReceiverEvents {
  /** A complete picture. */
  accessUnit: (au: VideoAccessUnit) => void;
  /** No packet for `idleTimeoutMs`: the camera went away. Emitted once per silence. */
  timeout: (idleMs: number) => void;
  /** A TCP peer connected or disconnected. */
  connection: (state: 'open' | 'closed', remote: string) => void;
}

/** RTP/PS receiver component: constructor assigns only; `start()`/`stop()` are async and idempotent. */
export class RtpReceiver {
  readonly #o: RtpReceiverOptions;
  readonly #log: Logger;
  readonly #events: MediaEvents<RtpReceiverEvents>;
  readonly #queues = new Set<AccessUnitQueue>();
  readonly #connections = new Set<Socket>();
  #demuxer: PsDemuxer;
  #reorder: RtpReorderBuffer;
  #ssrc: number | undefined;
  #udp: UdpSocket | undefined;
  #tcp: Server | undefined;
  #port = 0;
  #starting: Promise<void> | undefined;
  #stopping: Promise<void> | undefined;
  #idleTimer: NodeJS.Timeout | undefined;
  #reorderTimer: NodeJS.Timeout | undefined;
  #idleReported = false;
  #stats = { packets: 0, bytes: 0, lost: 0, late: 0, garbage: 0, foreignSsrc: 0, accessUnits: 0 };
  #lastPacketAt: number | undefined;

  constructor(options: RtpReceiverOptions) {
    this.#o = options;
    this.#log = options.logger ?? componentLogger('gb28181-rtp-receiver');
    this.#events = new MediaEvents(this.#log);
    this.#ssrc = options.ssrc;
    this.#demuxer = new PsDemuxer({ codec: options.codec ?? 'h264' });
    this.#reorder = new RtpReorderBuffer(options.reorderWindow ?? 32);
  }

  /** Bound port (after `start()`); answer it in the SDP `m=video` line. */
  get port(): number {
    return this.#port;
  }

  /** The SSRC accepted (configured, or locked onto from the first packet). */
  get ssrc(): number | undefined {
    return this.#ssrc;
  }

  /** A snapshot of the counters. */
  get stats(): RtpReceiverStats {
    return { ...this.#stats, lastPacketAt: this.#lastPacketAt, demux: this.#demuxer.stats };
  }

  /** Adds a listener. */
  on<E extends keyof RtpReceiverEvents>(event: E, listener: RtpReceiverEvents[E]): this {
    this.#events.on(event, listener);
    return this;
  }

  /** Removes a listener. */
  off<E extends keyof RtpReceiverEvents>(event: E, listener: RtpReceiverEvents[E]): this {
    this.#events.off(event, listener);
    return this;
  }

  /** Access units from now on, for `for await`; ends when the receiver stops. */
  accessUnits(): AsyncIterableIterator<VideoAccessUnit> {
    const queue = new AccessUnitQueue(this.#o.maxQueuedAccessUnits ?? 64);
    if (this.#stopping) queue.close();
    else this.#queues.add(queue);
    return queue;
  }

  /** Binds the port; rejects with CS_ERR_RTP_RECEIVER_BIND (or CS_ERR_ABORTED) on failure. */
  start(signal?: AbortSignal): Promise<void> {
    this.#starting ??= this.#start(signal);
    return this.#starting;
  }

  /** Closes the port and all TCP connections, ends iterators; safe to call twice or before start. */
  stop(): Promise<void> {
    this.#stopping ??= this.#stop();
    return this.#stopping;
  }

  async #start(signal: AbortSignal | undefined): Promise<void> {
    if (signal?.aborted) throw new CitysenseError('CS_ERR_ABORTED', 'RTP receiver start cancelled', 499);
    const host = this.#o.host ?? '0.0.0.0';
    const port = this.#o.port ?? 0;
    try {
      if (this.#o.transport === 'udp') await this.#listenUdp(host, port);
      else await this.#listenTcp(host, port);
    } catch (err) {
      throw mediaError(
        RTP_RECEIVER_BIND,
        `cannot listen for RTP on ${this.#o.transport} ${host}:${port} (${errorMessage(err)}); pick another port`,
        { host, port },
      );
    }
    if (this.#stopping) {
      await this.#closeSockets();
      return;
    }
    this.#armIdle();
    this.#log.info(
      { transport: this.#o.transport, port: this.#port, ssrc: this.#ssrc },
      'RTP receiver listening',
    );
  }

  async #listenUdp(host: string, port: number): Promise<void> {
    const udp = createSocket({ type: host.includes(':') ? 'udp6' : 'udp4' });
    this.#udp = udp;
    await new Promise<void>((resolve, reject) => {
      udp.once('error', reject);
      udp.bind({ port, address: host }, () => {
        udp.off('error', reject);
        resolve();
      });
    });
    try {
      udp.setRecvBufferSize(4 * 1024 * 1024); // a keyframe arrives as a burst of ~100 datagrams
    } catch (err) {
      this.#log.debug({ err: errorMessage(err) }, 'cannot enlarge the UDP receive buffer');
    }
    udp.on('error', (err) => this.#log.warn({ err: errorMessage(err) }, 'UDP socket error'));
    udp.on('message', (msg) => this.#onDatagram(msg));
    this.#port = (udp.address() as AddressInfo).port;
  }

  async #listenTcp(host: string, port: number): Promise<void> {
    const server = createServer((socket) => this.#onConnection(socket));
    this.#tcp = server;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen({ port, host }, () => {
        server.off('error', reject);
        resolve();
      });
    });
    server.on('error', (err) => this.#log.warn({ err: errorMessage(err) }, 'TCP server error'));
    this.#port = (server.address() as AddressInfo).port;
  }

  #onConnection(socket: Socket): void {
    const remote = `${socket.remoteAddress}:${socket.remotePort}`;
    if (this.#stopping) {
      socket.destroy();
      return;
    }
    this.#connections.add(socket);
    socket.setNoDelay(true);
    const deframer = new RtpTcpDeframer();
    this.#log.info({ remote }, 'RTP TCP peer connected');
    this.#events.emit('connection', 'open', remote);
    socket.on('data', (chunk: Buffer) => {
      this.#stats.bytes += chunk.length;
      const result = deframer.push(chunk);
      if (result.error) this.#log.warn({ remote, err: result.error.message }, 'RTP TCP framing lost');
      this.#stats.garbage += result.discardedBytes;
      for (const packet of result.packets) this.#onPacket(packet);
    });
    socket.on('error', (err) => this.#log.debug({ remote, err: errorMessage(err) }, 'RTP TCP peer error'));
    socket.on('close', () => {
      this.#connections.delete(socket);
      this.#log.info({ remote }, 'RTP TCP peer disconnected');
      this.#events.emit('connection', 'closed', remote);
    });
  }

  #onDatagram(msg: Buffer): void {
    this.#stats.bytes += msg.length;
    this.#onPacket(msg);
  }

  #onPacket(data: Buffer): void {
    if (this.#stopping) return;
    const parsed = parseRtp(data);
    if (!parsed.ok) {
      this.#stats.garbage++;
      return;
    }
    const packet = parsed.packet;
    this.#ssrc ??= packet.ssrc;
    if (packet.ssrc !== this.#ssrc) {
      this.#stats.foreignSsrc++;
      return;
    }
    this.#stats.packets++;
    this.#lastPacketAt = Date.now();
    this.#idleReported = false;
    this.#idleTimer?.refresh();
    this.#release(this.#reorder.push(packet));
    this.#armReorderTimer();
  }

  #release(result: ReorderResult): void {
    this.#stats.lost += result.lost;
    if (result.late) this.#stats.late++;
    for (const { packet, afterGap } of result.packets) {
      if (afterGap) this.#demuxer.discontinuity();
      this.#emitAll(this.#demuxer.push(packet.payload));
      if (packet.marker && (this.#o.markerEndsFrame ?? true)) this.#emitAll(this.#demuxer.endOfFrame());
    }
  }

  #emitAll(units: VideoAccessUnit[]): void {
    for (const au of units) {
      this.#stats.accessUnits++;
      this.#events.emit('accessUnit', au);
      for (const queue of this.#queues) queue.push(au);
    }
  }

  #armReorderTimer(): void {
    if (this.#reorder.held === 0) {
      clearTimeout(this.#reorderTimer);
      this.#reorderTimer = undefined;
      return;
    }
    this.#reorderTimer ??= setTimeout(() => {
      this.#reorderTimer = undefined;
      if (this.#stopping) return;
      this.#release(this.#reorder.skipGap());
      this.#armReorderTimer();
    }, this.#o.reorderDelayMs ?? 100);
  }

  #armIdle(): void {
    const idleMs = this.#o.idleTimeoutMs ?? 0;
    if (idleMs <= 0) return;
    const check = (): void => {
      if (this.#stopping) return;
      const since = Date.now() - (this.#lastPacketAt ?? startedAt);
      if (since >= idleMs) {
        if (!this.#idleReported) {
          this.#idleReported = true;
          this.#log.warn({ idleMs: since, port: this.#port }, 'no RTP packet; the camera may be gone');
          this.#events.emit('timeout', since);
        }
        this.#idleTimer?.refresh();
      } else {
        this.#idleTimer = setTimeout(check, idleMs - since);
      }
    };
    const startedAt = Date.now();
    this.#idleTimer = setTimeout(check, idleMs);
  }

  async #stop(): Promise<void> {
    await this.#starting?.catch(() => undefined);
    clearTimeout(this.#idleTimer);
    clearTimeout(this.#reorderTimer);
    await this.#closeSockets();
    for (const queue of this.#queues) queue.close();
    this.#queues.clear();
    this.#log.info({ ...this.stats, demux: undefined }, 'RTP receiver stopped');
  }

  async #closeSockets(): Promise<void> {
    for (const socket of this.#connections) socket.destroy();
    const udp = this.#udp;
    const tcp = this.#tcp;
    this.#udp = undefined;
    this.#tcp = undefined;
    if (udp) await new Promise<void>((resolve) => udp.close(() => resolve()));
    if (tcp) await new Promise<void>((resolve) => tcp.close(() => resolve()));
  }
}
