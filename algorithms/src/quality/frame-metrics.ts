/**
 * Image statistics for video quality diagnosis (视频质量诊断, clause 003 §7.3.2.4), measured on a
 * point-sampled grid of at most 160×120 pixels, so a frame costs a millisecond or two whatever its size.
 * One pass over the samples gathers luma moments, near-black and near-white shares, CIELAB chroma, a
 * 32×24 luma thumbnail and the Laplacian; the colour cast and occlusion follow from those.
 */
import { CitysenseError } from '@citysense/protocol';
import type { RgbFrame } from '../inference/preprocess.ts';
import { equivalentCircleCast, writeLabChroma } from './colour-cast.ts';
import { largestOccludedArea } from './occlusion.ts';

/** Most samples read per row and column. */
export const SAMPLE_COLUMNS = 160;
export const SAMPLE_ROWS = 120;
/** Size of the luma thumbnail kept for frame-to-frame comparison (cells of the sample grid). */
export const THUMBNAIL_WIDTH = 32;
export const THUMBNAIL_HEIGHT = 24;
/** Luma at or below which a pixel is near-black: BT.601 studio-swing black level. */
export const NEAR_BLACK_LUMA = 16;
/** Luma at or above which a pixel is near-white: BT.601 studio-swing white level. */
export const NEAR_WHITE_LUMA = 235;

/** What `measureFrame` reports about one frame; luma values are on the 0–255 scale. */
export interface FrameMetrics {
  width: number;
  height: number;
  /** Number of pixels sampled. */
  samples: number;
  /** Mean BT.601 luma. */
  meanLuma: number;
  /** Standard deviation of luma. */
  lumaStdDev: number;
  /** Share (0–1) of samples at or below NEAR_BLACK_LUMA. */
  darkShare: number;
  /** Share (0–1) of samples at or above NEAR_WHITE_LUMA. */
  brightShare: number;
  /** Variance of the 4-neighbour Laplacian of luma at full resolution, around each sample. */
  sharpness: number;
  /** Equivalent-circle colour cast factor K = D / M (see colour-cast.ts). */
  colourCast: number;
  /** D: distance of the mean CIELAB (a*, b*) from neutral. */
  chroma: number;
  /** Mean CIELAB a* and b*: which way the cast goes. */
  meanA: number;
  meanB: number;
  /** Share (0–1) of the thumbnail in the largest dark, flat connected area (see occlusion.ts). */
  occludedShare: number;
  /** Mean luma outside that area. */
  remainderLuma: number;
  /** THUMBNAIL_WIDTH × THUMBNAIL_HEIGHT cell means of luma, row-major. */
  thumbnail: Float32Array;
}

/** Measures one frame. Throws CS_ERR_QUALITY_FRAME when the buffer does not match the size. */
export function measureFrame(frame: RgbFrame): FrameMetrics {
  const { rgb, width: w, height: h } = frame;
  checkFrame(frame);
  const cols = Math.min(SAMPLE_COLUMNS, w);
  const rows = Math.min(SAMPLE_ROWS, h);
  const xs = new Int32Array(cols);
  const cellX = new Int32Array(cols);
  for (let i = 0; i < cols; i++) {
    xs[i] = Math.floor(((i + 0.5) * w) / cols);
    cellX[i] = Math.floor((i * THUMBNAIL_WIDTH) / cols);
  }
  const cells = THUMBNAIL_WIDTH * THUMBNAIL_HEIGHT;
  const cellSum = new Float32Array(cells);
  const cellSumSq = new Float32Array(cells);
  const cellCount = new Float32Array(cells);
  const ab = new Float32Array(2 * cols * rows);
  const stride = w * 3;
  let n = 0;
  let sum = 0;
  let sumSq = 0;
  let dark = 0;
  let bright = 0;
  let lapCount = 0;
  let lapSum = 0;
  let lapSumSq = 0;
  for (let gy = 0; gy < rows; gy++) {
    const y = Math.floor(((gy + 0.5) * h) / rows);
    const cellRow = Math.floor((gy * THUMBNAIL_HEIGHT) / rows) * THUMBNAIL_WIDTH;
    const interiorRow = y > 0 && y < h - 1;
    for (let gx = 0; gx < cols; gx++) {
      const x = xs[gx] as number;
      const o = y * stride + x * 3;
      const r = rgb[o] as number;
      const g = rgb[o + 1] as number;
      const b = rgb[o + 2] as number;
      const luma = 0.299 * r + 0.587 * g + 0.114 * b;
      sum += luma;
      sumSq += luma * luma;
      if (luma <= NEAR_BLACK_LUMA) dark++;
      else if (luma >= NEAR_WHITE_LUMA) bright++;
      const cell = cellRow + (cellX[gx] as number);
      cellSum[cell] = (cellSum[cell] as number) + luma;
      cellSumSq[cell] = (cellSumSq[cell] as number) + luma * luma;
      cellCount[cell] = (cellCount[cell] as number) + 1;
      writeLabChroma(r, g, b, ab, 2 * n);
      n++;
      if (interiorRow && x > 0 && x < w - 1) {
        // Full-resolution Laplacian: defocus blurs detail at pixel scale, which the sample grid of a
        // large frame would skip over.
        const lap =
          lumaAt(rgb, o - 3) +
          lumaAt(rgb, o + 3) +
          lumaAt(rgb, o - stride) +
          lumaAt(rgb, o + stride) -
          4 * luma;
        lapSum += lap;
        lapSumSq += lap * lap;
        lapCount++;
      }
    }
  }
  const thumbnail = new Float32Array(cells);
  const cellStdDev = new Float32Array(cells);
  for (let i = 0; i < cells; i++) {
    const count = cellCount[i] as number;
    const mean = (cellSum[i] as number) / count;
    thumbnail[i] = mean;
    cellStdDev[i] = Math.sqrt(Math.max(0, (cellSumSq[i] as number) / count - mean * mean));
  }
  const meanLuma = sum / n;
  const lapMean = lapCount > 0 ? lapSum / lapCount : 0;
  const cast = equivalentCircleCast(ab, n);
  const occluded = largestOccludedArea(thumbnail, cellStdDev, THUMBNAIL_WIDTH, THUMBNAIL_HEIGHT);
  return {
    width: w,
    height: h,
    samples: n,
    meanLuma,
    lumaStdDev: Math.sqrt(Math.max(0, sumSq / n - meanLuma * meanLuma)),
    darkShare: dark / n,
    brightShare: bright / n,
    sharpness: lapCount > 0 ? Math.max(0, lapSumSq / lapCount - lapMean * lapMean) : 0,
    colourCast: cast.factor,
    chroma: cast.chroma,
    meanA: cast.meanA,
    meanB: cast.meanB,
    occludedShare: occluded.share,
    remainderLuma: occluded.remainderLuma,
    thumbnail,
  };
}

/** Mean absolute difference (0–255) between two thumbnails from `measureFrame`. */
export function thumbnailDifference(a: Float32Array, b: Float32Array): number {
  let total = 0;
  for (let i = 0; i < a.length; i++) total += Math.abs((a[i] as number) - (b[i] as number));
  return total / a.length;
}

function lumaAt(rgb: Uint8Array, o: number): number {
  return 0.299 * (rgb[o] as number) + 0.587 * (rgb[o + 1] as number) + 0.114 * (rgb[o + 2] as number);
}

function checkFrame({ rgb, width, height }: RgbFrame): void {
  if (
    !Number.isInteger(width) ||
    !Number.isInteger(height) ||
    width < THUMBNAIL_WIDTH ||
    height < THUMBNAIL_HEIGHT ||
    rgb.length !== width * height * 3
  )
    throw new CitysenseError(
      'CS_ERR_QUALITY_FRAME',
      `frame must be packed RGB24 of at least ${THUMBNAIL_WIDTH}×${THUMBNAIL_HEIGHT} pixels with width × height × 3 bytes, got ${width}×${height} with ${rgb.length} bytes`,
      400,
    );
}
