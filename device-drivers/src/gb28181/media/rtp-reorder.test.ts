import { describe, expect, it } from 'vitest';
import type { RtpPacket } from './rtp.ts';
import { RtpReorderBuffer, sequenceDistance } from './rtp-reorder.ts';

const pkt = (sequenceNumber: number): RtpPacket => ({
  padding: false,
  marker: false,
  payloadType: 96,
  sequenceNumber,
  timestamp: 0,
  ssrc: 1,
  csrcs: [],
  extension: undefined,
  payload: Buffer.alloc(0),
});

function feed(buffer: RtpReorderBuffer, seqs: number[]): { out: number[]; lost: number; gaps: number } {
  const out: number[] = [];
  let lost = 0;
  let gaps = 0;
  for (const seq of seqs) {
    const r = buffer.push(pkt(seq));
    lost += r.lost;
    for (const p of r.packets) {
      out.push(p.packet.sequenceNumber);
      if (p.afterGap) gaps++;
    }
  }
  return { out, lost, gaps };
}

describe('RTP reorder buffer', () => {
  it('restores order across the 16-bit wrap', () => {
    const r = feed(new RtpReorderBuffer(8), [65533, 65535, 65534, 1, 0, 2]);
    expect(r.out).toEqual([65533, 65534, 65535, 0, 1, 2]);
    expect(r.lost).toBe(0);
  });

  it('counts a gap as lost when the window fills or on skipGap, and flags the packet after it', () => {
    const buffer = new RtpReorderBuffer(4);
    const r = feed(buffer, [10, 11, 13, 14, 15, 16]);
    expect(r.out).toEqual([10, 11, 13, 14, 15, 16]);
    expect(r.lost).toBe(1);
    expect(r.gaps).toBe(1);
    feed(buffer, [18]);
    const skipped = buffer.skipGap();
    expect(skipped.lost).toBe(1);
    expect(skipped.packets.map((p) => p.packet.sequenceNumber)).toEqual([18]);
  });

  it('takes a packet arriving just before the first one as the start of the stream', () => {
    const buffer = new RtpReorderBuffer(8);
    expect(feed(buffer, [101, 100, 102, 103])).toEqual({ out: [100, 101, 102, 103], lost: 0, gaps: 0 });
    const single = new RtpReorderBuffer(8);
    expect(feed(single, [5]).out).toEqual([]);
    expect(single.skipGap().packets.map((p) => [p.packet.sequenceNumber, p.afterGap])).toEqual([[5, false]]);
  });

  it('drops duplicates and treats a far jump as a restart', () => {
    const buffer = new RtpReorderBuffer(4);
    expect(feed(buffer, [1, 2, 2, 1]).out).toEqual([1, 2]);
    const jump = feed(buffer, [40000, 40001]);
    expect(jump.out).toEqual([40000, 40001]);
    expect(jump.gaps).toBe(1);
    expect(sequenceDistance(65535, 0)).toBe(1);
  });
});
