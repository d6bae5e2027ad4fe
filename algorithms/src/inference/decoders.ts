/**
 * Output tensor → objects, per the manifest's `output.decoder`. Detection boxes come back in source-frame
 * pixels; class-wise NMS is applied here so every decoder returns final detections.
 */
import { CitysenseError } from '@citysense/protocol';
import type { DecoderName, ModelOutput } from '../manifest.ts';
import { type Box, nms } from './nms.ts';
import { type FrameTransform, toSourceBox } from './preprocess.ts';

/** Score threshold, NMS IoU threshold and the cap on results (manifest `thresholds`). */
export interface Thresholds {
  score: number;
  iou: number;
  maxDetections: number;
}

/** One detected object (or, for classification, one class): `box` in source pixels, absent for classes. */
export interface DetectedObject {
  classId: number;
  label: string;
  score: number;
  box?: Box;
}

/** A float32 output of the graph. */
export interface OutputTensor {
  data: Float32Array;
  dims: readonly number[];
}

/** What a decoder needs besides the tensor. */
export interface DecodeContext {
  labels: readonly string[];
  transform: FrameTransform;
  thresholds: Thresholds;
}

/** Number of classes a decoder reads from an output of this shape, or undefined when the dim is dynamic. */
export function impliedClassCount(
  decoder: DecoderName,
  shape: readonly (number | string)[],
): number | undefined {
  const dim = decoder === 'yolov8' ? shape[1] : shape[shape.length - 1];
  if (typeof dim !== 'number' || dim <= 0) return undefined;
  if (decoder === 'yolox') return dim - 5;
  if (decoder === 'yolov8') return dim - 4;
  return dim;
}

/** Decodes `tensor` with the manifest's decoder. */
export function decodeOutput(
  output: ModelOutput,
  tensor: OutputTensor,
  ctx: DecodeContext,
): DetectedObject[] {
  switch (output.decoder) {
    case 'yolox':
      return decodeYolox(tensor, output.strides ?? [8, 16, 32], ctx);
    case 'yolov8':
      return decodeYolov8(tensor, ctx);
    case 'softmax':
      return decodeSoftmax(tensor, ctx.labels, ctx.thresholds);
  }
}

interface Candidate {
  classId: number;
  score: number;
  box: Box;
}

/**
 * YOLOX head, [1, N, 5 + C]: one row per grid cell, strides in order, cells row-major; raw offsets
 * (x, y) and log sizes (w, h) in stride units, then objectness and class scores, sigmoid already applied
 * by the export. Best class per cell (as YOLOX's own postprocess), score = objectness × class score.
 */
export function decodeYolox(
  tensor: OutputTensor,
  strides: readonly number[],
  ctx: DecodeContext,
): DetectedObject[] {
  const { data, dims } = tensor;
  const { transform: t, thresholds } = ctx;
  const row = dims[dims.length - 1] ?? 0;
  const classes = row - 5;
  checkClassCount('yolox', classes, ctx.labels);
  const cells = data.length / row;
  const expected = strides.reduce(
    (n, s) => n + Math.floor(t.inputWidth / s) * Math.floor(t.inputHeight / s),
    0,
  );
  if (cells !== expected)
    throw new CitysenseError(
      'CS_ERR_ALGO_GRAPH_MISMATCH',
      `yolox output has ${cells} cells but strides [${strides.join(', ')}] on a ${t.inputWidth}×${t.inputHeight} ` +
        `input make ${expected}`,
      400,
      { dims },
    );
  const candidates: Candidate[] = [];
  let base = 0;
  for (const s of strides) {
    const gw = Math.floor(t.inputWidth / s);
    const gh = Math.floor(t.inputHeight / s);
    for (let gy = 0; gy < gh; gy++) {
      for (let gx = 0; gx < gw; gx++, base += row) {
        const objectness = data[base + 4] as number;
        // score = objectness × class score ≤ objectness: most cells stop here.
        if (objectness < thresholds.score) continue;
        const [classId, classScore] = argmax(data, base + 5, classes);
        const score = objectness * classScore;
        if (score < thresholds.score) continue;
        const cx = ((data[base] as number) + gx) * s;
        const cy = ((data[base + 1] as number) + gy) * s;
        const w = Math.exp(data[base + 2] as number) * s;
        const h = Math.exp(data[base + 3] as number) * s;
        pushCandidate(candidates, classId, score, cx, cy, w, h, t);
      }
    }
  }
  return finish(candidates, ctx);
}

/** YOLOv8 head, [1, 4 + C, N] channel-major: cx, cy, w, h in input pixels, then class scores; no objectness. */
export function decodeYolov8(tensor: OutputTensor, ctx: DecodeContext): DetectedObject[] {
  const { data, dims } = tensor;
  const channels = dims[1] ?? 0;
  const classes = channels - 4;
  checkClassCount('yolov8', classes, ctx.labels);
  const n = dims[2] ?? 0;
  if (data.length !== channels * n)
    throw new CitysenseError(
      'CS_ERR_ALGO_GRAPH_MISMATCH',
      `yolov8 output must be [1, 4 + C, N], got [${dims.join(', ')}]`,
      400,
    );
  const candidates: Candidate[] = [];
  for (let i = 0; i < n; i++) {
    let classId = 0;
    let score = Number.NEGATIVE_INFINITY;
    for (let c = 0, k = 4 * n + i; c < classes; c++, k += n) {
      const v = data[k] as number;
      if (v > score) {
        score = v;
        classId = c;
      }
    }
    if (score < ctx.thresholds.score) continue;
    const cx = data[i] as number;
    const cy = data[n + i] as number;
    const w = data[2 * n + i] as number;
    const h = data[3 * n + i] as number;
    pushCandidate(candidates, classId, score, cx, cy, w, h, ctx.transform);
  }
  return finish(candidates, ctx);
}

/**
 * Classification, [1, C]: the best classes with score ≥ the threshold, at most `maxDetections`. Logits get a
 * softmax; values that already form a distribution (all in [0, 1], summing to 1) are taken as they are.
 */
export function decodeSoftmax(
  tensor: OutputTensor,
  labels: readonly string[],
  thresholds: Thresholds,
): DetectedObject[] {
  const classes = tensor.dims[tensor.dims.length - 1] ?? 0;
  checkClassCount('softmax', classes, labels);
  const scores = toProbabilities(tensor.data.subarray(0, classes));
  const ranked: DetectedObject[] = [];
  for (let c = 0; c < classes; c++) {
    const score = scores[c] as number;
    if (score >= thresholds.score) ranked.push({ classId: c, label: labels[c] as string, score });
  }
  return ranked.sort((a, b) => b.score - a.score).slice(0, thresholds.maxDetections);
}

function toProbabilities(values: Float32Array): Float32Array {
  let sum = 0;
  let max = Number.NEGATIVE_INFINITY;
  let inUnitRange = true;
  for (const v of values) {
    sum += v;
    if (v > max) max = v;
    if (v < 0 || v > 1) inUnitRange = false;
  }
  if (inUnitRange && Math.abs(sum - 1) < 1e-3) return values;
  const out = new Float32Array(values.length);
  let total = 0;
  for (let i = 0; i < values.length; i++) {
    const e = Math.exp((values[i] as number) - max);
    out[i] = e;
    total += e;
  }
  for (let i = 0; i < out.length; i++) out[i] = (out[i] as number) / total;
  return out;
}

function argmax(data: Float32Array, start: number, count: number): [number, number] {
  let best = 0;
  let value = Number.NEGATIVE_INFINITY;
  for (let c = 0; c < count; c++) {
    const v = data[start + c] as number;
    if (v > value) {
      value = v;
      best = c;
    }
  }
  return [best, value];
}

function pushCandidate(
  into: Candidate[],
  classId: number,
  score: number,
  cx: number,
  cy: number,
  w: number,
  h: number,
  t: FrameTransform,
): void {
  const box = toSourceBox(cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2, t);
  // A box wholly in the padding clips to nothing.
  if (box[2] > box[0] && box[3] > box[1]) into.push({ classId, score, box });
}

function finish(candidates: Candidate[], ctx: DecodeContext): DetectedObject[] {
  return nms(candidates, ctx.thresholds.iou, ctx.thresholds.maxDetections).map((c) => ({
    classId: c.classId,
    label: ctx.labels[c.classId] as string,
    score: c.score,
    box: c.box,
  }));
}

function checkClassCount(decoder: DecoderName, classes: number, labels: readonly string[]): void {
  if (classes !== labels.length)
    throw new CitysenseError(
      'CS_ERR_ALGO_GRAPH_MISMATCH',
      `${decoder} output has ${classes} classes but the labels file lists ${labels.length}`,
      400,
      { classes, labels: labels.length },
    );
}
