import { describe, expect, it } from 'vitest';
import { decodeSpoolAck, encodeSpoolAck, toRanges } from './spool-ack.ts';

describe('spool acknowledgements', () => {
  it('collapses ids into ranges and round-trips them', () => {
    const ranges = toRanges([5, 3, 4, 9, 10, 3, 12]);
    expect(ranges).toEqual([
      { first: 3, last: 5 },
      { first: 9, last: 10 },
      { first: 12, last: 12 },
    ]);
    expect(decodeSpoolAck(encodeSpoolAck(ranges))).toEqual(ranges);
  });

  it('refuses inverted ranges', () => {
    expect(() => decodeSpoolAck(encodeSpoolAck([{ first: 9, last: 2 }]))).toThrow(/inverted/);
  });
});
