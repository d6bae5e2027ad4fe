/** Helpers for the relay tests: real ffmpeg publishers and readers. Test code only. */
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { resolveFfmpegPath } from '../../../algorithms/src/sources/ffmpeg-path.ts';
import { FfmpegStreamSource } from '../../../algorithms/src/sources/ffmpeg-stream.ts';
import type { Frame } from '../../../algorithms/src/sources/frame.ts';

/** A running ffmpeg with its exit as a promise. */
export interface FfmpegRun {
  child: ChildProcess;
  exited: Promise<number | null>;
  stderr: () => string;
}

/** Runs the bundled ffmpeg with `args` (stdout piped, stderr tail kept). */
export async function runFfmpeg(args: string[]): Promise<FfmpegRun> {
  const child = spawn(
    await resolveFfmpegPath(),
    ['-hide_banner', '-nostdin', '-loglevel', 'error', ...args],
    {
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  let err = '';
  child.stderr?.setEncoding('utf8').on('data', (t: string) => {
    err = (err + t).slice(-4000);
  });
  const exited = once(child, 'close').then(([code]) => code as number | null);
  return { child, exited, stderr: () => err };
}

/** Publishes a live 320×240 10 fps test pattern (H.264 in FLV) to `url`. */
export function publishTestPattern(url: string): Promise<FfmpegRun> {
  return runFfmpeg([
    '-re',
    '-f',
    'lavfi',
    '-i',
    'testsrc=size=320x240:rate=10',
    '-c:v',
    'libx264',
    '-preset',
    'ultrafast',
    '-tune',
    'zerolatency',
    '-g',
    '10',
    '-f',
    'flv',
    url,
  ]);
}

/** Encodes `seconds` of test pattern to a raw Annex B elementary stream with access unit delimiters. */
export async function encodeElementaryStream(
  codec: 'h264' | 'h265',
  seconds: number,
  fps: number,
): Promise<Buffer> {
  const encoder =
    codec === 'h264'
      ? [
          '-c:v',
          'libx264',
          '-preset',
          'ultrafast',
          '-x264-params',
          'aud=1:keyint=10:min-keyint=10:scenecut=0',
        ]
      : [
          '-c:v',
          'libx265',
          '-preset',
          'ultrafast',
          '-x265-params',
          'aud=1:keyint=10:min-keyint=10:scenecut=0:log-level=error',
        ];
  const run = await runFfmpeg([
    '-f',
    'lavfi',
    '-i',
    `testsrc=size=320x240:rate=${fps}`,
    '-t',
    String(seconds),
    '-pix_fmt',
    'yuv420p',
    ...encoder,
    '-f',
    codec === 'h264' ? 'h264' : 'hevc',
    'pipe:1',
  ]);
  const chunks: Buffer[] = [];
  run.child.stdout?.on('data', (c: Buffer) => chunks.push(c));
  const code = await run.exited;
  if (code !== 0) throw new Error(`ffmpeg encode failed: ${run.stderr()}`);
  return Buffer.concat(chunks);
}

/** The first `count` frames a FfmpegStreamSource reads from `url`, then it is closed. */
export async function readFrames(url: string, count: number): Promise<Frame[]> {
  const source = new FfmpegStreamSource({ input: url, live: true, ioTimeoutMs: 10_000 });
  const abort = new AbortController();
  const frames: Frame[] = [];
  try {
    for await (const frame of source.frames(abort.signal)) {
      frames.push(frame);
      if (frames.length >= count) break;
    }
  } finally {
    abort.abort();
  }
  return frames;
}

/** Ends a test ffmpeg and waits for it. */
export async function kill(run: FfmpegRun | undefined): Promise<void> {
  if (!run || run.child.exitCode !== null || run.child.signalCode !== null) return;
  run.child.kill('SIGKILL');
  await run.exited;
}
