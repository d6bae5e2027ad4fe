/** Error codes of the RTMP/HTTP-FLV relay; stable API, matched by hosts and tests. */
import { CitysenseError } from '@citysense/protocol';

/** Options of the relay server or of a publisher are out of range. */
export const RTMP_OPTIONS = 'CS_ERR_RTMP_OPTIONS';
/** An RTMP or HTTP port is taken by another process. */
export const RTMP_PORT_IN_USE = 'CS_ERR_RTMP_PORT_IN_USE';
/** A listener could not be opened for another reason (address not local, permission). */
export const RTMP_LISTEN = 'CS_ERR_RTMP_LISTEN';
/** A URL or the stream list was asked of a relay server that is not running. */
export const RTMP_NOT_STARTED = 'CS_ERR_RTMP_NOT_STARTED';
/** An app or stream name holds characters other than letters, digits, `_` and `-`. */
export const RTMP_STREAM_NAME = 'CS_ERR_RTMP_STREAM_NAME';
/** Access units were pushed to a publisher that is not started. */
export const RTMP_PUBLISHER_NOT_STARTED = 'CS_ERR_RTMP_PUBLISHER_NOT_STARTED';
/** The ffmpeg binary of a publisher could not be run. */
export const RTMP_FFMPEG_MISSING = 'CS_ERR_RTMP_FFMPEG_MISSING';
/** A publisher was refused by the relay's publish policy (reason of a `publishRefused` event). */
export const RTMP_PUBLISH_REFUSED = 'CS_ERR_RTMP_PUBLISH_REFUSED';

/** A CitysenseError with the HTTP status each RTMP code maps to. */
export function rtmpError(code: string, message: string, details?: unknown): CitysenseError {
  return new CitysenseError(code, message, statusOf(code), details);
}

function statusOf(code: string): number {
  switch (code) {
    case RTMP_OPTIONS:
    case RTMP_STREAM_NAME:
      return 400;
    case RTMP_PUBLISH_REFUSED:
      return 403;
    case RTMP_PORT_IN_USE:
      return 409;
    case RTMP_NOT_STARTED:
    case RTMP_PUBLISHER_NOT_STARTED:
      return 503;
    default:
      return 500;
  }
}
