/** Coded errors of the GB/T 28181 device-side user agent; codes are stable API. */
import { CitysenseError } from '@citysense/protocol';

/** The platform answered REGISTER 403: the device ID or the password is not accepted. */
export const GB_REGISTER_FORBIDDEN = 'CS_ERR_GB_REGISTER_FORBIDDEN';
/** The platform challenged again after the digest answer: the password is wrong. */
export const GB_REGISTER_UNAUTHORIZED = 'CS_ERR_GB_REGISTER_UNAUTHORIZED';
/** The platform answered REGISTER with another final status, or an unreadable challenge. */
export const GB_REGISTER_REJECTED = 'CS_ERR_GB_REGISTER_REJECTED';
/** The options cannot describe a GB/T 28181 device. */
export const GB_DEVICE_CONFIG = 'CS_ERR_GB_DEVICE_CONFIG';
/** An operation needs a started device. */
export const GB_DEVICE_NOT_STARTED = 'CS_ERR_GB_DEVICE_NOT_STARTED';
/** A channel ID the device does not have. */
export const GB_CHANNEL_UNKNOWN = 'CS_ERR_GB_CHANNEL_UNKNOWN';
/** The platform answered an alarm Notify with an error status. */
export const GB_ALARM_REFUSED = 'CS_ERR_GB_ALARM_REFUSED';

/** A coded error of the device-side user agent. */
export function gbDeviceError(
  code: string,
  message: string,
  statusCode = 502,
  details?: unknown,
): CitysenseError {
  return new CitysenseError(code, message, statusCode, details);
}
