/**
 * The SDP of GB/T 28181 live video (GB/T 28181-2016 §9.2.2, Annex F), both sides: the
 * platform offers where it receives (`c=`, `m=video PORT RTP/AVP|TCP/RTP/AVP 96 …`,
 * `a=recvonly`, `a=setup:passive` for TCP) and the SSRC it expects (`y=`); the device
 * answers `sendonly` PS with the SSRC it sends.
 */
import { CitysenseError } from '../errors.ts';

/** Code of an SDP without a usable PS video stream (a device answers it 488). */
export const GB_SDP_UNACCEPTABLE = 'CS_ERR_GB_SDP_UNACCEPTABLE';

/** Transport of the RTP media. */
export type GbMediaTransport = 'udp' | 'tcp';

/** One side of a GB/T 28181 media session, as read from its SDP. */
export interface GbMediaDescription {
  /** `o=` user: the platform or device ID. */
  user: string;
  /** `s=`: Play, Playback or Download. */
  sessionName: string;
  /** Media address (`c=`, media level before session level). */
  host: string;
  /** Port of `m=video`. */
  port: number;
  transport: GbMediaTransport;
  /** `a=setup:` for TCP: who connects (`active`) and who listens (`passive`). */
  setup: 'active' | 'passive' | 'actpass' | undefined;
  direction: 'recvonly' | 'sendonly' | 'sendrecv';
  /** `y=` SSRC as 10 decimal digits, or undefined when absent. */
  ssrc: string | undefined;
  /** Payload types of the stream that carry MPEG-PS. */
  payloadTypes: number[];
}

function unacceptable(why: string): CitysenseError {
  return new CitysenseError(GB_SDP_UNACCEPTABLE, `SDP refused: ${why}`, 488);
}

/** Parses an offer or answer; throws CS_ERR_GB_SDP_UNACCEPTABLE for one without a usable PS video stream. */
export function parseGbSdp(sdp: string): GbMediaDescription {
  const lines = sdp.split(/\r?\n/).map((l) => l.trim());
  let sessionHost: string | undefined;
  let mediaHost: string | undefined;
  let sessionName = '';
  let user = '';
  let ssrc: string | undefined;
  let video: { port: number; proto: string; payloadTypes: number[] } | undefined;
  let setup: GbMediaDescription['setup'];
  let direction: GbMediaDescription['direction'] = 'sendrecv';
  let inVideo = false;
  const rtpmaps = new Map<number, string>();
  for (const line of lines) {
    const type = line.slice(0, 2);
    const value = line.slice(2);
    if (type === 'm=') {
      inVideo = false;
      const m = /^(\w+) (\d{1,5})(?:\/\d+)? (\S+)((?: \d{1,3})*)$/.exec(value);
      if (m?.[1] === 'video' && video === undefined) {
        inVideo = true;
        video = {
          port: Number(m[2]),
          proto: (m[3] as string).toUpperCase(),
          payloadTypes: (m[4] ?? '').trim().split(/\s+/).filter(Boolean).map(Number),
        };
      }
    } else if (type === 'c=') {
      const host = /^IN IP[46] (\S+)$/.exec(value)?.[1]?.replace(/\/\d+$/, '');
      if (inVideo) mediaHost = host;
      else if (video === undefined) sessionHost = host;
    } else if (type === 'o=') user = value.split(/\s+/)[0] ?? '';
    else if (type === 's=') sessionName = value;
    else if (type === 'y=') ssrc = value;
    else if (type === 'a=' && (inVideo || video === undefined)) {
      const rtpmap = /^rtpmap:(\d{1,3}) ([^/\s]+)/.exec(value);
      if (rtpmap) rtpmaps.set(Number(rtpmap[1]), (rtpmap[2] as string).toUpperCase());
      const s = /^setup:(active|passive|actpass)$/i.exec(value)?.[1]?.toLowerCase();
      if (s) setup = s as GbMediaDescription['setup'];
      if (value === 'recvonly' || value === 'sendonly' || value === 'sendrecv') direction = value;
    }
  }
  if (!video) throw unacceptable('it has no m=video line');
  const host = mediaHost ?? sessionHost;
  if (!host) throw unacceptable('it has no c= connection address');
  if (video.port > 65535) throw unacceptable(`video port ${video.port} is not usable`);
  const transport = video.proto === 'TCP/RTP/AVP' ? 'tcp' : video.proto === 'RTP/AVP' ? 'udp' : undefined;
  if (!transport) throw unacceptable(`transport ${video.proto} is neither RTP/AVP nor TCP/RTP/AVP`);
  if (ssrc !== undefined && !/^\d{1,10}$/.test(ssrc)) throw unacceptable(`y=${ssrc} is not a decimal SSRC`);
  return {
    user,
    sessionName,
    host,
    port: video.port,
    transport,
    setup,
    direction,
    ssrc,
    payloadTypes: psPayloads(video.payloadTypes, rtpmaps),
  };
}

/** The listed payload types that carry MPEG-PS: mapped to PS, or 96 listed without an rtpmap (Annex F default). */
function psPayloads(listed: number[], rtpmaps: Map<number, string>): number[] {
  return listed.filter((pt) => rtpmaps.get(pt) === 'PS' || (pt === 96 && !rtpmaps.has(pt)));
}

/** What goes into an offer (platform, `recvonly`) or an answer (device, `sendonly`). */
export interface GbSdpOptions {
  /** `o=` user: the platform or device ID. */
  user: string;
  host: string;
  /** A sendonly answer may use the discard port 9: it never receives (RFC 4145 §4.1 does the same). */
  port: number;
  transport: GbMediaTransport;
  direction: 'recvonly' | 'sendonly';
  ssrc: string;
  /** Default Play. */
  sessionName?: string | undefined;
  /** PS payload type; default 96. */
  payloadType?: number | undefined;
  /** TCP role; default passive in an offer (the platform listens) and active in an answer. */
  setup?: 'active' | 'passive' | undefined;
}

/** Builds the SDP body: PS/90000, the TCP role and `a=connection:new` over TCP, and `y=` (Annex F). */
export function buildGbSdp(o: GbSdpOptions): string {
  const pt = o.payloadType ?? 96;
  const offer = o.direction === 'recvonly';
  const lines = [
    'v=0',
    `o=${o.user} 0 0 IN IP4 ${o.host}`,
    `s=${o.sessionName ?? 'Play'}`,
    `c=IN IP4 ${o.host}`,
    't=0 0',
    // An offer also lists H.264 and MPEG-4 as GB/T 28181 platforms do; the device picks PS.
    `m=video ${o.port} ${o.transport === 'tcp' ? 'TCP/RTP/AVP' : 'RTP/AVP'} ${offer ? `${pt} 98 97` : pt}`,
    `a=${o.direction}`,
    `a=rtpmap:${pt} PS/90000`,
    ...(offer ? ['a=rtpmap:98 H264/90000', 'a=rtpmap:97 MPEG4/90000'] : []),
    ...(o.transport === 'tcp'
      ? [`a=setup:${o.setup ?? (offer ? 'passive' : 'active')}`, 'a=connection:new']
      : []),
    `y=${o.ssrc}`,
  ];
  return `${lines.join('\r\n')}\r\n`;
}

/** A live SSRC for a domain: `0`, digits 4–8 of the domain, a 4-digit sequence (GB/T 28181-2016 Annex F). */
export function liveSsrc(domain: string, sequence: number): string {
  return `0${domain.slice(3, 8)}${String(sequence % 10_000).padStart(4, '0')}`;
}
