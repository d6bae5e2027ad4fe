import type { AnalyticsObject, VideoAnalyticsFrame } from '@citysense/protocol';
import { describe, expect, it } from 'vitest';
import { AlertRuleEngine, insidePolygon, parseAlertRules, withinHours } from './alert-rules.ts';

/** A person standing with its feet at (x, y). */
function person(x: number, y: number, likelihood = 0.9): AnalyticsObject {
  return {
    label: 'person',
    likelihood,
    classId: 0,
    objectId: 0,
    box: { left: x - 0.05, top: y - 0.3, right: x + 0.05, bottom: y },
  };
}

function frameAt(time: number, objects: AnalyticsObject[], source = 'cam-01'): VideoAnalyticsFrame {
  return {
    utcTimeMs: time,
    source,
    algorithmId: 'yolox-nano',
    algorithmVersion: '1.0.0',
    frameWidth: 640,
    frameHeight: 480,
    inferMs: 15,
    objects,
  };
}

const GATE: Array<[number, number]> = [
  [0.5, 0.5],
  [1, 0.5],
  [1, 1],
  [0.5, 1],
];
const T0 = new Date(2026, 10, 23, 14, 0, 0).getTime(); // 14:00 local time

describe('local alert rules', () => {
  it('fires presence only for objects whose feet stand in the zone, then respects the cooldown', () => {
    const engine = new AlertRuleEngine(
      parseAlertRules([
        { id: 'gate', kind: 'presence', labels: ['person'], zone: GATE, cooldownSeconds: 30 },
      ]),
    );
    expect(engine.evaluate(frameAt(T0, [person(0.2, 0.9)]))).toEqual([]);
    const [alert] = engine.evaluate(frameAt(T0 + 1000, [person(0.7, 0.9), person(0.2, 0.9)]));
    expect(alert).toMatchObject({
      ruleId: 'gate',
      kind: 'presence',
      count: 1,
      source: 'cam-01',
      severity: 'warning',
    });
    expect(alert?.objects).toHaveLength(1);
    expect(engine.evaluate(frameAt(T0 + 20_000, [person(0.7, 0.9)]))).toEqual([]);
    expect(engine.evaluate(frameAt(T0 + 31_000, [person(0.7, 0.9)]))).toHaveLength(1);
    // Another source has its own cooldown.
    expect(engine.evaluate(frameAt(T0 + 31_500, [person(0.7, 0.9)], 'cam-02'))).toHaveLength(1);
  });

  it('fires count above the threshold and ignores low scores', () => {
    const engine = new AlertRuleEngine(
      parseAlertRules([{ id: 'crowd', kind: 'count', labels: ['person'], threshold: 2, minScore: 0.5 }]),
    );
    expect(engine.evaluate(frameAt(T0, [person(0.1, 0.5), person(0.2, 0.5), person(0.3, 0.5, 0.2)]))).toEqual(
      [],
    );
    const [alert] = engine.evaluate(frameAt(T0 + 1, [person(0.1, 0.5), person(0.2, 0.5), person(0.3, 0.5)]));
    expect(alert).toMatchObject({ kind: 'count', count: 3, message: '3 person, more than 2' });
  });

  it('fires dwell after the zone is held long enough, tolerating short gaps but not long ones', () => {
    const engine = new AlertRuleEngine(
      parseAlertRules([
        {
          id: 'loiter',
          kind: 'dwell',
          labels: ['person'],
          zone: GATE,
          seconds: 10,
          gapSeconds: 2,
          cooldownSeconds: 0,
        },
      ]),
    );
    const inZone = [person(0.7, 0.8)];
    const fired: number[] = [];
    for (let s = 0; s <= 8; s++) if (engine.evaluate(frameAt(T0 + s * 1000, inZone)).length) fired.push(s);
    // A 1.5 s gap (a missed detection) does not reset the dwell.
    engine.evaluate(frameAt(T0 + 9_500, []));
    for (let s = 10; s <= 11; s++) {
      const alerts = engine.evaluate(frameAt(T0 + s * 1000, inZone));
      if (alerts.length) fired.push(s);
      if (s === 10) expect(alerts[0]?.heldSeconds).toBe(10);
    }
    expect(fired).toEqual([10, 11]);
    // A 5 s gap does.
    expect(engine.evaluate(frameAt(T0 + 17_000, inZone))).toEqual([]);
  });

  it('stays quiet outside its active hours, also across midnight', () => {
    expect(withinHours(new Date(2026, 0, 1, 23, 30).getTime(), { from: '22:00', to: '06:00' })).toBe(true);
    expect(withinHours(new Date(2026, 0, 1, 5, 59).getTime(), { from: '22:00', to: '06:00' })).toBe(true);
    expect(withinHours(new Date(2026, 0, 1, 12, 0).getTime(), { from: '22:00', to: '06:00' })).toBe(false);
    const engine = new AlertRuleEngine(
      parseAlertRules([
        { id: 'night', kind: 'presence', labels: ['person'], activeHours: { from: '22:00', to: '06:00' } },
      ]),
    );
    expect(engine.evaluate(frameAt(T0, [person(0.5, 0.5)]))).toEqual([]);
    expect(
      engine.evaluate(frameAt(new Date(2026, 10, 23, 23, 0).getTime(), [person(0.5, 0.5)])),
    ).toHaveLength(1);
  });

  it('refuses malformed rules with every problem and a code', () => {
    expect(() => parseAlertRules([{ id: 'x', kind: 'teleport', labels: [] }])).toThrow(
      expect.objectContaining({ code: 'CS_ERR_RULE_INVALID' }),
    );
    expect(() =>
      parseAlertRules([
        { id: 'a', kind: 'presence', labels: ['person'] },
        { id: 'a', kind: 'count', labels: ['car'] },
      ]),
    ).toThrow(/appears twice/);
    expect(() =>
      parseAlertRules([
        {
          id: 'z',
          kind: 'presence',
          labels: ['person'],
          zone: [
            [0, 0],
            [2, 2],
            [0, 1],
          ],
        },
      ]),
    ).toThrow(expect.objectContaining({ code: 'CS_ERR_RULE_INVALID' }));
    expect(insidePolygon(0.75, 0.75, GATE)).toBe(true);
    expect(insidePolygon(0.25, 0.75, GATE)).toBe(false);
  });
});
