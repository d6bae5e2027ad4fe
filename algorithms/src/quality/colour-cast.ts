/**
 * Colour cast by the equivalent-circle method (等效圆法, widely used in Chinese video quality diagnosis
 * products): in CIELAB the a*, b* chroma of a frame without a cast is spread around the neutral axis, while
 * a cast shifts the whole cloud away from it. D = distance of the mean (a*, b*) from neutral, M = mean
 * absolute deviation around that mean (the radius of the "equivalent circle"); K = D / M grows when the
 * cloud sits off-centre and is tight, i.e. when the whole picture has one hue.
 */

/** sRGB byte → linear light (IEC 61966-2-1), precomputed once. */
const LINEAR = new Float64Array(256);
for (let v = 0; v < 256; v++) {
  const c = v / 255;
  LINEAR[v] = c <= 0.04045 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4;
}

/** CIELAB f(t) (CIE 15:2004). */
function labF(t: number): number {
  return t > 0.008856 ? Math.cbrt(t) : 7.787 * t + 16 / 116;
}

/** Writes CIELAB a* and b* (D65 white) of one sRGB pixel to `out[at]` and `out[at + 1]`. */
export function writeLabChroma(r: number, g: number, b: number, out: Float32Array, at: number): void {
  const lr = LINEAR[r] as number;
  const lg = LINEAR[g] as number;
  const lb = LINEAR[b] as number;
  // sRGB → XYZ, each row divided by the D65 white point so that neutral greys give X = Y = Z.
  const fx = labF((0.4124 * lr + 0.3576 * lg + 0.1805 * lb) / 0.95047);
  const fy = labF(0.2126 * lr + 0.7152 * lg + 0.0722 * lb);
  const fz = labF((0.0193 * lr + 0.1192 * lg + 0.9505 * lb) / 1.08883);
  out[at] = 500 * (fx - fy);
  out[at + 1] = 200 * (fy - fz);
}

/** Result of the equivalent-circle colour cast test. */
export interface ColourCast {
  /** Mean a* (positive = red/magenta, negative = green). */
  meanA: number;
  /** Mean b* (positive = yellow, negative = blue). */
  meanB: number;
  /** D: distance of the mean chroma from neutral grey. */
  chroma: number;
  /** M: mean absolute deviation of the chroma around its mean. */
  spread: number;
  /** K = D / M; above ~1.5 the picture as a whole has a cast. */
  factor: number;
}

/** Floor for M so that a perfectly uniform frame gives a finite K. */
const MIN_SPREAD = 0.5;

/** Equivalent-circle colour cast of `count` interleaved (a*, b*) pairs. */
export function equivalentCircleCast(ab: Float32Array, count: number): ColourCast {
  if (count === 0) return { meanA: 0, meanB: 0, chroma: 0, spread: 0, factor: 0 };
  let sumA = 0;
  let sumB = 0;
  for (let i = 0; i < 2 * count; i += 2) {
    sumA += ab[i] as number;
    sumB += ab[i + 1] as number;
  }
  const meanA = sumA / count;
  const meanB = sumB / count;
  let devA = 0;
  let devB = 0;
  for (let i = 0; i < 2 * count; i += 2) {
    devA += Math.abs((ab[i] as number) - meanA);
    devB += Math.abs((ab[i + 1] as number) - meanB);
  }
  const chroma = Math.hypot(meanA, meanB);
  const spread = Math.hypot(devA / count, devB / count);
  return { meanA, meanB, chroma, spread, factor: chroma / Math.max(spread, MIN_SPREAD) };
}
