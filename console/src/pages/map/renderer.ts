/**
 * Draws the map on a canvas and handles pan/zoom by mouse (drag, wheel), touch
 * (one finger pans, two pinch) and keyboard (arrows, + / -, Enter selects the point
 * nearest the centre). Redraws at most once per animation frame.
 */
import { drawDistricts, drawGraticule, type Screen, screenOf, TileLayer } from './basemap.ts';
import type { Cluster, PointIndex } from './cluster.ts';
import { type MapPoint, STATUS_COLOURS, STATUSES } from './model.ts';
import { fitView, latToY, lonToX, MAX_ZOOM, MIN_ZOOM, type View } from './projection.ts';

/** What the renderer tells its page. */
export interface RendererEvents {
  /** A point, or the members of a cluster that cannot be split further, was chosen. */
  select(points: MapPoint[]): void;
  /** A frame was drawn (for the bench and tests). */
  drawn?(stats: { clusters: number; ms: number }): void;
}

/** The demo area (Chang'an Avenue, Beijing) when there is nothing to fit. */
const HOME: View = { cx: lonToX(116.4), cy: latToY(39.908), zoom: 12 };

const COLOUR_LIST = STATUSES.map((s) => STATUS_COLOURS[s]);

interface DrawnItem {
  x: number;
  y: number;
  r: number;
  c: Cluster;
}

/** A map on one canvas. */
export class MapRenderer {
  readonly #canvas: HTMLCanvasElement;
  readonly #ctx: CanvasRenderingContext2D;
  readonly #events: RendererEvents;
  #view: View = { ...HOME };
  #index: PointIndex | null = null;
  #tiles: TileLayer | null = null;
  #english = false;
  #selected: string | null = null;
  #frame = 0;
  #drawn: DrawnItem[] = [];
  readonly #pointers = new Map<number, { x: number; y: number }>();
  #moved = false;
  #resize: ResizeObserver;
  readonly #abort = new AbortController();

  constructor(canvas: HTMLCanvasElement, events: RendererEvents) {
    this.#canvas = canvas;
    const ctx = canvas.getContext('2d', { alpha: false });
    if (!ctx) throw new Error('canvas 2D is not available');
    this.#ctx = ctx;
    this.#events = events;
    this.#resize = new ResizeObserver(() => this.invalidate());
    this.#resize.observe(canvas);
    this.#listen();
  }

  /** Stops listening and drawing. */
  destroy(): void {
    this.#abort.abort();
    this.#resize.disconnect();
    cancelAnimationFrame(this.#frame);
  }

  /** Shows a new point set; `fit` moves the view onto it. */
  setPoints(index: PointIndex, fit: boolean): void {
    this.#index = index;
    if (fit) this.fit();
    this.invalidate();
  }

  /** Uses XYZ tiles (or the offline basemap when null). */
  setTiles(template: string | null): void {
    this.#tiles = template ? new TileLayer(template, () => this.invalidate()) : null;
    this.invalidate();
  }

  /** Labels in English or Chinese. */
  setEnglish(english: boolean): void {
    this.#english = english;
    this.invalidate();
  }

  /** Highlights one point (by key). */
  setSelected(key: string | null): void {
    this.#selected = key;
    this.invalidate();
  }

  /** Fits the view to the points (or the demo area when there are none). */
  fit(): void {
    const idx = this.#index;
    const { width, height } = this.#canvas.getBoundingClientRect();
    if (!idx || idx.size === 0 || width === 0) {
      this.#view = { ...HOME };
      return;
    }
    let x0 = Number.POSITIVE_INFINITY;
    let y0 = Number.POSITIVE_INFINITY;
    let x1 = Number.NEGATIVE_INFINITY;
    let y1 = Number.NEGATIVE_INFINITY;
    for (let i = 0; i < idx.size; i++) {
      const x = idx.xs[i] ?? 0;
      const y = idx.ys[i] ?? 0;
      if (x < x0) x0 = x;
      if (x > x1) x1 = x;
      if (y < y0) y0 = y;
      if (y > y1) y1 = y;
    }
    this.#view = fitView(x0, y0, x1, y1, width, height);
    this.invalidate();
  }

  /** Zooms by `delta` levels around a screen point (default: the centre). */
  zoomBy(delta: number, sx?: number, sy?: number): void {
    const { width, height } = this.#canvas.getBoundingClientRect();
    const px = sx ?? width / 2;
    const py = sy ?? height / 2;
    const before = screenOf(this.#view, width, height);
    const wx = this.#view.cx + (px - width / 2) / before.scale;
    const wy = this.#view.cy + (py - height / 2) / before.scale;
    const zoom = Math.max(MIN_ZOOM, Math.min(MAX_ZOOM, this.#view.zoom + delta));
    const scale = 256 * 2 ** zoom;
    this.#view = { zoom, cx: wx - (px - width / 2) / scale, cy: wy - (py - height / 2) / scale };
    this.invalidate();
  }

  /** Pans by screen pixels. */
  panBy(dx: number, dy: number): void {
    const scale = 256 * 2 ** this.#view.zoom;
    this.#view = { ...this.#view, cx: this.#view.cx - dx / scale, cy: this.#view.cy - dy / scale };
    this.invalidate();
  }

  /** Current view (tests, bench). */
  get view(): View {
    return { ...this.#view };
  }

  /** Screen positions of what the last frame drew (tests use them to click a point). */
  drawnItems(): Array<{ x: number; y: number; count: number; key: string }> {
    const pts = this.#index?.points ?? [];
    return this.#drawn.map((d) => ({ x: d.x, y: d.y, count: d.c.count, key: pts[d.c.first]?.key ?? '' }));
  }

  /** Schedules a redraw. */
  invalidate(): void {
    if (this.#frame) return;
    this.#frame = requestAnimationFrame(() => {
      this.#frame = 0;
      this.draw();
    });
  }

  /** Draws one frame now. */
  draw(): void {
    const started = performance.now();
    const rect = this.#canvas.getBoundingClientRect();
    const dpr = window.devicePixelRatio || 1;
    const w = Math.max(1, Math.round(rect.width));
    const h = Math.max(1, Math.round(rect.height));
    if (this.#canvas.width !== Math.round(w * dpr) || this.#canvas.height !== Math.round(h * dpr)) {
      this.#canvas.width = Math.round(w * dpr);
      this.#canvas.height = Math.round(h * dpr);
    }
    const ctx = this.#ctx;
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    ctx.fillStyle = '#eef2f4';
    ctx.fillRect(0, 0, w, h);
    const s = screenOf(this.#view, w, h);
    if (this.#tiles) this.#tiles.draw(ctx, s);
    else drawGraticule(ctx, s);
    drawDistricts(ctx, s, this.#english, !this.#tiles);
    this.#drawPoints(ctx, s);
    this.#events.drawn?.({ clusters: this.#drawn.length, ms: performance.now() - started });
  }

  #drawPoints(ctx: CanvasRenderingContext2D, s: Screen): void {
    this.#drawn = [];
    const idx = this.#index;
    if (!idx) return;
    const clusters = idx.level(this.#view.zoom);
    const pts = idx.points;
    const pad = 30;
    let selected: { x: number; y: number } | null = null;
    ctx.textAlign = 'center';
    ctx.textBaseline = 'middle';
    for (const c of clusters) {
      const x = s.toX(c.x);
      const y = s.toY(c.y);
      if (x < -pad || y < -pad || x > s.w + pad || y > s.h + pad) continue;
      if (c.count === 1) {
        const p = pts[c.first];
        if (!p) continue;
        this.#drawPoint(ctx, p, x, y);
        this.#drawn.push({ x, y, r: 8, c });
        if (p.key === this.#selected) selected = { x, y };
      } else {
        const r = Math.min(30, 11 + Math.log2(c.count) * 2.4);
        this.#drawCluster(ctx, c, x, y, r);
        this.#drawn.push({ x, y, r, c });
      }
    }
    if (selected) {
      ctx.beginPath();
      ctx.arc(selected.x, selected.y, 12, 0, Math.PI * 2);
      ctx.strokeStyle = '#2563eb';
      ctx.lineWidth = 3;
      ctx.stroke();
    }
  }

  #drawPoint(ctx: CanvasRenderingContext2D, p: MapPoint, x: number, y: number): void {
    ctx.fillStyle = STATUS_COLOURS[p.status];
    ctx.strokeStyle = '#ffffff';
    ctx.lineWidth = 1.5;
    ctx.beginPath();
    // Shape by kind, colour by status: both readable without the other.
    switch (p.kind) {
      case 'pole':
        ctx.rect(x - 5, y - 5, 10, 10);
        break;
      case 'gateway':
        ctx.moveTo(x, y - 7);
        ctx.lineTo(x + 7, y);
        ctx.lineTo(x, y + 7);
        ctx.lineTo(x - 7, y);
        ctx.closePath();
        break;
      case 'camera':
        ctx.moveTo(x, y - 7);
        ctx.lineTo(x + 6.5, y + 5);
        ctx.lineTo(x - 6.5, y + 5);
        ctx.closePath();
        break;
      default:
        ctx.arc(x, y, 5.5, 0, Math.PI * 2);
    }
    ctx.fill();
    ctx.stroke();
  }

  #drawCluster(ctx: CanvasRenderingContext2D, c: Cluster, x: number, y: number, r: number): void {
    // A ring of status shares around the count.
    let a = -Math.PI / 2;
    for (let i = 0; i < c.byStatus.length; i++) {
      const n = c.byStatus[i] ?? 0;
      if (n === 0) continue;
      const sweep = (n / c.count) * Math.PI * 2;
      ctx.beginPath();
      ctx.moveTo(x, y);
      ctx.arc(x, y, r, a, a + sweep);
      ctx.closePath();
      ctx.fillStyle = COLOUR_LIST[i] ?? '#888';
      ctx.fill();
      a += sweep;
    }
    ctx.beginPath();
    ctx.arc(x, y, r * 0.66, 0, Math.PI * 2);
    ctx.fillStyle = '#ffffff';
    ctx.fill();
    ctx.fillStyle = '#17202a';
    ctx.font = `700 ${c.count >= 1000 ? 10 : 11}px system-ui, sans-serif`;
    ctx.fillText(c.count >= 10_000 ? `${Math.round(c.count / 1000)}k` : String(c.count), x, y + 0.5);
  }

  #hit(sx: number, sy: number): DrawnItem | undefined {
    let best: DrawnItem | undefined;
    let bestD = Number.POSITIVE_INFINITY;
    for (const d of this.#drawn) {
      const dist = Math.hypot(d.x - sx, d.y - sy);
      if (dist <= d.r + 4 && dist < bestD) {
        best = d;
        bestD = dist;
      }
    }
    return best;
  }

  /** Acts on what is at a screen point: a point opens its details, a cluster zooms in. */
  activateAt(sx: number, sy: number): boolean {
    const hit = this.#hit(sx, sy);
    if (!hit) return false;
    this.#activate(hit);
    return true;
  }

  #activate(hit: { x: number; y: number; c: Cluster }): void {
    const pts = this.#index?.points ?? [];
    if (hit.c.count === 1 || this.#view.zoom >= MAX_ZOOM - 0.01) {
      this.#events.select(hit.c.members.map((i) => pts[i]).filter((p): p is MapPoint => p !== undefined));
      return;
    }
    // Zoom in onto the cluster: to the level where it splits.
    const { width, height } = this.#canvas.getBoundingClientRect();
    this.panBy(width / 2 - hit.x, height / 2 - hit.y);
    this.zoomBy(Math.min(2, MAX_ZOOM - this.#view.zoom));
  }

  #listen(): void {
    const c = this.#canvas;
    const opts = { signal: this.#abort.signal };
    const local = (e: { clientX: number; clientY: number }) => {
      const r = c.getBoundingClientRect();
      return { x: e.clientX - r.left, y: e.clientY - r.top };
    };
    c.addEventListener(
      'wheel',
      (e) => {
        e.preventDefault();
        const p = local(e);
        const delta = e.deltaMode === 1 ? e.deltaY * 16 : e.deltaY;
        this.zoomBy(-delta * 0.0025, p.x, p.y);
      },
      { ...opts, passive: false },
    );
    c.addEventListener(
      'pointerdown',
      (e) => {
        c.setPointerCapture(e.pointerId);
        this.#pointers.set(e.pointerId, local(e));
        this.#moved = false;
      },
      opts,
    );
    c.addEventListener(
      'pointermove',
      (e) => {
        const prev = this.#pointers.get(e.pointerId);
        if (!prev) return;
        const now = local(e);
        if (this.#pointers.size === 1) {
          if (Math.hypot(now.x - prev.x, now.y - prev.y) > 0 || this.#moved) {
            this.panBy(now.x - prev.x, now.y - prev.y);
            if (Math.abs(now.x - prev.x) + Math.abs(now.y - prev.y) > 1) this.#moved = true;
          }
        } else if (this.#pointers.size === 2) {
          const other = [...this.#pointers].find(([id]) => id !== e.pointerId)?.[1];
          if (other) {
            const before = Math.hypot(prev.x - other.x, prev.y - other.y);
            const after = Math.hypot(now.x - other.x, now.y - other.y);
            if (before > 0 && after > 0)
              this.zoomBy(Math.log2(after / before), (now.x + other.x) / 2, (now.y + other.y) / 2);
            this.panBy((now.x - prev.x) / 2, (now.y - prev.y) / 2);
          }
          this.#moved = true;
        }
        this.#pointers.set(e.pointerId, now);
      },
      opts,
    );
    const end = (e: PointerEvent) => {
      const wasOnly = this.#pointers.size === 1;
      this.#pointers.delete(e.pointerId);
      if (e.type === 'pointerup' && wasOnly && !this.#moved) {
        const p = local(e);
        this.activateAt(p.x, p.y);
      }
    };
    c.addEventListener('pointerup', end, opts);
    c.addEventListener('pointercancel', end, opts);
    c.addEventListener(
      'keydown',
      (e) => {
        const step = e.shiftKey ? 300 : 100;
        const keys: Record<string, () => void> = {
          ArrowLeft: () => this.panBy(step, 0),
          ArrowRight: () => this.panBy(-step, 0),
          ArrowUp: () => this.panBy(0, step),
          ArrowDown: () => this.panBy(0, -step),
          '+': () => this.zoomBy(1),
          '=': () => this.zoomBy(1),
          '-': () => this.zoomBy(-1),
          '0': () => this.fit(),
          Enter: () => {
            const r = c.getBoundingClientRect();
            let best: DrawnItem | undefined;
            let bestD = Number.POSITIVE_INFINITY;
            for (const d of this.#drawn) {
              const dist = Math.hypot(d.x - r.width / 2, d.y - r.height / 2);
              if (dist < bestD) {
                best = d;
                bestD = dist;
              }
            }
            if (best) this.#activate(best);
          },
        };
        const run = keys[e.key];
        if (run) {
          e.preventDefault();
          run();
        }
      },
      opts,
    );
  }
}
