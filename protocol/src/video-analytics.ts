/**
 * Video analytics on the wire: what an edge algorithm saw in one frame of one
 * source (ONVIF Profile M style, boxes normalised to 0..1), and the alerts a node
 * raised from its local rules.
 */
import { CitysenseError, errorMessage } from './errors.ts';
import { loadProto, lookupType } from './proto-root.ts';

const root = loadProto('./citysense.proto');
const FrameType = lookupType(root, 'citysense.v1.VideoAnalyticsFrame');
const AlertType = lookupType(root, 'citysense.v1.EdgeAlert');

/** Sparkplug metric name that carries an encoded `VideoAnalyticsFrame` (datatype Bytes). */
export const VIDEO_ANALYTICS_METRIC = 'citysense/Video Analytics';
/** Sparkplug metric name that carries an encoded `EdgeAlert` (datatype Bytes). */
export const EDGE_ALERT_METRIC = 'citysense/Edge Alert';

/** A box in normalised frame coordinates (0..1, origin top-left). */
export interface NormalisedBox {
  left: number;
  top: number;
  right: number;
  bottom: number;
}

/** One detected object. */
export interface AnalyticsObject {
  label: string;
  likelihood: number;
  classId: number;
  box: NormalisedBox;
  /** Track id, 0 when untracked. */
  objectId: number;
}

/** One analysed frame. */
export interface VideoAnalyticsFrame {
  utcTimeMs: number;
  source: string;
  algorithmId: string;
  algorithmVersion: string;
  frameWidth: number;
  frameHeight: number;
  objects: AnalyticsObject[];
  inferMs: number;
}

const MAX_OBJECTS = 1000;
const MAX_TEXT = 128;

/** Encodes a frame. */
export function encodeVideoAnalyticsFrame(frame: VideoAnalyticsFrame): Uint8Array {
  // The .proto is loaded with keepCase: wire field names are snake_case.
  return FrameType.encode({
    utc_time_ms: frame.utcTimeMs,
    source: frame.source,
    algorithm_id: frame.algorithmId,
    algorithm_version: frame.algorithmVersion,
    frame_width: frame.frameWidth,
    frame_height: frame.frameHeight,
    infer_ms: frame.inferMs,
    objects: frame.objects.map(objectToWire),
  }).finish();
}

/**
 * Decodes and validates a frame from a node: sizes, 0..1 boxes and likelihoods,
 * bounded strings and object count. Throws CS_ERR_VIDEO_ANALYTICS_DECODE.
 */
export function decodeVideoAnalyticsFrame(bytes: Uint8Array): VideoAnalyticsFrame {
  const fail = (message: string) =>
    new CitysenseError('CS_ERR_VIDEO_ANALYTICS_DECODE', `invalid video analytics frame: ${message}`, 400);
  const msg = decodeWire(FrameType, bytes, fail);
  const frame: VideoAnalyticsFrame = {
    utcTimeMs: Number(msg.utc_time_ms),
    source: String(msg.source),
    algorithmId: String(msg.algorithm_id),
    algorithmVersion: String(msg.algorithm_version),
    frameWidth: Number(msg.frame_width),
    frameHeight: Number(msg.frame_height),
    inferMs: Number(msg.infer_ms),
    objects: objectsFromWire(msg.objects, fail),
  };
  checkCommon(
    frame.utcTimeMs,
    { source: frame.source, algorithmId: frame.algorithmId, algorithmVersion: frame.algorithmVersion },
    fail,
  );
  return frame;
}

/** Severity of an edge alert. */
export type AlertSeverity = 'info' | 'warning' | 'critical';
/**
 * Kind of local rule that raised an alert; `quality`: video quality diagnosis (clause 003 §7.3.2.4);
 * `device-alarm`: an alarm a field device raised itself (GB/T 28181-2016 §9.4 Notify/Alarm).
 */
export type AlertKind = 'presence' | 'count' | 'dwell' | 'quality' | 'device-alarm';

/** An alert a node raised from a local rule. */
export interface EdgeAlert {
  utcTimeMs: number;
  ruleId: string;
  kind: AlertKind;
  severity: AlertSeverity;
  source: string;
  algorithmId: string;
  algorithmVersion: string;
  /** The objects that made the rule fire. */
  objects: AnalyticsObject[];
  count: number;
  /** Dwell: how long the zone has been held, seconds. */
  heldSeconds: number;
  message: string;
}

const ALERT_KINDS: ReadonlySet<string> = new Set(['presence', 'count', 'dwell', 'quality', 'device-alarm']);
const SEVERITIES: ReadonlySet<string> = new Set(['info', 'warning', 'critical']);

/** Encodes an edge alert. */
export function encodeEdgeAlert(alert: EdgeAlert): Uint8Array {
  return AlertType.encode({
    utc_time_ms: alert.utcTimeMs,
    rule_id: alert.ruleId,
    kind: alert.kind,
    severity: alert.severity,
    source: alert.source,
    algorithm_id: alert.algorithmId,
    algorithm_version: alert.algorithmVersion,
    objects: alert.objects.map(objectToWire),
    count: alert.count,
    held_seconds: alert.heldSeconds,
    message: alert.message,
  }).finish();
}

/** Decodes and validates an edge alert from a node; throws CS_ERR_EDGE_ALERT_DECODE. */
export function decodeEdgeAlert(bytes: Uint8Array): EdgeAlert {
  const fail = (message: string) =>
    new CitysenseError('CS_ERR_EDGE_ALERT_DECODE', `invalid edge alert: ${message}`, 400);
  const msg = decodeWire(AlertType, bytes, fail);
  const alert: EdgeAlert = {
    utcTimeMs: Number(msg.utc_time_ms),
    ruleId: String(msg.rule_id),
    kind: String(msg.kind) as AlertKind,
    severity: String(msg.severity) as AlertSeverity,
    source: String(msg.source),
    algorithmId: String(msg.algorithm_id),
    algorithmVersion: String(msg.algorithm_version),
    objects: objectsFromWire(msg.objects, fail),
    count: Number(msg.count),
    heldSeconds: Number(msg.held_seconds),
    message: String(msg.message).slice(0, 500),
  };
  checkCommon(
    alert.utcTimeMs,
    { ruleId: alert.ruleId, source: alert.source, algorithmId: alert.algorithmId },
    fail,
  );
  if (!ALERT_KINDS.has(alert.kind)) throw fail(`unknown kind ${JSON.stringify(alert.kind.slice(0, 40))}`);
  if (!SEVERITIES.has(alert.severity))
    throw fail(`unknown severity ${JSON.stringify(alert.severity.slice(0, 40))}`);
  return alert;
}

type Fail = (message: string) => CitysenseError;

function decodeWire(type: typeof FrameType, bytes: Uint8Array, fail: Fail): Record<string, unknown> {
  try {
    return type.toObject(type.decode(bytes), { defaults: true, arrays: true, longs: Number }) as Record<
      string,
      unknown
    >;
  } catch (err) {
    throw fail(`malformed protobuf: ${errorMessage(err)}`);
  }
}

function checkCommon(utcTimeMs: number, texts: Record<string, string>, fail: Fail): void {
  if (!Number.isSafeInteger(utcTimeMs) || utcTimeMs <= 0) throw fail('utcTimeMs must be set');
  for (const [name, text] of Object.entries(texts))
    if (text.length === 0 || text.length > MAX_TEXT) throw fail(`${name} must be 1–${MAX_TEXT} characters`);
}

function objectToWire(o: AnalyticsObject): Record<string, unknown> {
  return { label: o.label, likelihood: o.likelihood, class_id: o.classId, object_id: o.objectId, box: o.box };
}

/** Validates decoded objects: labels set, likelihood and box within 0..1. */
function objectsFromWire(raw: unknown, fail: Fail): AnalyticsObject[] {
  const objects = raw as Array<Record<string, unknown>>;
  if (objects.length > MAX_OBJECTS) throw fail(`more than ${MAX_OBJECTS} objects`);
  return objects.map((o) => {
    const box = (o.box ?? {}) as Record<string, number>;
    const object: AnalyticsObject = {
      label: String(o.label),
      likelihood: Number(o.likelihood),
      classId: Number(o.class_id),
      objectId: Number(o.object_id),
      box: { left: box.left ?? 0, top: box.top ?? 0, right: box.right ?? 0, bottom: box.bottom ?? 0 },
    };
    if (object.label.length === 0 || object.label.length > MAX_TEXT) throw fail('object label must be set');
    if (!(object.likelihood >= 0 && object.likelihood <= 1)) throw fail('likelihood must be within 0..1');
    const { left, top, right, bottom } = object.box;
    if (![left, top, right, bottom].every((v) => v >= 0 && v <= 1) || right < left || bottom < top)
      throw fail(`box ${JSON.stringify(object.box)} is not a normalised 0..1 box`);
    return object;
  });
}
