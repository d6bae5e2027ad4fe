/** Error codes of frame sources; stable API, matched by hosts and tests. */
import { CitysenseError } from '@citysense/protocol';

/** The stream, URL or file could not be reached, or the connection was lost. */
export const SOURCE_UNREACHABLE = 'CS_ERR_SOURCE_UNREACHABLE';
/** The input was reached but is not a decodable image or video. */
export const SOURCE_DECODE = 'CS_ERR_SOURCE_DECODE';
/** A local file or folder named by the spec does not exist. */
export const SOURCE_NOT_FOUND = 'CS_ERR_SOURCE_NOT_FOUND';
/** A folder source holds no readable .jpg/.jpeg/.png image. */
export const SOURCE_EMPTY = 'CS_ERR_SOURCE_EMPTY';
/** Source options are out of range (fps, maxWidth, queue size…). */
export const SOURCE_OPTIONS = 'CS_ERR_SOURCE_OPTIONS';
/** No runnable ffmpeg binary was found. */
export const SOURCE_FFMPEG_MISSING = 'CS_ERR_SOURCE_FFMPEG_MISSING';

/** Structured details of an ffmpeg failure: what a field engineer needs to diagnose it. */
export interface FfmpegFailureDetails {
  /** Input with credentials redacted. */
  input: string;
  exitCode: number | null;
  signal: string | null;
  /** Last lines of ffmpeg's stderr, credentials redacted. */
  stderr: string[];
}

/** A CitysenseError with the HTTP status each source code maps to. */
export function sourceError(code: string, message: string, details?: unknown): CitysenseError {
  return new CitysenseError(code, message, statusOf(code), details);
}

function statusOf(code: string): number {
  switch (code) {
    case SOURCE_UNREACHABLE:
      return 502;
    case SOURCE_DECODE:
    case SOURCE_EMPTY:
      return 422;
    case SOURCE_NOT_FOUND:
      return 404;
    case SOURCE_OPTIONS:
      return 400;
    default:
      return 500;
  }
}
