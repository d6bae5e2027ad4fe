import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SOURCE_DECODE, SOURCE_FFMPEG_MISSING, SOURCE_UNREACHABLE } from './errors.ts';
import { FfmpegStreamSource } from './ffmpeg-stream.ts';
import type { Frame } from './frame.ts';
import {
  closedPort,
  collect,
  type FileServer,
  makeClip,
  pixel,
  processExists,
  serveFile,
  serveStalling,
} from './test-fixtures.ts';

let dir: string;
let clip: string; // testsrc, 320x240, 10 fps, 2 s
let red: string; // solid red, 64x48, 10 fps, 1 s
let server: FileServer;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'cs-sources-'));
  [clip, red] = await Promise.all([
    makeClip(dir, 'clip.ts', 'testsrc=size=320x240:rate=10', 2),
    makeClip(dir, 'red.mp4', 'color=c=red:size=64x48:rate=10', 1),
  ]);
  server = await serveFile(clip);
});

afterAll(async () => {
  await server?.close();
  if (dir) await rm(dir, { recursive: true, force: true });
});

function raw(frame: Frame): { width: number; height: number; bytes: number } {
  if (frame.image.kind !== 'raw') throw new Error('expected a raw frame');
  return { width: frame.image.width, height: frame.image.height, bytes: frame.image.rgb.length };
}

describe('FfmpegStreamSource', () => {
  it('decodes a file at the configured fps into RGB24 frames of the clip size', async () => {
    const source = new FfmpegStreamSource({ input: clip, fps: 5 });
    const frames = await collect(source);
    expect(frames).toHaveLength(10); // 2 s at 5 fps
    for (const f of frames) expect(raw(f)).toEqual({ width: 320, height: 240, bytes: 320 * 240 * 3 });
    expect(frames.map((f) => f.index)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    expect(frames.every((f, i) => i === 0 || f.time >= (frames[i - 1]?.time ?? 0))).toBe(true);
    expect(source.stats()).toMatchObject({ delivered: 10, dropped: 0, decoded: 10, ffmpegPids: [] });
  });

  it('scales frames wider than maxWidth down, keeping aspect', async () => {
    const frames = await collect(new FfmpegStreamSource({ input: clip, fps: 2, maxWidth: 160 }));
    expect(frames).toHaveLength(4);
    expect(raw(frames[0] as Frame)).toEqual({ width: 160, height: 120, bytes: 160 * 120 * 3 });
  });

  it('delivers pixels in RGB order', async () => {
    const frames = await collect(new FfmpegStreamSource({ input: red }));
    expect(frames).toHaveLength(10);
    const [r, g, b] = pixel(frames[5] as Frame, 32, 24);
    expect(r).toBeGreaterThan(240);
    expect(g).toBeLessThan(15);
    expect(b).toBeLessThan(15);
  });

  it('shows the testsrc colour bars where ffmpeg draws them (blue, yellow, red in the top band)', async () => {
    const [first] = await collect(new FfmpegStreamSource({ input: clip, fps: 1 }), 1);
    const near = (p: number[], q: number[]): boolean => p.every((v, i) => Math.abs(v - (q[i] ?? 0)) < 40);
    expect(near(pixel(first as Frame, 140, 60), [0, 0, 255])).toBe(true);
    expect(near(pixel(first as Frame, 180, 60), [255, 255, 0])).toBe(true);
    expect(near(pixel(first as Frame, 250, 60), [255, 0, 0])).toBe(true);
  });

  it('reads over HTTP, keeping the host name the URL gave', async () => {
    const source = new FfmpegStreamSource({
      input: `http://localhost:${server.port}/clip.ts`,
      fps: 5,
      live: false,
    });
    const frames = await collect(source);
    expect(frames).toHaveLength(10);
    expect(raw(frames[0] as Frame).width).toBe(320);
    expect(server.hosts.at(-1)).toBe(`localhost:${server.port}`);
  });

  it('reports a closed port as CS_ERR_SOURCE_UNREACHABLE with ffmpeg stderr attached', async () => {
    const port = await closedPort();
    const source = new FfmpegStreamSource({ input: `http://127.0.0.1:${port}/cam.ts`, ioTimeoutMs: 2000 });
    const err = await collect(source).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: SOURCE_UNREACHABLE, statusCode: 502 });
    const details = (err as { details: { stderr: string[] } }).details;
    expect(details.stderr.join('\n')).toMatch(/Connection refused/);
    expect(source.stats().ffmpegPids).toEqual([]);
    expect(source.stats().lastError?.code).toBe(SOURCE_UNREACHABLE);
  });

  it('reports a stream that goes silent as unreachable: ffmpeg IO timeout, or our stall watchdog', async () => {
    const silent = await serveStalling(clip, 4000);
    try {
      const viaFfmpeg = new FfmpegStreamSource({
        input: silent.url('/a.ts'),
        ioTimeoutMs: 300,
        stallTimeoutMs: 30_000,
      });
      await expect(collect(viaFfmpeg)).rejects.toMatchObject({ code: SOURCE_UNREACHABLE });
      const viaWatchdog = new FfmpegStreamSource({
        input: silent.url('/b.ts'),
        ioTimeoutMs: 30_000,
        stallTimeoutMs: 300,
      });
      const err = await collect(viaWatchdog).catch((e: unknown) => e);
      expect(err).toMatchObject({ code: SOURCE_UNREACHABLE, message: expect.stringMatching(/no video/) });
      expect(viaWatchdog.stats().ffmpegPids).toEqual([]);
    } finally {
      await silent.close();
    }
  });

  it('reports a file that is not video as CS_ERR_SOURCE_DECODE', async () => {
    const garbage = join(dir, 'garbage.mp4');
    await writeFile(garbage, Buffer.alloc(50_000, 0x5a));
    const err = await collect(new FfmpegStreamSource({ input: garbage })).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: SOURCE_DECODE });
    expect((err as { details: { stderr: string[] } }).details.stderr.join('\n')).toMatch(/Invalid data/);
  });

  it('redacts credentials in errors and descriptions', async () => {
    const port = await closedPort();
    const source = new FfmpegStreamSource({ input: `rtsp://admin:s3cret@127.0.0.1:${port}/live` });
    expect(source.describe().input).toBe(`rtsp://admin:***@127.0.0.1:${port}/live`);
    const err = await collect(source).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: SOURCE_UNREACHABLE });
    expect(
      JSON.stringify({ m: (err as Error).message, d: (err as { details: unknown }).details }),
    ).not.toContain('s3cret');
  });

  it('kills ffmpeg when the consumer leaves the loop early', async () => {
    const source = new FfmpegStreamSource({ input: clip, realtime: true, fps: 10 });
    let pids: number[] = [];
    for await (const _frame of source.frames()) {
      pids = source.stats().ffmpegPids;
      break;
    }
    expect(pids).toHaveLength(1);
    expect(processExists(pids[0] as number)).toBe(false);
    expect(source.stats().ffmpegPids).toEqual([]);
  });

  it('ends quietly and kills ffmpeg when the signal aborts while waiting for a frame', async () => {
    const source = new FfmpegStreamSource({ input: clip, realtime: true, fps: 2 });
    const abort = new AbortController();
    const seen: number[] = [];
    let pids: number[] = [];
    for await (const frame of source.frames(abort.signal)) {
      seen.push(frame.index);
      pids = source.stats().ffmpegPids;
      // The next frame is half a second away: abort while the loop waits for it.
      setImmediate(() => abort.abort());
    }
    expect(seen).toEqual([0]);
    expect(processExists(pids[0] as number)).toBe(false);
  });

  it('SIGKILLs an ffmpeg that ignores SIGTERM', async () => {
    // A stand-in that talks like ffmpeg but shrugs off SIGTERM, as a wedged ffmpeg can.
    const stubborn = join(dir, 'stubborn-ffmpeg.mjs');
    await writeFile(
      stubborn,
      `#!${process.execPath}
process.on('SIGTERM', () => {});
process.stderr.write("Output #0, rawvideo, to 'pipe:1':\\n    Stream #0:0: Video: rawvideo (RGB[24] / 0x18424752), rgb24, 2x2, q=2-31\\n");
setInterval(() => process.stdout.write(Buffer.alloc(12, 7)), 5);
`,
    );
    await chmod(stubborn, 0o755);
    const source = new FfmpegStreamSource({ input: clip, ffmpegPath: stubborn, killGraceMs: 100 });
    let pid = 0;
    for await (const frame of source.frames()) {
      expect(frame.image).toMatchObject({ kind: 'raw', width: 2, height: 2 });
      pid = source.stats().ffmpegPids[0] ?? 0;
      break;
    }
    expect(pid).toBeGreaterThan(0);
    expect(processExists(pid)).toBe(false);
  });

  it('says so when the ffmpeg binary is missing', async () => {
    const source = new FfmpegStreamSource({ input: clip, ffmpegPath: join(dir, 'no-such-ffmpeg') });
    await expect(collect(source)).rejects.toMatchObject({ code: SOURCE_FFMPEG_MISSING });
  });

  it('drops the oldest frames for a slow consumer, keeping memory bounded and the newest frame', async () => {
    const source = new FfmpegStreamSource({
      input: clip,
      fps: 10,
      backpressure: 'drop-oldest',
      maxQueuedFrames: 2,
    });
    const indexes: number[] = [];
    for await (const frame of source.frames()) {
      indexes.push(frame.index);
      // A consumer busy with inference while ffmpeg decodes the rest of the clip.
      if (indexes.length === 1) await new Promise((resolve) => setTimeout(resolve, 400));
    }
    const stats = source.stats();
    expect(stats.dropped).toBeGreaterThan(0);
    expect(stats.delivered + stats.dropped).toBe(20);
    expect(stats.peakQueued).toBeLessThanOrEqual(2);
    expect(stats.buffersAllocated).toBeLessThanOrEqual(4); // queue + frame being filled + the one held
    expect(indexes.at(-1)).toBe(19);
  });

  it('pauses a file for a slow consumer instead of dropping, without tripping the stall watchdog', async () => {
    const source = new FfmpegStreamSource({ input: clip, fps: 10, maxQueuedFrames: 2, stallTimeoutMs: 150 });
    let count = 0;
    for await (const _frame of source.frames()) {
      if (++count === 1) await new Promise((resolve) => setTimeout(resolve, 400));
    }
    expect(count).toBe(20);
    expect(source.stats().dropped).toBe(0);
  });

  it('reconnects a live stream that ends, numbering frames on', async () => {
    const before = server.requests();
    const source = new FfmpegStreamSource({
      input: server.url('/live.ts'),
      fps: 10,
      backpressure: 'pause',
      reconnect: { initialDelayMs: 10 },
    });
    const frames = await collect(source, 25); // one run of the clip gives 20
    expect(frames.map((f) => f.index)).toEqual(Array.from({ length: 25 }, (_, i) => i));
    expect(source.stats().restarts).toBe(1);
    expect(server.requests() - before).toBe(2);
    expect(source.stats().ffmpegPids).toEqual([]);
  });

  it('gives up reconnecting after maxAttempts runs without a frame', async () => {
    const port = await closedPort();
    const source = new FfmpegStreamSource({
      input: `rtsp://127.0.0.1:${port}/live`,
      reconnect: { initialDelayMs: 5, maxAttempts: 2 },
    });
    await expect(collect(source)).rejects.toMatchObject({ code: SOURCE_UNREACHABLE });
    expect(source.stats().restarts).toBe(2);
  });

  it('does not reconnect a file that ended', async () => {
    const source = new FfmpegStreamSource({ input: clip, fps: 1, reconnect: true });
    expect(await collect(source)).toHaveLength(2);
    expect(source.stats().restarts).toBe(0);
  });

  it('rejects out-of-range options with every problem listed', () => {
    let err: unknown;
    try {
      new FfmpegStreamSource({ input: clip, fps: 0, maxWidth: 1.5 });
    } catch (e) {
      err = e;
    }
    expect(err).toMatchObject({ code: 'CS_ERR_SOURCE_OPTIONS', statusCode: 400 });
    expect((err as { details: { problems: string[] } }).details.problems).toHaveLength(2);
  });
});
