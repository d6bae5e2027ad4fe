/**
 * A GB/T 28181 Notify/Alarm (GB/T 28181-2016 §9.4, body §A.2.5) as the EdgeAlert the hub files in
 * `edge_alerts`: AlarmPriority decides the severity, method, type and description make the message.
 */
import type { AlarmNotify, AlertSeverity, EdgeAlert } from '@citysense/protocol';

/** Algorithm id on device alarms: the standard that carried them. */
export const GB28181_ALARM_ALGORITHM_ID = 'gb28181';
/** Algorithm version on device alarms: the edition of the standard whose fields are read. */
export const GB28181_ALARM_ALGORITHM_VERSION = '2016';

/** Longest alert message; the hub keeps 500 characters. */
const MAX_MESSAGE = 500;

/** AlarmMethod (§A.2.5): 1 phone, 2 device, 3 SMS, 4 GPS, 5 video, 6 device fault, 7 other. */
const METHODS: Readonly<Record<number, string>> = {
  1: 'phone',
  2: 'device',
  3: 'SMS',
  4: 'GPS',
  5: 'video',
  6: 'device fault',
  7: 'other',
};

/** AlarmType per AlarmMethod (GB/T 28181-2016 §A.2.5); absent for the other methods. */
const TYPES: Readonly<Record<number, readonly string[]>> = {
  2: ['video loss', 'tampering', 'storage full', 'high temperature', 'low temperature'],
  5: [
    'manual video alarm',
    'motion detection',
    'left object',
    'removed object',
    'tripwire',
    'intrusion',
    'wrong-way movement',
    'loitering',
    'flow count',
    'crowd density',
    'video anomaly',
    'fast movement',
  ],
  6: ['storage disk fault', 'storage fan fault'],
};

/** Severity of an AlarmPriority: 1 and 2 (first and second level) critical, 3 warning, 4 info. */
export function gbAlarmSeverity(priority: AlarmNotify['priority']): AlertSeverity {
  if (priority <= 2) return 'critical';
  return priority === 3 ? 'warning' : 'info';
}

/** Readable name of an alarm's method and type, e.g. `video alarm (intrusion)`. */
export function gbAlarmKind(alarm: Pick<AlarmNotify, 'method' | 'alarmType'>): string {
  const method = METHODS[alarm.method] ?? `method ${alarm.method}`;
  if (alarm.alarmType === undefined || alarm.alarmType === '') return `${method} alarm`;
  const index = Number(alarm.alarmType);
  const type = Number.isInteger(index) ? TYPES[alarm.method]?.[index - 1] : undefined;
  return `${method} alarm (${type ?? `type ${alarm.alarmType}`})`;
}

/**
 * The EdgeAlert of a device alarm received at `time` from `camera` (the registered device; the alarm's
 * own DeviceID may be one of its channels). The rule id names the method, so the hub can group them.
 */
export function gbAlarmToEdgeAlert(alarm: AlarmNotify, camera: string, time: number): EdgeAlert {
  const parts = [`${gbAlarmKind(alarm)}, priority ${alarm.priority}`];
  if (alarm.deviceId !== camera) parts.push(`on channel ${alarm.deviceId}`);
  const head = parts.join(' ');
  const message = alarm.description.trim() === '' ? head : `${head}: ${alarm.description.trim()}`;
  return {
    utcTimeMs: time,
    ruleId: `gb28181-alarm-${alarm.method}`,
    kind: 'device-alarm',
    severity: gbAlarmSeverity(alarm.priority),
    source: camera,
    algorithmId: GB28181_ALARM_ALGORITHM_ID,
    algorithmVersion: GB28181_ALARM_ALGORITHM_VERSION,
    objects: [],
    count: 1,
    heldSeconds: 0,
    message: message.length > MAX_MESSAGE ? `${message.slice(0, MAX_MESSAGE - 1)}…` : message,
  };
}
