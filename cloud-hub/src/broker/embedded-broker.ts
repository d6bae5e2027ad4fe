import { once } from 'node:events';
import type { Server as HttpServer, IncomingMessage } from 'node:http';
import { createServer, type Server } from 'node:net';
import type { Duplex } from 'node:stream';
import { componentLogger, digestEquals, type Logger, sha256Hex } from '@citysense/protocol';
import { Aedes, type AuthenticateError, type Client } from 'aedes';
import { createWebSocketStream, WebSocketServer } from 'ws';
import type { HubMetrics } from '../http/metrics.ts';
import { nodeMayPublish, nodeMaySubscribe } from './acl.ts';
import type { MessageBus, MessageHandler, PublishOptions } from './message-bus.ts';

/** Who a connected MQTT client is; a node session remembers the hash of the credential it used. */
type Principal = { kind: 'node'; nodeId: string; passwordHash: string } | { kind: 'hub' };

/** Checks node credentials; implemented by the node registry. */
export interface CredentialCheck {
  authenticate(nodeId: string, password: string): boolean;
  /** True while `passwordHash` is the node's current credential (false after deregistration or box replacement). */
  isCurrent(nodeId: string, passwordHash: string): boolean;
}

/** Options of the embedded broker. */
export interface EmbeddedBrokerOptions {
  host: string;
  /** TCP port; 0 picks a free one (tests). */
  port: number;
  groupId: string;
  /** Username of the privileged hub client (tools, tests); its password is the admin token. */
  hubUsername: string;
  adminToken: string;
  /** Largest accepted PUBLISH payload in bytes. */
  maxPayloadBytes: number;
  credentials: CredentialCheck;
  metrics: HubMetrics;
  logger?: Logger;
}

/** MQTT CONNACK return code 4 / 5 (MQTT 3.1.1 §3.2.2.3). */
function authError(message: string, returnCode: 4 | 5): AuthenticateError {
  return Object.assign(new Error(message), { returnCode }) as AuthenticateError;
}

/**
 * The embedded MQTT broker: Aedes on TCP and on `/mqtt` websockets of the hub's
 * HTTP server, with per-node authentication (credential from enrolment) and a
 * per-node ACL. The hub itself subscribes and publishes in-process.
 */
export class EmbeddedBroker implements MessageBus {
  readonly mode = 'embedded' as const;
  readonly #options: EmbeddedBrokerOptions;
  readonly #log: Logger;
  readonly #principals = new WeakMap<Client, Principal>();
  /** node id → its live sessions (usually one; two while a box replacement takes over). */
  readonly #nodeClients = new Map<string, Set<Client>>();
  #aedes: Aedes | undefined;
  #tcp: Server | undefined;
  #wss: WebSocketServer | undefined;
  #upgradeListener: ((req: IncomingMessage, socket: Duplex, head: Buffer) => void) | undefined;
  #httpServer: HttpServer | undefined;

  constructor(options: EmbeddedBrokerOptions) {
    this.#options = options;
    this.#log = componentLogger('broker', options.logger);
  }

  /** The TCP port actually bound. */
  get port(): number {
    const addr = this.#tcp?.address();
    return addr && typeof addr === 'object' ? addr.port : this.#options.port;
  }

  /** Starts Aedes and the TCP listener. */
  async start(): Promise<void> {
    if (this.#aedes) return;
    const aedes = await Aedes.createBroker({
      id: 'citysense-hub',
      authenticate: (client, username, password, done) =>
        this.#authenticate(client, username, password, done),
      authorizePublish: (client, packet, done) => {
        if (!client) return done(null);
        const principal = this.#principals.get(client);
        if (principal?.kind === 'hub') return done(null);
        if (packet.payload.length > this.#options.maxPayloadBytes) {
          this.#options.metrics.rejected.inc({ reason: 'oversize' });
          this.#log.warn(
            { clientId: client.id, topic: packet.topic, bytes: packet.payload.length },
            'oversize publish refused',
          );
          return done(new Error(`payload larger than ${this.#options.maxPayloadBytes} bytes`));
        }
        if (
          principal?.kind === 'node' &&
          nodeMayPublish(this.#options.groupId, principal.nodeId, packet.topic)
        ) {
          return done(null);
        }
        this.#options.metrics.rejected.inc({ reason: 'acl' });
        this.#log.warn(
          {
            clientId: client.id,
            node: principal?.kind === 'node' ? principal.nodeId : null,
            topic: packet.topic,
          },
          'publish outside the node ACL refused',
        );
        return done(new Error('not authorised to publish on this topic'));
      },
      authorizeSubscribe: (client, sub, done) => {
        const principal = this.#principals.get(client);
        if (principal?.kind === 'hub') return done(null, sub);
        if (
          principal?.kind === 'node' &&
          nodeMaySubscribe(this.#options.groupId, principal.nodeId, sub.topic)
        ) {
          return done(null, sub);
        }
        this.#options.metrics.rejected.inc({ reason: 'acl' });
        this.#log.warn(
          { clientId: client.id, filter: sub.topic },
          'subscription outside the node ACL refused',
        );
        return done(null, null);
      },
    });
    aedes.on('clientReady', (client) => {
      const p = this.#principals.get(client);
      if (p?.kind !== 'node') return;
      // The credential may have been revoked between CONNECT and now (box replaced, node deregistered).
      if (!this.#options.credentials.isCurrent(p.nodeId, p.passwordHash)) {
        this.#log.info(
          { node: p.nodeId },
          'closing an MQTT session whose credential was revoked while connecting',
        );
        client.close();
        return;
      }
      let sessions = this.#nodeClients.get(p.nodeId);
      if (!sessions) {
        sessions = new Set();
        this.#nodeClients.set(p.nodeId, sessions);
      }
      sessions.add(client);
    });
    aedes.on('clientDisconnect', (client) => {
      const p = this.#principals.get(client);
      if (p?.kind !== 'node') return;
      const sessions = this.#nodeClients.get(p.nodeId);
      sessions?.delete(client);
      if (sessions?.size === 0) this.#nodeClients.delete(p.nodeId);
    });
    aedes.on('clientError', (client, err) =>
      this.#log.debug({ clientId: client.id, err: err.message }, 'client error'),
    );
    aedes.on('connectionError', (client, err) => {
      this.#options.metrics.rejected.inc({ reason: 'protocol' });
      this.#log.info({ clientId: client.id, err: err.message }, 'connection error');
    });
    this.#aedes = aedes;
    const tcp = createServer(aedes.handle);
    tcp.listen(this.#options.port, this.#options.host);
    await once(tcp, 'listening');
    this.#tcp = tcp;
    this.#log.info({ port: this.port }, 'embedded MQTT broker listening');
  }

  /** Serves MQTT over websockets at `/mqtt` on the hub's HTTP server. */
  attachWebSocket(server: HttpServer): void {
    const aedes = this.#aedes;
    if (!aedes || this.#wss) return;
    const wss = new WebSocketServer({ noServer: true, maxPayload: this.#options.maxPayloadBytes + 1024 });
    wss.on('connection', (ws, req) => {
      const stream = createWebSocketStream(ws);
      stream.on('error', (err) => this.#log.debug({ err: err.message }, 'websocket stream error'));
      aedes.handle(stream, req);
    });
    const listener = (req: IncomingMessage, socket: Duplex, head: Buffer) => {
      if (new URL(req.url ?? '/', 'http://x').pathname !== '/mqtt') {
        socket.destroy();
        return;
      }
      wss.handleUpgrade(req, socket, head, (ws) => wss.emit('connection', ws, req));
    };
    server.on('upgrade', listener);
    this.#wss = wss;
    this.#upgradeListener = listener;
    this.#httpServer = server;
  }

  /** Closes listeners and the broker. */
  async stop(): Promise<void> {
    const aedes = this.#aedes;
    if (!aedes) return;
    this.#aedes = undefined;
    if (this.#upgradeListener) this.#httpServer?.off('upgrade', this.#upgradeListener);
    for (const ws of this.#wss?.clients ?? []) ws.terminate();
    this.#wss?.close();
    this.#wss = undefined;
    const tcp = this.#tcp;
    this.#tcp = undefined;
    const closed = tcp ? new Promise<void>((resolve) => tcp.close(() => resolve())) : Promise.resolve();
    await new Promise<void>((resolve) => aedes.close(() => resolve()));
    await closed;
  }

  subscribe(filter: string, handler: MessageHandler): Promise<void> {
    const aedes = this.#require();
    return new Promise((resolve) => {
      aedes.subscribe(
        filter,
        (packet, done) => handler(packet.topic, packet.payload as Buffer, done),
        resolve,
      );
    });
  }

  publish(topic: string, payload: Uint8Array | string, options: PublishOptions = {}): Promise<void> {
    const aedes = this.#require();
    return new Promise((resolve, reject) => {
      aedes.publish(
        {
          cmd: 'publish',
          topic,
          payload:
            typeof payload === 'string'
              ? Buffer.from(payload)
              : Buffer.from(payload.buffer, payload.byteOffset, payload.byteLength),
          qos: options.qos ?? 0,
          retain: options.retain ?? false,
          dup: false,
        },
        (err) => (err ? reject(err) : resolve()),
      );
    });
  }

  connectedClients(): number {
    return this.#aedes?.connectedClients ?? 0;
  }

  /**
   * Closes every session of `nodeId` opened with a credential that is no longer
   * current: all of them after deregistration, the old box's after a box
   * replacement (the new box's session, opened with the new credential, stays).
   */
  disconnectNode(nodeId: string): void {
    for (const client of this.#nodeClients.get(nodeId) ?? []) {
      const p = this.#principals.get(client);
      if (p?.kind === 'node' && this.#options.credentials.isCurrent(nodeId, p.passwordHash)) continue;
      this.#log.info(
        { node: nodeId, clientId: client.id },
        'closing an MQTT session with a revoked credential',
      );
      this.#nodeClients.get(nodeId)?.delete(client);
      client.close();
    }
  }

  #authenticate(
    client: Client,
    username: string | undefined,
    password: Buffer | undefined,
    done: (error: AuthenticateError | null, success: boolean | null) => void,
  ): void {
    const secret = password?.toString('utf8') ?? '';
    if (
      username === this.#options.hubUsername &&
      digestEquals(sha256Hex(secret), sha256Hex(this.#options.adminToken))
    ) {
      this.#principals.set(client, { kind: 'hub' });
      done(null, true);
      return;
    }
    if (username && this.#options.credentials.authenticate(username, secret)) {
      this.#principals.set(client, { kind: 'node', nodeId: username, passwordHash: sha256Hex(secret) });
      done(null, true);
      return;
    }
    this.#options.metrics.rejected.inc({ reason: 'auth' });
    this.#log.warn(
      { clientId: client.id, username: username?.slice(0, 64) },
      'MQTT connect refused: bad credentials',
    );
    done(authError('bad username or password', 4), null);
    return;
  }

  #require(): Aedes {
    if (!this.#aedes) throw new Error('embedded broker is not started');
    return this.#aedes;
  }
}
