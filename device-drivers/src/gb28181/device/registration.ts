/**
 * The device side of GB/T 28181 registration (GB/T 28181-2016 §9.1.2.1): REGISTER with
 * Request-URI `sip:SERVERID@DOMAIN`, From/To `sip:DEVICEID@DOMAIN`, answer the 401 digest
 * challenge with the device ID as username. Refreshes reuse Call-ID and From tag with a
 * growing CSeq, as RFC 3261 §10.2.4 asks.
 */
import {
  authorizationHeader,
  header,
  parseDigestChallenge,
  type SipEndpoint,
  type SipHeader,
  type SipPeer,
  type SipResponse,
  sipToken,
} from '../sip/index.ts';
import {
  GB_REGISTER_FORBIDDEN,
  GB_REGISTER_REJECTED,
  GB_REGISTER_UNAUTHORIZED,
  gbDeviceError,
} from './errors.ts';

/** Who registers where. */
export interface DeviceRegistrationOptions {
  endpoint: SipEndpoint;
  deviceId: string;
  password: string;
  serverId: string;
  domain: string;
  peer: SipPeer;
}

/** A device's registration binding with one platform. Constructor assigns only. */
export class DeviceRegistration {
  readonly #o: DeviceRegistrationOptions;
  readonly #callId = sipToken(12);
  readonly #fromTag = sipToken(4);
  #cseq = 1;

  constructor(options: DeviceRegistrationOptions) {
    this.#o = options;
  }

  /** `sip:SERVERID@DOMAIN`. */
  get serverUri(): string {
    return `sip:${this.#o.serverId}@${this.#o.domain}`;
  }

  /**
   * One REGISTER exchange: send, answer a 401/407 challenge, resolve with the granted
   * lifetime in seconds (0 unregisters). Rejects CS_ERR_GB_REGISTER_FORBIDDEN (403),
   * CS_ERR_GB_REGISTER_UNAUTHORIZED (challenged again), CS_ERR_GB_REGISTER_REJECTED, or the
   * endpoint's CS_ERR_SIP_TIMEOUT.
   */
  async register(expires: number, timeoutMs?: number): Promise<number> {
    const { endpoint, deviceId, peer } = this.#o;
    const aor = `<sip:${deviceId}@${this.#o.domain}>`;
    let credentials: SipHeader | undefined;
    let requested = expires;
    for (let attempt = 0; attempt < 4; attempt++) {
      const response = await endpoint.request({
        method: 'REGISTER',
        uri: this.serverUri,
        peer,
        from: `${aor};tag=${this.#fromTag}`,
        to: aor,
        callId: this.#callId,
        cseq: this.#cseq++,
        headers: [
          { name: 'Contact', value: endpoint.contact(deviceId, peer) },
          { name: 'Expires', value: String(requested) },
          ...(credentials ? [credentials] : []),
        ],
        timeoutMs,
      });
      if (response.status >= 200 && response.status < 300) return grantedExpires(response, requested);
      if (response.status === 401 || response.status === 407) {
        credentials = this.#answerChallenge(response, credentials !== undefined);
        continue;
      }
      if (response.status === 423) {
        // Interval Too Brief (RFC 3261 §10.2.8): ask again for at least Min-Expires.
        const min = Number(header(response, 'min-expires'));
        if (Number.isInteger(min) && min > requested) {
          requested = min;
          continue;
        }
      }
      if (response.status === 403)
        throw gbDeviceError(
          GB_REGISTER_FORBIDDEN,
          `the platform answered 403 to REGISTER of ${deviceId}: the device ID or password is not accepted`,
          403,
        );
      throw gbDeviceError(
        GB_REGISTER_REJECTED,
        `the platform answered ${response.status} ${response.reason} to REGISTER of ${deviceId}`,
        502,
        { status: response.status },
      );
    }
    throw gbDeviceError(GB_REGISTER_REJECTED, 'the platform kept challenging REGISTER; giving up');
  }

  #answerChallenge(response: SipResponse, answeredBefore: boolean): SipHeader {
    const proxy = response.status === 407;
    const challenge = parseDigestChallenge(
      header(response, proxy ? 'proxy-authenticate' : 'www-authenticate') ?? '',
    );
    if (!challenge)
      throw gbDeviceError(GB_REGISTER_REJECTED, `the platform's ${response.status} has no Digest challenge`);
    // A second challenge that is not `stale` means the password was checked and refused.
    if (answeredBefore && !challenge.stale)
      throw gbDeviceError(
        GB_REGISTER_UNAUTHORIZED,
        `the platform refused the password of ${this.#o.deviceId}; check the device password it expects`,
        401,
      );
    return {
      name: proxy ? 'Proxy-Authorization' : 'Authorization',
      value: authorizationHeader(challenge, {
        username: this.#o.deviceId,
        password: this.#o.password,
        method: 'REGISTER',
        uri: this.serverUri,
        nc: 1,
      }),
    };
  }
}

/** The lifetime the registrar granted: its Expires header, else the Contact's `expires`, else what we asked. */
export function grantedExpires(response: SipResponse, requested: number): number {
  const direct = header(response, 'expires')?.trim();
  if (direct !== undefined && /^\d{1,10}$/.test(direct)) return Number(direct);
  const param = /;\s*expires=(\d{1,10})/i.exec(header(response, 'contact') ?? '')?.[1];
  return param === undefined ? requested : Number(param);
}
