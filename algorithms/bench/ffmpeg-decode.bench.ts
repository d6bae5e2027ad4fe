/**
 * Decode throughput of FfmpegStreamSource against ffmpeg alone, on a 640x480 clip made in the
 * same run. Run: `npm run bench:decode`.
 */
import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { resolveFfmpegPath } from '../src/sources/ffmpeg-path.ts';
import { FfmpegStreamSource } from '../src/sources/ffmpeg-stream.ts';
import { makeClip } from '../src/sources/test-fixtures.ts';

const SECONDS = 20;
const FPS = 25;

/** Wall time of ffmpeg decoding `clip` to raw RGB, written to `/dev/null` or read and discarded by Node. */
async function timeDecode(ffmpeg: string, clip: string, into: 'dev-null' | 'node-pipe'): Promise<number> {
  const started = performance.now();
  await new Promise<void>((resolve, reject) => {
    const output = into === 'dev-null' ? ['-y', '/dev/null'] : ['pipe:1'];
    const child = spawn(ffmpeg, [
      '-nostdin',
      '-loglevel',
      'error',
      '-i',
      clip,
      '-f',
      'rawvideo',
      '-pix_fmt',
      'rgb24',
      ...output,
    ]);
    child.stdout.resume(); // read and throw away: the cost of the pipe into Node
    child.once('error', reject);
    child.once('close', (code) => (code === 0 ? resolve() : reject(new Error(`ffmpeg exited ${code}`))));
  });
  return performance.now() - started;
}

async function throughSource(clip: string): Promise<{ ms: number; frames: number; checksum: number }> {
  const started = performance.now();
  let frames = 0;
  let checksum = 0;
  for await (const frame of new FfmpegStreamSource({ input: clip }).frames()) {
    frames++;
    if (frame.image.kind === 'raw') checksum = (checksum + (frame.image.rgb[frames % 1000] ?? 0)) & 0xffff;
  }
  return { ms: performance.now() - started, frames, checksum };
}

const dir = await mkdtemp(join(tmpdir(), 'cs-bench-'));
try {
  const ffmpeg = await resolveFfmpegPath();
  const clip = await makeClip(dir, 'bench.mp4', `testsrc=size=640x480:rate=${FPS}`, SECONDS);
  const frames = SECONDS * FPS;
  await timeDecode(ffmpeg, clip, 'dev-null'); // warm the page cache
  const alone: number[] = [];
  const pipe: number[] = [];
  const source: number[] = [];
  for (let i = 0; i < 3; i++) {
    alone.push(await timeDecode(ffmpeg, clip, 'dev-null'));
    pipe.push(await timeDecode(ffmpeg, clip, 'node-pipe'));
    const r = await throughSource(clip);
    if (r.frames !== frames) throw new Error(`expected ${frames} frames, got ${r.frames}`);
    source.push(r.ms);
  }
  const best = (xs: number[]): number => Math.min(...xs);
  const fps = (ms: number): string => ((frames / ms) * 1000).toFixed(0);
  console.log(`640x480 h264, ${frames} frames, best of 3`);
  console.log(`ffmpeg alone (rgb24 to /dev/null): ${fps(best(alone))} frames/s`);
  console.log(`ffmpeg piped into Node, discarded:  ${fps(best(pipe))} frames/s`);
  console.log(`FfmpegStreamSource (every frame):  ${fps(best(source))} frames/s`);
  console.log(`ratio source/ffmpeg-alone: ${(best(alone) / best(source)).toFixed(2)}`);
  console.log(`ratio source/pipe-into-Node: ${(best(pipe) / best(source)).toFixed(2)}`);
} finally {
  await rm(dir, { recursive: true, force: true });
}
