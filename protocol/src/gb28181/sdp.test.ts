import { describe, expect, it } from 'vitest';
import { hasCode } from '../errors.ts';
import { buildGbSdp, liveSsrc, parseGbSdp } from './sdp.ts';

const TCP_OFFER = [
  'v=0',
  'o=34020000002000000001 0 0 IN IP4 10.0.0.1',
  's=Play',
  'c=IN IP4 10.0.0.1',
  't=0 0',
  'm=video 30002 TCP/RTP/AVP 96 98',
  'c=IN IP4 10.0.0.9',
  'a=recvonly',
  'a=rtpmap:96 PS/90000',
  'a=rtpmap:98 H264/90000',
  'a=setup:passive',
  'a=connection:new',
  'y=0200000017',
  '',
].join('\r\n');

describe('GB/T 28181 SDP', () => {
  it('reads a TCP passive offer: media-level address, port, PS payload, SSRC', () => {
    expect(parseGbSdp(TCP_OFFER)).toEqual({
      user: '34020000002000000001',
      sessionName: 'Play',
      host: '10.0.0.9',
      port: 30002,
      transport: 'tcp',
      setup: 'passive',
      direction: 'recvonly',
      ssrc: '0200000017',
      payloadTypes: [96],
    });
  });

  it('refuses offers without a usable video stream with a coded error', () => {
    for (const bad of [
      TCP_OFFER.replace(/m=video[^\r]*/, 'm=audio 30002 RTP/AVP 8'),
      TCP_OFFER.replace(/c=IN IP4 [^\r]*\r\n/g, ''),
      TCP_OFFER.replace('TCP/RTP/AVP', 'RTP/SAVP'),
      TCP_OFFER.replace('y=0200000017', 'y=abc'),
    ]) {
      let thrown: unknown;
      try {
        parseGbSdp(bad);
      } catch (err) {
        thrown = err;
      }
      expect(hasCode(thrown, 'CS_ERR_GB_SDP_UNACCEPTABLE'), String(thrown)).toBe(true);
    }
  });

  it('answers sendonly PS with the SSRC, setup:active over TCP, and makes live SSRCs from the domain', () => {
    const sdp = buildGbSdp({
      user: '34020000001320000001',
      host: '127.0.0.1',
      port: 9,
      transport: 'tcp',
      direction: 'sendonly',
      ssrc: '0200000017',
    });
    expect(sdp).toContain('m=video 9 TCP/RTP/AVP 96\r\na=sendonly\r\na=rtpmap:96 PS/90000\r\na=setup:active');
    expect(sdp).toContain('y=0200000017\r\n');
    expect(liveSsrc('3402000000', 7)).toBe('0200000007');
  });

  it('round-trips an offer: what the platform builds, a device reads', () => {
    const offer = buildGbSdp({
      user: '34020000002000000001',
      host: '10.1.2.3',
      port: 30000,
      transport: 'udp',
      direction: 'recvonly',
      ssrc: '0200000001',
    });
    expect(parseGbSdp(offer)).toMatchObject({
      host: '10.1.2.3',
      port: 30000,
      transport: 'udp',
      direction: 'recvonly',
      ssrc: '0200000001',
      payloadTypes: [96],
    });
  });
});
