import { fileURLToPath } from 'node:url';
import { FfmpegStreamSource } from '@citysense/algorithms';
import { afterEach, describe, expect, it } from 'vitest';
import { MjpegCamera } from './mjpeg-camera.ts';

const SAMPLES = fileURLToPath(new URL('../../../algorithms/packages/yolox-nano/samples/', import.meta.url));
const scene = [`${SAMPLES}000000000139.jpg`, `${SAMPLES}000000000724.jpg`];

describe('simulated MJPEG camera', () => {
  let camera: MjpegCamera | undefined;
  afterEach(async () => {
    await camera?.stop();
  });

  it('streams its scene over HTTP MJPEG, readable by ffmpeg like a real camera', async () => {
    camera = new MjpegCamera({ images: scene, fps: 10 });
    await camera.start();
    const source = new FfmpegStreamSource({ input: camera.url, fps: 5 });
    const frames = [];
    for await (const f of source.frames()) {
      frames.push(f);
      if (frames.length === 3) break;
    }
    expect(frames.map((f) => (f.image.kind === 'raw' ? [f.image.width, f.image.height] : null))).toEqual([
      [640, 480],
      [640, 480],
      [640, 480],
    ]);
    await new Promise((r) => setTimeout(r, 100));
    expect(camera.viewers).toBe(0);
  });

  it('answers 404 off its stream path and refuses a scene that is not an image', async () => {
    camera = new MjpegCamera({ images: scene });
    await camera.start();
    const res = await fetch(camera.url.replace('/video.mjpg', '/nope'));
    expect(res.status).toBe(404);
    await camera.stop();
    camera = new MjpegCamera({ images: [fileURLToPath(import.meta.url)] });
    await expect(camera.start()).rejects.toMatchObject({ code: 'CS_ERR_CAMERA_SCENE' });
  });
});
