import { describe, expect, it } from 'vitest';
import type { RgbFrame } from '../inference/preprocess.ts';
import { measureFrame, THUMBNAIL_HEIGHT, THUMBNAIL_WIDTH, thumbnailDifference } from './frame-metrics.ts';

function solid(width: number, height: number, r: number, g: number, b: number): RgbFrame {
  const rgb = new Uint8Array(width * height * 3);
  for (let i = 0; i < rgb.length; i += 3) rgb.set([r, g, b], i);
  return { rgb, width, height };
}

/** 1080p frame with a pseudo-random texture, so that every statistic has work to do. */
function textured(width: number, height: number): RgbFrame {
  const rgb = new Uint8Array(width * height * 3);
  let seed = 1;
  for (let i = 0; i < rgb.length; i++) {
    seed = (seed * 1103515245 + 12345) >>> 0;
    rgb[i] = seed >>> 24;
  }
  return { rgb, width, height };
}

describe('measureFrame', () => {
  it('measures a uniform grey frame as flat, neutral and unsharp', () => {
    const m = measureFrame(solid(640, 480, 128, 128, 128));
    expect(m.meanLuma).toBeCloseTo(128, 3);
    expect(m.lumaStdDev).toBeLessThan(0.01);
    expect(m.sharpness).toBeLessThan(0.01);
    expect(m.chroma).toBeLessThan(0.1);
    expect(m.darkShare).toBe(0);
    expect(m.brightShare).toBe(0);
    expect(m.thumbnail).toHaveLength(THUMBNAIL_WIDTH * THUMBNAIL_HEIGHT);
  });

  it('counts near-black and near-white pixels and sees a black half as occluded area', () => {
    const frame = solid(320, 240, 250, 250, 250);
    frame.rgb.fill(0, 0, frame.rgb.length / 2);
    const m = measureFrame(frame);
    expect(m.darkShare).toBeCloseTo(0.5, 2);
    expect(m.brightShare).toBeCloseTo(0.5, 2);
    expect(m.occludedShare).toBeCloseTo(0.5, 2);
    expect(m.remainderLuma).toBeGreaterThan(240);
  });

  it('gives a blue frame a strong cast towards blue (negative b*)', () => {
    const m = measureFrame(solid(64, 48, 30, 40, 200));
    expect(m.meanB).toBeLessThan(-50);
    expect(m.colourCast).toBeGreaterThan(10);
  });

  it('compares thumbnails: identical frames differ by 0', () => {
    const a = measureFrame(solid(64, 48, 10, 10, 10)).thumbnail;
    const b = measureFrame(solid(64, 48, 20, 20, 20)).thumbnail;
    expect(thumbnailDifference(a, a)).toBe(0);
    expect(thumbnailDifference(a, b)).toBeCloseTo(10, 3);
  });

  it('rejects a buffer that does not match the frame size', () => {
    expect(() => measureFrame({ rgb: new Uint8Array(10), width: 64, height: 48 })).toThrow(
      expect.objectContaining({ code: 'CS_ERR_QUALITY_FRAME' }),
    );
  });

  it('reads at most 160×120 samples of a 1080p frame', () => {
    const frame = textured(1920, 1080);
    expect(measureFrame(frame).samples).toBe(160 * 120);
  });
});
