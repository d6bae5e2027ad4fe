/**
 * RTMP ingest with HTTP-FLV and RTMP playback, on node-media-server (NMS) 4.4.3, plus
 * MPEG-TS over HTTP for H.265 (see ts-relay.ts). Cameras, GB/T 28181 relays and test
 * patterns publish to `rtmp://host:port/app/stream`; the edge pipeline and browsers play
 * the same stream from RTMP, `http://host:port/app/stream.flv` or (H.265) `.../stream.ts`.
 *
 * The relay opens NMS's listeners itself: NMS calls `process.exit(1)` when a port is taken,
 * and cannot listen on port 0. It never runs NMS's store, recorder, relay tasks, admin API or
 * web console.
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { EventEmitter } from 'node:events';
import type { Server as HttpServer, IncomingMessage, RequestListener, ServerResponse } from 'node:http';
import type { AddressInfo, Server as NetServer } from 'node:net';
import { componentLogger, errorMessage, type Logger } from '@citysense/protocol';
import {
  RTMP_LISTEN,
  RTMP_NOT_STARTED,
  RTMP_OPTIONS,
  RTMP_PORT_IN_USE,
  RTMP_PUBLISH_REFUSED,
  RTMP_STREAM_NAME,
  rtmpError,
} from './errors.ts';
import { createNms, type NmsInstance, type NmsSession } from './nms.ts';
import { type TsPublishAttempt, TsRelay } from './ts-relay.ts';

/** Query parameter carrying the publish secret: `rtmp://host/app/stream?token=…`. */
export const PUBLISH_TOKEN_PARAM = 'token';

/** How a stream reaches the relay. */
export type PublishProtocol = 'rtmp' | 'flv' | 'ts';

/** A publisher asking to publish, as the `authorizePublish` hook sees it. */
export interface PublishRequest {
  app: string;
  stream: string;
  protocol: PublishProtocol;
  /** Address of the publisher, without port. */
  remoteAddress: string;
  /** Query of the publish URL (holds the token; do not log it). */
  query: Readonly<Record<string, string>>;
}

/** Options of `MediaRelayServer`. */
export interface MediaRelayServerOptions {
  /** Bind address; default 127.0.0.1. */
  host?: string | undefined;
  /** RTMP port; default 0 (any free port). */
  rtmpPort?: number | undefined;
  /** HTTP port for HTTP-FLV, WebSocket-FLV and MPEG-TS; default 0 (any free port). */
  httpPort?: number | undefined;
  /** When set, a publisher must carry `?token=<publishSecret>` in its URL. */
  publishSecret?: string | undefined;
  /** When set, only these `app/stream` paths may be published. */
  allowedStreams?: readonly string[] | undefined;
  /** Last word on a publisher that passed the secret and the allow list; return false to refuse. */
  authorizePublish?: ((request: PublishRequest) => boolean) | undefined;
  /**
   * How long an RTMP stream outlives its publisher's disconnect, ms (default 5000). A publisher
   * from the same address that comes back in time continues the same stream (players keep a
   * continuous timeline); `unpublish` is emitted when the window closes.
   */
  publishGraceMs?: number | undefined;
  logger?: Logger | undefined;
}

/** A stream being published, as the `publish`/`unpublish` events and `streams()` report it. */
export interface PublishInfo {
  /** Session id of the publisher. */
  id: string;
  app: string;
  stream: string;
  /** `app/stream`. */
  path: string;
  protocol: PublishProtocol;
  /** Address of the publisher, without port. */
  remoteAddress: string;
  /** When the publish started, ms since the epoch. */
  startedAt: number;
}

/** A stream on the relay now, with its publisher and audience. */
export interface ActiveStream extends PublishInfo {
  /** `reconnecting` while an RTMP publisher's grace window runs. */
  status: 'publishing' | 'reconnecting';
  /** Players connected now (RTMP, HTTP-FLV, WebSocket-FLV or TS). */
  players: number;
  /** Bytes received from the publisher. */
  bytesIn: number;
  /** Video as the publisher's metadata declares it; absent for TS or before metadata. */
  video: { codecId: number; width: number; height: number; fps: number } | undefined;
}

/** A publisher the relay turned away. */
export interface RefusedPublish {
  app: string;
  stream: string;
  protocol: PublishProtocol;
  remoteAddress: string;
  /** Always CS_ERR_RTMP_PUBLISH_REFUSED. */
  code: string;
  reason: string;
}

/** Typed events of `MediaRelayServer`. */
export interface MediaRelayEvents {
  /** A stream started (not emitted when a publisher resumes within the grace window). */
  publish: [stream: PublishInfo];
  /** A stream ended for good. */
  unpublish: [stream: PublishInfo];
  /** A publisher failed the publish policy and was disconnected. */
  publishRefused: [attempt: RefusedPublish];
}

/** Letters, digits, `_` and `-`: what NMS accepts in app and stream names. */
const SAFE_NAME = /^[A-Za-z0-9_-]+$/;

interface Running {
  nms: NmsInstance;
  rtmp: NetServer;
  http: HttpServer;
  rtmpPort: number;
  httpPort: number;
  ts: TsRelay;
  detach: () => void;
}

/** An RTMP/HTTP-FLV relay on local ports: publishers push, any number of players pull. */
export class MediaRelayServer extends EventEmitter<MediaRelayEvents> {
  readonly #o: MediaRelayServerOptions;
  readonly #log: Logger;
  #running: Running | undefined;
  /** Serialises start and stop so that overlapping calls see one state. */
  #transition: Promise<void> = Promise.resolve();
  /** Publishes by path; an RTMP stream stays here through its grace window. */
  readonly #live = new Map<string, PublishInfo>();

  constructor(options: MediaRelayServerOptions = {}) {
    super();
    this.#o = options;
    this.#log = componentLogger('media-relay', options.logger);
  }

  /** Whether the listeners are open. */
  get running(): boolean {
    return this.#running !== undefined;
  }

  /** Port of the RTMP listener. */
  get rtmpPort(): number {
    return this.#require().rtmpPort;
  }

  /** Port of the HTTP listener (HTTP-FLV, WebSocket-FLV, MPEG-TS). */
  get httpPort(): number {
    return this.#require().httpPort;
  }

  /** RTMP URL of a stream; `publish` adds the publish token when a secret is configured. */
  rtmpUrl(app: string, stream: string, o: { publish?: boolean } = {}): string {
    checkNames(app, stream);
    return `rtmp://${this.#urlHost()}:${this.rtmpPort}/${app}/${stream}${this.#token(o.publish)}`;
  }

  /** HTTP-FLV URL of a stream. */
  flvUrl(app: string, stream: string): string {
    checkNames(app, stream);
    return `http://${this.#urlHost()}:${this.httpPort}/${app}/${stream}.flv`;
  }

  /** MPEG-TS over HTTP URL of a stream: players GET it, a publisher POSTs to it (`publish`). */
  tsUrl(app: string, stream: string, o: { publish?: boolean } = {}): string {
    checkNames(app, stream);
    return `http://${this.#urlHost()}:${this.httpPort}/${app}/${stream}.ts${this.#token(o.publish)}`;
  }

  /** Streams published now, with publisher and player counts. */
  streams(): ActiveStream[] {
    const r = this.#running;
    if (!r) return [];
    const out: ActiveStream[] = [];
    for (const info of this.#live.values()) {
      if (info.protocol === 'ts') {
        const s = r.ts.publisherStats(info.path);
        out.push({
          ...info,
          status: 'publishing',
          players: r.ts.players(info.path),
          bytesIn: s?.bytesIn ?? 0,
          video: undefined,
        });
        continue;
      }
      const b = r.nms.context.broadcasts.get(`/${info.path}`);
      const p = b?.publisher;
      if (!b || !p) continue;
      out.push({
        ...info,
        status: b.getPublishStatus() === 'reconnecting' ? 'reconnecting' : 'publishing',
        players: b.subscribers.size,
        bytesIn: p.inBytes,
        video:
          p.videoWidth > 0
            ? { codecId: p.videoCodec, width: p.videoWidth, height: p.videoHeight, fps: p.videoFramerate }
            : undefined,
      });
    }
    return out;
  }

  /** Opens the RTMP and HTTP listeners; idempotent. */
  start(): Promise<void> {
    const next = this.#transition.then(() => this.#start());
    this.#transition = next.catch(() => undefined);
    return next;
  }

  /** Ends every publish and player and closes both listeners, freeing the ports; idempotent. */
  stop(): Promise<void> {
    const next = this.#transition.then(() => this.#stop());
    this.#transition = next.catch(() => undefined);
    return next;
  }

  async #start(): Promise<void> {
    if (this.#running) return;
    const o = this.#o;
    validate(o);
    const host = o.host ?? '127.0.0.1';
    const nmsLog = this.#log.child({ lib: 'node-media-server' });
    const nms = createNms(
      {
        bind: host,
        // NMS only builds a listener for a non-zero port; the relay does the listening.
        rtmp: { port: o.rtmpPort || 1 },
        http: { port: o.httpPort || 1 },
        webadmin: { enable: false },
        ...(this.#hasPolicy()
          ? { auth: { publish: true, play: false, secret: randomBytes(24).toString('hex') } }
          : {}),
      },
      (level, message) => logNms(nmsLog, level, message),
    );
    const rtmp = nms.server.rtmpServer.tcpServer;
    const http = nms.server.httpServer.httpServer;
    if (!rtmp || !http) throw new Error('node-media-server built no RTMP or HTTP listener');
    // NMS's own handlers exit the process on a listen error; ws re-emits them on a server nobody listens to.
    http.removeAllListeners('error');
    nms.server.httpServer.wsServer?.on('error', (err: unknown) =>
      this.#log.warn({ err: errorMessage(err) }, 'WebSocket-FLV error'),
    );
    const ts = new TsRelay(
      {
        authorize: (a) => this.#authorizeTs(a),
        published: (id, a) => this.#published(id, a.app, a.stream, 'ts', a.remoteAddress, Date.now()),
        unpublished: (id) => this.#unpublishedTs(id),
      },
      this.#log,
    );
    const flvRoutes = http.listeners('request') as RequestListener[];
    http.removeAllListeners('request');
    http.on('request', (req: IncomingMessage, res: ServerResponse) => {
      if (ts.handle(req, res)) return;
      for (const route of flvRoutes) route(req, res);
    });
    const detach = this.#attach(nms);
    let rtmpPort: number;
    let httpPort: number;
    try {
      rtmpPort = await listen(rtmp, o.rtmpPort ?? 0, host, 'RTMP');
      try {
        httpPort = await listen(http, o.httpPort ?? 0, host, 'HTTP');
      } catch (err) {
        await closeServer(rtmp);
        throw err;
      }
    } catch (err) {
      detach();
      await nms.server.stop();
      throw err;
    }
    for (const server of [rtmp, http]) {
      server.on('error', (err) => this.#log.error({ err: errorMessage(err) }, 'listener error'));
    }
    nms.context.config.rtmp.port = rtmpPort;
    nms.context.config.http.port = httpPort;
    this.#running = { nms, rtmp, http, rtmpPort, httpPort, ts, detach };
    this.#log.info({ host, rtmpPort, httpPort, publishPolicy: this.#hasPolicy() }, 'media relay listening');
  }

  async #stop(): Promise<void> {
    const r = this.#running;
    if (!r) return;
    this.#running = undefined;
    // Publishes end now rather than after their grace window, so listeners hear `unpublish`.
    for (const b of [...r.nms.context.broadcasts.values()]) if (b.publisher) b._finishPublish();
    r.ts.close();
    const closed = Promise.all([closeServer(r.rtmp), closeServer(r.http)]);
    const ws = r.nms.server.httpServer.wsServer as { clients?: Set<{ terminate(): void }> } | undefined;
    for (const client of ws?.clients ?? []) client.terminate();
    // Destroys RTMP sockets and stops NMS's rate sampler.
    await r.nms.server.stop();
    // HTTP-FLV players are endless responses: server.close() alone would wait for them forever.
    r.http.closeAllConnections();
    await closed;
    r.detach();
    this.#live.clear();
    this.#log.info({ rtmpPort: r.rtmpPort, httpPort: r.httpPort }, 'media relay stopped');
  }

  /** Subscribes to NMS's event bus; returns the undo. */
  #attach(nms: NmsInstance): () => void {
    const bus = nms.context.eventEmitter;
    const prePublish = (s: NmsSession): void => this.#preparePublish(s, nms);
    const postPublish = (s: NmsSession): void => {
      // postPublish fires before NMS checks that the path has no publisher yet; only a session
      // NMS kept as the publisher is a publish.
      queueMicrotask(() => {
        const b = nms.context.broadcasts.get(s.streamPath);
        if (b?.publisher !== s) return;
        if (this.#live.has(pathOf(s))) {
          this.#log.info({ path: pathOf(s), session: s.id }, 'publisher resumed within the grace window');
          return;
        }
        this.#published(
          s.id,
          s.streamApp,
          s.streamName,
          s.protocol === 'flv' ? 'flv' : 'rtmp',
          addressOf(s.ip),
          s.createTime,
        );
      });
    };
    const donePublish = (s: NmsSession): void => {
      const info = this.#live.get(pathOf(s));
      if (!info || info.protocol === 'ts') return;
      this.#live.delete(info.path);
      this.#log.info({ path: info.path, session: s.id }, 'stream unpublished');
      this.#emitSafely('unpublish', info);
    };
    bus.on('prePublish', prePublish);
    bus.on('postPublish', postPublish);
    bus.on('donePublish', donePublish);
    return () => {
      bus.off('prePublish', prePublish);
      bus.off('postPublish', postPublish);
      bus.off('donePublish', donePublish);
    };
  }

  /**
   * Applies the publish policy to an NMS publisher, then sets up its stream (grace window, FLV
   * header). NMS verifies its own signed `sign=` query right after `prePublish` (synchronously,
   * when `auth.publish` is on); the relay holds NMS's secret, so it signs the sessions it accepts
   * and spoils the signature of the others: NMS then refuses them by its normal path (the
   * publisher is never registered).
   */
  #preparePublish(s: NmsSession, nms: NmsInstance): void {
    const secret = nms.context.config.auth?.secret;
    if (secret) {
      const query: Record<string, string> = {};
      for (const [k, v] of Object.entries(s.streamQuery ?? {})) if (typeof v === 'string') query[k] = v;
      const request: PublishRequest = {
        app: s.streamApp,
        stream: s.streamName,
        protocol: s.protocol === 'flv' ? 'flv' : 'rtmp',
        remoteAddress: addressOf(s.ip),
        query,
      };
      const refusal = this.#refusal(request);
      if (refusal !== undefined) {
        s.streamQuery = { ...s.streamQuery, sign: 'refused' };
        this.#refused(request, refusal);
        return;
      }
      s.streamQuery = { ...s.streamQuery, sign: nmsSign(s.streamPath, secret) };
    }
    const b = s.broadcast ?? nms.context.broadcasts.get(s.streamPath);
    // A path with a live publisher keeps its settings; NMS refuses the second publisher.
    if (!b || b.getPublishStatus() === 'publishing') return;
    b.publishGraceMs = this.#o.publishGraceMs ?? 5000;
    nms.fitFlvHeader(b);
  }

  #authorizeTs(a: TsPublishAttempt): string | undefined {
    const request: PublishRequest = {
      app: a.app,
      stream: a.stream,
      protocol: 'ts',
      remoteAddress: a.remoteAddress,
      query: Object.fromEntries(a.query),
    };
    const refusal = this.#refusal(request);
    if (refusal !== undefined) this.#refused(request, refusal);
    return refusal;
  }

  /** Undefined when the policy lets `r` publish, else why not. */
  #refusal(r: PublishRequest): string | undefined {
    const o = this.#o;
    const path = `${r.app}/${r.stream}`;
    if (o.allowedStreams && !o.allowedStreams.includes(path)) return `${path} is not an allowed stream`;
    if (o.publishSecret !== undefined && !sameSecret(r.query[PUBLISH_TOKEN_PARAM], o.publishSecret))
      return `missing or wrong ${PUBLISH_TOKEN_PARAM} in the publish URL`;
    if (o.authorizePublish) {
      try {
        if (!o.authorizePublish(r)) return 'refused by authorizePublish';
      } catch (err) {
        this.#log.error({ err: errorMessage(err), path }, 'authorizePublish threw; refusing the publisher');
        return 'authorizePublish failed';
      }
    }
    return undefined;
  }

  #refused(r: PublishRequest, reason: string): void {
    this.#log.warn(
      { path: `${r.app}/${r.stream}`, protocol: r.protocol, remoteAddress: r.remoteAddress, reason },
      'publisher refused',
    );
    this.#emitSafely('publishRefused', {
      app: r.app,
      stream: r.stream,
      protocol: r.protocol,
      remoteAddress: r.remoteAddress,
      code: RTMP_PUBLISH_REFUSED,
      reason,
    });
  }

  #published(
    id: string,
    app: string,
    stream: string,
    protocol: PublishProtocol,
    remoteAddress: string,
    startedAt: number,
  ): void {
    const info: PublishInfo = {
      id,
      app,
      stream,
      path: `${app}/${stream}`,
      protocol,
      remoteAddress,
      startedAt,
    };
    this.#live.set(info.path, info);
    this.#log.info({ path: info.path, protocol, remoteAddress, session: id }, 'stream published');
    this.#emitSafely('publish', info);
  }

  #unpublishedTs(id: string): void {
    for (const info of this.#live.values()) {
      if (info.protocol !== 'ts' || info.id !== id) continue;
      this.#live.delete(info.path);
      this.#log.info({ path: info.path, session: id }, 'stream unpublished');
      this.#emitSafely('unpublish', info);
      return;
    }
  }

  /** Emits from inside NMS's socket handlers: a throwing listener must not take the relay down. */
  #emitSafely<E extends keyof MediaRelayEvents>(event: E, ...args: MediaRelayEvents[E]): void {
    try {
      (this.emit as (e: E, ...a: MediaRelayEvents[E]) => boolean)(event, ...args);
    } catch (err) {
      this.#log.error(
        { err: errorMessage(err), event },
        'a media relay listener failed; the relay keeps running',
      );
    }
  }

  #hasPolicy(): boolean {
    const o = this.#o;
    return (
      o.publishSecret !== undefined || o.allowedStreams !== undefined || o.authorizePublish !== undefined
    );
  }

  #token(publish: boolean | undefined): string {
    const secret = this.#o.publishSecret;
    return publish && secret !== undefined ? `?${PUBLISH_TOKEN_PARAM}=${encodeURIComponent(secret)}` : '';
  }

  /** The host players should use: a wildcard bind is reached on loopback (ffmpeg 4.1 cannot resolve names). */
  #urlHost(): string {
    const host = this.#o.host ?? '127.0.0.1';
    if (host === '0.0.0.0') return '127.0.0.1';
    if (host === '::') return '[::1]';
    return host.includes(':') ? `[${host}]` : host;
  }

  #require(): Running {
    if (!this.#running)
      throw rtmpError(RTMP_NOT_STARTED, 'the media relay is not running; await start() first');
    return this.#running;
  }
}

/** Routes one NMS log line to pino. NMS logs every session at info: that is debug for a host. */
function logNms(log: Logger, level: string, message: string): void {
  switch (level) {
    case 'error':
    case 'warn':
      // NMS's errors are about peers (bad stream names, parse errors, refused publishers).
      log.warn(message);
      break;
    case 'trace':
      log.trace(message);
      break;
    default:
      log.debug(message);
  }
}

/** NMS's signed-URL value `exp-md5(path-exp-secret)`, valid for a minute. */
function nmsSign(streamPath: string, secret: string): string {
  const exp = Math.floor(Date.now() / 1000) + 60;
  return `${exp}-${createHash('md5').update(`${streamPath}-${exp}-${secret}`).digest('hex')}`;
}

function sameSecret(given: string | undefined, secret: string): boolean {
  if (given === undefined) return false;
  const a = createHash('sha256').update(given).digest();
  const b = createHash('sha256').update(secret).digest();
  return timingSafeEqual(a, b);
}

function pathOf(s: NmsSession): string {
  return `${s.streamApp}/${s.streamName}`;
}

/** `address:port` (NMS's `ip`) without the port. */
function addressOf(ip: string): string {
  return ip.replace(/:\d+$/, '');
}

function checkNames(app: string, stream: string): void {
  if (!SAFE_NAME.test(app) || !SAFE_NAME.test(stream))
    throw rtmpError(
      RTMP_STREAM_NAME,
      `app "${app}" and stream "${stream}" may hold only letters, digits, "_" and "-"`,
    );
}

function validate(o: MediaRelayServerOptions): void {
  const problems: string[] = [];
  for (const [name, port] of [
    ['rtmpPort', o.rtmpPort],
    ['httpPort', o.httpPort],
  ] as const) {
    if (port !== undefined && !(Number.isInteger(port) && port >= 0 && port <= 65535))
      problems.push(`${name} must be an integer in [0, 65535], got ${port}`);
  }
  if (o.rtmpPort && o.rtmpPort === o.httpPort) problems.push('rtmpPort and httpPort must differ');
  const g = o.publishGraceMs;
  if (g !== undefined && !(g >= 0 && g <= 3_600_000))
    problems.push(`publishGraceMs must be in [0, 3600000], got ${g}`);
  if (o.publishSecret === '')
    problems.push('publishSecret must not be empty; leave it out to accept any publisher');
  for (const path of o.allowedStreams ?? []) {
    const [app, stream, extra] = path.split('/');
    if (extra !== undefined || !SAFE_NAME.test(app ?? '') || !SAFE_NAME.test(stream ?? ''))
      problems.push(`allowedStreams entry "${path}" must be "app/stream" of letters, digits, "_" and "-"`);
  }
  if (problems.length > 0)
    throw rtmpError(RTMP_OPTIONS, `invalid media relay options: ${problems.join('; ')}`, { problems });
}

function listen(server: NetServer, port: number, host: string, name: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const onError = (err: NodeJS.ErrnoException): void => {
      server.off('listening', onListening);
      reject(
        err.code === 'EADDRINUSE'
          ? rtmpError(
              RTMP_PORT_IN_USE,
              `${name} port ${host}:${port} is in use; pick another port or 0 for any free one`,
            )
          : rtmpError(RTMP_LISTEN, `${name} listener on ${host}:${port} failed: ${err.message}`),
      );
    };
    const onListening = (): void => {
      server.off('error', onError);
      resolve((server.address() as AddressInfo).port);
    };
    server.once('error', onError);
    server.once('listening', onListening);
    server.listen(port, host);
  });
}

function closeServer(server: NetServer): Promise<void> {
  return new Promise((resolve) => {
    if (!server.listening) {
      resolve();
      return;
    }
    server.close(() => resolve());
  });
}
