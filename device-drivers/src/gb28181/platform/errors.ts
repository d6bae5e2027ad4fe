/** Coded errors of the GB/T 28181 platform that more than one of its modules raises. */
import { CitysenseError } from '@citysense/protocol';
import { header, type SipResponse, tagOf } from '../sip/message.ts';

/** A device answered a request with an error status (CS_ERR_GB_DEVICE_REFUSED, 502). */
export function deviceRefused(deviceId: string, method: string, response: SipResponse): CitysenseError {
  return new CitysenseError(
    'CS_ERR_GB_DEVICE_REFUSED',
    `device ${deviceId} answered ${method} with ${response.status} ${response.reason}`,
    502,
    { status: response.status, toTag: tagOf(header(response, 'to')) },
  );
}
