import { describe, expect, it } from 'vitest';
import { type Box, iou, nms } from './nms.ts';

describe('iou', () => {
  it('is 1 for equal boxes, 0 for disjoint or empty ones, and intersection / union otherwise', () => {
    expect(iou([0, 0, 10, 10], [0, 0, 10, 10])).toBe(1);
    expect(iou([0, 0, 10, 10], [10, 0, 20, 10])).toBe(0);
    expect(iou([5, 5, 5, 5], [5, 5, 5, 5])).toBe(0);
    // 5×10 overlap of two 10×10 boxes: 50 / 150.
    expect(iou([0, 0, 10, 10], [5, 0, 15, 10])).toBeCloseTo(1 / 3, 10);
  });
});

describe('nms', () => {
  const det = (classId: number, score: number, box: Box) => ({ classId, score, box });

  it('keeps the best of overlapping boxes per class and keeps other classes', () => {
    const kept = nms(
      [
        det(0, 0.6, [1, 1, 11, 11]),
        det(0, 0.9, [0, 0, 10, 10]),
        det(1, 0.8, [0, 0, 10, 10]),
        det(0, 0.7, [50, 50, 60, 60]),
        det(0, 0.5, [5, 0, 15, 10]),
      ],
      0.45,
      100,
    );
    expect(kept.map((d) => [d.classId, d.score])).toEqual([
      [0, 0.9],
      [1, 0.8],
      [0, 0.7],
      [0, 0.5],
    ]);
  });

  it('stops at maxDetections, best first', () => {
    const boxes = [0.1, 0.5, 0.3, 0.9].map((s, i) => det(0, s, [i * 20, 0, i * 20 + 10, 10]));
    expect(nms(boxes, 0.5, 2).map((d) => d.score)).toEqual([0.9, 0.5]);
  });
});
