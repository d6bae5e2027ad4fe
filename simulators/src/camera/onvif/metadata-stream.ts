/**
 * ONVIF Profile M analytics metadata as a camera sends it on its metadata stream
 * (ONVIF Analytics Service §5.3.1 `tt:MetadataStream/tt:VideoAnalytics/tt:Frame`).
 */
import { xmlEscape } from './soap.ts';

/** One object the simulated analytics "sees", box in 0..1 frame coordinates, origin top-left. */
export interface SimulatedAnalyticsObject {
  objectId: number;
  /** Class candidates, e.g. `[{ type: 'Human', likelihood: 0.9 }]`. */
  classes: Array<{ type: string; likelihood: number }>;
  box: { left: number; top: number; right: number; bottom: number };
}

/**
 * How boxes are written: `signed` is the ONVIF default normalised system (−1..1, y up,
 * ONVIF Analytics §5.2.2); `unit` is the 0..1, y-down variant some vendors emit.
 */
export type MetadataNormalisation = 'signed' | 'unit';

/** Options of one metadata document. */
export interface MetadataDocumentOptions {
  objects: SimulatedAnalyticsObject[];
  normalisation?: MetadataNormalisation;
  /** Frame time; default now. */
  utcTime?: Date;
}

/** Builds one `tt:MetadataStream` document with one frame. */
export function metadataDocument(options: MetadataDocumentOptions): string {
  const normalisation = options.normalisation ?? 'signed';
  const utc = (options.utcTime ?? new Date()).toISOString();
  const objects = options.objects
    .map((o) => {
      const b = toWire(o.box, normalisation);
      const cx = (b.left + b.right) / 2;
      const cy = (b.top + b.bottom) / 2;
      const types = o.classes
        .map((c) => `<tt:Type Likelihood="${c.likelihood}">${xmlEscape(c.type)}</tt:Type>`)
        .join('');
      return (
        `<tt:Object ObjectId="${o.objectId}"><tt:Appearance><tt:Shape>` +
        `<tt:BoundingBox left="${fmt(b.left)}" top="${fmt(b.top)}" right="${fmt(b.right)}" bottom="${fmt(b.bottom)}"/>` +
        `<tt:CenterOfGravity x="${fmt(cx)}" y="${fmt(cy)}"/>` +
        `</tt:Shape><tt:Class>${types}</tt:Class></tt:Appearance></tt:Object>`
      );
    })
    .join('');
  return (
    '<?xml version="1.0" encoding="UTF-8"?>' +
    '<tt:MetadataStream xmlns:tt="http://www.onvif.org/ver10/schema">' +
    `<tt:VideoAnalytics><tt:Frame UtcTime="${utc}">${objects}</tt:Frame></tt:VideoAnalytics>` +
    '</tt:MetadataStream>'
  );
}

function toWire(
  box: SimulatedAnalyticsObject['box'],
  normalisation: MetadataNormalisation,
): SimulatedAnalyticsObject['box'] {
  if (normalisation === 'unit') return box;
  // −1..1 with y pointing up: top of the frame is +1.
  return {
    left: box.left * 2 - 1,
    right: box.right * 2 - 1,
    top: 1 - box.top * 2,
    bottom: 1 - box.bottom * 2,
  };
}

function fmt(n: number): string {
  return Number(n.toFixed(4)).toString();
}
