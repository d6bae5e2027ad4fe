/** Coded errors of the GB/T 28181 media plane (RTP, RFC 4571 framing, MPEG-PS). */
import { CitysenseError } from '@citysense/protocol';

/** A datagram or TCP frame is not a valid RTP packet (RFC 3550 §5.1). */
export const RTP_INVALID = 'CS_ERR_RTP_INVALID';
/** The RFC 4571 length prefix of a TCP-carried RTP stream is impossible (0 or below an RTP header). */
export const RTP_FRAMING = 'CS_ERR_RTP_FRAMING';
/** An access unit cannot be muxed or packetised (empty, or a value out of range). */
export const PS_MUX_INVALID = 'CS_ERR_PS_MUX_INVALID';
/** The RTP sender could not reach the receiver or its ffmpeg failed. */
export const RTP_SENDER_FAILED = 'CS_ERR_RTP_SENDER_FAILED';
/** The RTP receiver could not bind its UDP or TCP port. */
export const RTP_RECEIVER_BIND = 'CS_ERR_RTP_RECEIVER_BIND';

/** Builds a CitysenseError of the media plane with `details`. */
export function mediaError(code: string, message: string, details?: unknown): CitysenseError {
  return new CitysenseError(code, message, 500, details);
}
