import { describe, expect, it } from 'vitest';
import type { VideoCodec } from './access-unit.ts';
import { AccessUnitSplitter, type AnnexBAccessUnit, isKeyframe, splitNalUnits } from './annexb.ts';
import { decodeAnnexB, encodeTestPattern, randomChunks } from './media-test-fixtures.ts';

async function splitInChunks(
  codec: VideoCodec,
  stream: Buffer,
  maxChunk: number,
): Promise<AnnexBAccessUnit[]> {
  const splitter = new AccessUnitSplitter(codec);
  const units: AnnexBAccessUnit[] = [];
  for (const chunk of randomChunks(stream, maxChunk)) units.push(...splitter.push(chunk));
  units.push(...splitter.endAccessUnit());
  return units;
}

describe.each<[VideoCodec, number]>([
  ['h264', 12],
  ['h265', 6],
])('Annex B access units (%s, real encoder)', (codec, frames) => {
  it('splits a stream fed in arbitrary chunks into one unit per picture, keyframes first of each GOP', async () => {
    const stream = await encodeTestPattern(codec, frames, 4);
    for (const maxChunk of [1, 1400, 100_000]) {
      const units = await splitInChunks(codec, stream, maxChunk);
      expect(units).toHaveLength(frames);
      expect(units.map((u) => u.keyframe)).toEqual(Array.from({ length: frames }, (_, i) => i % 4 === 0));
      expect(Buffer.concat(units.map((u) => u.data)).equals(stream)).toBe(true);
      expect(units.every((u) => isKeyframe(codec, u.data) === u.keyframe)).toBe(true);
    }
  });

  it('drops a stream joined mid-picture up to the next picture, which still decodes', async () => {
    const stream = await encodeTestPattern(codec, frames, 4);
    const firstPictureBytes = (await splitInChunks(codec, stream, 100_000))[0]?.data.length ?? 0;
    const splitter = new AccessUnitSplitter(codec);
    const units = splitter.push(stream.subarray(firstPictureBytes - 50));
    units.push(...splitter.endAccessUnit());
    expect(units.length).toBe(frames - 1);
    expect(splitter.discardedBytes).toBeGreaterThan(0);
    const keyframeAt = units.findIndex((u) => u.keyframe);
    expect(keyframeAt).toBe(3);
    const decoded = await decodeAnnexB(codec, Buffer.concat(units.slice(keyframeAt).map((u) => u.data)));
    expect(decoded.frames).toBe(units.length - keyframeAt);
  });
});

describe('splitNalUnits', () => {
  it('handles 3- and 4-byte start codes', () => {
    const data = Buffer.from([0, 0, 0, 1, 0x67, 1, 2, 0, 0, 1, 0x68, 3, 0, 0, 0, 1, 0x65, 4]);
    expect(splitNalUnits(data).map((n) => [...n])).toEqual([
      [0x67, 1, 2],
      [0x68, 3],
      [0x65, 4],
    ]);
  });
});
