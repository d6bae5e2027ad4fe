/**
 * Video analytics frames (ONVIF Profile M style) on the wire: what an edge
 * algorithm saw in one frame of one source, boxes normalised to 0..1.
 */
import { CitysenseError, errorMessage } from './errors.ts';
import { loadProto, lookupType } from './proto-root.ts';

const FrameType = lookupType(loadProto('./citysense.proto'), 'citysense.v1.VideoAnalyticsFrame');

/** Sparkplug metric name that carries an encoded `VideoAnalyticsFrame` (datatype Bytes). */
export const VIDEO_ANALYTICS_METRIC = 'citysense/Video Analytics';

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
    objects: frame.objects.map((o) => ({
      label: o.label,
      likelihood: o.likelihood,
      class_id: o.classId,
      object_id: o.objectId,
      box: o.box,
    })),
  }).finish();
}

/**
 * Decodes and validates a frame from a node: sizes, 0..1 boxes and likelihoods,
 * bounded strings and object count. Throws CS_ERR_VIDEO_ANALYTICS_DECODE.
 */
export function decodeVideoAnalyticsFrame(bytes: Uint8Array): VideoAnalyticsFrame {
  let msg: Record<string, unknown>;
  try {
    msg = FrameType.toObject(FrameType.decode(bytes), {
      defaults: true,
      arrays: true,
      longs: Number,
    }) as Record<string, unknown>;
  } catch (err) {
    throw invalid(`malformed protobuf: ${errorMessage(err)}`);
  }
  const frame: VideoAnalyticsFrame = {
    utcTimeMs: Number(msg.utc_time_ms),
    source: String(msg.source),
    algorithmId: String(msg.algorithm_id),
    algorithmVersion: String(msg.algorithm_version),
    frameWidth: Number(msg.frame_width),
    frameHeight: Number(msg.frame_height),
    inferMs: Number(msg.infer_ms),
    objects: [],
  };
  if (!Number.isSafeInteger(frame.utcTimeMs) || frame.utcTimeMs <= 0) throw invalid('utcTimeMs must be set');
  for (const [name, text] of [
    ['source', frame.source],
    ['algorithmId', frame.algorithmId],
    ['algorithmVersion', frame.algorithmVersion],
  ] as const)
    if (text.length === 0 || text.length > MAX_TEXT)
      throw invalid(`${name} must be 1–${MAX_TEXT} characters`);
  const objects = msg.objects as Array<Record<string, unknown>>;
  if (objects.length > MAX_OBJECTS) throw invalid(`more than ${MAX_OBJECTS} objects in one frame`);
  for (const o of objects) {
    const box = (o.box ?? {}) as Record<string, number>;
    const object: AnalyticsObject = {
      label: String(o.label),
      likelihood: Number(o.likelihood),
      classId: Number(o.class_id),
      objectId: Number(o.object_id),
      box: { left: box.left ?? 0, top: box.top ?? 0, right: box.right ?? 0, bottom: box.bottom ?? 0 },
    };
    if (object.label.length === 0 || object.label.length > MAX_TEXT)
      throw invalid('object label must be set');
    if (!(object.likelihood >= 0 && object.likelihood <= 1)) throw invalid('likelihood must be within 0..1');
    const { left, top, right, bottom } = object.box;
    if (![left, top, right, bottom].every((v) => v >= 0 && v <= 1) || right < left || bottom < top)
      throw invalid(`box ${JSON.stringify(object.box)} is not a normalised 0..1 box`);
    frame.objects.push(object);
  }
  return frame;
}

function invalid(message: string): CitysenseError {
  return new CitysenseError(
    'CS_ERR_VIDEO_ANALYTICS_DECODE',
    `invalid video analytics frame: ${message}`,
    400,
  );
}
