/** Coded errors of the simulated GB/T 28181 camera; codes are stable API. */
import { CitysenseError } from '@citysense/protocol';

/** The platform answered REGISTER 403: the device ID or the password is not accepted. */
export const GB_REGISTER_FORBIDDEN = 'CS_ERR_GB_REGISTER_FORBIDDEN';
/** The platform challenged again after the digest answer: the password is wrong. */
export const GB_REGISTER_UNAUTHORIZED = 'CS_ERR_GB_REGISTER_UNAUTHORIZED';
/** The platform answered REGISTER with another final status, or an unreadable challenge. */
export const GB_REGISTER_REJECTED = 'CS_ERR_GB_REGISTER_REJECTED';
/** The options cannot describe a GB/T 28181 device. */
export const GB_CAMERA_CONFIG = 'CS_ERR_GB_CAMERA_CONFIG';
/** An operation needs a started, registered camera. */
export const GB_CAMERA_NOT_REGISTERED = 'CS_ERR_GB_CAMERA_NOT_REGISTERED';
/** A channel ID the camera does not have. */
export const GB_CHANNEL_UNKNOWN = 'CS_ERR_GB_CHANNEL_UNKNOWN';
/** The platform answered an alarm Notify with an error status. */
export const GB_ALARM_REFUSED = 'CS_ERR_GB_ALARM_REFUSED';

/** A coded error of the simulated camera. */
export function gbCameraError(
  code: string,
  message: string,
  statusCode = 502,
  details?: unknown,
): CitysenseError {
  return new CitysenseError(code, message, statusCode, details);
}
