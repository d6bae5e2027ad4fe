import { describe, expect, it } from 'vitest';
import { hasCode } from './errors.ts';
import {
  decodeEdgeAlert,
  decodeVideoAnalyticsFrame,
  type EdgeAlert,
  encodeEdgeAlert,
  encodeVideoAnalyticsFrame,
  type VideoAnalyticsFrame,
} from './video-analytics.ts';

const frame: VideoAnalyticsFrame = {
  utcTimeMs: 1_795_400_000_123,
  source: 'cam-01',
  algorithmId: 'yolox-nano',
  algorithmVersion: '1.0.0',
  frameWidth: 640,
  frameHeight: 480,
  inferMs: 15.5,
  objects: [
    {
      label: 'person',
      likelihood: 0.875,
      classId: 0,
      objectId: 0,
      box: { left: 0.5, top: 0.25, right: 0.75, bottom: 1 },
    },
  ],
};

function codeOf(bytes: Uint8Array): boolean {
  try {
    decodeVideoAnalyticsFrame(bytes);
    return false;
  } catch (err) {
    return hasCode(err, 'CS_ERR_VIDEO_ANALYTICS_DECODE');
  }
}

describe('video analytics frames', () => {
  it('round-trips a frame', () => {
    expect(decodeVideoAnalyticsFrame(encodeVideoAnalyticsFrame(frame))).toEqual(frame);
    const empty = { ...frame, objects: [] };
    expect(decodeVideoAnalyticsFrame(encodeVideoAnalyticsFrame(empty))).toEqual(empty);
  });

  it('refuses garbage, missing fields, boxes outside 0..1 and out-of-range likelihoods with a code', () => {
    expect(codeOf(Uint8Array.from([0xff, 0xff, 0xff, 0x01]))).toBe(true);
    expect(codeOf(encodeVideoAnalyticsFrame({ ...frame, source: '' }))).toBe(true);
    expect(codeOf(encodeVideoAnalyticsFrame({ ...frame, utcTimeMs: 0 }))).toBe(true);
    const [person] = frame.objects;
    if (!person) throw new Error('fixture needs an object');
    const bad = (o: Partial<typeof person>) =>
      encodeVideoAnalyticsFrame({ ...frame, objects: [{ ...person, ...o }] });
    expect(codeOf(bad({ likelihood: 1.5 }))).toBe(true);
    expect(codeOf(bad({ box: { left: 0.5, top: 0, right: 1.2, bottom: 1 } }))).toBe(true);
    expect(codeOf(bad({ box: { left: 0.6, top: 0, right: 0.5, bottom: 1 } }))).toBe(true);
    expect(codeOf(bad({ label: '' }))).toBe(true);
  });
});

describe('edge alerts', () => {
  const alert: EdgeAlert = {
    utcTimeMs: 1_795_400_000_500,
    ruleId: 'crowd-at-gate',
    kind: 'count',
    severity: 'critical',
    source: 'cam-01',
    algorithmId: 'yolox-nano',
    algorithmVersion: '1.0.0',
    objects: frame.objects,
    count: 1,
    heldSeconds: 0,
    message: 'more than 0 persons at the gate',
  };

  it('round-trips an alert and refuses unknown kinds, severities and garbage', () => {
    expect(decodeEdgeAlert(encodeEdgeAlert(alert))).toEqual(alert);
    const refused = (bytes: Uint8Array) => {
      try {
        decodeEdgeAlert(bytes);
        return false;
      } catch (err) {
        return hasCode(err, 'CS_ERR_EDGE_ALERT_DECODE');
      }
    };
    expect(refused(encodeEdgeAlert({ ...alert, kind: 'party' as never }))).toBe(true);
    expect(refused(encodeEdgeAlert({ ...alert, severity: 'meh' as never }))).toBe(true);
    expect(refused(encodeEdgeAlert({ ...alert, ruleId: '' }))).toBe(true);
    expect(refused(Uint8Array.from([0x0a, 0xff]))).toBe(true);
  });
});
