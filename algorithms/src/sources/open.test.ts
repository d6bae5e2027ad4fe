import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SOURCE_NOT_FOUND, SOURCE_UNREACHABLE } from './errors.ts';
import { FfmpegStreamSource } from './ffmpeg-stream.ts';
import { ImageFileSource } from './image-file.ts';
import { ImageFolderSource } from './image-folder.ts';
import { openFrameSource } from './open.ts';
import { collect, makeClip } from './test-fixtures.ts';

const SAMPLES = fileURLToPath(new URL('../../packages/yolox-nano/samples', import.meta.url));
let dir: string;
let clip: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'cs-open-'));
  clip = await makeClip(dir, 'clip.mkv', 'testsrc=size=64x48:rate=10', 1);
});

afterAll(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe('openFrameSource', () => {
  it('opens images, folders, URLs and videos with the matching source', async () => {
    expect(await openFrameSource(join(SAMPLES, '000000000139.jpg'))).toBeInstanceOf(ImageFileSource);
    expect(await openFrameSource(pathToFileURL(join(SAMPLES, '000000000139.jpg')).href)).toBeInstanceOf(
      ImageFileSource,
    );
    const folder = await openFrameSource(SAMPLES, { loop: true });
    expect(folder).toBeInstanceOf(ImageFolderSource);
    expect(folder.describe()).toMatchObject({ kind: 'image-folder', loop: true });
    const rtsp = await openFrameSource('rtsp://admin:pw@10.0.0.7/ch1', { fps: 2, id: 'gate-3' });
    expect(rtsp).toBeInstanceOf(FfmpegStreamSource);
    expect(rtsp.describe()).toEqual({
      id: 'gate-3',
      kind: 'ffmpeg',
      input: 'rtsp://admin:***@10.0.0.7/ch1',
      live: true,
      fps: 2,
      maxWidth: undefined,
    });
    // A video extension goes to ffmpeg even before the file exists (a recording still being written).
    expect(await openFrameSource(join(dir, 'later.mp4'))).toBeInstanceOf(FfmpegStreamSource);
  });

  it('decodes a video file it opened', async () => {
    const source = await openFrameSource(clip, { fps: 5 });
    expect(source.describe()).toMatchObject({ kind: 'ffmpeg', live: false });
    expect(await collect(source)).toHaveLength(5);
  });

  it('hands a file that is no image to ffmpeg, which reports it', async () => {
    const odd = join(dir, 'capture.bin');
    await writeFile(odd, Buffer.alloc(1000, 1));
    const source = await openFrameSource(odd);
    expect(source).toBeInstanceOf(FfmpegStreamSource);
    await expect(collect(source)).rejects.toHaveProperty('code', expect.stringMatching(/^CS_ERR_SOURCE_/));
  });

  it('reports a missing path without a video extension as not found', async () => {
    await expect(openFrameSource(join(dir, 'nothing-here'))).rejects.toMatchObject({
      code: SOURCE_NOT_FOUND,
    });
    await expect(collect(await openFrameSource(join(dir, 'gone.mp4')))).rejects.toMatchObject({
      code: SOURCE_UNREACHABLE,
    });
  });
});
