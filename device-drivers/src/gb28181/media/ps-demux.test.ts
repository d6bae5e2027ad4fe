import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { VideoAccessUnit } from './access-unit.ts';
import { AccessUnitSplitter } from './annexb.ts';
import {
  decodeAnnexB,
  encodeTestPattern,
  pseudoRandomBytes,
  randomChunks,
  runFfmpeg,
} from './media-test-fixtures.ts';
import { PsDemuxer } from './ps-demux.ts';
import { PsMuxer, writeTimestamp } from './ps-mux.ts';

let dir = '';
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'citysense-ps-demux-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

function demuxAll(demuxer: PsDemuxer, chunks: Buffer[]): VideoAccessUnit[] {
  const out: VideoAccessUnit[] = [];
  for (const chunk of chunks) out.push(...demuxer.push(chunk));
  out.push(...demuxer.flush());
  return out;
}

async function testUnits(frames: number): Promise<VideoAccessUnit[]> {
  const splitter = new AccessUnitSplitter('h264');
  const units = splitter.push(await encodeTestPattern('h264', frames, 5));
  units.push(...splitter.endAccessUnit());
  return units.map((u, i) => ({ codec: 'h264', pts90k: 3600 * i, data: u.data, keyframe: u.keyframe }));
}

describe('PS demuxer on program streams written by ffmpeg', () => {
  it.each(['vob', 'mpeg'])(
    'recovers every picture of a -f %s file with audio, and they decode',
    async (format) => {
      const file = join(dir, `clip.${format}`);
      const made = await runFfmpeg([
        ...['-loglevel', 'error', '-f', 'lavfi', '-i', 'testsrc=size=160x120:rate=25'],
        ...['-f', 'lavfi', '-i', 'sine=frequency=440:sample_rate=48000', '-t', '1'],
        ...['-c:v', 'libx264', '-preset', 'ultrafast', '-g', '10', '-bf', '0', '-pix_fmt', 'yuv420p'],
        ...['-c:a', 'mp2', '-f', format, file],
      ]);
      expect(made.stderr).toBe('');
      const demuxer = new PsDemuxer();
      const units = demuxAll(demuxer, randomChunks(await readFile(file), 1500));
      expect(units).toHaveLength(25);
      expect(units.filter((u) => u.keyframe)).toHaveLength(3);
      expect(units.every((u, i) => i === 0 || u.pts90k > (units[i - 1]?.pts90k ?? 0))).toBe(true);
      expect(demuxer.stats.skippedPes).toBeGreaterThan(0); // the mp2 audio
      const decoded = await decodeAnnexB('h264', Buffer.concat(units.map((u) => u.data)));
      expect(decoded).toEqual({ frames: 25, errors: '' });
    },
  );
});

describe('PS demuxer robustness', () => {
  it('counts garbage between packs and still returns every picture', async () => {
    const units = await testUnits(10);
    const muxer = new PsMuxer({ packStuffingBytes: 3 });
    const garbage = pseudoRandomBytes(333, 3);
    const stream = Buffer.concat(units.flatMap((u) => [garbage, muxer.mux(u)]));
    const demuxer = new PsDemuxer();
    const out = demuxAll(demuxer, randomChunks(stream, 700));
    expect(out.map((u) => u.data)).toEqual(units.map((u) => u.data));
    expect(demuxer.stats.discardedBytes).toBe(garbage.length * units.length);
  });

  it('gives a picture whose PES has no PTS the previous PTS plus one frame', async () => {
    const units = await testUnits(4);
    const muxer = new PsMuxer();
    const parts = units.map((u) => muxer.mux({ ...u, pts90k: 1000 + 3000 * units.indexOf(u) }));
    const third = parts[2] ?? Buffer.alloc(0);
    const pes = third.indexOf(Buffer.from([0, 0, 1, 0xe0]));
    third[pes + 7] = 0x00; // PTS_DTS_flags '00'; the 5 PTS bytes become header stuffing
    third.fill(0xff, pes + 9, pes + 14);
    const out = demuxAll(new PsDemuxer(), parts);
    expect(out.map((u) => u.pts90k)).toEqual([1000, 4000, 7000, 10000]);
  });

  it('reads an unbounded video PES (PES_packet_length 0) up to the next pack', async () => {
    const units = await testUnits(3);
    const muxer = new PsMuxer();
    const parts = units.map((u) => {
      const ps = muxer.mux(u);
      const pes = ps.indexOf(Buffer.from([0, 0, 1, 0xe0]));
      const header = Buffer.from([0, 0, 1, 0xe0, 0, 0, 0x80, 0x80, 5, 0, 0, 0, 0, 0]);
      writeTimestamp(header, 9, 0x2, u.pts90k);
      return Buffer.concat([ps.subarray(0, pes), header, u.data]);
    });
    const out = demuxAll(new PsDemuxer(), randomChunks(Buffer.concat(parts), 200));
    expect(out.map((u) => u.data)).toEqual(units.map((u) => u.data));
  });

  it('learns H.265 from the PSM', async () => {
    const splitter = new AccessUnitSplitter('h265');
    const units = splitter.push(await encodeTestPattern('h265', 3, 3));
    units.push(...splitter.endAccessUnit());
    const muxer = new PsMuxer();
    const ps = units.map((u, i) =>
      muxer.mux({ codec: 'h265', pts90k: i * 3600, data: u.data, keyframe: u.keyframe }),
    );
    const demuxer = new PsDemuxer();
    const out = demuxAll(demuxer, ps);
    expect(demuxer.codec).toBe('h265');
    expect(out.map((u) => [u.codec, u.keyframe])).toEqual([
      ['h265', true],
      ['h265', false],
      ['h265', false],
    ]);
  });

  it('never throws on mangled input, and decodes again after a discontinuity', async () => {
    const units = await testUnits(10);
    const muxer = new PsMuxer();
    const good = Buffer.concat(units.map((u) => muxer.mux(u)));
    const demuxer = new PsDemuxer();
    for (let seed = 1; seed <= 200; seed++) {
      const noise = pseudoRandomBytes(64 + (seed % 300), seed);
      const cut = (seed * 7919) % good.length;
      // Truncated stream, random bytes, the stream again from an arbitrary point.
      for (const chunk of randomChunks(
        Buffer.concat([good.subarray(0, cut), noise, good.subarray(cut)]),
        1400,
        seed,
      )) {
        expect(() => demuxer.push(chunk)).not.toThrow();
      }
    }
    demuxer.discontinuity();
    const after = demuxAll(demuxer, [good]);
    expect(after).toHaveLength(units.length);
    expect((await decodeAnnexB('h264', Buffer.concat(after.map((u) => u.data)))).frames).toBe(units.length);
    expect(demuxer.stats.discardedBytes).toBeGreaterThan(0);
  });

  it('holds pictures back until a keyframe', async () => {
    const units = await testUnits(7);
    const muxer = new PsMuxer();
    const demuxer = new PsDemuxer();
    const out = demuxAll(
      demuxer,
      units.slice(1).map((u) => muxer.mux(u)),
    );
    expect(out[0]?.keyframe).toBe(true);
    expect(out).toHaveLength(2);
    expect(demuxer.stats.droppedAccessUnits).toBe(4);
  });
});
