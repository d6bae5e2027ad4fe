/**
 * A private instance of node-media-server (NMS) 4.4.3, typed for the few parts the relay uses.
 *
 * NMS keeps all state (config, sessions, broadcasts, event bus, logger) in module singletons
 * (`core/context.js`, `core/logger.js`), so two servers in one process would share streams
 * and events. Each relay therefore loads its own copy of NMS's module graph: the package's
 * entries are dropped from the CommonJS cache before and after loading (NMS loads all its
 * modules eagerly, so nothing re-requires them later). Its dependencies (express, ws) stay
 * shared; they hold no per-server state.
 */
import type { EventEmitter } from 'node:events';
import type { Server as HttpServer } from 'node:http';
import { createRequire } from 'node:module';
import type { Server as NetServer, Socket } from 'node:net';
import { dirname, join, sep } from 'node:path';

/** The fields of an NMS session (RTMP, HTTP-FLV) the relay reads. */
export interface NmsSession {
  id: string;
  /** `address:port` of the peer. */
  ip: string;
  protocol: string;
  isPublisher: boolean;
  streamApp: string;
  streamName: string;
  streamPath: string;
  streamQuery: Record<string, unknown>;
  createTime: number;
  inBytes: number;
  videoCodec: number;
  videoWidth: number;
  videoHeight: number;
  videoFramerate: number;
  broadcast?: NmsBroadcast;
  close(): void;
}

/** One stream path of NMS: its publisher and players. */
export interface NmsBroadcast {
  streamPath: string;
  publisher: NmsSession | null;
  subscribers: Map<string, NmsSession>;
  /** How long a disconnected publisher's stream is kept for it to resume, ms. */
  publishGraceMs: number;
  getPublishStatus(): 'publishing' | 'reconnecting' | 'idle';
  /** FLV file header sent to each HTTP-FLV player first. */
  flvHeader: Buffer;
  /** Relays one packet of the publisher to the players (flags 5: metadata). */
  broadcastMessage(packet: NmsPacket & { flags: number }): void;
  /** Ends the publish now: emits `donePublish`, drops the GOP cache. */
  _finishPublish(): void;
}

/** NMS's process-wide state, private to one loaded copy. */
export interface NmsContext {
  config: NmsConfig;
  sessions: Map<string, NmsSession>;
  broadcasts: Map<string, NmsBroadcast>;
  eventEmitter: EventEmitter;
}

/** The NMS config sections the relay sets. */
export interface NmsConfig {
  bind: string;
  rtmp: { port: number };
  http: { port: number };
  webadmin: { enable: boolean };
  auth?: { publish: boolean; play: boolean; secret: string };
}

/** The NodeMediaServer object, with the listeners it builds but that the relay opens itself. */
export interface NmsServer {
  rtmpServer: { tcpServer?: NetServer; _sockets: Set<Socket> };
  httpServer: { httpServer?: HttpServer; wsServer?: EventEmitter };
  stop(): Promise<void>;
}

/** NMS's logger: one object every NMS module writes through. */
interface NmsLogger {
  level: string;
  log(message: string, level?: string): void;
}

interface ParserClass {
  prototype: { parserData(buffer: Buffer): string | null };
}

/** NMS's media packet: FLV tag type (8 audio, 9 video, 18 script) and payload. */
interface NmsPacket {
  codec_type: number;
  size: number;
  data: Buffer;
}

interface FlvClass extends ParserClass {
  createMessage(packet: NmsPacket): Buffer;
  createHeader(hasAudio: boolean, hasVideo: boolean): Buffer;
}

/** A loaded private copy of NMS. */
export interface NmsInstance {
  server: NmsServer;
  context: NmsContext;
  /** Makes the broadcast's HTTP-FLV header declare only the tracks its metadata announces. */
  fitFlvHeader(broadcast: NmsBroadcast): void;
}

/** Receives NMS's log lines; `level` is NMS's own (trace…error). */
export type NmsLogSink = (level: string, message: string) => void;

const require = createRequire(import.meta.url);

/** Loads a fresh NMS module graph, routes its logging to `sink` and builds a server for `config`. */
export function createNms(config: NmsConfig, sink: NmsLogSink): NmsInstance {
  const entry = require.resolve('node-media-server');
  const src = dirname(entry);
  const packageRoot = dirname(src) + sep;
  const forget = (): void => {
    for (const key of Object.keys(require.cache)) if (key.startsWith(packageRoot)) delete require.cache[key];
  };
  forget();
  try {
    // The logger first: NMS writes to stdout from its constructor on; its log function is replaced.
    const logger = require(join(src, 'core/logger.js')) as NmsLogger;
    logger.log = (message: string, level = 'info'): void => sink(level, message);
    guardParser(require(join(src, 'protocol/rtmp.js')) as ParserClass, sink);
    const flv = require(join(src, 'protocol/flv.js')) as FlvClass;
    guardParser(flv, sink);
    stripSetDataFrame(flv);
    const context = require(join(src, 'core/context.js')) as NmsContext;
    const NodeMediaServer = require(entry) as new (config: NmsConfig) => NmsServer;
    return { server: new NodeMediaServer(config), context, fitFlvHeader: (b) => fitFlvHeader(b, flv) };
  } finally {
    forget();
  }
}

/**
 * NMS parses peer bytes inside socket `data` handlers; a malformed message that makes its
 * parser throw (an AMF command without `tcUrl`, say) would be an uncaught exception and end
 * the process. Turned into the parser's own error result, it only closes that connection.
 */
function guardParser(parser: ParserClass, sink: NmsLogSink): void {
  const parse = parser.prototype.parserData;
  parser.prototype.parserData = function guardedParserData(buffer: Buffer): string | null {
    try {
      return parse.call(this, buffer);
    } catch (err) {
      sink('warn', `malformed stream data: ${err instanceof Error ? err.message : String(err)}`);
      return 'malformed stream data';
    }
  };
}

/** AMF0 string "@setDataFrame" (marker 0x02, length 13): how RTMP publishers wrap `onMetaData`. */
const SET_DATA_FRAME = Buffer.from([0x02, 0x00, 0x0d, ...Buffer.from('@setDataFrame')]);

/**
 * NMS copies an RTMP publisher's `@setDataFrame onMetaData {…}` into HTTP-FLV as is. In an FLV
 * file the script tag is `onMetaData {…}` (FLV spec v10.1 §E.4.4.1): ffmpeg reads the wrapped
 * tag as an unknown data stream and then probes it for the whole analyze duration before the
 * first frame. Unwrapped, players open the stream at once.
 */
function stripSetDataFrame(flv: FlvClass): void {
  const create = flv.createMessage.bind(flv);
  flv.createMessage = (packet: NmsPacket): Buffer => {
    if (packet.codec_type !== 18 || !packet.data.subarray(0, SET_DATA_FRAME.length).equals(SET_DATA_FRAME))
      return create(packet);
    const data = packet.data.subarray(SET_DATA_FRAME.length, packet.size);
    return create({ ...packet, data, size: data.length });
  };
}

const fitted = new WeakSet<NmsBroadcast>();

/**
 * NMS's HTTP-FLV header always flags audio and video. For a video-only camera ffmpeg then waits
 * for an audio track that never comes, and a player that joins in the instant between publish
 * and metadata never gets its first frame. The header starts as video-only (cameras feeding
 * analytics; an audio track that does come is still picked up by FLV demuxers) and is then set
 * from the publisher's `onMetaData` (`audiocodecid`, `videocodecid` keys) before NMS caches it.
 */
function fitFlvHeader(broadcast: NmsBroadcast, flv: FlvClass): void {
  broadcast.flvHeader = flv.createHeader(false, true);
  if (fitted.has(broadcast)) return;
  fitted.add(broadcast);
  const relay = broadcast.broadcastMessage;
  broadcast.broadcastMessage = (packet) => {
    if (packet.flags === 5) {
      const body = packet.data.subarray(0, packet.size).toString('latin1');
      const audio = body.includes('audiocodecid');
      const video = body.includes('videocodecid');
      if (audio || video) broadcast.flvHeader = flv.createHeader(audio, video);
    }
    relay(packet);
  };
}
