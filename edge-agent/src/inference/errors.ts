/** Error codes of the inference runtime; stable API, matched by the hub, tests and field engineers. */
import { CitysenseError } from '@citysense/protocol';

/** The hub could not be reached or answered the assignments route with an error. */
export const ASSIGNMENTS_UNAVAILABLE = 'CS_ERR_INFERENCE_ASSIGNMENTS_UNAVAILABLE';
/** The hub's assignments document does not follow the contract. */
export const ASSIGNMENTS_INVALID = 'CS_ERR_INFERENCE_ASSIGNMENTS_INVALID';
/** A package download broke off (network, hub 5xx, stall); it resumes from the `.part` file. */
export const PACKAGE_DOWNLOAD = 'CS_ERR_INFERENCE_DOWNLOAD';
/** The hub refused the package download (4xx without a code of its own). */
export const PACKAGE_REFUSED = 'CS_ERR_INFERENCE_DOWNLOAD_REFUSED';
/** The downloaded file's size or SHA-256 is not the one the assignment names. */
export const PACKAGE_DIGEST = 'CS_ERR_INFERENCE_PACKAGE_DIGEST';
/** The package is valid but is another algorithm or version than the assignment names. */
export const PACKAGE_MISMATCH = 'CS_ERR_INFERENCE_PACKAGE_MISMATCH';
/** A status report was not accepted; the latest state is sent again later. */
export const STATUS_REPORT = 'CS_ERR_INFERENCE_STATUS_REPORT';
/** A video source failed with an error that carries no code of its own. */
export const SOURCE_FAILED = 'CS_ERR_INFERENCE_SOURCE';
/** One frame could not be inferred. */
export const FRAME_FAILED = 'CS_ERR_INFERENCE_FRAME';

/** A coded error of the inference runtime. */
export function inferenceError(
  code: string,
  message: string,
  status: number,
  details?: unknown,
): CitysenseError {
  return new CitysenseError(code, message, status, details);
}

/**
 * Whether trying the same thing again later may succeed: network trouble, hub 5xx,
 * timeouts, disk errors. Refusals, digest and signature failures and model load
 * failures are not: they need a new assignment from the hub.
 */
export function isRetryable(err: unknown): boolean {
  if (!(err instanceof CitysenseError)) return true;
  return err.statusCode >= 500 || err.statusCode === 408 || err.statusCode === 429;
}

/** The stable code of any thrown value (`CS_ERR_INTERNAL` for uncoded ones). */
export function codeOf(err: unknown): string {
  if (err instanceof CitysenseError) return err.code;
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' && code.length > 0 ? code : 'CS_ERR_INTERNAL';
}
