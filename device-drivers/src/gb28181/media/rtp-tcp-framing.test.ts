import { hasCode } from '@citysense/protocol';
import { describe, expect, it } from 'vitest';
import { RTP_FRAMING } from './errors.ts';
import { buildRtp } from './rtp.ts';
import { frameRtpForTcp, RtpTcpDeframer } from './rtp-tcp-framing.ts';

const packet = (seq: number, size: number): Buffer =>
  buildRtp({ payloadType: 96, sequenceNumber: seq, timestamp: 0, ssrc: 1, payload: Buffer.alloc(size, seq) });

describe('RFC 4571 framing', () => {
  it('reassembles packets split across and packed into TCP chunks', () => {
    const packets = [packet(1, 1400), packet(2, 10), packet(3, 60000)];
    const stream = Buffer.concat(packets.map((p) => frameRtpForTcp(p)));
    for (const chunkSize of [1, 3, 1000, stream.length]) {
      const deframer = new RtpTcpDeframer();
      const out: Buffer[] = [];
      let errors = 0;
      for (let i = 0; i < stream.length; i += chunkSize) {
        const result = deframer.push(stream.subarray(i, i + chunkSize));
        if (result.error) errors++;
        out.push(...result.packets);
      }
      expect(errors).toBe(0);
      expect(out).toEqual(packets);
      expect(deframer.buffered).toBe(0);
    }
  });

  it('rejects a zero length with CS_ERR_RTP_FRAMING and resynchronises on the next frame', () => {
    const deframer = new RtpTcpDeframer();
    const good = packet(7, 100);
    const result = deframer.push(
      Buffer.concat([Buffer.from([0, 0, 0x11, 0x22, 0x33]), frameRtpForTcp(good)]),
    );
    expect(result.error && hasCode(result.error, RTP_FRAMING)).toBe(true);
    expect(result.discardedBytes).toBe(5);
    expect(result.packets).toEqual([good]);
    expect(deframer.push(frameRtpForTcp(packet(8, 5))).packets).toHaveLength(1);
  });

  it('refuses to frame an empty or oversized packet', () => {
    expect(() => frameRtpForTcp(Buffer.alloc(0))).toThrow(/1\.\.65535/);
    expect(() => frameRtpForTcp(Buffer.alloc(65536))).toThrow(/1\.\.65535/);
  });
});
