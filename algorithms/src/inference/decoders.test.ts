import { describe, expect, it } from 'vitest';
import type { ModelInput } from '../manifest.ts';
import { decodeSoftmax, decodeYolov8, decodeYolox, type Thresholds } from './decoders.ts';
import { planTransform } from './preprocess.ts';

const thresholds: Thresholds = { score: 0.3, iou: 0.45, maxDetections: 100 };

function inputOf(size: number, letterboxAlign: ModelInput['letterboxAlign']): ModelInput {
  return {
    name: 'images',
    shape: [1, 3, size, size],
    layout: 'NCHW',
    colorOrder: 'RGB',
    scale: 1,
    mean: [0, 0, 0],
    std: [1, 1, 1],
    resize: 'letterbox',
    letterboxAlign,
    padValue: 114,
  };
}

describe('yolov8 decoder', () => {
  // 1280×720 into a centred 640² letterbox: r = 0.5, image rows 140–500.
  const transform = planTransform(inputOf(640, 'center'), 1280, 720);
  const labels = ['person', 'car', 'bus'];

  /** [1, 4 + 3, N] channel-major from one row per candidate: cx, cy, w, h, three class scores. */
  function tensor(rows: number[][]) {
    const n = rows.length;
    const data = new Float32Array(7 * n);
    rows.forEach((row, i) => {
      row.forEach((v, ch) => {
        data[ch * n + i] = v;
      });
    });
    return { data, dims: [1, 7, n] };
  }

  it('maps centre/size boxes to source pixels, suppresses per class, drops low scores and padding', () => {
    const out = tensor([
      [320, 320, 100, 50, 0.1, 0.9, 0.0],
      [325, 322, 100, 50, 0.1, 0.8, 0.0], // overlaps the first car: suppressed
      [320, 320, 100, 50, 0.0, 0.0, 0.7], // same place, other class: kept
      [100, 400, 20, 20, 0.1, 0.1, 0.1], // below the score threshold
      [100, 50, 20, 20, 0.95, 0.0, 0.0], // wholly in the top padding
    ]);
    const objects = decodeYolov8(out, { labels, transform, thresholds });
    expect(objects.map((o) => [o.label, o.score])).toEqual([
      ['car', expect.closeTo(0.9, 6)],
      ['bus', expect.closeTo(0.7, 6)],
    ]);
    // x (270–370) / 0.5, y (295–345 - 140) / 0.5.
    expect(objects[0]?.box).toEqual([540, 310, 740, 410]);
  });

  it('refuses an output whose class count differs from the labels', () => {
    expect(() =>
      decodeYolov8(tensor([[1, 1, 1, 1, 0.5, 0.5, 0.5]]), { labels: ['a', 'b'], transform, thresholds }),
    ).toThrow(expect.objectContaining({ code: 'CS_ERR_ALGO_GRAPH_MISMATCH' }));
  });
});

describe('yolox decoder', () => {
  // 64² input, strides 8/16/32: 64 + 16 + 4 = 84 cells of [x, y, log w, log h, obj, 2 classes].
  const transform = planTransform(inputOf(64, 'top-left'), 64, 64);
  const labels = ['person', 'car'];
  const cellAt = (stride: number, gx: number, gy: number) => {
    const before = { 8: 0, 16: 64, 32: 80 }[stride] ?? 0;
    return before + gy * (64 / stride) + gx;
  };

  it('decodes grid offsets per stride, scores objectness × class and keeps the best class', () => {
    const data = new Float32Array(84 * 7);
    data.set([0.5, 0.5, Math.log(2), 0, 0.9, 0.1, 0.8], cellAt(16, 1, 2) * 7);
    data.set([0.5, 0.5, 0, 0, 0.9, 0.2, 0.2], cellAt(8, 3, 3) * 7); // 0.18 < 0.3
    const objects = decodeYolox({ data, dims: [1, 84, 7] }, [8, 16, 32], { labels, transform, thresholds });
    expect(objects).toHaveLength(1);
    expect(objects[0]).toMatchObject({ classId: 1, label: 'car', score: expect.closeTo(0.72, 6) });
    // centre ((0.5 + 1) × 16, (0.5 + 2) × 16) = (24, 40), size 32 × 16.
    expect(objects[0]?.box?.map((v) => Math.round(v * 1e4) / 1e4)).toEqual([8, 32, 40, 48]);
  });

  it('refuses an output whose cell count does not fit the strides', () => {
    const data = new Float32Array(80 * 7);
    expect(() =>
      decodeYolox({ data, dims: [1, 80, 7] }, [8, 16, 32], { labels, transform, thresholds }),
    ).toThrow(/80 cells but strides \[8, 16, 32\] on a 64×64 input make 84/);
  });
});

describe('softmax decoder', () => {
  const labels = ['cat', 'dog', 'bird', 'fish'];

  it('turns logits into probabilities and returns the top classes above the threshold', () => {
    const data = new Float32Array([2, 1, 0.1, 3]);
    const top = decodeSoftmax({ data, dims: [1, 4] }, labels, {
      ...thresholds,
      score: 0.1,
      maxDetections: 2,
    });
    const e = [2, 1, 0.1, 3].map(Math.exp);
    const sum = e.reduce((a, b) => a + b, 0);
    expect(top).toEqual([
      { classId: 3, label: 'fish', score: expect.closeTo((e[3] ?? 0) / sum, 5) },
      { classId: 0, label: 'cat', score: expect.closeTo((e[0] ?? 0) / sum, 5) },
    ]);
    expect(top[0]).not.toHaveProperty('box');
  });

  it('takes values that already form a distribution as they are', () => {
    const data = new Float32Array([0.1, 0.6, 0.3, 0]);
    const top = decodeSoftmax({ data, dims: [1, 4] }, labels, thresholds);
    expect(top.map((o) => [o.label, o.score])).toEqual([
      ['dog', expect.closeTo(0.6, 6)],
      ['bird', expect.closeTo(0.3, 6)],
    ]);
  });
});
