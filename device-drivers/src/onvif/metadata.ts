/**
 * ONVIF Profile M analytics metadata (`tt:MetadataStream/tt:VideoAnalytics/tt:Frame`,
 * ONVIF Analytics Service §5.3.1) parsed into the objects edge inference emits
 * (`AnalyticsObject` of `VideoAnalyticsFrame`), so camera-side analytics and our own
 * share one shape downstream.
 *
 * Boxes: the ONVIF default normalised system is −1..1 with y pointing up (Analytics
 * §5.2.2); several vendors send 0..1 with y pointing down instead. Which one a camera
 * uses is a per-camera option, recorded on every parsed frame.
 */
import type { AnalyticsObject, NormalisedBox, VideoAnalyticsFrame } from '@citysense/protocol';
import { CitysenseError, errorMessage } from '@citysense/protocol';
import { XMLParser, XMLValidator } from 'fast-xml-parser';
import { ONVIF_ERRORS } from './errors.ts';

/** Coordinate convention of `tt:BoundingBox`: `signed` −1..1 y-up (ONVIF default), `unit` 0..1 y-down. */
export type BoxNormalisation = 'signed' | 'unit';

/** Options of the metadata parser. */
export interface MetadataParseOptions {
  /** Source frame size, to give boxes in pixels. */
  frameWidth: number;
  frameHeight: number;
  /** Box convention of this camera; default `signed` (the ONVIF default). */
  normalisation?: BoxNormalisation;
  /** Label list of the algorithm; `classId` is the label's index in it, 0 when absent or not listed. */
  labels?: readonly string[];
  /** Largest document accepted, bytes; default 1 MiB. */
  maxBytes?: number;
}

/** A box in source pixels, origin top-left. */
export interface PixelBox {
  left: number;
  top: number;
  right: number;
  bottom: number;
}

/** One object of a metadata frame: the edge shape plus the score and the box in pixels. */
export interface OnvifMetadataObject extends AnalyticsObject {
  /** Likelihood of the chosen class, 0..1 (same as `likelihood`). */
  score: number;
  pixelBox: PixelBox;
}

/** One `tt:Frame`. */
export interface OnvifMetadataFrame {
  utcTimeMs: number;
  frameWidth: number;
  frameHeight: number;
  /** Which box convention the document was read with. */
  normalisation: BoxNormalisation;
  objects: OnvifMetadataObject[];
}

const MAX_OBJECTS = 1000;
const MAX_LABEL = 128;
const ARRAYS = new Set(['Frame', 'Object', 'Type', 'VideoAnalytics']);

const parser = new XMLParser({
  ignoreAttributes: false,
  attributeNamePrefix: '@_',
  removeNSPrefix: true,
  parseTagValue: false,
  parseAttributeValue: false,
  trimValues: true,
  processEntities: false,
  isArray: (name) => ARRAYS.has(name),
});

/**
 * Parses a `tt:MetadataStream` document into frames. Label = the `tt:Type` with the
 * highest Likelihood; objects without a bounding box are skipped (they carry only
 * tracking data). Throws CS_ERR_ONVIF_METADATA on anything malformed; never crashes.
 */
export function parseOnvifMetadata(
  xml: string | Uint8Array,
  options: MetadataParseOptions,
): OnvifMetadataFrame[] {
  const fail = (message: string) =>
    new CitysenseError(ONVIF_ERRORS.metadata, `invalid ONVIF analytics metadata: ${message}`, 400);
  const { frameWidth, frameHeight } = options;
  if (!(Number.isInteger(frameWidth) && frameWidth > 0 && Number.isInteger(frameHeight) && frameHeight > 0))
    throw fail(`frame size ${frameWidth}x${frameHeight} must be positive integers`);
  const normalisation = options.normalisation ?? 'signed';
  const text = typeof xml === 'string' ? xml : Buffer.from(xml).toString('utf8');
  if (Buffer.byteLength(text) > (options.maxBytes ?? 1024 * 1024)) throw fail('document too large');
  const valid = XMLValidator.validate(text);
  if (valid !== true) throw fail(`not well-formed XML (${valid.err.msg}, line ${valid.err.line})`);
  let doc: Record<string, unknown>;
  try {
    doc = parser.parse(text) as Record<string, unknown>;
  } catch (err) {
    throw fail(`not parseable XML (${errorMessage(err)})`);
  }
  const stream = doc.MetadataStream;
  if (!isNode(stream)) throw fail('root element is not tt:MetadataStream');
  const frames: OnvifMetadataFrame[] = [];
  let objectCount = 0;
  for (const analytics of asArray(stream.VideoAnalytics)) {
    for (const frame of asArray(field(analytics, 'Frame'))) {
      const utc = attr(frame, 'UtcTime');
      const utcTimeMs = utc === undefined ? Number.NaN : Date.parse(utc);
      if (!Number.isFinite(utcTimeMs) || utcTimeMs <= 0) throw fail('tt:Frame without a valid UtcTime');
      const objects: OnvifMetadataObject[] = [];
      for (const o of asArray(field(frame, 'Object'))) {
        if (++objectCount > MAX_OBJECTS) throw fail(`more than ${MAX_OBJECTS} objects`);
        const parsed = parseObject(o, options, normalisation, fail);
        if (parsed) objects.push(parsed);
      }
      frames.push({ utcTimeMs, frameWidth, frameHeight, normalisation, objects });
    }
  }
  return frames;
}

/** Converts a parsed frame into the wire frame edge inference emits. */
export function toVideoAnalyticsFrame(
  frame: OnvifMetadataFrame,
  source: { source: string; algorithmId: string; algorithmVersion: string },
): VideoAnalyticsFrame {
  return {
    utcTimeMs: frame.utcTimeMs,
    ...source,
    frameWidth: frame.frameWidth,
    frameHeight: frame.frameHeight,
    inferMs: 0,
    objects: frame.objects.map(({ label, likelihood, classId, box, objectId }) => ({
      label,
      likelihood,
      classId,
      box,
      objectId,
    })),
  };
}

function parseObject(
  node: unknown,
  options: MetadataParseOptions,
  normalisation: BoxNormalisation,
  fail: (m: string) => CitysenseError,
): OnvifMetadataObject | undefined {
  const idText = attr(node, 'ObjectId') ?? '0';
  const objectId = Number(idText);
  if (!Number.isSafeInteger(objectId) || objectId < 0 || objectId > 0xffffffff)
    throw fail(`ObjectId ${JSON.stringify(idText.slice(0, 20))} is not a non-negative integer`);
  const appearance = field(node, 'Appearance');
  const bbox = field(field(appearance, 'Shape'), 'BoundingBox');
  if (!isNode(bbox)) return undefined;
  const raw = ['left', 'top', 'right', 'bottom'].map((k) => Number(attr(bbox, k)));
  const [left = Number.NaN, top = Number.NaN, right = Number.NaN, bottom = Number.NaN] = raw;
  if (!raw.every(Number.isFinite)) throw fail(`object ${objectId} has a non-numeric tt:BoundingBox`);
  const box = toUnitBox({ left, top, right, bottom }, normalisation);
  if (!box) throw fail(`object ${objectId} box ${raw.join(',')} is outside the ${normalisation} range`);

  let label = 'unknown';
  let likelihood = 0;
  for (const type of asArray(field(field(appearance, 'Class'), 'Type'))) {
    const name = typeof type === 'string' ? type : text(type);
    const l = Number(attr(type, 'Likelihood') ?? 1);
    if (!name || name.length > MAX_LABEL || !Number.isFinite(l) || l < 0 || l > 1)
      throw fail(`object ${objectId} has an invalid tt:Type`);
    if (l > likelihood || label === 'unknown') {
      label = name;
      likelihood = l;
    }
  }
  const classId = Math.max(0, options.labels?.indexOf(label) ?? 0);
  return {
    label,
    likelihood,
    score: likelihood,
    classId,
    objectId,
    box,
    pixelBox: {
      left: box.left * options.frameWidth,
      top: box.top * options.frameHeight,
      right: box.right * options.frameWidth,
      bottom: box.bottom * options.frameHeight,
    },
  };
}

const EPSILON = 1e-6;

/** A 0..1 top-left box from the camera's convention, or undefined when out of range. */
function toUnitBox(b: NormalisedBox, normalisation: BoxNormalisation): NormalisedBox | undefined {
  const lo = normalisation === 'signed' ? -1 : 0;
  if (![b.left, b.top, b.right, b.bottom].every((v) => v >= lo - EPSILON && v <= 1 + EPSILON))
    return undefined;
  const xs = normalisation === 'signed' ? [(b.left + 1) / 2, (b.right + 1) / 2] : [b.left, b.right];
  // Signed: y points up, so the top edge has the larger value.
  const ys = normalisation === 'signed' ? [(1 - b.top) / 2, (1 - b.bottom) / 2] : [b.top, b.bottom];
  const clamp = (v: number) => Math.min(1, Math.max(0, v));
  const [x0 = 0, x1 = 0] = xs.map(clamp);
  const [y0 = 0, y1 = 0] = ys.map(clamp);
  return { left: Math.min(x0, x1), right: Math.max(x0, x1), top: Math.min(y0, y1), bottom: Math.max(y0, y1) };
}

function isNode(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function asArray(value: unknown): unknown[] {
  if (value === undefined || value === null) return [];
  return Array.isArray(value) ? value : [value];
}

function field(node: unknown, name: string): unknown {
  return isNode(node) ? node[name] : undefined;
}

function attr(node: unknown, name: string): string | undefined {
  const v = field(node, `@_${name}`);
  return typeof v === 'string' ? v : undefined;
}

function text(node: unknown): string | undefined {
  const v = field(node, '#text');
  return typeof v === 'string' ? v : undefined;
}
