import { describe, expect, it } from 'vitest';
import { FrameAssembler } from './frame-assembler.ts';

/** A stream of `count` frames of `size` bytes where every byte says which frame and offset it is. */
function stream(size: number, count: number): Buffer {
  const data = Buffer.alloc(size * count);
  for (let i = 0; i < data.length; i++) data[i] = (Math.floor(i / size) * 31 + (i % size)) & 0xff;
  return data;
}

/** Splits `data` at pseudo-random points, including empty and multi-frame chunks. */
function chunks(data: Buffer, seed: number): Buffer[] {
  const out: Buffer[] = [];
  let state = seed;
  let offset = 0;
  while (offset < data.length) {
    state = (state * 1103515245 + 12345) & 0x7fffffff;
    const n = state % 50; // 0..49 bytes, frames are 12: chunks span 0..4 frames
    out.push(data.subarray(offset, offset + n));
    offset += n;
  }
  return out;
}

describe('FrameAssembler', () => {
  it('rebuilds every frame exactly, whatever the chunk boundaries', () => {
    const size = 12;
    const data = stream(size, 40);
    for (const seed of [1, 2, 3, 42, 1234]) {
      const frames: Buffer[] = [];
      const assembler = new FrameAssembler(size, (f) => frames.push(Buffer.from(f)));
      for (const c of chunks(data, seed)) assembler.push(c);
      expect(frames).toHaveLength(40);
      expect(Buffer.concat(frames).equals(data)).toBe(true);
      expect(assembler.partialBytes).toBe(0);
    }
  });

  it('keeps an incomplete tail until the rest arrives', () => {
    const frames: Buffer[] = [];
    const assembler = new FrameAssembler(4, (f) => frames.push(f));
    assembler.push(Buffer.from([1, 2, 3, 4, 5, 6]));
    expect(frames).toHaveLength(1);
    expect(assembler.partialBytes).toBe(2);
    assembler.push(Buffer.from([7, 8]));
    expect(frames.map((f) => [...f])).toEqual([
      [1, 2, 3, 4],
      [5, 6, 7, 8],
    ]);
  });

  it('reuses recycled buffers instead of allocating', () => {
    const assembler = new FrameAssembler(4, (f) => assembler.recycle(f));
    assembler.push(Buffer.alloc(4 * 100));
    expect(assembler.allocated).toBe(1);
  });
});
