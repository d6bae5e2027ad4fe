/**
 * Frame → model input tensor, as the manifest's `input` section says: decode, resize (letterbox or
 * stretch), colour order, layout and normalisation. sharp decodes and resizes; padding, channel order
 * and normalisation happen in one pass over the output pixels.
 */
import { CitysenseError } from '@citysense/protocol';
import sharp, { type Sharp } from 'sharp';
import type { ModelInput } from '../manifest.ts';
import type { Box } from './nms.ts';

/** A decoded frame: packed RGB24 rows without padding, e.g. from an ffmpeg `-pix_fmt rgb24` decoder. */
export interface RgbFrame {
  rgb: Uint8Array;
  width: number;
  height: number;
}

/** An image to run a model on: encoded bytes (JPEG, PNG, WebP…), a file path, or a raw RGB frame. */
export type ImageSource = Uint8Array | string | RgbFrame;

/**
 * Where the source image sits inside the input tensor: tensor x = source x * scaleX + padX.
 * For `letterbox` scaleX and scaleY are both r = min(H/h, W/w) (up to the rounding of the resized size).
 */
export interface FrameTransform {
  sourceWidth: number;
  sourceHeight: number;
  /** Input tensor size. */
  inputWidth: number;
  inputHeight: number;
  /** Size of the resized source inside the tensor. */
  resizedWidth: number;
  resizedHeight: number;
  scaleX: number;
  scaleY: number;
  padX: number;
  padY: number;
}

/** The input tensor of one frame and how to map boxes back to the frame. */
export interface ModelTensor {
  data: Float32Array;
  dims: [number, number, number, number];
  transform: FrameTransform;
}

/** Width and height of the model input, from its shape and layout. */
export function inputSize(input: ModelInput): { width: number; height: number } {
  const [, d1, d2, d3] = input.shape;
  return input.layout === 'NCHW' ? { width: d3 ?? 0, height: d2 ?? 0 } : { width: d2 ?? 0, height: d1 ?? 0 };
}

/** The resize and placement of a `sourceWidth`×`sourceHeight` frame in the model input. */
export function planTransform(input: ModelInput, sourceWidth: number, sourceHeight: number): FrameTransform {
  const { width: inputWidth, height: inputHeight } = inputSize(input);
  if (input.resize === 'stretch')
    return {
      sourceWidth,
      sourceHeight,
      inputWidth,
      inputHeight,
      resizedWidth: inputWidth,
      resizedHeight: inputHeight,
      scaleX: inputWidth / sourceWidth,
      scaleY: inputHeight / sourceHeight,
      padX: 0,
      padY: 0,
    };
  const r = Math.min(inputWidth / sourceWidth, inputHeight / sourceHeight);
  const resizedWidth = Math.min(inputWidth, Math.max(1, Math.round(sourceWidth * r)));
  const resizedHeight = Math.min(inputHeight, Math.max(1, Math.round(sourceHeight * r)));
  const center = input.letterboxAlign === 'center';
  return {
    sourceWidth,
    sourceHeight,
    inputWidth,
    inputHeight,
    resizedWidth,
    resizedHeight,
    // The scale actually applied per axis, so that rounding of the resized size does not shift boxes.
    scaleX: resizedWidth / sourceWidth,
    scaleY: resizedHeight / sourceHeight,
    padX: center ? Math.floor((inputWidth - resizedWidth) / 2) : 0,
    padY: center ? Math.floor((inputHeight - resizedHeight) / 2) : 0,
  };
}

/** Maps a box in input-tensor pixels to source pixels, clipped to the frame. */
export function toSourceBox(x1: number, y1: number, x2: number, y2: number, t: FrameTransform): Box {
  const clipX = (v: number) => Math.min(t.sourceWidth, Math.max(0, (v - t.padX) / t.scaleX));
  const clipY = (v: number) => Math.min(t.sourceHeight, Math.max(0, (v - t.padY) / t.scaleY));
  return [clipX(x1), clipY(y1), clipX(x2), clipY(y2)];
}

/**
 * Turns an image into the model input tensor. `into`, when its length fits, receives the tensor data
 * (reuse it across frames to spare the allocation; do not reuse it while a previous tensor is in use).
 */
export async function preprocess(
  image: ImageSource,
  input: ModelInput,
  into?: Float32Array,
): Promise<ModelTensor> {
  if (input.shape[0] !== 1)
    throw new CitysenseError(
      'CS_ERR_ALGO_UNSUPPORTED',
      `model input batch size must be 1, manifest says ${input.shape[0]}`,
      400,
    );
  const source = isRgbFrame(image) ? checkFrame(image) : await decodeResized(image, input);
  const transform = source.transform ?? planTransform(input, source.width, source.height);
  const rgb =
    source.width === transform.resizedWidth && source.height === transform.resizedHeight
      ? source.rgb
      : await resizeRgb(source, transform);
  const dims = input.shape as [number, number, number, number];
  const size = dims[1] * dims[2] * dims[3];
  const data = into && into.length === size ? into : new Float32Array(size);
  fillTensor(rgb, transform, input, data);
  return { data, dims, transform };
}

interface DecodedSource {
  rgb: Uint8Array;
  width: number;
  height: number;
  /** Set when the pixels are already resized for this transform. */
  transform?: FrameTransform;
}

function isRgbFrame(image: ImageSource): image is RgbFrame {
  return typeof image === 'object' && !(image instanceof Uint8Array);
}

function checkFrame(frame: RgbFrame): DecodedSource {
  const { width, height, rgb } = frame;
  if (!Number.isInteger(width) || !Number.isInteger(height) || width < 1 || height < 1)
    throw new CitysenseError(
      'CS_ERR_ALGO_IMAGE',
      `RGB frame size must be positive integers, got ${width}×${height}`,
      400,
    );
  if (rgb.length !== width * height * 3)
    throw new CitysenseError(
      'CS_ERR_ALGO_IMAGE',
      `RGB frame of ${width}×${height} needs ${width * height * 3} bytes (packed RGB24), got ${rgb.length}`,
      400,
    );
  return { rgb, width, height };
}

/** Decodes an encoded image or file and resizes it in the same sharp pipeline. */
async function decodeResized(image: Uint8Array | string, input: ModelInput): Promise<DecodedSource> {
  try {
    const pipeline = sharp(image, { autoOrient: true, failOn: 'error' });
    const meta = await pipeline.metadata();
    const transform = planTransform(input, meta.autoOrient.width, meta.autoOrient.height);
    const rgb = await toRgb(pipeline, transform);
    return { rgb, width: transform.resizedWidth, height: transform.resizedHeight, transform };
  } catch (err) {
    if (err instanceof CitysenseError) throw err;
    const what = typeof image === 'string' ? image : `${image.length}-byte image`;
    throw new CitysenseError('CS_ERR_ALGO_IMAGE', `cannot decode ${what}: ${(err as Error).message}`, 400);
  }
}

async function resizeRgb(source: DecodedSource, transform: FrameTransform): Promise<Uint8Array> {
  const pipeline = sharp(source.rgb, { raw: { width: source.width, height: source.height, channels: 3 } });
  return toRgb(pipeline, transform);
}

async function toRgb(pipeline: Sharp, t: FrameTransform): Promise<Uint8Array> {
  const { data, info } = await pipeline
    // Bilinear, like the cv2.resize(INTER_LINEAR) the YOLO families train with; no JPEG shrink-on-load, so
    // an encoded image and the same image as a raw frame give the same tensor.
    .resize(t.resizedWidth, t.resizedHeight, { fit: 'fill', kernel: 'linear', fastShrinkOnLoad: false })
    .removeAlpha()
    .toColourspace('srgb')
    .raw({ depth: 'uchar' })
    .toBuffer({ resolveWithObject: true });
  if (info.channels !== 3 || info.width !== t.resizedWidth || info.height !== t.resizedHeight)
    throw new CitysenseError(
      'CS_ERR_ALGO_IMAGE',
      `image decoded to ${info.width}×${info.height}×${info.channels}, expected ${t.resizedWidth}×${t.resizedHeight}×3`,
      400,
    );
  return data;
}

/** Value of every pixel byte per tensor channel: (p * scale - mean[c]) / std[c]. */
function channelTables(input: ModelInput): [Float32Array, Float32Array, Float32Array] {
  const table = (c: 0 | 1 | 2) => {
    const lut = new Float32Array(256);
    for (let p = 0; p < 256; p++) lut[p] = (p * input.scale - input.mean[c]) / input.std[c];
    return lut;
  };
  return [table(0), table(1), table(2)];
}

/** Pads, reorders channels and normalises `rgb` (resized, packed RGB24) into `out`, in one pass. */
function fillTensor(rgb: Uint8Array, t: FrameTransform, input: ModelInput, out: Float32Array): void {
  const [l0, l1, l2] = channelTables(input);
  // Tensor channel c reads source byte s[c]; mean/std are given in tensor channel order.
  const [s0, s1, s2] = input.colorOrder === 'RGB' ? [0, 1, 2] : [2, 1, 0];
  const p0 = l0[input.padValue] as number;
  const p1 = l1[input.padValue] as number;
  const p2 = l2[input.padValue] as number;
  const { inputWidth: W, inputHeight: H, resizedWidth: rw, resizedHeight: rh, padX, padY } = t;
  const xEnd = padX + rw;
  if (input.layout === 'NCHW') {
    const plane = W * H;
    const o1 = plane;
    const o2 = 2 * plane;
    for (let y = 0; y < H; y++) {
      const row = y * W;
      const sy = y - padY;
      if (sy < 0 || sy >= rh) {
        out.fill(p0, row, row + W);
        out.fill(p1, o1 + row, o1 + row + W);
        out.fill(p2, o2 + row, o2 + row + W);
        continue;
      }
      if (padX > 0) {
        out.fill(p0, row, row + padX);
        out.fill(p1, o1 + row, o1 + row + padX);
        out.fill(p2, o2 + row, o2 + row + padX);
      }
      if (xEnd < W) {
        out.fill(p0, row + xEnd, row + W);
        out.fill(p1, o1 + row + xEnd, o1 + row + W);
        out.fill(p2, o2 + row + xEnd, o2 + row + W);
      }
      let si = sy * rw * 3;
      for (let o = row + padX, end = row + xEnd; o < end; o++, si += 3) {
        out[o] = l0[rgb[si + s0] as number] as number;
        out[o1 + o] = l1[rgb[si + s1] as number] as number;
        out[o2 + o] = l2[rgb[si + s2] as number] as number;
      }
    }
    return;
  }
  for (let y = 0; y < H; y++) {
    const sy = y - padY;
    const inside = sy >= 0 && sy < rh;
    let si = sy * rw * 3;
    for (let x = 0, o = y * W * 3; x < W; x++, o += 3) {
      if (inside && x >= padX && x < xEnd) {
        out[o] = l0[rgb[si + s0] as number] as number;
        out[o + 1] = l1[rgb[si + s1] as number] as number;
        out[o + 2] = l2[rgb[si + s2] as number] as number;
        si += 3;
      } else {
        out[o] = p0;
        out[o + 1] = p1;
        out[o + 2] = p2;
      }
    }
  }
}
