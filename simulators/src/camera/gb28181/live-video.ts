/**
 * The simulated camera's picture: a `LiveMediaHandler` that streams an ffmpeg test pattern
 * as PS over RTP (`PsRtpSender`) to the address, port and SSRC of the platform's offer.
 * The SIP dialog around it is the runtime `Gb28181Device`'s.
 */
import {
  type LiveMediaHandle,
  type LiveMediaHandler,
  type LiveMediaRequest,
  PsRtpSender,
} from '@citysense/device-drivers';
import type { Logger } from '@citysense/protocol';

/** Test pattern settings of the stream. */
export interface LiveVideoMedia {
  width?: number | undefined;
  height?: number | undefined;
  frameRate?: number | undefined;
  ffmpegPath?: string | undefined;
}

/** Streams a test pattern for each live session. Constructor assigns only. */
export class TestPatternMedia implements LiveMediaHandler {
  readonly #media: LiveVideoMedia;
  readonly #log: Logger;

  constructor(media: LiveVideoMedia, log: Logger) {
    this.#media = media;
    this.#log = log;
  }

  /** Starts a `PsRtpSender` (it connects out for TCP); rejects CS_ERR_RTP_SENDER_FAILED. */
  async start(request: LiveMediaRequest): Promise<LiveMediaHandle> {
    const { offer, ssrc } = request;
    const sender = new PsRtpSender({
      transport: offer.transport,
      host: offer.host,
      port: offer.port,
      ssrc: Number(ssrc),
      payloadType: offer.payloadTypes[0],
      width: this.#media.width,
      height: this.#media.height,
      frameRate: this.#media.frameRate,
      ffmpegPath: this.#media.ffmpegPath,
      logger: this.#log,
    });
    const ended = new Promise<Error | undefined>((resolve) => {
      sender.on('error', (err) => resolve(err));
      sender.on('end', () => resolve(undefined));
    });
    try {
      await sender.start(request.signal);
    } catch (err) {
      await sender.stop();
      throw err;
    }
    return { stop: () => sender.stop(), ended, packetsSent: () => sender.stats.packets };
  }
}
