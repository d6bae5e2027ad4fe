import sharp from 'sharp';
import { describe, expect, it } from 'vitest';
import type { ModelInput } from '../manifest.ts';
import { planTransform, preprocess, type RgbFrame, toSourceBox } from './preprocess.ts';

const yoloxInput: ModelInput = {
  name: 'images',
  shape: [1, 3, 416, 416],
  layout: 'NCHW',
  colorOrder: 'BGR',
  scale: 1,
  mean: [0, 0, 0],
  std: [1, 1, 1],
  resize: 'letterbox',
  letterboxAlign: 'top-left',
  padValue: 114,
};

const RED = [255, 0, 0] as const;
const BLUE = [0, 0, 255] as const;

/** 208×104 blue frame with a red rectangle at x 52–104, y 26–52: letterboxed into 416² it doubles in size. */
function testFrame(): RgbFrame {
  const width = 208;
  const height = 104;
  const rgb = new Uint8Array(width * height * 3);
  for (let y = 0; y < height; y++)
    for (let x = 0; x < width; x++)
      rgb.set(x >= 52 && x < 104 && y >= 26 && y < 52 ? RED : BLUE, (y * width + x) * 3);
  return { rgb, width, height };
}

/** Tensor value at (x, y) of channel c. */
function at(data: Float32Array, input: ModelInput, x: number, y: number, c: number): number {
  const W = 416;
  const H = 416;
  const value = input.layout === 'NCHW' ? data[c * W * H + y * W + x] : data[(y * W + x) * 3 + c];
  if (value === undefined) throw new Error(`no tensor value at ${x},${y},${c}`);
  return value;
}

describe('preprocess', () => {
  it('letterboxes top-left: image scaled by r, BGR planes, pad value right and below', async () => {
    const { data, dims, transform } = await preprocess(testFrame(), yoloxInput);
    expect(dims).toEqual([1, 3, 416, 416]);
    expect(transform).toMatchObject({
      scaleX: 2,
      scaleY: 2,
      padX: 0,
      padY: 0,
      resizedWidth: 416,
      resizedHeight: 208,
    });
    // Inside the red rectangle (source 52–104 × 26–52 → tensor 104–208 × 52–104), BGR order.
    expect([0, 1, 2].map((c) => at(data, yoloxInput, 150, 78, c))).toEqual([0, 0, 255]);
    // Blue background.
    expect([0, 1, 2].map((c) => at(data, yoloxInput, 300, 20, c))).toEqual([255, 0, 0]);
    // Padding below the image, every channel.
    for (const [x, y] of [
      [0, 208],
      [200, 300],
      [415, 415],
    ] as const)
      expect([0, 1, 2].map((c) => at(data, yoloxInput, x, y, c))).toEqual([114, 114, 114]);
  });

  it('centres the letterbox, keeps RGB order and normalises (p * scale - mean) / std', async () => {
    const input: ModelInput = {
      ...yoloxInput,
      colorOrder: 'RGB',
      letterboxAlign: 'center',
      scale: 1 / 255,
      mean: [0.485, 0.456, 0.406],
      std: [0.229, 0.224, 0.225],
    };
    const { data, transform } = await preprocess(testFrame(), input);
    expect(transform).toMatchObject({ padX: 0, padY: 104 });
    const norm = (p: number, c: 0 | 1 | 2) => (p / 255 - input.mean[c]) / input.std[c];
    const red = [0, 1, 2].map((c) => at(data, input, 150, 104 + 78, c));
    expect(red[0]).toBeCloseTo(norm(255, 0), 5);
    expect(red[1]).toBeCloseTo(norm(0, 1), 5);
    expect(red[2]).toBeCloseTo(norm(0, 2), 5);
    for (const y of [0, 103, 312, 415]) expect(at(data, input, 10, y, 2)).toBeCloseTo(norm(114, 2), 5);
    expect(at(data, input, 10, 104 + 10, 2)).toBeCloseTo(norm(255, 2), 5);
  });

  it('writes NHWC and stretches without padding', async () => {
    const input: ModelInput = { ...yoloxInput, shape: [1, 416, 416, 3], layout: 'NHWC', resize: 'stretch' };
    const { data, dims, transform } = await preprocess(testFrame(), input);
    expect(dims).toEqual([1, 416, 416, 3]);
    expect(transform).toMatchObject({ scaleX: 2, scaleY: 4, padX: 0, padY: 0 });
    // Red rectangle: x 104–208, y 104–208 once stretched.
    expect([0, 1, 2].map((c) => at(data, input, 150, 150, c))).toEqual([0, 0, 255]);
    expect([0, 1, 2].map((c) => at(data, input, 300, 400, c))).toEqual([255, 0, 0]);
  });

  it('decodes encoded images to the same tensor as the raw frame, greyscale included', async () => {
    const frame = testFrame();
    const png = await sharp(frame.rgb, { raw: { width: frame.width, height: frame.height, channels: 3 } })
      .png()
      .toBuffer();
    const fromPng = await preprocess(png, yoloxInput);
    const fromFrame = await preprocess(frame, yoloxInput);
    expect(fromPng.transform).toEqual(fromFrame.transform);
    expect(fromPng.data.every((v, i) => v === fromFrame.data[i])).toBe(true);

    const grey = await sharp({
      create: { width: 64, height: 32, channels: 3, background: { r: 90, g: 90, b: 90 } },
    })
      .greyscale()
      .png()
      .toBuffer();
    const { data, transform } = await preprocess(grey, yoloxInput);
    expect(transform).toMatchObject({
      sourceWidth: 64,
      sourceHeight: 32,
      resizedWidth: 416,
      resizedHeight: 208,
    });
    expect([0, 1, 2].map((c) => at(data, yoloxInput, 100, 100, c))).toEqual([90, 90, 90]);
  });

  it('maps tensor boxes back to source pixels and clips them to the frame', () => {
    const t = planTransform({ ...yoloxInput, letterboxAlign: 'center' }, 640, 480);
    expect(t).toMatchObject({ resizedWidth: 416, resizedHeight: 312, padX: 0, padY: 52 });
    const box = toSourceBox(104, 52 + 78, 208, 52 + 156, t);
    expect(box.map((v) => Math.round(v * 1000) / 1000)).toEqual([160, 120, 320, 240]);
    expect(toSourceBox(-20, 0, 500, 500, t)).toEqual([0, 0, 640, 480]);
  });

  it('rejects frames whose byte count does not match their size, and undecodable bytes', async () => {
    await expect(
      preprocess({ rgb: new Uint8Array(10), width: 4, height: 4 }, yoloxInput),
    ).rejects.toMatchObject({
      code: 'CS_ERR_ALGO_IMAGE',
      message: expect.stringContaining('needs 48 bytes'),
    });
    await expect(preprocess(new Uint8Array([1, 2, 3, 4]), yoloxInput)).rejects.toMatchObject({
      code: 'CS_ERR_ALGO_IMAGE',
    });
  });
});
