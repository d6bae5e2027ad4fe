/**
 * The media side of a device's live INVITE, pluggable: a camera streams its own picture, a
 * gateway forwards the request to the camera behind it. The device does the SIP dialog
 * (GB/T 28181-2016 §9.2.2) and calls the handler once the platform ACKed the answer.
 */
import type { GbMediaDescription } from '@citysense/protocol';

/** What to send where: the platform's offer as parsed, the channel and the SSRC to use. */
export interface LiveMediaRequest {
  /** Call-ID of the dialog, for logs and correlation. */
  callId: string;
  channelId: string;
  /** The platform's offer: where it receives (`host`, `port`, `transport`, `setup`). */
  offer: GbMediaDescription;
  /** SSRC to put on the RTP, as 10 decimal digits (the offer's `y=` or one the device made up). */
  ssrc: string;
  /** Aborted when the dialog ends while the handler is still starting. */
  signal: AbortSignal;
}

/** A running stream. */
export interface LiveMediaHandle {
  /** Stops sending; idempotent, never rejects for an already ended stream. */
  stop(): Promise<void>;
  /** Settles when the stream ended by itself: with the error that ended it, or undefined when it finished. */
  readonly ended: Promise<Error | undefined>;
  /** RTP packets sent so far, when the handler counts them. */
  packetsSent?(): number;
}

/** Starts the media of a live session; rejects when it cannot (the device then hangs up with BYE). */
export interface LiveMediaHandler {
  start(request: LiveMediaRequest): Promise<LiveMediaHandle>;
}
