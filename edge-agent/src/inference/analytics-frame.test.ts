import type { Detection } from '@citysense/algorithms';
import { decodeVideoAnalyticsFrame, VIDEO_ANALYTICS_METRIC } from '@citysense/protocol';
import { describe, expect, it } from 'vitest';
import { analyticsReading, toAnalyticsFrame } from './analytics-frame.ts';
import { percentile } from './inference-stats.ts';

const detection = (objects: Detection['objects']): Detection => ({
  width: 400,
  height: 200,
  objects,
  timings: { preprocessMs: 1, inferMs: 12.5, postprocessMs: 0.5 },
});
const ctx = {
  source: 'cam-1',
  time: 1_700_000_000_123,
  algorithmId: 'yolox-nano',
  algorithmVersion: '1.0.0',
};

describe('analytics frames', () => {
  it('normalises boxes to the frame, clamping overhangs, and decodes at the hub as sent', () => {
    const frame = toAnalyticsFrame(
      detection([
        { classId: 0, label: 'person', score: 0.9, box: [100, 50, 300, 150] },
        { classId: 2, label: 'car', score: 0.5, box: [-4, -2, 404, 210] },
        { classId: 9, label: 'scene', score: 1.2 },
      ]),
      ctx,
    );
    expect(frame.objects.map((o) => o.box)).toEqual([
      { left: 0.25, top: 0.25, right: 0.75, bottom: 0.75 },
      { left: 0, top: 0, right: 1, bottom: 1 },
      { left: 0, top: 0, right: 1, bottom: 1 },
    ]);
    expect(frame.objects[2]?.likelihood).toBe(1);
    const reading = analyticsReading(frame);
    expect(reading).toMatchObject({
      device: 'cam-1',
      metric: VIDEO_ANALYTICS_METRIC,
      time: ctx.time,
      quality: 'good',
    });
    const decoded = decodeVideoAnalyticsFrame(reading.value as Uint8Array);
    expect(decoded).toMatchObject({
      source: 'cam-1',
      frameWidth: 400,
      frameHeight: 200,
      algorithmVersion: '1.0.0',
    });
    expect(decoded.inferMs).toBeCloseTo(12.5);
    expect(decoded.objects[0]?.label).toBe('person');
  });

  it('takes nearest-rank percentiles', () => {
    const sorted = Array.from({ length: 20 }, (_, i) => i + 1);
    expect(percentile(sorted, 0.5)).toBe(10);
    expect(percentile(sorted, 0.95)).toBe(19);
    expect(percentile([], 0.5)).toBe(0);
  });
});
