/**
 * Tiered quality alarms: a camera's status is the worst severity among its findings, and an alarm is
 * raised only when that status changes (ok → warning → critical, and an `info` clear back to ok), so a
 * camera that stays blurred for a day is one alarm, not 86 400.
 */
import type { Finding } from '@citysense/algorithms';
import type { AlertSeverity, EdgeAlert } from '@citysense/protocol';

/** Quality status of a camera as the `Quality/Status` metric carries it. */
export const QualityStatus = { ok: 0, warning: 1, critical: 2 } as const;
/** 0 ok, 1 warning, 2 critical. */
export type QualityStatus = (typeof QualityStatus)[keyof typeof QualityStatus];

/** Algorithm id on quality alarms. */
export const VIDEO_QUALITY_ALGORITHM_ID = 'video-quality';
/** Version of the diagnosis rules on quality alarms; bump when the rules change what they report. */
export const VIDEO_QUALITY_ALGORITHM_VERSION = '1';
/** Rule id of quality alarms: one rule per camera, the camera is the alert source. */
export const VIDEO_QUALITY_RULE_ID = 'quality';

/** Longest alert message; the hub keeps 500 characters. */
const MAX_MESSAGE = 500;

/** The worst severity among `findings`. */
export function qualityStatus(findings: readonly Pick<Finding, 'severity'>[]): QualityStatus {
  let status: QualityStatus = QualityStatus.ok;
  for (const f of findings) {
    if (f.severity === 'critical') return QualityStatus.critical;
    status = QualityStatus.warning;
  }
  return status;
}

/** What the alarm state machine remembers of one camera. */
export interface QualityAlarmState {
  status: QualityStatus;
  /** When the camera last left `ok`, ms; undefined while ok. */
  since: number | undefined;
  /** Finding kinds of the last alarm raised, for the clear message. */
  kinds: string[];
}

/** A camera that has raised nothing yet. */
export function initialAlarmState(): QualityAlarmState {
  return { status: QualityStatus.ok, since: undefined, kinds: [] };
}

/**
 * The alert to raise when `findings` at `time` change the camera's status, else undefined. Updates
 * `state`. `heldSeconds` is how long the camera has been out of `ok`: 0 when it first leaves it.
 */
export function nextQualityAlarm(
  state: QualityAlarmState,
  camera: string,
  findings: readonly Finding[],
  time: number,
): EdgeAlert | undefined {
  const status = qualityStatus(findings);
  if (status === state.status) return undefined;
  const since = state.since ?? time;
  const heldSeconds = Math.max(0, (time - since) / 1000);
  const previousKinds = state.kinds;
  state.status = status;
  state.since = status === QualityStatus.ok ? undefined : since;
  state.kinds = findings.map((f) => f.kind);
  const message =
    status === QualityStatus.ok
      ? `video quality back to normal after ${heldSeconds.toFixed(0)} s (was: ${previousKinds.join(', ') || 'none'})`
      : findings.map((f) => `${f.kind} (${f.severity}): ${f.message}`).join('; ');
  return {
    utcTimeMs: time,
    ruleId: VIDEO_QUALITY_RULE_ID,
    kind: 'quality',
    severity: severityOf(status),
    source: camera,
    algorithmId: VIDEO_QUALITY_ALGORITHM_ID,
    algorithmVersion: VIDEO_QUALITY_ALGORITHM_VERSION,
    objects: [],
    count: findings.length,
    heldSeconds,
    message: message.length > MAX_MESSAGE ? `${message.slice(0, MAX_MESSAGE - 1)}…` : message,
  };
}

function severityOf(status: QualityStatus): AlertSeverity {
  if (status === QualityStatus.critical) return 'critical';
  return status === QualityStatus.warning ? 'warning' : 'info';
}
