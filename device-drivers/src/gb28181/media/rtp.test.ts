import { hasCode } from '@citysense/protocol';
import { describe, expect, it } from 'vitest';
import { RTP_INVALID } from './errors.ts';
import { pseudoRandomBytes } from './media-test-fixtures.ts';
import { buildRtp, parseRtp } from './rtp.ts';

describe('RTP packets', () => {
  it('round-trips every header field, CSRCs, extension and padding', () => {
    const payload = Buffer.from('program stream bytes');
    const wire = buildRtp({
      marker: true,
      payloadType: 96,
      sequenceNumber: 65535,
      timestamp: 0xfffffff0,
      ssrc: 100000001,
      csrcs: [1, 0xffffffff],
      extension: { profile: 0xbede, data: Buffer.from([1, 2, 3, 4]) },
      paddingLength: 3,
      payload,
    });
    const parsed = parseRtp(wire);
    expect(parsed.ok).toBe(true);
    if (!parsed.ok) return;
    const p = parsed.packet;
    expect(p).toMatchObject({
      padding: true,
      marker: true,
      payloadType: 96,
      sequenceNumber: 65535,
      timestamp: 0xfffffff0,
      ssrc: 100000001,
      csrcs: [1, 0xffffffff],
    });
    expect(p.extension?.profile).toBe(0xbede);
    expect([...(p.extension?.data ?? [])]).toEqual([1, 2, 3, 4]);
    expect(p.payload.equals(payload)).toBe(true);
  });

  it('parses a minimal packet with an empty payload', () => {
    const parsed = parseRtp(
      buildRtp({ payloadType: 0, sequenceNumber: 0, timestamp: 0, ssrc: 0, payload: Buffer.alloc(0) }),
    );
    expect(parsed.ok && parsed.packet.payload.length).toBe(0);
  });

  it('reports garbage with CS_ERR_RTP_INVALID and never throws', () => {
    let rejected = 0;
    for (let i = 0; i < 3000; i++) {
      const parsed = parseRtp(pseudoRandomBytes(i % 80, i + 1));
      if (!parsed.ok) {
        expect(hasCode(parsed.error, RTP_INVALID)).toBe(true);
        rejected++;
      }
    }
    expect(rejected).toBeGreaterThan(2000);
  });

  it('rejects truncated packets, wrong versions, bad padding and RTCP', () => {
    const good = buildRtp({
      payloadType: 96,
      sequenceNumber: 1,
      timestamp: 2,
      ssrc: 3,
      csrcs: [9],
      payload: Buffer.from([1]),
    });
    for (let length = 0; length < 16; length++) expect(parseRtp(good.subarray(0, length)).ok).toBe(false);
    const v1 = Buffer.from(good);
    v1[0] = 0x40;
    expect(parseRtp(v1).ok).toBe(false);
    const badPadding = Buffer.from(good);
    badPadding[0] = (badPadding[0] ?? 0) | 0x20;
    badPadding[badPadding.length - 1] = 200;
    expect(parseRtp(badPadding).ok).toBe(false);
    const rtcpSenderReport = Buffer.from([0x80, 0xc8, 0, 6, ...Buffer.alloc(24)]);
    expect(parseRtp(rtcpSenderReport).ok).toBe(false);
  });

  it('refuses to build out-of-range fields', () => {
    const base = { payloadType: 96, sequenceNumber: 0, timestamp: 0, ssrc: 0, payload: Buffer.alloc(1) };
    expect(() => buildRtp({ ...base, payloadType: 128 })).toThrow(/payloadType/);
    expect(() => buildRtp({ ...base, sequenceNumber: 65536 })).toThrow(/sequenceNumber/);
    expect(() => buildRtp({ ...base, csrcs: new Array(16).fill(1) })).toThrow(/15 CSRCs/);
  });
});
