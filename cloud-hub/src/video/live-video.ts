/**
 * Live video from GB/T 28181 devices: an RTP receiver takes the camera's PS stream
 * (UDP, or TCP passive), the demuxed H.264/H.265 is relayed to the media server, and
 * viewers and the inference frame source read it as RTMP or HTTP-FLV. One session per
 * channel is shared by every viewer. A camera that goes silent or sends BYE ends its
 * session; nothing else is affected.
 */
import {
  ElementaryStreamPublisher,
  type Gb28181Platform,
  type LiveDialog,
  type MediaRelayServer,
  RtpReceiver,
  type VideoAccessUnit,
} from '@citysense/device-drivers';
import { CitysenseError, componentLogger, errorMessage, isGbId, type Logger } from '@citysense/protocol';

/** Transport of the RTP media from the camera. */
export type LiveTransport = 'udp' | 'tcp';

/** A live session as the API shows it. */
export interface LiveSessionView {
  id: string;
  deviceId: string;
  channelId: string;
  transport: LiveTransport;
  ssrc: string;
  startedAt: Date;
  /** Where to watch or analyse it. */
  rtmpUrl: string;
  flvUrl: string;
  /** Receiving figures. */
  packets: number;
  lost: number;
  accessUnits: number;
  codec: string | null;
}

/** Why a session ended. */
export type LiveEndReason = 'stopped' | 'device-bye' | 'camera-silent' | 'hub-stopping';

/** Options of the live sessions. */
export interface LiveVideoOptions {
  platform: Gb28181Platform;
  relay: MediaRelayServer;
  /** The device holding a channel (from the stored catalog), or undefined. */
  deviceOfChannel: (channelId: string) => Promise<string | undefined>;
  /** Bind address of RTP receivers. */
  rtpHost: string;
  /** Address cameras send RTP to (SDP `c=`). */
  rtpAddress: string;
  /** A session without packets this long ends, ms (default 15 000). */
  idleTimeoutMs?: number | undefined;
  logger?: Logger | undefined;
}

interface Session {
  dialog: LiveDialog;
  transport: LiveTransport;
  receiver: RtpReceiver;
  publisher: ElementaryStreamPublisher | undefined;
  codec: string | null;
}

/** The application name live streams are published under on the relay. */
export const LIVE_APP = 'live';

/** Live sessions of the hub. */
export class LiveVideo {
  readonly #o: LiveVideoOptions;
  readonly #log: Logger;
  readonly #sessions = new Map<string, Session>();
  readonly #opening = new Map<string, Promise<LiveSessionView>>();

  constructor(o: LiveVideoOptions) {
    this.#o = o;
    this.#log = componentLogger('live-video', o.logger);
    o.platform.on('liveEnded', (dialog, by) => {
      if (by === 'device') void this.#end(dialog.channelId, 'device-bye');
    });
  }

  /** Open sessions. */
  list(): LiveSessionView[] {
    return [...this.#sessions.values()].map((s) => this.#view(s));
  }

  /** The session of a channel, or undefined. */
  get(channelId: string): LiveSessionView | undefined {
    const s = this.#sessions.get(channelId);
    return s ? this.#view(s) : undefined;
  }

  /** Starts live video of a channel, or returns the session already open. */
  start(channelId: string, transport: LiveTransport = 'udp'): Promise<LiveSessionView> {
    if (!isGbId(channelId))
      throw new CitysenseError(
        'CS_ERR_GB_ID',
        `${JSON.stringify(channelId)} is not a 20-digit GB/T 28181 ID`,
        400,
      );
    const open = this.#sessions.get(channelId);
    if (open) return Promise.resolve(this.#view(open));
    let opening = this.#opening.get(channelId);
    if (!opening) {
      opening = this.#open(channelId, transport).finally(() => this.#opening.delete(channelId));
      this.#opening.set(channelId, opening);
    }
    return opening;
  }

  async #open(channelId: string, transport: LiveTransport): Promise<LiveSessionView> {
    const deviceId =
      (await this.#o.deviceOfChannel(channelId)) ??
      (this.#o.platform.session(channelId) ? channelId : undefined);
    if (!deviceId)
      throw new CitysenseError(
        'CS_ERR_VIDEO_CHANNEL_UNKNOWN',
        `channel ${channelId} is in no stored catalog: query the device's catalog first`,
        404,
      );
    const receiver = new RtpReceiver({
      transport,
      host: this.#o.rtpHost,
      port: 0,
      idleTimeoutMs: this.#o.idleTimeoutMs ?? 15_000,
      logger: this.#log,
    });
    await receiver.start();
    let dialog: LiveDialog;
    try {
      dialog = await this.#o.platform.invite({
        deviceId,
        channelId,
        mediaAddress: this.#o.rtpAddress,
        mediaPort: receiver.port,
        transport,
      });
    } catch (err) {
      await receiver.stop();
      throw err;
    }
    const session: Session = { dialog, transport, receiver, publisher: undefined, codec: null };
    this.#sessions.set(channelId, session);
    receiver.on('accessUnit', (au) => this.#relay(session, au));
    receiver.on('timeout', (idleMs) => {
      this.#log.warn({ channelId, idleMs }, 'camera stopped sending; ending the live session');
      void this.#end(channelId, 'camera-silent');
    });
    this.#log.info({ channelId, deviceId, transport, port: receiver.port }, 'live session open');
    return this.#view(session);
  }

  #relay(session: Session, au: VideoAccessUnit): void {
    if (!session.publisher) {
      const channelId = session.dialog.channelId;
      // FLV in the relay's ffmpeg carries H.264 only; H.265 goes in as MPEG-TS.
      const url =
        au.codec === 'h264'
          ? this.#o.relay.rtmpUrl(LIVE_APP, channelId, { publish: true })
          : this.#o.relay.tsUrl(LIVE_APP, channelId, { publish: true });
      session.codec = au.codec;
      session.publisher = new ElementaryStreamPublisher({ codec: au.codec, url, logger: this.#log });
      session.publisher.start().catch((err: unknown) => {
        this.#log.error({ channelId, err: errorMessage(err) }, 'relay publisher failed to start');
        void this.#end(channelId, 'stopped');
      });
    }
    session.publisher.push(au.data);
  }

  /** Ends the session of a channel (BYE to the device). False when none was open. */
  async stop(channelId: string): Promise<boolean> {
    return this.#end(channelId, 'stopped');
  }

  async #end(channelId: string, reason: LiveEndReason): Promise<boolean> {
    const session = this.#sessions.get(channelId);
    if (!session) return false;
    this.#sessions.delete(channelId);
    this.#log.info({ channelId, reason, ...session.receiver.stats }, 'live session ended');
    const steps: Array<Promise<unknown>> = [session.receiver.stop()];
    if (session.publisher) steps.push(session.publisher.stop());
    if (reason !== 'device-bye') steps.push(this.#o.platform.bye(session.dialog.id));
    const results = await Promise.allSettled(steps);
    for (const r of results)
      if (r.status === 'rejected')
        this.#log.warn({ channelId, err: errorMessage(r.reason) }, 'live session cleanup step failed');
    return true;
  }

  /** Ends every session. */
  async stopAll(): Promise<void> {
    await Promise.all([...this.#sessions.keys()].map((channelId) => this.#end(channelId, 'hub-stopping')));
  }

  #view(s: Session): LiveSessionView {
    const stats = s.receiver.stats;
    return {
      id: s.dialog.id,
      deviceId: s.dialog.deviceId,
      channelId: s.dialog.channelId,
      transport: s.transport,
      ssrc: s.dialog.ssrc,
      startedAt: new Date(s.dialog.startedAt),
      rtmpUrl: this.#o.relay.rtmpUrl(LIVE_APP, s.dialog.channelId),
      flvUrl: this.#o.relay.flvUrl(LIVE_APP, s.dialog.channelId),
      packets: stats.packets,
      lost: stats.lost,
      accessUnits: stats.accessUnits,
      codec: s.codec,
    };
  }
}
