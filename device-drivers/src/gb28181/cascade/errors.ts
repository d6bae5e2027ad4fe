/** Coded errors of the GB/T 28181 cascade; codes are stable API. */
import { CitysenseError } from '@citysense/protocol';

/** The options cannot describe a cascade (IDs, port). */
export const GB_CASCADE_CONFIG = 'CS_ERR_GB_CASCADE_CONFIG';

/** An upstream INVITE for a channel no registered device has. */
export const GB_CASCADE_NO_ROUTE = 'CS_ERR_GB_CASCADE_NO_ROUTE';

/** A coded error of the cascade. */
export function gbCascadeError(
  code: string,
  message: string,
  details?: unknown,
  statusCode = 400,
): CitysenseError {
  return new CitysenseError(code, message, statusCode, details);
}
