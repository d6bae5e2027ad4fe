import { once } from 'node:events';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { AccessUnitSplitter, isKeyframe } from '../gb28181/media/annexb.ts';
import { ElementaryStreamPublisher, type PublisherExit } from './elementary-publisher.ts';
import { RTMP_OPTIONS, RTMP_PUBLISHER_NOT_STARTED } from './errors.ts';
import { MediaRelayServer, type PublishInfo } from './media-server.ts';
import { encodeElementaryStream, readFrames } from './test-support.ts';

const FPS = 25;

/** Plays access units into a publisher at the camera's frame rate, looping, like a live camera. */
function feed(publisher: ElementaryStreamPublisher, units: Buffer[]): () => void {
  let i = 0;
  const timer = setInterval(() => {
    const au = units[i++ % units.length];
    if (au) publisher.push(au);
  }, 1000 / FPS);
  return () => clearInterval(timer);
}

describe('ElementaryStreamPublisher', () => {
  const relay = new MediaRelayServer({ publishSecret: 'gb28181', publishGraceMs: 2000 });
  let h264: Buffer[] = [];
  let h265: Buffer[] = [];
  const cleanups: (() => Promise<void> | void)[] = [];

  beforeAll(async () => {
    const [a, b] = await Promise.all([
      encodeElementaryStream('h264', 4, FPS),
      encodeElementaryStream('h265', 4, FPS),
      relay.start(),
    ]);
    h264 = new AccessUnitSplitter('h264').push(a ?? Buffer.alloc(0)).map((au) => au.data);
    h265 = new AccessUnitSplitter('h265').push(b ?? Buffer.alloc(0)).map((au) => au.data);
  });

  afterEach(async () => {
    for (const c of cleanups.splice(0).reverse()) await c();
  });

  afterAll(() => relay.stop());

  it('splits an Annex B stream into access units with keyframes every GOP', () => {
    expect(h264.length).toBeGreaterThanOrEqual(99);
    expect(h264.filter((au) => isKeyframe('h264', au)).length).toBe(Math.ceil(h264.length / 10));
    expect(h265.filter((au) => isKeyframe('h265', au)).length).toBe(Math.ceil(h265.length / 10));
  });

  it('relays pushed H.264 access units to RTMP and HTTP-FLV players, then restarts a killed ffmpeg', async () => {
    const publisher = new ElementaryStreamPublisher({
      codec: 'h264',
      url: relay.rtmpUrl('gb', 'cam34020000001320000001', { publish: true }),
      frameRate: FPS,
      restartDelayMs: 50,
    });
    const published = once(relay, 'publish') as Promise<[PublishInfo]>;
    await publisher.start();
    cleanups.push(() => publisher.stop());
    cleanups.push(feed(publisher, h264));
    expect((await published)[0].path).toBe('gb/cam34020000001320000001');

    const frames = await readFrames(relay.flvUrl('gb', 'cam34020000001320000001'), 3);
    expect(frames[0]?.image).toMatchObject({ width: 320, height: 240 });

    // ffmpeg dies under a running stream: a new one takes over and the stream goes on.
    const firstPid = publisher.stats().pid;
    const respawned = once(publisher, 'spawn') as Promise<[number]>;
    process.kill(firstPid ?? 0, 'SIGKILL');
    const [pid] = await respawned;
    expect(pid).not.toBe(firstPid);
    expect(publisher.stats().restarts).toBe(1);
    const after = await readFrames(relay.rtmpUrl('gb', 'cam34020000001320000001'), 3);
    expect(after).toHaveLength(3);
    expect(publisher.stats().written).toBeGreaterThan(0);
  });

  it('drops access units up to the next keyframe while ffmpeg cannot keep up', async () => {
    const publisher = new ElementaryStreamPublisher({
      codec: 'h264',
      url: relay.rtmpUrl('gb', 'slow', { publish: true }),
      maxBufferedBytes: 64 * 1024,
    });
    const published = once(relay, 'publish');
    await publisher.start();
    cleanups.push(() => publisher.stop());
    const pid = publisher.stats().pid ?? 0;
    for (const au of h264.slice(0, 10)) publisher.push(au);
    await published;
    // A frozen ffmpeg reads nothing: the pipe and then our queue fill up.
    process.kill(pid, 'SIGSTOP');
    cleanups.push(() => {
      process.kill(pid, 'SIGCONT'); // before stop(), so that the process still exists
    });
    let accepted = 0;
    let i = 10;
    while (publisher.push(h264[i % h264.length] ?? Buffer.alloc(0))) {
      accepted++;
      i++;
      expect(accepted).toBeLessThan(100_000);
    }
    expect(publisher.stats().waitingForKeyframe).toBe(true);
    const dropped = publisher.stats().dropped;
    process.kill(pid, 'SIGCONT');
    // Thawed, it drains; a 200 fps camera keeps pushing: P-frames are dropped, the next keyframe is written.
    let resumedAt = -1;
    for (let n = 0; n < 400 && resumedAt < 0; n++) {
      await new Promise<void>((resolve) => setTimeout(resolve, 5));
      if (publisher.push(h264[++i % h264.length] ?? Buffer.alloc(0))) resumedAt = i;
    }
    expect(publisher.stats().dropped).toBeGreaterThan(dropped);
    expect(resumedAt).toBeGreaterThanOrEqual(0);
    expect(isKeyframe('h264', h264[resumedAt % h264.length] ?? Buffer.alloc(0))).toBe(true);
  });

  it('relays H.265 as MPEG-TS over HTTP, since FLV in ffmpeg 4.1 has no HEVC', async () => {
    await expect(
      new ElementaryStreamPublisher({ codec: 'h265', url: relay.rtmpUrl('gb', 'hevc') }).start(),
    ).rejects.toMatchObject({ code: RTMP_OPTIONS });
    const publisher = new ElementaryStreamPublisher({
      codec: 'h265',
      url: relay.tsUrl('gb', 'hevc', { publish: true }),
      frameRate: FPS,
    });
    const published = once(relay, 'publish') as Promise<[PublishInfo]>;
    await publisher.start();
    cleanups.push(() => publisher.stop());
    cleanups.push(feed(publisher, h265));
    expect((await published)[0]).toMatchObject({ path: 'gb/hevc', protocol: 'ts' });
    const frames = await readFrames(relay.tsUrl('gb', 'hevc'), 3);
    expect(frames[0]?.image).toMatchObject({ width: 320, height: 240 });
  });

  it('stop() ends ffmpeg cleanly and the relay sees the stream end', async () => {
    const publisher = new ElementaryStreamPublisher({
      codec: 'h264',
      url: relay.rtmpUrl('gb', 'bye', { publish: true }),
    });
    expect(() => publisher.push(h264[0] ?? Buffer.alloc(0))).toThrow(
      expect.objectContaining({ code: RTMP_PUBLISHER_NOT_STARTED }),
    );
    const published = once(relay, 'publish');
    await publisher.start();
    for (const au of h264.slice(0, 20)) publisher.push(au);
    await published;
    const exited = once(publisher, 'exit') as Promise<[PublisherExit]>;
    const unpublished = new Promise<PublishInfo>((resolve) =>
      relay.on('unpublish', (info) => info.path === 'gb/bye' && resolve(info)),
    );
    await publisher.stop();
    await publisher.stop(); // idempotent
    expect(publisher.push(h264[0] ?? Buffer.alloc(0))).toBe(false); // late packets are dropped
    const [exit] = await exited;
    expect(exit).toMatchObject({ expected: true, exitCode: 0 });
    await unpublished;
    expect(relay.streams().some((s) => s.path === 'gb/bye')).toBe(false);
  });
});
