import { describe, expect, it } from 'vitest';
import type { DetectedObject } from './decoders.ts';
import { checkExpectations } from './expectations.ts';

const objects: DetectedObject[] = [
  { classId: 0, label: 'person', score: 0.8, box: [10, 10, 50, 100] },
  { classId: 0, label: 'person', score: 0.5, box: [200, 10, 240, 100] },
  { classId: 11, label: 'stop sign', score: 0.9, box: [100, 100, 200, 200] },
];

describe('checkExpectations', () => {
  it('passes when counts and boxes are met', () => {
    const report = checkExpectations(objects, [
      { label: 'person', minCount: 2 },
      { label: 'stop sign', minCount: 1, maxCount: 1, box: [105, 100, 200, 205], minIou: 0.8 },
      { label: 'car', minCount: 0, maxCount: 0 },
    ]);
    expect(report.passed).toBe(true);
    expect(report.results.map((r) => r.found)).toEqual([2, 1, 0]);
    expect(report.results[1]?.bestIou).toBeGreaterThan(0.9);
  });

  it('fails each unmet expectation with a reason', () => {
    const report = checkExpectations(objects, [
      { label: 'person', maxCount: 1 },
      { label: 'car' },
      { label: 'stop sign', box: [300, 300, 400, 400] },
      { label: 'stop sign' },
    ]);
    expect(report.passed).toBe(false);
    expect(report.results.map((r) => r.passed)).toEqual([false, false, false, true]);
    expect(report.results[0]?.reason).toBe('found 2 "person", expected at most 1');
    expect(report.results[1]?.reason).toBe('found 0 "car", expected at least 1');
    expect(report.results[2]?.reason).toMatch(/no "stop sign" overlaps \[300, 300, 400, 400\] by IoU ≥ 0.5/);
  });
});
