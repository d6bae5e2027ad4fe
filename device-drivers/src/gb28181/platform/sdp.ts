/**
 * The SDP of GB/T 28181 live video (GB/T 28181-2016 §9.2.2, Annex F): `s=Play`, MPEG-PS on
 * RTP payload 96, UDP or TCP (RFC 4571) transport, and the `y=` line carrying the SSRC.
 */
import { CitysenseError } from '@citysense/protocol';

/** Transport of the RTP media. */
export type MediaTransport = 'udp' | 'tcp';

/** What one side of a GB/T 28181 media session offers or answers. */
export interface GbMediaDescription {
  /** Origin user: the platform or device ID. */
  user: string;
  /** Address media is sent to / from. */
  address: string;
  port: number;
  transport: MediaTransport;
  /** For TCP: who connects (`active`) and who listens (`passive`). */
  setup?: 'active' | 'passive' | undefined;
  direction: 'recvonly' | 'sendonly';
  /** 10-digit SSRC of the `y=` line. */
  ssrc: string;
  /** `s=` session name: Play, Playback, Download. */
  session?: string | undefined;
}

/** Builds the SDP body. */
export function buildGbSdp(d: GbMediaDescription): Buffer {
  const proto = d.transport === 'tcp' ? 'TCP/RTP/AVP' : 'RTP/AVP';
  const lines = [
    'v=0',
    `o=${d.user} 0 0 IN IP4 ${d.address}`,
    `s=${d.session ?? 'Play'}`,
    `c=IN IP4 ${d.address}`,
    't=0 0',
    `m=video ${d.port} ${proto} 96 98 97`,
    `a=${d.direction}`,
    'a=rtpmap:96 PS/90000',
    'a=rtpmap:98 H264/90000',
    'a=rtpmap:97 MPEG4/90000',
  ];
  if (d.transport === 'tcp') lines.push(`a=setup:${d.setup ?? 'passive'}`, 'a=connection:new');
  lines.push(`y=${d.ssrc}`);
  return Buffer.from(`${lines.join('\r\n')}\r\n`, 'latin1');
}

/** Parses the SDP answer of a device; throws CS_ERR_GB_SDP_INVALID. */
export function parseGbSdp(body: Buffer): GbMediaDescription {
  const text = body.toString('latin1');
  const value = (prefix: string) =>
    text
      .split(/\r?\n/)
      .find((l) => l.startsWith(prefix))
      ?.slice(prefix.length)
      .trim();
  const origin = value('o=')?.split(/\s+/);
  const connection = value('c=')?.split(/\s+/);
  const media = value('m=video ')?.split(/\s+/);
  const address = connection?.[2] ?? origin?.[5];
  const port = Number(media?.[0]);
  if (!address || !/^\d{1,3}(\.\d{1,3}){3}$/.test(address))
    throw invalid(`no IPv4 connection address (c=) in ${JSON.stringify(text.slice(0, 200))}`);
  if (!Number.isInteger(port) || port < 0 || port > 65535)
    throw invalid('no video media line (m=video PORT …)');
  const transport: MediaTransport = /TCP/i.test(media?.[1] ?? '') ? 'tcp' : 'udp';
  const setup = value('a=setup:');
  const ssrc = value('y=');
  if (!ssrc || !/^\d{1,10}$/.test(ssrc)) throw invalid('no y= SSRC line (GB/T 28181 Annex F)');
  const direction = /a=sendonly/.test(text) ? 'sendonly' : 'recvonly';
  return {
    user: origin?.[0] ?? '',
    address,
    port,
    transport,
    setup: setup === 'active' || setup === 'passive' ? setup : undefined,
    direction,
    ssrc,
    session: value('s='),
  };
}

function invalid(message: string): CitysenseError {
  return new CitysenseError('CS_ERR_GB_SDP_INVALID', `invalid SDP: ${message}`, 502);
}

/** Allocates live SSRCs: `0` + digits 4–8 of the SIP domain + a 4-digit sequence (Annex F). */
export class SsrcAllocator {
  readonly #prefix: string;
  #next = 1;
  readonly #used = new Set<string>();

  constructor(domain: string) {
    this.#prefix = `0${domain.slice(3, 8)}`;
  }

  /** A fresh SSRC not in use. */
  allocate(): string {
    for (let i = 0; i < 10_000; i++) {
      const ssrc = `${this.#prefix}${String(this.#next).padStart(4, '0')}`;
      this.#next = (this.#next % 9999) + 1;
      if (!this.#used.has(ssrc)) {
        this.#used.add(ssrc);
        return ssrc;
      }
    }
    throw new CitysenseError('CS_ERR_GB_SSRC_EXHAUSTED', 'all 9999 live SSRCs are in use', 503);
  }

  /** Returns an SSRC to the pool. */
  release(ssrc: string): void {
    this.#used.delete(ssrc);
  }
}
