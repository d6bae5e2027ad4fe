/** Whether an alarm meets the conditions of an alarm subscription (GB/T 28181-2016 §A.2.4 e). */
import type { AlarmFilter, AlarmNotify } from './types.ts';

/**
 * True when `alarm` passes every condition of `filter`. Priorities are an inclusive range
 * (0 or absent: open on that side; the bounds may come in either order), methods a set,
 * AlarmType compared as text, and times compared as GB/T 28181 local time strings, so
 * an alarm without a time passes a time window it cannot be placed in.
 */
export function alarmMatches(filter: AlarmFilter, alarm: AlarmNotify): boolean {
  const a = filter.startPriority || 1;
  const b = filter.endPriority || 4;
  if (alarm.priority < Math.min(a, b) || alarm.priority > Math.max(a, b)) return false;
  if (filter.methods !== undefined && filter.methods.length > 0 && !filter.methods.includes(alarm.method))
    return false;
  if (filter.alarmType !== undefined && filter.alarmType !== alarm.alarmType) return false;
  if (alarm.time !== '') {
    if (filter.startTime !== undefined && alarm.time < filter.startTime) return false;
    if (filter.endTime !== undefined && alarm.time > filter.endTime) return false;
  }
  return true;
}
