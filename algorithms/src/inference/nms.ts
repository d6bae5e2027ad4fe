/** Non-maximum suppression for detector candidates. */

/** An axis-aligned box `[x1, y1, x2, y2]` in pixels. */
export type Box = [number, number, number, number];

/** What NMS needs of a candidate detection. */
export interface ScoredBox {
  classId: number;
  score: number;
  box: Box;
}

/** Intersection over union of two boxes; 0 when both are empty. */
export function iou(a: Readonly<Box>, b: Readonly<Box>): number {
  const iw = Math.min(a[2], b[2]) - Math.max(a[0], b[0]);
  const ih = Math.min(a[3], b[3]) - Math.max(a[1], b[1]);
  if (iw <= 0 || ih <= 0) return 0;
  const inter = iw * ih;
  const union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter;
  return union > 0 ? inter / union : 0;
}

/**
 * Class-wise greedy NMS: highest score first, drops a candidate whose IoU with a kept box of the same
 * class exceeds `iouThreshold`; returns at most `maxDetections`, best first.
 */
export function nms<T extends ScoredBox>(
  candidates: readonly T[],
  iouThreshold: number,
  maxDetections: number,
): T[] {
  const sorted = [...candidates].sort((a, b) => b.score - a.score);
  const keptByClass = new Map<number, Box[]>();
  const kept: T[] = [];
  for (const c of sorted) {
    if (kept.length >= maxDetections) break;
    let sameClass = keptByClass.get(c.classId);
    if (sameClass?.some((k) => iou(k, c.box) > iouThreshold)) continue;
    if (!sameClass) {
      sameClass = [];
      keptByClass.set(c.classId, sameClass);
    }
    sameClass.push(c.box);
    kept.push(c);
  }
  return kept;
}
