import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { VideoAccessUnit, VideoCodec } from './access-unit.ts';
import { AccessUnitSplitter } from './annexb.ts';
import { countFramecrcLines, decodeAnnexB, encodeTestPattern, runFfmpeg } from './media-test-fixtures.ts';
import { PsDemuxer } from './ps-demux.ts';
import { mpegCrc32, PsMuxer, programStreamMap } from './ps-mux.ts';
import { PsRtpPacketizer } from './ps-rtp-packetizer.ts';
import { parseRtp } from './rtp.ts';

let dir = '';
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'citysense-ps-mux-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function accessUnits(codec: VideoCodec, frames: number): Promise<VideoAccessUnit[]> {
  const splitter = new AccessUnitSplitter(codec);
  const units = splitter.push(await encodeTestPattern(codec, frames, 5));
  units.push(...splitter.endAccessUnit());
  return units.map((u, i) => ({ codec, pts90k: 90_000 + i * 3600, data: u.data, keyframe: u.keyframe }));
}

describe.each<[VideoCodec, string, number]>([
  ['h264', 'h264', 15],
  ['h265', 'hevc', 6],
])('PS muxer (%s)', (codec, ffmpegName, frames) => {
  it('writes a program stream ffmpeg reads as one video stream with every picture', async () => {
    const units = await accessUnits(codec, frames);
    const muxer = new PsMuxer();
    const file = join(dir, `out-${codec}.mpg`);
    await writeFile(file, Buffer.concat(units.map((u) => muxer.mux(u))));
    const probe = await runFfmpeg(['-i', file]);
    expect(probe.stderr).toMatch(new RegExp(`Stream #0:0\\[0x1e0\\]: Video: ${ffmpegName}`));
    const packets = await runFfmpeg([
      '-loglevel',
      'error',
      '-f',
      'mpeg',
      '-i',
      file,
      '-c',
      'copy',
      '-f',
      'framecrc',
      'pipe:1',
    ]);
    expect(packets.code).toBe(0);
    expect(countFramecrcLines(packets.stdout)).toBe(frames);
    const decoded = await runFfmpeg(['-loglevel', 'error', '-i', file, '-f', 'framecrc', 'pipe:1']);
    expect(decoded.stderr.trim()).toBe('');
    expect(countFramecrcLines(decoded.stdout)).toBe(frames);
  });
});

describe('PS muxer layout', () => {
  it('splits a large picture over PES packets and marks only the last RTP packet of each picture', async () => {
    const units = await accessUnits('h264', 5);
    const muxer = new PsMuxer({ maxPesPacketLength: 1000, packStuffingBytes: 2 });
    const packetizer = new PsRtpPacketizer({ ssrc: 100000001, initialSequenceNumber: 65530 });
    const demuxer = new PsDemuxer();
    const out: VideoAccessUnit[] = [];
    for (const unit of units) {
      const ps = muxer.mux(unit);
      const packets = packetizer.packetize(ps, unit.pts90k).map((p) => {
        const parsed = parseRtp(p);
        if (!parsed.ok) throw parsed.error;
        return parsed.packet;
      });
      expect(
        packets.every((p) => p.payload.length <= 1400 && p.payloadType === 96 && p.ssrc === 100000001),
      ).toBe(true);
      expect(packets.map((p) => p.marker)).toEqual(packets.map((_, i) => i === packets.length - 1));
      expect(packets.every((p) => p.timestamp === unit.pts90k)).toBe(true);
      for (const p of packets) out.push(...demuxer.push(p.payload));
      out.push(...demuxer.endOfFrame());
    }
    expect(out.map((u) => u.pts90k)).toEqual(units.map((u) => u.pts90k));
    expect(out.map((u) => u.data)).toEqual(units.map((u) => u.data));
    expect(demuxer.stats.videoPes).toBeGreaterThan(units.length);
    expect(demuxer.stats.discardedBytes).toBe(0);
    expect((await decodeAnnexB('h264', Buffer.concat(out.map((u) => u.data)))).frames).toBe(5);
  });

  it('seals the PSM with a CRC-32/MPEG-2 that checks to zero', () => {
    expect(mpegCrc32(Buffer.from('123456789'))).toBe(0x0376e6e7);
    const psm = programStreamMap('h265');
    expect(psm[12]).toBe(0x24);
    expect(mpegCrc32(psm)).toBe(0);
  });
});
