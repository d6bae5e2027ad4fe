/**
 * A small map of a project: its proposed devices beside the standing devices within the
 * duplicate radius, drawn with the map page's own projection, clustering and renderer.
 */
import { useEffect, useLayoutEffect, useMemo, useRef, useState } from 'preact/hooks';
import { lang } from '../../i18n.ts';
import { useValue } from '../../signal.ts';
import { screenOf } from '../map/basemap.ts';
import { PointIndex } from '../map/cluster.ts';
import { type MapPoint, STATUS_COLOURS } from '../map/model.ts';
import { latToY, lonToX } from '../map/projection.ts';
import { MapRenderer } from '../map/renderer.ts';
import { m } from './messages.ts';

const project = (p: MapPoint): [number, number] => [lonToX(p.lon), latToY(p.lat)];

/** Test handle on the review map (inert unless something calls it). */
declare global {
  interface Window {
    citysenseReviewMap?: MapRenderer;
  }
}

/** A circle on the ground: the duplicate radius around a proposed device. */
export interface Ring {
  lon: number;
  lat: number;
  radiusM: number;
}

const NO_RINGS: Ring[] = [];

/** Mean Earth radius (m), as the ledger's haversine look-up uses. */
const EARTH_M = 6_371_008.8;

/**
 * Points on a small canvas map, fitted to them, with the duplicate radius drawn around the
 * proposed devices; a click shows the chosen point's facts.
 */
export function MiniMap({
  points,
  focus,
  rings = NO_RINGS,
}: {
  points: MapPoint[];
  focus?: string | undefined;
  rings?: Ring[];
}) {
  const english = useValue(lang) === 'en';
  const canvasRef = useRef<HTMLCanvasElement>(null);
  const rendererRef = useRef<MapRenderer | null>(null);
  const [chosen, setChosen] = useState<MapPoint[]>([]);
  // The rings follow the view: recomputed after every frame the renderer draws.
  const [frame, setFrame] = useState(0);
  useLayoutEffect(() => {
    const canvas = canvasRef.current;
    if (!canvas) return;
    const renderer = new MapRenderer(canvas, { select: setChosen, drawn: () => setFrame((f) => f + 1) });
    renderer.setTiles(null);
    rendererRef.current = renderer;
    window.citysenseReviewMap = renderer;
    return () => {
      renderer.destroy();
      if (window.citysenseReviewMap === renderer) window.citysenseReviewMap = undefined;
    };
  }, []);
  useEffect(() => {
    const r = rendererRef.current;
    if (!r) return;
    r.setPoints(new PointIndex(points, project), true);
    // fit() stops at zoom 17; devices metres apart need street level, with the whole radius in view.
    const rect = canvasRef.current?.getBoundingClientRect();
    const widest = Math.max(
      0,
      ...rings.map((g) => g.radiusM / (2 * Math.PI * EARTH_M * Math.cos((g.lat * Math.PI) / 180))),
    );
    if (rect && r.view.zoom >= 16.99) {
      const target = widest > 0 ? Math.log2((0.42 * Math.min(rect.width, rect.height)) / widest / 256) : 19;
      r.zoomBy(Math.max(0, Math.min(19, target) - r.view.zoom));
    }
    r.setSelected(focus ?? null);
  }, [points, focus, rings]);
  useEffect(() => rendererRef.current?.setEnglish(english), [english]);
  const circles = useMemo(() => {
    const r = rendererRef.current;
    const canvas = canvasRef.current;
    if (!r || !canvas || frame === 0) return [];
    const { width, height } = canvas.getBoundingClientRect();
    const s = screenOf(r.view, width, height);
    return rings.map((ring) => {
      // Web Mercator: metres per world unit shrink with cos(latitude).
      const metresPerUnit = 2 * Math.PI * EARTH_M * Math.cos((ring.lat * Math.PI) / 180);
      return {
        x: s.toX(lonToX(ring.lon)),
        y: s.toY(latToY(ring.lat)),
        r: (ring.radiusM / metresPerUnit) * s.scale,
      };
    });
  }, [frame, rings]);
  return (
    <div>
      <div class="mini-map">
        <canvas ref={canvasRef} tabIndex={0} aria-label={m('detail.map')} data-testid="review-map" />
        <svg class="mini-map-rings" aria-hidden="true">
          {circles.map((c) => (
            <circle key={`${c.x},${c.y}`} cx={c.x} cy={c.y} r={c.r} />
          ))}
        </svg>
      </div>
      <p class="muted" style={{ margin: '0.4rem 0 0' }}>
        <span class="swatch" style={{ background: STATUS_COLOURS.warn }} aria-hidden="true" />{' '}
        {m('detail.mapLegendProposed')} ·{' '}
        <span class="swatch" style={{ background: STATUS_COLOURS.ok }} aria-hidden="true" />{' '}
        {m('detail.mapLegendExisting')} · <span class="ring-swatch" aria-hidden="true" />{' '}
        {m('detail.mapLegendRadius')} · {m('detail.mapHint')}
      </p>
      {chosen.length ? (
        <ul class="muted" aria-live="polite" data-testid="review-map-chosen">
          {chosen.slice(0, 8).map((p) => (
            <li key={p.key}>
              <code>{p.id}</code> {p.label} · {p.state} · {p.agency ?? '—'}
            </li>
          ))}
        </ul>
      ) : null}
    </div>
  );
}
