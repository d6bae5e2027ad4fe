/** Detector output → the wire's VideoAnalyticsFrame → a reading the recorder spools like any other. */
import type { Detection } from '@citysense/algorithms';
import type { Reading } from '@citysense/device-drivers';
import {
  type AnalyticsObject,
  EDGE_ALERT_METRIC,
  type EdgeAlert,
  encodeEdgeAlert,
  encodeVideoAnalyticsFrame,
  VIDEO_ANALYTICS_METRIC,
  type VideoAnalyticsFrame,
} from '@citysense/protocol';

/** Which frame a detection belongs to and what produced it. */
export interface FrameContext {
  source: string;
  /** Frame time, ms since the epoch. */
  time: number;
  algorithmId: string;
  algorithmVersion: string;
}

const MAX_TEXT = 128;

/**
 * Converts one detection: boxes from source pixels to 0..1 of the frame (clamped, so a
 * box the decoder let overhang the edge still validates at the hub), likelihoods clamped
 * to 0..1, untracked objects (objectId 0). Classifier outputs without a box cover the frame.
 */
export function toAnalyticsFrame(detection: Detection, ctx: FrameContext): VideoAnalyticsFrame {
  const { width, height } = detection;
  const objects: AnalyticsObject[] = detection.objects.map((o) => {
    const [x1, y1, x2, y2] = o.box ?? [0, 0, width, height];
    const left = unit(x1 / width);
    const top = unit(y1 / height);
    return {
      label: o.label.slice(0, MAX_TEXT) || String(o.classId),
      likelihood: unit(o.score),
      classId: o.classId,
      objectId: 0,
      box: { left, top, right: Math.max(left, unit(x2 / width)), bottom: Math.max(top, unit(y2 / height)) },
    };
  });
  return {
    utcTimeMs: Math.round(ctx.time),
    source: ctx.source,
    algorithmId: ctx.algorithmId,
    algorithmVersion: ctx.algorithmVersion,
    frameWidth: width,
    frameHeight: height,
    objects,
    inferMs: detection.timings.inferMs,
  };
}

/** The reading that carries an encoded frame: device = source id, metric VIDEO_ANALYTICS_METRIC (Bytes). */
export function analyticsReading(frame: VideoAnalyticsFrame): Reading {
  return {
    device: frame.source,
    metric: VIDEO_ANALYTICS_METRIC,
    value: encodeVideoAnalyticsFrame(frame),
    time: frame.utcTimeMs,
    quality: 'good',
  };
}

/** The reading that carries an edge alert: device = source id, metric EDGE_ALERT_METRIC (Bytes). */
export function alertReading(alert: EdgeAlert): Reading {
  return {
    device: alert.source,
    metric: EDGE_ALERT_METRIC,
    value: encodeEdgeAlert(alert),
    time: alert.utcTimeMs,
    quality: 'good',
  };
}

function unit(v: number): number {
  return Number.isFinite(v) ? Math.min(1, Math.max(0, v)) : 0;
}
