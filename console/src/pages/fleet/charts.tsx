/**
 * Small inline SVG charts for node health (no chart library): a sparkline for the
 * fleet table and a line chart with axes for the node page. Points are (ms, value);
 * gaps (null values) break the line instead of drawing through missing data.
 */
import { formatNumber } from '../../i18n.ts';

/** One point of a series: time in ms since the epoch, value or null (no sample). */
export type Point = [number, number | null];

function extent(
  points: Point[],
  range?: [number, number],
): { t0: number; t1: number; max: number; min: number } | null {
  const values = points.filter((p): p is [number, number] => p[1] !== null);
  if (values.length === 0) return null;
  // The time axis is the range asked for (a new node has few buckets), else the data's.
  const first = range?.[0] ?? points[0]?.[0] ?? 0;
  const lastT = range?.[1] ?? points[points.length - 1]?.[0] ?? first;
  let max = Number.NEGATIVE_INFINITY;
  let min = Number.POSITIVE_INFINITY;
  for (const [, v] of values) {
    max = Math.max(max, v);
    min = Math.min(min, v);
  }
  return { t0: first, t1: lastT, max, min };
}

/** SVG path through the points, broken at nulls; a point with no neighbour is a short dash. */
function pathOf(points: Point[], x: (t: number) => number, y: (v: number) => number): string {
  let d = '';
  for (let i = 0; i < points.length; i++) {
    const [t, v] = points[i] as Point;
    if (v === null) continue;
    const joined = i > 0 && points[i - 1]?.[1] != null;
    const alone = !joined && points[i + 1]?.[1] == null;
    d += `${joined ? 'L' : 'M'}${x(t).toFixed(1)},${y(v).toFixed(1)}${alone ? 'h-2h4' : ''}`;
  }
  return d;
}

/** A 96×24 sparkline with its latest value; `fixedMax` (e.g. 100 for %) keeps scales comparable. */
export function Sparkline({
  points,
  label,
  fixedMax,
  format,
  tone,
  range,
}: {
  points: Point[];
  label: string;
  range?: [number, number];
  fixedMax?: number;
  format: (v: number) => string;
  tone?: 'ok' | 'warn' | 'bad';
}) {
  const w = 96;
  const h = 24;
  const e = extent(points, range);
  const last = [...points].reverse().find((p) => p[1] !== null)?.[1] ?? null;
  if (!e) return <span class="muted spark-none">—</span>;
  const max = Math.max(fixedMax ?? 0, e.max, 1e-9);
  const span = Math.max(e.t1 - e.t0, 1);
  const d = pathOf(
    points,
    (t) => ((t - e.t0) / span) * (w - 2) + 1,
    (v) => h - 2 - (v / max) * (h - 4),
  );
  return (
    <span class={`spark spark-${tone ?? 'ok'}`}>
      <svg width={w} height={h} viewBox={`0 0 ${w} ${h}`} role="img" aria-label={label}>
        <path
          d={d}
          fill="none"
          stroke="currentColor"
          stroke-width="1.5"
          stroke-linejoin="round"
          stroke-linecap="round"
        />
      </svg>
      <span class="spark-value">{last === null ? '—' : format(last)}</span>
    </span>
  );
}

/** A line chart with a time axis (local time) and a value axis from 0. */
export function LineChart({
  title,
  points,
  unit,
  fixedMax,
  emptyText,
  captionText,
  range,
}: {
  title: string;
  points: Point[];
  range?: [number, number];
  unit?: string;
  fixedMax?: number;
  emptyText: string;
  captionText: (last: string, max: string, n: number) => string;
}) {
  const w = 320;
  const h = 150;
  const left = 34;
  const bottom = 18;
  const e = extent(points, range);
  if (!e)
    return (
      <figure class="chart">
        <figcaption>{title}</figcaption>
        <p class="chart-empty muted">{emptyText}</p>
      </figure>
    );
  const max = niceMax(Math.max(fixedMax ?? 0, e.max));
  const span = Math.max(e.t1 - e.t0, 1);
  const x = (t: number) => left + ((t - e.t0) / span) * (w - left - 6);
  const y = (v: number) => h - bottom - (v / max) * (h - bottom - 8);
  const last = [...points].reverse().find((p) => p[1] !== null)?.[1] ?? 0;
  const fmt = (v: number) => `${formatNumber(v, v < 10 && v % 1 !== 0 ? 1 : 0)}${unit ?? ''}`;
  const ticks = [0, max / 2, max];
  const times = [e.t0, e.t0 + span / 2, e.t1];
  const n = points.filter((p) => p[1] !== null).length;
  return (
    <figure class="chart">
      <figcaption>{title}</figcaption>
      <svg viewBox={`0 0 ${w} ${h}`} role="img" aria-label={captionText(fmt(last), fmt(e.max), n)}>
        {ticks.map((v) => (
          <g key={v}>
            <line x1={left} x2={w - 6} y1={y(v)} y2={y(v)} class="chart-grid" />
            <text x={left - 4} y={y(v) + 4} text-anchor="end" class="chart-tick">
              {formatNumber(v, v < 10 && v % 1 !== 0 ? 1 : 0)}
            </text>
          </g>
        ))}
        {times.map((t, i) => (
          <text
            key={t}
            x={x(t)}
            y={h - 4}
            text-anchor={i === 0 ? 'start' : i === 2 ? 'end' : 'middle'}
            class="chart-tick"
          >
            {new Date(t).toLocaleTimeString(undefined, { hour: '2-digit', minute: '2-digit' })}
          </text>
        ))}
        <path d={pathOf(points, x, y)} class="chart-line" />
      </svg>
    </figure>
  );
}

function niceMax(v: number): number {
  if (v <= 0) return 1;
  const p = 10 ** Math.floor(Math.log10(v));
  for (const f of [1, 2, 2.5, 5, 10]) if (v <= f * p) return f * p;
  return 10 * p;
}
