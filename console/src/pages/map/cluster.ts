/**
 * Grid clustering per zoom level, for tens of thousands of points. At integer zoom z
 * the world is cut into CELL-pixel squares; each non-empty square becomes one cluster
 * at the mean position of its points, with a count per status class. A level is built
 * once (O(n)) the first time it is drawn and cached until the point set changes;
 * drawing then costs O(clusters in view).
 */

import { type MapPoint, STATUSES } from './model.ts';
import { MAX_ZOOM, scaleOf } from './projection.ts';

/** Cell size in screen pixels. */
export const CELL = 56;
/** From this zoom on, points are drawn one by one. */
export const CLUSTER_UNTIL = 17;

/** A cluster (or a single point when `count` is 1). */
export interface Cluster {
  x: number;
  y: number;
  count: number;
  /** Points per status class, in STATUSES order. */
  byStatus: Uint32Array;
  /** Index of the first point (the point itself when count is 1). */
  first: number;
  /** Indices of every point (filled only for small clusters, for the details list). */
  members: number[];
}

const MEMBER_LIMIT = 64;
const STATUS_INDEX = new Map(STATUSES.map((s, i) => [s, i]));

/** Points projected once, with cached cluster levels. */
export class PointIndex {
  readonly points: readonly MapPoint[];
  readonly xs: Float64Array;
  readonly ys: Float64Array;
  readonly status: Uint8Array;
  readonly #levels = new Map<number, Cluster[]>();

  constructor(points: readonly MapPoint[], project: (p: MapPoint) => [number, number]) {
    this.points = points;
    this.xs = new Float64Array(points.length);
    this.ys = new Float64Array(points.length);
    this.status = new Uint8Array(points.length);
    points.forEach((p, i) => {
      const [x, y] = project(p);
      this.xs[i] = x;
      this.ys[i] = y;
      this.status[i] = STATUS_INDEX.get(p.status) ?? 3;
    });
  }

  /** Number of points. */
  get size(): number {
    return this.points.length;
  }

  /** Clusters of integer zoom `z` (points one by one from CLUSTER_UNTIL on). */
  level(z: number): Cluster[] {
    const zi = Math.max(0, Math.min(MAX_ZOOM, Math.floor(z)));
    const key = Math.min(zi, CLUSTER_UNTIL);
    let level = this.#levels.get(key);
    if (!level) {
      level = key >= CLUSTER_UNTIL ? this.#singles() : this.#build(key);
      this.#levels.set(key, level);
    }
    return level;
  }

  #singles(): Cluster[] {
    const out: Cluster[] = new Array(this.size);
    for (let i = 0; i < this.size; i++) {
      const byStatus = new Uint32Array(STATUSES.length);
      byStatus[this.status[i] ?? 3] = 1;
      out[i] = { x: this.xs[i] ?? 0, y: this.ys[i] ?? 0, count: 1, byStatus, first: i, members: [i] };
    }
    return out;
  }

  #build(z: number): Cluster[] {
    const perCell = scaleOf(z) / CELL;
    const cells = new Map<number, Cluster & { sx: number; sy: number }>();
    for (let i = 0; i < this.size; i++) {
      const x = this.xs[i] ?? 0;
      const y = this.ys[i] ?? 0;
      // Cell coordinates stay below 2^24 up to zoom 17: the key fits a double exactly.
      const k = Math.floor(x * perCell) * 16_777_216 + Math.floor(y * perCell);
      let c = cells.get(k);
      if (!c) {
        c = {
          x: 0,
          y: 0,
          sx: 0,
          sy: 0,
          count: 0,
          byStatus: new Uint32Array(STATUSES.length),
          first: i,
          members: [],
        };
        cells.set(k, c);
      }
      c.sx += x;
      c.sy += y;
      c.count++;
      c.byStatus[this.status[i] ?? 3] = (c.byStatus[this.status[i] ?? 3] ?? 0) + 1;
      if (c.members.length < MEMBER_LIMIT) c.members.push(i);
    }
    const out: Cluster[] = [];
    for (const c of cells.values()) {
      out.push({
        x: c.sx / c.count,
        y: c.sy / c.count,
        count: c.count,
        byStatus: c.byStatus,
        first: c.first,
        members: c.members,
      });
    }
    return out;
  }
}
