import { describe, expect, it } from 'vitest';
import { parseByteRange } from './byte-range.ts';

describe('Range header (RFC 9110 §14.1.2)', () => {
  it('reads open, closed and suffix ranges, clamped to the file', () => {
    expect(parseByteRange('bytes=100-', 1000)).toEqual({ start: 100, end: 999 });
    expect(parseByteRange('bytes=0-0', 1000)).toEqual({ start: 0, end: 0 });
    expect(parseByteRange('bytes=900-5000', 1000)).toEqual({ start: 900, end: 999 });
    expect(parseByteRange('bytes=-300', 1000)).toEqual({ start: 700, end: 999 });
    expect(parseByteRange('bytes=-5000', 1000)).toEqual({ start: 0, end: 999 });
  });

  it('answers unsatisfiable for ranges past the end', () => {
    expect(parseByteRange('bytes=1000-', 1000)).toBe('unsatisfiable');
    expect(parseByteRange('bytes=2000-3000', 1000)).toBe('unsatisfiable');
    expect(parseByteRange('bytes=-0', 1000)).toBe('unsatisfiable');
    expect(parseByteRange('bytes=0-', 0)).toBe('unsatisfiable');
  });

  it('ignores what it may ignore: no header, other units, several ranges, bad syntax', () => {
    for (const header of [undefined, 'items=0-5', 'bytes=0-5,10-20', 'bytes=5-2', 'bytes=-', 'bytes=a-b'])
      expect(parseByteRange(header, 1000)).toBeNull();
  });
});
