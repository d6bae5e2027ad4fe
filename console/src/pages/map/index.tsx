/**
 * The map page: every pole, gateway, sensor and camera the user may see, coloured by
 * status, clustered, with filters by kind, agency and district and a details panel.
 */
import { useEffect, useLayoutEffect, useMemo, useRef, useState } from 'preact/hooks';
import { api, type ConsoleConfig } from '../../api.ts';
import { ErrorPanel, Loading } from '../../components/states.tsx';
import { formatNumber, formatTime, lang, type MessageKey, t } from '../../i18n.ts';
import { onLiveEvent } from '../../live.ts';
import { session } from '../../session.ts';
import { useValue } from '../../signal.ts';
import { DISTRICTS, districtAt } from './basemap.ts';
import { PointIndex } from './cluster.ts';
import { type LayerResult, loadLayers } from './layers.ts';
import { type MapPoint, POINT_KINDS, type PointKind, STATUS_COLOURS, STATUSES } from './model.ts';
import { latToY, lonToX } from './projection.ts';
import { MapRenderer } from './renderer.ts';

/** Test and bench handle on the live map (inert unless something calls it). */
export interface MapTestHandle {
  renderer: MapRenderer;
  /** Replaces the page's points (filters apply) and resolves once they are drawn, with timings. */
  show(points: MapPoint[]): Promise<{ indexMs: number; frameMs: number; totalMs: number }>;
}

declare global {
  interface Window {
    citysenseMap?: MapTestHandle;
  }
}

const project = (p: MapPoint): [number, number] => [lonToX(p.lon), latToY(p.lat)];

function withDistricts(points: MapPoint[]): MapPoint[] {
  for (const p of points) if (p.district === undefined) p.district = districtAt(p.lon, p.lat)?.id ?? null;
  return points;
}

/** The map page. */
export default function MapPage() {
  const s = useValue(session);
  const english = useValue(lang) === 'en';
  const canvasRef = useRef<HTMLCanvasElement>(null);
  const rendererRef = useRef<MapRenderer | null>(null);
  const [layers, setLayers] = useState<LayerResult[] | null>(null);
  const [round, setRound] = useState(0);
  const [points, setPoints] = useState<MapPoint[]>([]);
  const [kinds, setKinds] = useState<Set<PointKind>>(() => new Set(POINT_KINDS));
  const [agency, setAgency] = useState('');
  const [district, setDistrict] = useState('');
  const [selected, setSelected] = useState<MapPoint[] | null>(null);
  const fitted = useRef(false);
  const showing = useRef<{
    started: number;
    resolve: (t: { indexMs: number; frameMs: number; totalMs: number }) => void;
  } | null>(null);

  // The renderer lives as long as the page. Layout effects: start drawing and loading
  // before the first paint rather than a frame after it.
  useLayoutEffect(() => {
    const canvas = canvasRef.current;
    if (!canvas) return;
    let painted = false;
    const renderer = new MapRenderer(canvas, {
      select: (pts) => setSelected(pts),
      drawn: ({ clusters }) => {
        // First meaningful paint of the map: the first frame with points (read by the bench, RUM).
        if (painted || clusters === 0) return;
        painted = true;
        performance.mark('citysense:map-first-paint');
      },
    });
    rendererRef.current = renderer;
    api.get<ConsoleConfig>('/v1/console/config').then(
      (c) => renderer.setTiles(c.basemap.tileUrl),
      () => renderer.setTiles(null),
    );
    window.citysenseMap = {
      renderer,
      // Through the page's own state, filters and clustering: what a real load costs.
      show: (next) =>
        new Promise((resolve) => {
          showing.current = { started: performance.now(), resolve };
          fitted.current = false;
          setPoints(withDistricts(next));
        }),
    };
    return () => {
      renderer.destroy();
      rendererRef.current = null;
      if (window.citysenseMap?.renderer === renderer) window.citysenseMap = undefined;
    };
  }, []);

  // Load the layers (again on refresh).
  // Loads again when `round` changes (the refresh button).
  useLayoutEffect(() => {
    if (!s) return;
    const abort = new AbortController();
    setLayers(null);
    loadLayers(api, s.me, abort.signal).then((result) => {
      if (abort.signal.aborted) return;
      setLayers(result);
      setPoints(withDistricts(result.flatMap((r) => r.points)));
    });
    return () => abort.abort();
  }, [s, round]);

  // Live: gateways change colour as they go online and offline.
  useEffect(
    () =>
      onLiveEvent((e) => {
        if (e.event !== 'node') return;
        const { id, online } = e.data as { id: string; online: boolean };
        setPoints((prev) => {
          const i = prev.findIndex((p) => p.key === `gateway:${id}`);
          const old = prev[i];
          if (!old) return prev;
          const next = [...prev];
          next[i] = { ...old, status: online ? 'ok' : 'bad', state: online ? 'online' : 'offline' };
          return next;
        });
      }),
    [],
  );

  const agencies = useMemo(
    () => [...new Set(points.map((p) => p.agency).filter((a): a is string => !!a))].sort(),
    [points],
  );
  const shown = useMemo(
    () =>
      points.filter(
        (p) =>
          kinds.has(p.kind) &&
          (!agency || p.agency === agency) &&
          (!district || (district === '-' ? !p.district : p.district === district)),
      ),
    [points, kinds, agency, district],
  );

  useEffect(() => {
    const r = rendererRef.current;
    if (!r || !layers) return;
    const t0 = performance.now();
    const index = new PointIndex(shown, project);
    r.setPoints(index, !fitted.current && shown.length > 0);
    if (shown.length > 0) fitted.current = true;
    const show = showing.current;
    if (!show) return;
    showing.current = null;
    index.level(r.view.zoom);
    const indexMs = performance.now() - t0;
    requestAnimationFrame(() => {
      const f0 = performance.now();
      r.draw();
      const frameMs = performance.now() - f0;
      show.resolve({ indexMs, frameMs, totalMs: performance.now() - show.started });
    });
  }, [shown, layers]);
  useEffect(() => rendererRef.current?.setEnglish(english), [english]);
  useEffect(
    () => rendererRef.current?.setSelected(selected?.length === 1 ? (selected[0]?.key ?? null) : null),
    [selected],
  );

  const toggleKind = (k: PointKind) =>
    setKinds((prev) => {
      const next = new Set(prev);
      if (next.has(k)) next.delete(k);
      else next.add(k);
      return next;
    });
  const failed = layers?.filter((l) => l.error) ?? [];

  return (
    <div class="map-page">
      <div class="map-toolbar">
        <h1>{t('map.title')}</h1>
        <fieldset>
          <legend>{t('map.kind')}</legend>
          {POINT_KINDS.map((k) => (
            <label class="chip" key={k}>
              <input type="checkbox" checked={kinds.has(k)} onChange={() => toggleKind(k)} data-kind={k} />
              {t(`map.kind.${k}` as MessageKey)}
            </label>
          ))}
        </fieldset>
        <label class="select">
          {t('map.agency')}
          <select
            value={agency}
            onChange={(e) => setAgency((e.currentTarget as HTMLSelectElement).value)}
            name="agency"
          >
            <option value="">{t('map.all')}</option>
            {agencies.map((a) => (
              <option key={a} value={a}>
                {a}
              </option>
            ))}
          </select>
        </label>
        <label class="select">
          {t('map.district')}
          <select
            value={district}
            onChange={(e) => setDistrict((e.currentTarget as HTMLSelectElement).value)}
            name="district"
          >
            <option value="">{t('map.all')}</option>
            {DISTRICTS.map((d) => (
              <option key={d.id} value={d.id}>
                {english ? d.nameEn : d.name}
              </option>
            ))}
            <option value="-">{t('map.noDistrict')}</option>
          </select>
        </label>
        <button
          type="button"
          class="btn btn-icon"
          aria-label={t('map.refresh')}
          title={t('map.refresh')}
          onClick={() => setRound((n) => n + 1)}
        >
          ⟳
        </button>
      </div>
      <div class="map-stage">
        <canvas ref={canvasRef} class="map-canvas" tabIndex={0} aria-label={t('map.canvasLabel')} />
        <div class="map-controls">
          <button
            type="button"
            class="btn"
            aria-label={t('map.zoomIn')}
            onClick={() => rendererRef.current?.zoomBy(1)}
          >
            +
          </button>
          <button
            type="button"
            class="btn"
            aria-label={t('map.zoomOut')}
            onClick={() => rendererRef.current?.zoomBy(-1)}
          >
            −
          </button>
          <button
            type="button"
            class="btn"
            aria-label={t('map.reset')}
            onClick={() => rendererRef.current?.fit()}
          >
            ⤢
          </button>
        </div>
        {!layers ? (
          <div class="map-loading">
            <Loading />
          </div>
        ) : null}
        <div class="map-layers">
          <span class="map-count" data-testid="map-count" aria-live="polite">
            {t('map.points', { shown: formatNumber(shown.length), total: formatNumber(points.length) })}
          </span>
          {failed.length > 0 ? (
            <div data-testid="layer-errors">
              {failed.map((l) => (
                <ErrorPanel key={l.layer} error={l.error} compact onRetry={() => setRound((n) => n + 1)} />
              ))}
            </div>
          ) : null}
        </div>
        <div class="map-legend">
          <p class="sr-only">{t('map.legend')}</p>
          <ul>
            {STATUSES.map((st) => (
              <li key={st}>
                <span class="swatch" style={{ background: STATUS_COLOURS[st] }} aria-hidden="true" />
                {t(`map.status.${st}` as MessageKey)}
              </li>
            ))}
            <li class="muted">
              ■ {t('map.kind.pole')} ◆ {t('map.kind.gateway')}
            </li>
            <li class="muted">
              ● {t('map.kind.sensor')} ▲ {t('map.kind.camera')}
            </li>
          </ul>
        </div>
        <div class="map-attribution">{t('map.attribution.grid')}</div>
        {selected && selected.length > 0 ? (
          <Details
            points={selected}
            english={english}
            onClose={() => {
              setSelected(null);
              canvasRef.current?.focus();
            }}
          />
        ) : null}
      </div>
    </div>
  );
}

function Details({
  points,
  english,
  onClose,
}: {
  points: MapPoint[];
  english: boolean;
  onClose: () => void;
}) {
  const [i, setI] = useState(0);
  const ref = useRef<HTMLElement>(null);
  const p = points[Math.min(i, points.length - 1)];
  useEffect(() => {
    setI(0);
    ref.current?.focus();
  }, [points]);
  if (!p) return null;
  const d = DISTRICTS.find((x) => x.id === p.district);
  return (
    <aside
      class="details"
      ref={ref}
      tabIndex={-1}
      aria-labelledby="details-title"
      data-testid="details"
      onKeyDown={(e) => e.key === 'Escape' && onClose()}
    >
      <button type="button" class="btn btn-ghost close" aria-label={t('map.close')} onClick={onClose}>
        ✕
      </button>
      <h2 id="details-title">{p.label}</h2>
      {points.length > 1 ? (
        <p>
          <select
            aria-label={t('map.cluster', { n: points.length })}
            value={String(i)}
            onChange={(e) => setI(Number((e.currentTarget as HTMLSelectElement).value))}
          >
            {points.map((x, n) => (
              <option key={x.key} value={String(n)}>
                {x.label}
              </option>
            ))}
          </select>
        </p>
      ) : null}
      <dl>
        <dt>{t('map.field.id')}</dt>
        <dd>
          <code>{p.id}</code>
        </dd>
        <dt>{t('map.field.kind')}</dt>
        <dd>{t(`map.kind.${p.kind}` as MessageKey)}</dd>
        <dt>{t('map.field.status')}</dt>
        <dd class="status-pill">
          <span class="swatch" style={{ background: STATUS_COLOURS[p.status] }} aria-hidden="true" />
          {t(`map.status.${p.status}` as MessageKey)} ({p.state})
        </dd>
        <dt>{t('map.field.agency')}</dt>
        <dd>{p.agency ?? '—'}</dd>
        <dt>{t('map.field.district')}</dt>
        <dd>{d ? (english ? d.nameEn : d.name) : t('map.noDistrict')}</dd>
        <dt>{t('map.field.position')}</dt>
        <dd>
          {p.lon.toFixed(6)}, {p.lat.toFixed(6)}
        </dd>
        <dt>{t('map.field.updated')}</dt>
        <dd data-field="updated">{formatTime(p.updated)}</dd>
        {p.facts.map(([k, v]) => [<dt key={`k-${k}`}>{t(k)}</dt>, <dd key={`v-${k}`}>{v}</dd>])}
        <dt>API</dt>
        <dd>
          <code>{p.source}</code>
        </dd>
      </dl>
    </aside>
  );
}
