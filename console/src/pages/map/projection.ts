/**
 * Web Mercator (EPSG:3857) in "world units": the whole world is the square [0,1]²,
 * x eastwards, y southwards. Positions stay WGS84 lon/lat everywhere else; this is
 * only how they are drawn, and it matches XYZ tiles so a configured tile URL lines up.
 */

/** Largest latitude Web Mercator shows. */
export const MAX_LAT = 85.05112878;

/** lon → world x. */
export function lonToX(lon: number): number {
  return (lon + 180) / 360;
}

/** lat → world y. */
export function latToY(lat: number): number {
  const s = Math.sin((Math.max(-MAX_LAT, Math.min(MAX_LAT, lat)) * Math.PI) / 180);
  return 0.5 - Math.log((1 + s) / (1 - s)) / (4 * Math.PI);
}

/** world x → lon. */
export function xToLon(x: number): number {
  return x * 360 - 180;
}

/** world y → lat. */
export function yToLat(y: number): number {
  return (Math.atan(Math.sinh(Math.PI * (1 - 2 * y))) * 180) / Math.PI;
}

/** Where the map looks: centre in world units and a fractional zoom (tile zoom levels). */
export interface View {
  cx: number;
  cy: number;
  zoom: number;
}

/** Smallest and largest zoom the map allows. */
export const MIN_ZOOM = 2;
export const MAX_ZOOM = 20;

/** Pixels per world unit at `zoom` (256-pixel tiles). */
export function scaleOf(zoom: number): number {
  return 256 * 2 ** zoom;
}

/** The view that shows the box [x0,x1]×[y0,y1] (world units) in width×height pixels. */
export function fitView(
  x0: number,
  y0: number,
  x1: number,
  y1: number,
  width: number,
  height: number,
  maxZoom = 17,
): View {
  const spanX = Math.max(x1 - x0, 1e-9);
  const spanY = Math.max(y1 - y0, 1e-9);
  const zoom = Math.log2(Math.min((width * 0.85) / spanX, (height * 0.85) / spanY) / 256);
  return {
    cx: (x0 + x1) / 2,
    cy: (y0 + y1) / 2,
    zoom: Math.max(MIN_ZOOM, Math.min(maxZoom, zoom)),
  };
}
