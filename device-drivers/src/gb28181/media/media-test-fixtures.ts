/** Test fixtures for the media plane: run the real ffmpeg, encode clips, count decodable frames. */
import { spawn } from 'node:child_process';
import { resolveFfmpegPath } from '@citysense/algorithms';
import type { VideoCodec } from './access-unit.ts';

/** Exit status and output of one ffmpeg run. */
export interface FfmpegRun {
  code: number | null;
  stdout: Buffer;
  stderr: string;
}

/** Runs ffmpeg with `args` (after `-hide_banner -nostdin`), feeding `input` on stdin if given. */
export async function runFfmpeg(args: string[], input?: Buffer): Promise<FfmpegRun> {
  const ffmpeg = await resolveFfmpegPath();
  return new Promise((resolve, reject) => {
    const child = spawn(ffmpeg, ['-hide_banner', ...args], { stdio: ['pipe', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => out.push(chunk));
    child.stderr.setEncoding('utf8');
    child.stderr.on('data', (text: string) => {
      stderr += text;
    });
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout: Buffer.concat(out), stderr }));
    child.stdin.on('error', () => undefined); // ffmpeg may exit before reading all input
    child.stdin.end(input ?? Buffer.alloc(0));
  });
}

/** `frames` pictures of a lavfi test pattern as a raw Annex B stream, one keyframe every `gop`. */
export async function encodeTestPattern(codec: VideoCodec, frames: number, gop: number): Promise<Buffer> {
  const encoder =
    codec === 'h264'
      ? ['-c:v', 'libx264', '-preset', 'ultrafast', '-g', String(gop), '-bf', '0', '-f', 'h264']
      : [
          '-c:v',
          'libx265',
          '-preset',
          'ultrafast',
          '-x265-params',
          `keyint=${gop}:bframes=0:log-level=error`,
        ].concat(['-f', 'hevc']);
  const run = await runFfmpeg(
    [
      '-loglevel',
      'error',
      '-f',
      'lavfi',
      '-i',
      'testsrc=size=160x120:rate=25',
      '-frames:v',
      String(frames),
    ].concat(['-pix_fmt', 'yuv420p'], encoder, ['pipe:1']),
  );
  if (run.code !== 0) throw new Error(`ffmpeg failed: ${run.stderr}`);
  return run.stdout;
}

/** How many pictures ffmpeg decodes from an Annex B stream, and what it complained about. */
export async function decodeAnnexB(
  codec: VideoCodec,
  stream: Buffer,
): Promise<{ frames: number; errors: string }> {
  const format = codec === 'h264' ? 'h264' : 'hevc';
  const run = await runFfmpeg(
    ['-loglevel', 'error', '-f', format, '-i', 'pipe:0', '-f', 'framecrc', 'pipe:1'],
    stream,
  );
  if (run.code !== 0) return { frames: -1, errors: run.stderr };
  return { frames: countFramecrcLines(run.stdout), errors: run.stderr.trim() };
}

/** Number of packet lines (not `#` comments) in ffmpeg's framecrc output. */
export function countFramecrcLines(framecrc: Buffer): number {
  return framecrc
    .toString('utf8')
    .split('\n')
    .filter((line) => line.trim() !== '' && !line.startsWith('#')).length;
}

/** Splits `data` into chunks of pseudo-random sizes 1..maxChunk (deterministic for a seed). */
export function randomChunks(data: Buffer, maxChunk: number, seed = 1): Buffer[] {
  const chunks: Buffer[] = [];
  let state = seed;
  for (let offset = 0; offset < data.length; ) {
    state = (state * 1103515245 + 12345) & 0x7fffffff;
    const size = 1 + (state % maxChunk);
    chunks.push(data.subarray(offset, offset + size));
    offset += size;
  }
  return chunks;
}

/** Deterministic pseudo-random bytes. */
export function pseudoRandomBytes(length: number, seed = 7): Buffer {
  const out = Buffer.alloc(length);
  let state = seed;
  for (let i = 0; i < length; i++) {
    state = (state * 1103515245 + 12345) & 0x7fffffff;
    out[i] = state >> 16;
  }
  return out;
}
