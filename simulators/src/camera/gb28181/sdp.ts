/**
 * The SDP a GB/T 28181 live-view INVITE carries (GB/T 28181-2016 §9.2.2, Annex F): the
 * platform offers where it receives (`c=`, `m=video PORT RTP/AVP|TCP/RTP/AVP 96 …`,
 * `a=setup:passive` for TCP) and the SSRC it expects (`y=`); the device answers `sendonly`
 * PS with the same SSRC.
 */
import { CitysenseError } from '@citysense/protocol';

/** Code of an offer the simulated camera cannot serve (answered 488). */
export const GB_SDP_UNACCEPTABLE = 'CS_ERR_GB_SDP_UNACCEPTABLE';

/** What the camera takes from an INVITE's offer. */
export interface GbMediaOffer {
  /** `s=`: Play, Playback or Download. */
  sessionName: string;
  /** Receiver address (`c=`, media level before session level). */
  host: string;
  /** Receiver port from `m=video`. */
  port: number;
  transport: 'udp' | 'tcp';
  /** `a=setup:` for TCP; GB platforms offer `passive` (they listen, the device connects). */
  setup: 'active' | 'passive' | 'actpass' | undefined;
  /** `y=` SSRC as 10 decimal digits, or undefined when the offer has none. */
  ssrc: string | undefined;
  /** Payload types the offer lists for video. */
  payloadTypes: number[];
}

function unacceptable(why: string): CitysenseError {
  return new CitysenseError(GB_SDP_UNACCEPTABLE, `SDP offer refused: ${why}`, 488);
}

/** Parses an INVITE's SDP offer; throws CS_ERR_GB_SDP_UNACCEPTABLE for one without a usable video stream. */
export function parseGbMediaOffer(sdp: string): GbMediaOffer {
  const lines = sdp.split(/\r?\n/).map((l) => l.trim());
  let sessionHost: string | undefined;
  let mediaHost: string | undefined;
  let sessionName = '';
  let ssrc: string | undefined;
  let video: { port: number; proto: string; payloadTypes: number[] } | undefined;
  let setup: GbMediaOffer['setup'];
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
    } else if (type === 's=') sessionName = value;
    else if (type === 'y=') ssrc = value;
    else if (type === 'a=' && inVideo) {
      const rtpmap = /^rtpmap:(\d{1,3}) ([^/\s]+)/.exec(value);
      if (rtpmap) rtpmaps.set(Number(rtpmap[1]), (rtpmap[2] as string).toUpperCase());
      const s = /^setup:(active|passive|actpass)$/i.exec(value)?.[1]?.toLowerCase();
      if (s) setup = s as GbMediaOffer['setup'];
    }
  }
  if (!video) throw unacceptable('it has no m=video line');
  const host = mediaHost ?? sessionHost;
  if (!host) throw unacceptable('it has no c= connection address');
  if (video.port === 0 || video.port > 65535) throw unacceptable(`video port ${video.port} is not usable`);
  const transport = video.proto === 'TCP/RTP/AVP' ? 'tcp' : video.proto === 'RTP/AVP' ? 'udp' : undefined;
  if (!transport) throw unacceptable(`transport ${video.proto} is neither RTP/AVP nor TCP/RTP/AVP`);
  if (ssrc !== undefined && !/^\d{1,10}$/.test(ssrc)) throw unacceptable(`y=${ssrc} is not a decimal SSRC`);
  return {
    sessionName,
    host,
    port: video.port,
    transport,
    setup,
    ssrc,
    payloadTypes: psPayloads(video.payloadTypes, rtpmaps),
  };
}

/** The offered payload types that carry MPEG-PS: mapped to PS, or 96 listed without an rtpmap (Annex F default). */
function psPayloads(listed: number[], rtpmaps: Map<number, string>): number[] {
  return listed.filter((pt) => rtpmaps.get(pt) === 'PS' || (pt === 96 && !rtpmaps.has(pt)));
}

/** What the camera puts into its answer. */
export interface GbMediaAnswer {
  deviceId: string;
  /** Address the camera sends from. */
  host: string;
  /** Port in `m=`; a sendonly stream never receives, so the discard port 9 is fine (RFC 4145 §4.1 does the same). */
  port: number;
  transport: 'udp' | 'tcp';
  payloadType: number;
  ssrc: string;
  sessionName: string;
}

/** The answer SDP: `sendonly` PS/90000, `a=setup:active` over TCP, and the SSRC in `y=` (Annex F). */
export function buildGbMediaAnswer(a: GbMediaAnswer): string {
  const lines = [
    'v=0',
    `o=${a.deviceId} 0 0 IN IP4 ${a.host}`,
    `s=${a.sessionName || 'Play'}`,
    `c=IN IP4 ${a.host}`,
    't=0 0',
    `m=video ${a.port} ${a.transport === 'tcp' ? 'TCP/RTP/AVP' : 'RTP/AVP'} ${a.payloadType}`,
    'a=sendonly',
    `a=rtpmap:${a.payloadType} PS/90000`,
    ...(a.transport === 'tcp' ? ['a=setup:active', 'a=connection:new'] : []),
    `y=${a.ssrc}`,
    'f=',
  ];
  return `${lines.join('\r\n')}\r\n`;
}

/** A live SSRC for a domain: `0`, digits 4–8 of the domain, a 4-digit sequence (GB/T 28181-2016 Annex F). */
export function liveSsrc(domain: string, sequence: number): string {
  return `0${domain.slice(3, 8)}${String(sequence % 10_000).padStart(4, '0')}`;
}
