/**
 * The basemap. Offline by default: a WGS84 graticule with labelled lines and the
 * demo districts' outlines (districts.json, schematic, bundled). With a tile URL
 * template configured on the hub (`console.tileUrl`), XYZ tiles are drawn instead
 * and the district outlines stay on top.
 */
import districtsJson from './districts.json';
import { latToY, lonToX, scaleOf, type View, xToLon, yToLat } from './projection.ts';

/** One district outline, projected. */
export interface District {
  id: string;
  name: string;
  nameEn: string;
  /** Ring in lon/lat. */
  ring: Array<[number, number]>;
  /** Ring in world units. */
  world: Array<[number, number]>;
  bbox: [number, number, number, number];
  /** Label position in world units. */
  label: [number, number];
}

interface DistrictFeature {
  properties: { id: string; name: string; nameEn: string };
  geometry: { coordinates: Array<Array<[number, number]>> };
}

/** The bundled district outlines. */
export const DISTRICTS: readonly District[] = (districtsJson.features as unknown as DistrictFeature[]).map(
  (f) => {
    const ring = f.geometry.coordinates[0] ?? [];
    const world = ring.map(([lon, lat]): [number, number] => [lonToX(lon), latToY(lat)]);
    const lons = ring.map((p) => p[0]);
    const lats = ring.map((p) => p[1]);
    const bbox: [number, number, number, number] = [
      Math.min(...lons),
      Math.min(...lats),
      Math.max(...lons),
      Math.max(...lats),
    ];
    const n = Math.max(world.length - 1, 1);
    const label: [number, number] = [
      world.slice(0, n).reduce((s, p) => s + p[0], 0) / n,
      world.slice(0, n).reduce((s, p) => s + p[1], 0) / n,
    ];
    return { ...f.properties, ring, world, bbox, label };
  },
);

/** The district containing lon/lat (ray casting), or null. */
export function districtAt(lon: number, lat: number): District | null {
  for (const d of DISTRICTS) {
    const [x0, y0, x1, y1] = d.bbox;
    if (lon < x0 || lon > x1 || lat < y0 || lat > y1) continue;
    let inside = false;
    const r = d.ring;
    for (let i = 0, j = r.length - 1; i < r.length; j = i++) {
      const [xi, yi] = r[i] ?? [0, 0];
      const [xj, yj] = r[j] ?? [0, 0];
      if (yi > lat !== yj > lat && lon < ((xj - xi) * (lat - yi)) / (yj - yi) + xi) inside = !inside;
    }
    if (inside) return d;
  }
  return null;
}

const STEPS = [20, 10, 5, 2, 1, 0.5, 0.2, 0.1, 0.05, 0.02, 0.01, 0.005, 0.002, 0.001, 0.0005, 0.0002, 0.0001];

/** Screen transform of a view on a canvas of w×h CSS pixels. */
export interface Screen {
  view: View;
  w: number;
  h: number;
  scale: number;
  toX(x: number): number;
  toY(y: number): number;
}

/** Builds the screen transform. */
export function screenOf(view: View, w: number, h: number): Screen {
  const scale = scaleOf(view.zoom);
  return {
    view,
    w,
    h,
    scale,
    toX: (x) => (x - view.cx) * scale + w / 2,
    toY: (y) => (y - view.cy) * scale + h / 2,
  };
}

/** Draws the graticule: lines every 1-2-5 step of degrees, ~120 px apart, labelled at the edges. */
export function drawGraticule(ctx: CanvasRenderingContext2D, s: Screen): void {
  const west = xToLon(s.view.cx - s.w / 2 / s.scale);
  const east = xToLon(s.view.cx + s.w / 2 / s.scale);
  const north = yToLat(s.view.cy - s.h / 2 / s.scale);
  const south = yToLat(s.view.cy + s.h / 2 / s.scale);
  const degPerPx = (east - west) / s.w;
  const step = STEPS.find((st) => st / degPerPx < 160) ?? STEPS[STEPS.length - 1] ?? 0.0001;
  const digits = Math.max(0, Math.ceil(-Math.log10(step) + 0.01));
  ctx.save();
  ctx.strokeStyle = 'rgba(71, 85, 105, 0.18)';
  ctx.fillStyle = 'rgba(51, 65, 85, 0.75)';
  ctx.lineWidth = 1;
  ctx.font = '11px system-ui, sans-serif';
  ctx.beginPath();
  for (let lon = Math.ceil(west / step) * step; lon <= east; lon += step) {
    const x = Math.round(s.toX(lonToX(lon))) + 0.5;
    ctx.moveTo(x, 0);
    ctx.lineTo(x, s.h);
  }
  for (let lat = Math.ceil(south / step) * step; lat <= north; lat += step) {
    const y = Math.round(s.toY(latToY(lat))) + 0.5;
    ctx.moveTo(0, y);
    ctx.lineTo(s.w, y);
  }
  ctx.stroke();
  // Longitudes along the top edge (the legend and attribution sit at the bottom), clear of the zoom buttons.
  ctx.textBaseline = 'top';
  for (let lon = Math.ceil(west / step) * step; lon <= east; lon += step) {
    const x = s.toX(lonToX(lon));
    if (x < 56 || x > s.w - 240) continue;
    ctx.fillText(`${Math.abs(lon).toFixed(digits)}°${lon >= 0 ? 'E' : 'W'}`, x + 3, 4);
  }
  ctx.textBaseline = 'bottom';
  for (let lat = Math.ceil(south / step) * step; lat <= north; lat += step) {
    const y = s.toY(latToY(lat));
    if (y < 48) continue;
    ctx.fillText(`${Math.abs(lat).toFixed(digits)}°${lat >= 0 ? 'N' : 'S'}`, s.w - 78, y - 2);
  }
  ctx.restore();
}

/** Draws the district outlines and names. */
export function drawDistricts(
  ctx: CanvasRenderingContext2D,
  s: Screen,
  english: boolean,
  filled: boolean,
): void {
  ctx.save();
  ctx.lineJoin = 'round';
  for (const d of DISTRICTS) {
    ctx.beginPath();
    d.world.forEach(([x, y], i) => {
      if (i === 0) ctx.moveTo(s.toX(x), s.toY(y));
      else ctx.lineTo(s.toX(x), s.toY(y));
    });
    ctx.closePath();
    if (filled) {
      ctx.fillStyle = 'rgba(255, 255, 255, 0.55)';
      ctx.fill();
    }
    ctx.setLineDash([6, 4]);
    ctx.strokeStyle = 'rgba(14, 116, 144, 0.7)';
    ctx.lineWidth = 1.5;
    ctx.stroke();
  }
  ctx.setLineDash([]);
  if (s.view.zoom >= 10) {
    ctx.font = `600 ${s.view.zoom >= 13 ? 14 : 12}px system-ui, sans-serif`;
    ctx.textAlign = 'center';
    ctx.textBaseline = 'middle';
    for (const d of DISTRICTS) {
      const x = s.toX(d.label[0]);
      const y = s.toY(d.label[1]);
      if (x < -100 || y < -20 || x > s.w + 100 || y > s.h + 20) continue;
      ctx.fillStyle = 'rgba(14, 116, 144, 0.55)';
      ctx.fillText(english ? d.nameEn : d.name, x, y);
    }
  }
  ctx.restore();
}

/** XYZ tiles from a URL template, cached. */
export class TileLayer {
  readonly #template: string;
  readonly #cache = new Map<string, HTMLImageElement>();
  readonly #onLoad: () => void;

  constructor(template: string, onLoad: () => void) {
    this.#template = template;
    this.#onLoad = onLoad;
  }

  /** Draws the tiles covering the screen at the nearest integer zoom. */
  draw(ctx: CanvasRenderingContext2D, s: Screen): void {
    const z = Math.max(0, Math.min(19, Math.round(s.view.zoom)));
    const n = 2 ** z;
    const size = s.scale / n;
    const x0 = Math.floor((s.view.cx - s.w / 2 / s.scale) * n);
    const x1 = Math.floor((s.view.cx + s.w / 2 / s.scale) * n);
    const y0 = Math.max(0, Math.floor((s.view.cy - s.h / 2 / s.scale) * n));
    const y1 = Math.min(n - 1, Math.floor((s.view.cy + s.h / 2 / s.scale) * n));
    for (let ty = y0; ty <= y1; ty++)
      for (let tx = x0; tx <= x1; tx++) {
        const wx = ((tx % n) + n) % n;
        const url = this.#template
          .replace('{z}', String(z))
          .replace('{x}', String(wx))
          .replace('{y}', String(ty))
          .replace('{s}', 'a');
        let img = this.#cache.get(url);
        if (!img) {
          if (this.#cache.size > 400) this.#cache.clear();
          img = new Image();
          img.decoding = 'async';
          img.onload = this.#onLoad;
          img.src = url;
          this.#cache.set(url, img);
        }
        if (img.complete && img.naturalWidth > 0)
          ctx.drawImage(img, s.toX(tx / n), s.toY(ty / n), size + 0.5, size + 0.5);
      }
  }
}
