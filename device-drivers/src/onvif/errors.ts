/**
 * Coded errors of the ONVIF driver, and the mapping from what the `onvif` client throws
 * (plain Errors with messages, Node socket errors) to them.
 */
import { CitysenseError, errorMessage } from '@citysense/protocol';

/** Stable error codes of the ONVIF driver. */
export const ONVIF_ERRORS = {
  /** The camera refused the credentials (ONVIF Core §5.9: ter:NotAuthorized, HTTP 400/401). */
  auth: 'CS_ERR_ONVIF_AUTH',
  /** The camera did not answer: refused, reset, timed out, unroutable. */
  unreachable: 'CS_ERR_ONVIF_UNREACHABLE',
  /** The camera answered with a SOAP fault or with something that is not SOAP. */
  fault: 'CS_ERR_ONVIF_FAULT',
  /** An analytics metadata document could not be parsed or failed validation. */
  metadata: 'CS_ERR_ONVIF_METADATA',
  /** A driver option is invalid (e.g. `metadata.url` is not an HTTP URL). */
  config: 'CS_ERR_ONVIF_CONFIG',
  /** WS-Discovery could not send or listen. */
  discovery: 'CS_ERR_ONVIF_DISCOVERY',
  /** A snapshot could not be fetched or is not a JPEG. */
  snapshot: 'CS_ERR_ONVIF_SNAPSHOT',
  /** The camera has not been described yet: `start()` has not resolved. */
  notStarted: 'CS_ERR_ONVIF_NOT_STARTED',
} as const;

const NETWORK_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EHOSTDOWN',
  'EPIPE',
  'ENOTFOUND',
  'EAI_AGAIN',
  'ECONNABORTED',
]);

/** Maps anything the `onvif` client rejects with to a coded error naming `camera`. */
export function toOnvifError(err: unknown, camera: string): CitysenseError {
  if (err instanceof CitysenseError) return err;
  const message = errorMessage(err);
  const code = (err as { code?: unknown } | null)?.code;
  if (/not ?authori[sz]ed|unauthori[sz]ed|authentication failed|authori[sz]ation required/i.test(message))
    return new CitysenseError(
      ONVIF_ERRORS.auth,
      `camera ${camera} refused the credentials (${message}): check username/password and the camera clock`,
      401,
    );
  if (
    (typeof code === 'string' && NETWORK_CODES.has(code)) ||
    /network timeout|socket hang up|timed out/i.test(message)
  )
    return new CitysenseError(
      ONVIF_ERRORS.unreachable,
      `camera ${camera} is unreachable (${message}): check its address, port and power`,
      504,
    );
  return new CitysenseError(
    ONVIF_ERRORS.fault,
    `camera ${camera} answered with an error (${message.slice(0, 300)})`,
    502,
  );
}
