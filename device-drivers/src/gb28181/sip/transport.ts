/**
 * SIP over UDP and TCP on one port (RFC 3261 §18): datagrams are whole messages, TCP
 * streams are framed by Content-Length. Responses to a TCP request go back on the
 * connection it came on; a send to a TCP peer without a connection opens one.
 */
import { createSocket, type Socket as UdpSocket } from 'node:dgram';
import { EventEmitter, once } from 'node:events';
import { createConnection, createServer, type Server, type Socket } from 'node:net';
import { CitysenseError, componentLogger, errorMessage, type Logger } from '@citysense/protocol';
import {
  DEFAULT_SIP_LIMITS,
  parseSipMessage,
  type SipLimits,
  type SipMessage,
  SipParseError,
} from './message.ts';
import { SipStreamFramer } from './stream-framer.ts';

/** Transport protocols a SIP peer is reached over. */
export type SipTransportKind = 'udp' | 'tcp';

/** Where a message came from or goes to. */
export interface SipPeer {
  transport: SipTransportKind;
  address: string;
  port: number;
}

/** Key of a peer in maps and logs: `udp:1.2.3.4:5060`. */
export function peerKey(peer: SipPeer): string {
  return `${peer.transport}:${peer.address}:${peer.port}`;
}

/** Events of a transport. */
export type SipTransportEvents = {
  message: [message: SipMessage, peer: SipPeer];
  /** A message that was refused; `raw` is what arrived (for a best-effort error answer). */
  malformed: [error: SipParseError, peer: SipPeer, raw: Buffer];
};

/** Options of a transport. */
export interface SipTransportOptions {
  /** Bind address; default 127.0.0.1. */
  host?: string | undefined;
  /** Port for UDP and TCP; default 0 (one free port for both). */
  port?: number | undefined;
  /** Protocols to serve; default both. */
  protocols?: SipTransportKind[] | undefined;
  limits?: SipLimits | undefined;
  /** Idle TCP connections are closed after this long, ms (default 10 min; devices keep theirs alive). */
  tcpIdleMs?: number | undefined;
  /** Most concurrent TCP connections (default 10 000). */
  maxTcpConnections?: number | undefined;
  logger?: Logger | undefined;
}

/** Counters of a transport. */
export interface SipTransportStats {
  received: number;
  sent: number;
  malformed: number;
  tcpConnections: number;
}

/** A SIP transport bound to one port over UDP and/or TCP. */
export class SipTransport extends EventEmitter<SipTransportEvents> {
  readonly #o: SipTransportOptions;
  readonly #log: Logger;
  readonly #limits: SipLimits;
  #udp: UdpSocket | undefined;
  #tcp: Server | undefined;
  readonly #connections = new Map<string, Socket>();
  #port = 0;
  #starting: Promise<void> | undefined;
  #stopped = false;
  readonly #stats: SipTransportStats = { received: 0, sent: 0, malformed: 0, tcpConnections: 0 };

  constructor(o: SipTransportOptions = {}) {
    super();
    this.#o = o;
    this.#log = componentLogger('sip-transport', o.logger);
    this.#limits = o.limits ?? DEFAULT_SIP_LIMITS;
  }

  /** The bound port; valid after start. */
  get port(): number {
    return this.#port;
  }

  /** The bound address. */
  get host(): string {
    return this.#o.host ?? '127.0.0.1';
  }

  /** Counters since start. */
  stats(): SipTransportStats {
    return { ...this.#stats, tcpConnections: this.#connections.size };
  }

  /** Binds the port(s). Idempotent. */
  start(): Promise<void> {
    this.#starting ??= this.#bind();
    return this.#starting;
  }

  async #bind(): Promise<void> {
    const protocols = this.#o.protocols ?? ['udp', 'tcp'];
    const wanted = this.#o.port ?? 0;
    // With port 0 the UDP port is picked first and TCP must get the same number; another
    // process may hold it on TCP, so a few fresh UDP ports are tried.
    for (let attempt = 0; ; attempt++) {
      try {
        let port = wanted;
        if (protocols.includes('udp')) port = await this.#bindUdp(port);
        if (protocols.includes('tcp')) port = await this.#bindTcp(port);
        this.#port = port;
        this.#log.info({ host: this.host, port, protocols }, 'SIP transport listening');
        return;
      } catch (err) {
        await this.#closeSockets();
        const retry = wanted === 0 && attempt < 5 && (err as NodeJS.ErrnoException).code === 'EADDRINUSE';
        if (!retry)
          throw new CitysenseError(
            'CS_ERR_SIP_BIND',
            `cannot bind SIP port ${this.host}:${wanted}: ${errorMessage(err)}`,
            500,
          );
      }
    }
  }

  async #bindUdp(port: number): Promise<number> {
    const udp = createSocket({ type: 'udp4', reuseAddr: false });
    this.#udp = udp;
    udp.on('message', (raw, rinfo) =>
      this.#receive(raw, { transport: 'udp', address: rinfo.address, port: rinfo.port }),
    );
    udp.on('error', (err) => this.#log.warn({ err: errorMessage(err) }, 'UDP socket error'));
    const bound = once(udp, 'listening');
    udp.bind(port, this.host);
    await Promise.race([bound, once(udp, 'error').then(([err]) => Promise.reject(err))]);
    return udp.address().port;
  }

  async #bindTcp(port: number): Promise<number> {
    const server = createServer((socket) => this.#adopt(socket));
    server.maxConnections = this.#o.maxTcpConnections ?? 10_000;
    this.#tcp = server;
    server.listen(port, this.host);
    await Promise.race([
      once(server, 'listening'),
      once(server, 'error').then(([err]) => Promise.reject(err)),
    ]);
    server.on('error', (err) => this.#log.warn({ err: errorMessage(err) }, 'TCP server error'));
    const address = server.address();
    return typeof address === 'object' && address ? address.port : port;
  }

  /** Takes a TCP connection (accepted or opened) into the connection table. */
  #adopt(socket: Socket): SipPeer {
    const peer: SipPeer = {
      transport: 'tcp',
      address: socket.remoteAddress?.replace(/^::ffff:/, '') ?? '',
      port: socket.remotePort ?? 0,
    };
    const key = peerKey(peer);
    this.#connections.set(key, socket);
    const framer = new SipStreamFramer(this.#limits);
    socket.setTimeout(this.#o.tcpIdleMs ?? 600_000, () => socket.destroy());
    socket.on('data', (chunk: Buffer) => {
      let messages: Buffer[];
      try {
        messages = framer.push(chunk);
      } catch (err) {
        // A stream that cannot be framed cannot be resynchronised: report and drop the connection.
        this.#refuse(err instanceof SipParseError ? err : new SipParseError(errorMessage(err)), peer, chunk);
        socket.destroy();
        return;
      }
      for (const raw of messages) this.#receive(raw, peer);
    });
    socket.on('error', (err) =>
      this.#log.debug({ peer: key, err: errorMessage(err) }, 'TCP connection error'),
    );
    socket.on('close', () => {
      if (this.#connections.get(key) === socket) this.#connections.delete(key);
    });
    return peer;
  }

  #receive(raw: Buffer, peer: SipPeer): void {
    if (this.#stopped) return;
    // A bare CRLF keep-alive datagram (RFC 5626) is not a message.
    if (raw.length <= 4 && raw.toString('latin1').trim() === '') return;
    let message: SipMessage;
    try {
      message = parseSipMessage(raw, this.#limits);
    } catch (err) {
      this.#refuse(err instanceof SipParseError ? err : new SipParseError(errorMessage(err)), peer, raw);
      return;
    }
    this.#stats.received++;
    this.emit('message', message, peer);
  }

  #refuse(error: SipParseError, peer: SipPeer, raw: Buffer): void {
    this.#stats.malformed++;
    this.#log.warn({ peer: peerKey(peer), code: error.code, reason: error.message }, 'SIP message refused');
    this.emit('malformed', error, peer, raw);
  }

  /** Sends bytes to a peer; a TCP peer without a connection is connected first. */
  async send(bytes: Buffer, peer: SipPeer): Promise<void> {
    if (this.#stopped) throw new CitysenseError('CS_ERR_SIP_STOPPED', 'the SIP transport is stopped', 503);
    if (peer.transport === 'udp') {
      const udp = this.#udp;
      if (!udp)
        throw new CitysenseError('CS_ERR_SIP_TRANSPORT', 'UDP is not enabled on this SIP transport', 500);
      await new Promise<void>((resolve, reject) =>
        udp.send(bytes, peer.port, peer.address, (err) => (err ? reject(err) : resolve())),
      );
    } else {
      const socket = this.#connections.get(peerKey(peer)) ?? (await this.#connect(peer));
      await new Promise<void>((resolve, reject) =>
        socket.write(bytes, (err) => (err ? reject(err) : resolve())),
      );
    }
    this.#stats.sent++;
  }

  async #connect(peer: SipPeer): Promise<Socket> {
    const socket = createConnection({ host: peer.address, port: peer.port });
    try {
      await Promise.race([
        once(socket, 'connect'),
        once(socket, 'error').then(([err]) => Promise.reject(err)),
      ]);
    } catch (err) {
      socket.destroy();
      throw new CitysenseError(
        'CS_ERR_SIP_UNREACHABLE',
        `cannot connect to ${peerKey(peer)}: ${errorMessage(err)}`,
        503,
      );
    }
    // Keyed by the address we dialled so that later sends to the same peer reuse it.
    const key = peerKey(peer);
    const adoptedAs = this.#adopt(socket);
    if (peerKey(adoptedAs) !== key) {
      this.#connections.delete(peerKey(adoptedAs));
      this.#connections.set(key, socket);
    }
    return socket;
  }

  /** The local port of the TCP connection to `peer`, for Via/Contact of a client; undefined without one. */
  localTcpPort(peer: SipPeer): number | undefined {
    return this.#connections.get(peerKey(peer))?.localPort;
  }

  /** Closes sockets and connections. Idempotent. */
  async stop(): Promise<void> {
    if (this.#stopped) return;
    this.#stopped = true;
    await this.#starting?.catch(() => undefined);
    await this.#closeSockets();
  }

  async #closeSockets(): Promise<void> {
    for (const socket of this.#connections.values()) socket.destroy();
    this.#connections.clear();
    const udp = this.#udp;
    const tcp = this.#tcp;
    this.#udp = undefined;
    this.#tcp = undefined;
    if (udp) await new Promise<void>((resolve) => udp.close(() => resolve()));
    if (tcp?.listening) await new Promise<void>((resolve) => tcp.close(() => resolve()));
  }
}
