/** Coded errors of the simulated GB/T 28181 camera; codes are stable API. */
// Registration, channel and alarm codes are the runtime device's: one code per cause.
export {
  GB_ALARM_REFUSED,
  GB_CHANNEL_UNKNOWN,
  GB_REGISTER_FORBIDDEN,
  GB_REGISTER_REJECTED,
  GB_REGISTER_UNAUTHORIZED,
} from '@citysense/device-drivers';

/** The options cannot describe a GB/T 28181 device. */
export const GB_CAMERA_CONFIG = 'CS_ERR_GB_CAMERA_CONFIG';
/** An operation needs a started, registered camera. */
export const GB_CAMERA_NOT_REGISTERED = 'CS_ERR_GB_CAMERA_NOT_REGISTERED';
