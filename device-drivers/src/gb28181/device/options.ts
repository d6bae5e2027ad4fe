/** Options of a GB/T 28181 device-side user agent, and their check (every problem at once). */
import { isGbId, type Logger } from '@citysense/protocol';
import { type ChannelSource, channelProblems } from './channels.ts';
import type { LiveMediaHandler } from './live-media.ts';
import type { DeviceIdentity } from './queries.ts';

/** The platform the device registers with. */
export interface Gb28181ServerOptions {
  /** 20-digit SIP server ID (type 200). */
  id: string;
  /** SIP domain and digest realm; default the first 10 digits of the server ID. */
  domain?: string | undefined;
  host: string;
  port: number;
  /** Default 'udp'. */
  transport?: 'udp' | 'tcp' | undefined;
}

/** Options of a device. */
export interface Gb28181DeviceOptions {
  /** 20-digit device ID (IPC 132, NVR 118, platform 200 for a cascade, …); also the digest username. */
  deviceId: string;
  password: string;
  server: Gb28181ServerOptions;
  /** Where the device's SIP endpoint binds; default 127.0.0.1 and a free port. */
  local?:
    | {
        host?: string | undefined;
        port?: number | undefined;
        /** Address written into Via and Contact when the platform reaches us by another one (NAT). */
        publicAddress?: string | undefined;
      }
    | undefined;
  /** The catalog items served; `notifyCatalog()` tells subscribers what changed. */
  channels: ChannelSource;
  /** Media of live INVITEs; without it INVITE is answered 488. */
  live?: LiveMediaHandler | undefined;
  /** What DeviceInfo says about the device itself. */
  identity?: Partial<DeviceIdentity> | undefined;
  /** `User-Agent` of the SIP endpoint. */
  userAgent?: string | undefined;
  /** Requested registration lifetime, s (default 3600). */
  expires?: number | undefined;
  /** Keepalive period, ms (default 60 000). */
  keepaliveIntervalMs?: number | undefined;
  /** Unanswered keepalives in a row after which the device registers again (default 3). */
  keepaliveMissed?: number | undefined;
  /** Catalog items per Response / NOTIFY message (default 2). */
  catalogPageSize?: number | undefined;
  /** Charset of MANSCDP bodies (default GB2312, what field devices send). */
  charset?: 'GB2312' | 'UTF-8' | undefined;
  /**
   * true (default): `start()` resolves after the first accepted REGISTER and rejects when it
   * fails. false: `start()` resolves once the endpoint is bound and registration is retried
   * in the background until accepted (a gateway must come up while its upper platform is down).
   */
  waitForRegistration?: boolean | undefined;
  /** First wait before registering again after a failure, ms (default 10 000); doubles per failure. */
  retryMs?: number | undefined;
  /** Longest wait between registration attempts, ms (default 60 000). */
  maxRetryMs?: number | undefined;
  /** SIP timer T1, ms (default 500). */
  t1Ms?: number | undefined;
  logger?: Logger | undefined;
}

/** Every problem of the options (empty when usable); a fixed channel list is checked too. */
export function deviceOptionProblems(o: Gb28181DeviceOptions): string[] {
  const problems: string[] = [];
  if (!isGbId(o.deviceId)) problems.push(`deviceId "${o.deviceId}" is not a 20-digit GB/T 28181 ID`);
  if (!isGbId(o.server.id)) problems.push(`server.id "${o.server.id}" is not a 20-digit GB/T 28181 ID`);
  if (typeof o.channels !== 'function') problems.push(...channelProblems(o.channels));
  const page = o.catalogPageSize ?? 2;
  if (!Number.isInteger(page) || page < 1)
    problems.push(`catalogPageSize ${page} must be a positive integer`);
  const expires = o.expires ?? 3600;
  if (!Number.isInteger(expires) || expires < 1)
    problems.push(`expires ${expires} must be a positive integer`);
  if ((o.keepaliveIntervalMs ?? 60_000) <= 0) problems.push('keepaliveIntervalMs must be positive');
  if ((o.retryMs ?? 10_000) <= 0) problems.push('retryMs must be positive');
  return problems;
}
