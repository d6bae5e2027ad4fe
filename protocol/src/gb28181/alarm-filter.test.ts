import { describe, expect, it } from 'vitest';
import { alarmMatches } from './alarm-filter.ts';
import type { AlarmNotify } from './types.ts';

const alarm = (over: Partial<AlarmNotify> = {}): AlarmNotify => ({
  kind: 'alarm',
  sn: 1,
  deviceId: '34020000001320000001',
  priority: 3,
  method: 5,
  time: '2026-11-23T10:00:00',
  description: '',
  alarmType: '2',
  ...over,
});

describe('alarmMatches (GB/T 28181-2016 §A.2.4 e)', () => {
  it('lets everything through an empty filter or one of zeros', () => {
    expect(alarmMatches({}, alarm())).toBe(true);
    expect(alarmMatches({ startPriority: 0, endPriority: 0, methods: [] }, alarm({ priority: 4 }))).toBe(
      true,
    );
  });

  it('keeps priorities inside the inclusive range, open where a bound is 0, in either order', () => {
    const range = { startPriority: 1, endPriority: 2 } as const;
    expect([1, 2, 3, 4].map((p) => alarmMatches(range, alarm({ priority: p as 1 })))).toEqual([
      true,
      true,
      false,
      false,
    ]);
    expect(alarmMatches({ startPriority: 2, endPriority: 1 }, alarm({ priority: 1 }))).toBe(true);
    expect(alarmMatches({ startPriority: 3, endPriority: 0 }, alarm({ priority: 4 }))).toBe(true);
    expect(alarmMatches({ startPriority: 3 }, alarm({ priority: 2 }))).toBe(false);
  });

  it('filters by method, AlarmType and time window', () => {
    expect(alarmMatches({ methods: [1, 2] }, alarm({ method: 5 }))).toBe(false);
    expect(alarmMatches({ methods: [2, 5] }, alarm({ method: 5 }))).toBe(true);
    expect(alarmMatches({ alarmType: '1' }, alarm())).toBe(false);
    expect(alarmMatches({ startTime: '2026-11-23T10:00:01' }, alarm())).toBe(false);
    expect(alarmMatches({ endTime: '2026-11-23T09:59:59' }, alarm())).toBe(false);
    expect(alarmMatches({ startTime: '2026-11-23T00:00:00', endTime: '2026-11-24T00:00:00' }, alarm())).toBe(
      true,
    );
  });
});
