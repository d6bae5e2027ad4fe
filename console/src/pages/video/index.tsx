/**
 * Video (003 §7.3.2.4): cameras by access path (GB/T 28181 devices and channels, ONVIF,
 * RTSP/RTMP relay streams), a live HTTP-FLV view played with mpegts.js (loaded only on
 * this page) with the edge detections of the source drawn over it on a canvas, device
 * and quality alarms, and detections of the last 24 hours by class.
 */
import { useEffect, useRef, useState } from 'preact/hooks';
import { type ApiError, api, asApiError } from '../../api.ts';
import { type Column, DataTable, ResourceTable } from '../../components/data-table.tsx';
import { AdminHead } from '../../components/page-head.tsx';
import { Panel } from '../../components/panel.tsx';
import { Empty, ErrorPanel } from '../../components/states.tsx';
import { useResource } from '../../components/use-resource.ts';
import { formatNumber, formatTime } from '../../i18n.ts';
import '../../components/page.css';
import '../algorithms/centre.css';
import { m } from './messages.ts';

interface VideoDevice {
  deviceId: string;
  name: string | null;
  manufacturer: string | null;
  model: string | null;
  channelCount: number | null;
  online: boolean;
  lastKeepaliveAt: string | null;
}
interface Channel {
  deviceId: string;
  channelId: string;
  name: string | null;
  status: string | null;
}
interface RelayStream {
  path: string;
  protocol: string;
  publisher: string;
  startedAt: string;
  players: number;
  flvUrl: string;
}
interface Alarm {
  time: string;
  deviceId: string;
  priority: number;
  alarmType: string | null;
  description: string;
}
interface Detection {
  time: string;
  source: string;
  label: string;
  likelihood: number;
  box: { left: number; top: number; right: number; bottom: number };
}
interface CountRow {
  label: string;
  objects: number;
  peak: number;
}

/** What is being watched: a title, the FLV URL and the analytics source id of its detections. */
interface LiveTarget {
  key: string;
  name: string;
  flvUrl: string;
  source: string;
}

/** The video page. */
export default function VideoPage() {
  const [target, setTarget] = useState<LiveTarget | null>(null);
  const [failure, setFailure] = useState<ApiError | null>(null);
  const watchChannel = async (c: Channel) => {
    setFailure(null);
    try {
      const live = await api.request<{ flvUrl: string }>(
        'POST',
        `/v1/video/channels/${encodeURIComponent(c.channelId)}/live`,
        { body: {} },
      );
      setTarget({ key: c.channelId, name: c.name ?? c.channelId, flvUrl: live.flvUrl, source: c.channelId });
    } catch (e) {
      setFailure(asApiError(e));
    }
  };
  return (
    <section class="admin-page" aria-labelledby="video-title">
      <AdminHead titleId="video-title" title={m('title')} subtitle={m('subtitle')} />
      {failure ? <ErrorPanel error={failure} compact /> : null}
      <LivePanel target={target} onStop={() => setTarget(null)} />
      <div class="split">
        <Gb28181 onWatch={watchChannel} watching={target?.key} />
        <div style="display:grid;gap:1rem">
          <Relay
            onWatch={(s) =>
              setTarget({
                key: s.path,
                name: s.path,
                flvUrl: s.flvUrl,
                source: s.path.split('/').pop() ?? s.path,
              })
            }
            watching={target?.key}
          />
          <Panel heading={m('onvif')} headingId="onvif-title" data-access="onvif">
            <p class="muted" style="margin:0">
              {m('onvifEmpty')}
            </p>
          </Panel>
        </div>
      </div>
      <div class="split">
        <Detections />
        <Alarms />
      </div>
    </section>
  );
}

function Gb28181(p: { onWatch: (c: Channel) => void; watching: string | undefined }) {
  const devices = useResource(() => api.get<VideoDevice[]>('/v1/video/devices'), []);
  const [open, setOpen] = useState<string | null>(null);
  const columns: Column<VideoDevice>[] = [
    {
      id: 'device',
      header: m('device'),
      cell: (d) => (
        <div>
          <div>{d.name ?? '—'}</div>
          <div class="mono muted">{d.deviceId}</div>
        </div>
      ),
      sort: (d) => d.deviceId,
    },
    {
      id: 'status',
      header: m('status'),
      cell: (d) => (
        <span class={`pill ${d.online ? 'ok' : 'bad'}`}>{d.online ? m('online') : m('offline')}</span>
      ),
      sort: (d) => (d.online ? 0 : 1),
    },
    { id: 'keepalive', header: m('keepalive'), cell: (d) => formatTime(d.lastKeepaliveAt) },
    {
      id: 'channels',
      header: m('channel'),
      cell: (d) => (
        <button
          type="button"
          class="btn"
          aria-expanded={open === d.deviceId ? 'true' : 'false'}
          onClick={() => setOpen(open === d.deviceId ? null : d.deviceId)}
        >
          {m('channels', { n: d.channelCount ?? 0 })}
        </button>
      ),
    },
  ];
  return (
    <Panel heading={m('gb')} headingId="gb-title" data-access="gb28181">
      <ResourceTable
        caption={m('gb')}
        columns={columns}
        resource={devices}
        rowKey={(d) => d.deviceId}
        empty={m('gbEmpty')}
      />
      {open ? <Channels deviceId={open} onWatch={p.onWatch} watching={p.watching} /> : null}
    </Panel>
  );
}

function Channels(p: { deviceId: string; onWatch: (c: Channel) => void; watching: string | undefined }) {
  const channels = useResource(
    () => api.get<Channel[]>(`/v1/video/devices/${encodeURIComponent(p.deviceId)}/channels`),
    [p.deviceId],
  );
  const columns: Column<Channel>[] = [
    { id: 'channel', header: m('channel'), cell: (c) => <span class="mono">{c.channelId}</span> },
    { id: 'name', header: m('name'), cell: (c) => c.name ?? '—' },
    { id: 'status', header: m('status'), cell: (c) => c.status ?? '—' },
    {
      id: 'watch',
      header: m('watch'),
      cell: (c) => (
        <button
          type="button"
          class="btn btn-primary"
          disabled={p.watching === c.channelId}
          onClick={() => p.onWatch(c)}
        >
          {p.watching === c.channelId ? m('watching') : m('watch')}
        </button>
      ),
    },
  ];
  return (
    <>
      <h3>
        {m('device')} <span class="mono">{p.deviceId}</span>
      </h3>
      <DataTable
        caption={m('channel')}
        columns={columns}
        rows={channels.data}
        rowKey={(c) => c.channelId}
        loading={channels.loading}
        error={channels.error}
        onRetry={channels.reload}
      />
    </>
  );
}

function Relay(p: { onWatch: (s: RelayStream) => void; watching: string | undefined }) {
  const streams = useResource(() => api.get<RelayStream[]>('/v1/video/streams'), []);
  useEffect(() => {
    const timer = setInterval(streams.reload, 5000);
    return () => clearInterval(timer);
  }, [streams.reload]);
  const columns: Column<RelayStream>[] = [
    { id: 'path', header: m('path'), cell: (s) => <span class="mono">{s.path}</span>, sort: (s) => s.path },
    { id: 'protocol', header: m('protocol'), cell: (s) => s.protocol.toUpperCase() },
    { id: 'publisher', header: m('publisher'), cell: (s) => <span class="mono">{s.publisher}</span> },
    { id: 'players', header: m('players'), align: 'end', cell: (s) => s.players },
    {
      id: 'watch',
      header: m('watch'),
      cell: (s) => (
        <button
          type="button"
          class="btn btn-primary"
          data-watch={s.path}
          disabled={p.watching === s.path}
          onClick={() => p.onWatch(s)}
        >
          {p.watching === s.path ? m('watching') : m('watch')}
        </button>
      ),
    },
  ];
  return (
    <Panel heading={m('relay')} headingId="relay-title" data-access="relay">
      <DataTable
        caption={m('relay')}
        columns={columns}
        rows={streams.data}
        rowKey={(s) => s.path}
        loading={streams.data === undefined && streams.loading}
        error={streams.error}
        onRetry={streams.reload}
        empty={<p class="muted">{m('relayEmpty')}</p>}
      />
    </Panel>
  );
}

/** Whether this browser can play H.264 from FLV through Media Source Extensions. */
function playbackSupport(): 'ok' | 'no-mse' | 'no-h264' {
  const ms = (globalThis as { MediaSource?: typeof MediaSource }).MediaSource;
  if (!ms) return 'no-mse';
  return ms.isTypeSupported('video/mp4; codecs="avc1.42E01E"') ? 'ok' : 'no-h264';
}

function LivePanel(p: { target: LiveTarget | null; onStop: () => void }) {
  const videoRef = useRef<HTMLVideoElement>(null);
  const canvasRef = useRef<HTMLCanvasElement>(null);
  const [phase, setPhase] = useState<'connecting' | 'playing' | 'no-mse' | 'no-h264' | 'error'>('connecting');
  const [detail, setDetail] = useState('');
  const [boxes, setBoxes] = useState<Detection[]>([]);
  const target = p.target;

  useEffect(() => {
    if (!target) return;
    const support = playbackSupport();
    setPhase(support === 'ok' ? 'connecting' : support);
    if (support !== 'ok') return;
    let player: { destroy(): void } | undefined;
    let cancelled = false;
    // mpegts.js is ~150 kB: it loads with the first live view, never with the console.
    void import('mpegts.js').then(({ default: mpegts }) => {
      const video = videoRef.current;
      if (cancelled || !video) return;
      const created = mpegts.createPlayer(
        { type: 'flv', isLive: true, url: target.flvUrl },
        { enableWorker: false, liveBufferLatencyChasing: true },
      );
      created.on(mpegts.Events.ERROR, (kind: string, info: string) => {
        setPhase('error');
        setDetail(`${kind} ${info}`);
      });
      created.attachMediaElement(video);
      created.load();
      video.muted = true;
      void Promise.resolve(created.play()).catch((e: unknown) => {
        setPhase('error');
        setDetail(e instanceof Error ? e.message : String(e));
      });
      player = created;
    });
    return () => {
      cancelled = true;
      player?.destroy();
    };
  }, [target?.flvUrl]);

  // Detections of the source: a short poll of the analytics API while the view is open.
  useEffect(() => {
    if (!target) return;
    const abort = new AbortController();
    let timer: ReturnType<typeof setTimeout> | undefined;
    const poll = async () => {
      try {
        const rows = await api.request<Detection[]>(
          'GET',
          `/v1/analytics/detections?${new URLSearchParams({
            source: target.source,
            from: String(Date.now() - 10_000),
            limit: '500',
          })}`,
          { signal: abort.signal },
        );
        const last = rows.at(-1)?.time;
        setBoxes(last ? rows.filter((r) => r.time === last) : []);
      } catch {
        // The overlay is best effort: a failed poll keeps the last boxes and retries.
      }
      if (!abort.signal.aborted) timer = setTimeout(poll, 1000);
    };
    void poll();
    return () => {
      abort.abort();
      clearTimeout(timer);
    };
  }, [target?.source]);

  useEffect(() => {
    const canvas = canvasRef.current;
    if (!canvas) return;
    const w = canvas.clientWidth;
    const h = canvas.clientHeight;
    const dpr = window.devicePixelRatio || 1;
    canvas.width = Math.round(w * dpr);
    canvas.height = Math.round(h * dpr);
    const g = canvas.getContext('2d');
    if (!g) return;
    g.setTransform(dpr, 0, 0, dpr, 0, 0);
    g.clearRect(0, 0, w, h);
    g.lineWidth = 2;
    g.font = '12px system-ui, sans-serif';
    for (const d of boxes) {
      const x = d.box.left * w;
      const y = d.box.top * h;
      const bw = (d.box.right - d.box.left) * w;
      const bh = (d.box.bottom - d.box.top) * h;
      g.strokeStyle = d.label === 'person' ? '#22c55e' : '#f59e0b';
      g.strokeRect(x, y, bw, bh);
      const text = `${d.label} ${Math.round(d.likelihood * 100)}%`;
      g.fillStyle = g.strokeStyle;
      g.fillRect(x, Math.max(0, y - 16), g.measureText(text).width + 6, 16);
      g.fillStyle = '#0b2530';
      g.fillText(text, x + 3, Math.max(12, y - 4));
    }
  }, [boxes, phase]);

  if (!target)
    return (
      <div class="panel">
        <Empty title={m('choose')} />
      </div>
    );
  return (
    <section class="panel" aria-labelledby="live-title" data-testid="live-view" data-phase={phase}>
      <div class="admin-head" style="margin-bottom:0.6rem">
        <h2 id="live-title" style="margin:0;font-size:1.05rem">
          {m('live', { name: target.name })}
        </h2>
        <div class="admin-actions">
          <span class={`pill ${phase === 'playing' ? 'ok' : phase === 'connecting' ? 'info' : 'bad'}`}>
            {phase === 'playing' ? m('playing') : phase === 'connecting' ? m('connecting') : m('stop')}
          </span>
          <button type="button" class="btn" onClick={p.onStop}>
            {m('stop')}
          </button>
        </div>
      </div>
      {phase === 'no-h264' || phase === 'no-mse' ? (
        <p class="notice" role="alert" data-testid="codec-unsupported">
          {phase === 'no-h264' ? m('codecUnsupported') : m('mseUnsupported')}
        </p>
      ) : null}
      {phase === 'error' ? (
        <p class="notice" role="alert">
          {m('playError', { detail })}
        </p>
      ) : null}
      <div class="video-stage">
        <video
          ref={videoRef}
          muted
          playsInline
          aria-label={m('live', { name: target.name })}
          onPlaying={() => setPhase('playing')}
        />
        <canvas ref={canvasRef} class="video-overlay" aria-label={m('overlay', { source: target.source })} />
      </div>
      <p class="muted" style="margin:0.4rem 0 0;font-size:0.85rem" data-testid="overlay-count">
        {m('overlay', { source: target.source })} ·{' '}
        {boxes.length ? m('boxes', { n: boxes.length }) : m('noBoxes')}
      </p>
    </section>
  );
}

function Detections() {
  const counts = useResource(
    () =>
      api.get<CountRow[]>('/v1/analytics/detection-counts', {
        bucket: '1h',
        from: String(Date.now() - 24 * 3600_000),
      }),
    [],
  );
  const byClass = new Map<string, { objects: number; peak: number }>();
  for (const r of counts.data ?? []) {
    const c = byClass.get(r.label) ?? { objects: 0, peak: 0 };
    c.objects += r.objects;
    c.peak = Math.max(c.peak, r.peak);
    byClass.set(r.label, c);
  }
  const rows = counts.data ? [...byClass].map(([label, c]) => ({ label, ...c })) : undefined;
  const max = Math.max(1, ...(rows ?? []).map((r) => r.objects));
  const columns: Column<{ label: string; objects: number; peak: number }>[] = [
    { id: 'label', header: m('label'), cell: (r) => r.label, sort: (r) => r.label },
    {
      id: 'objects',
      header: m('objects'),
      cell: (r) => (
        <div style="display:flex;gap:0.5rem;align-items:center">
          <div class="progress" style="flex:1" aria-hidden="true">
            <span style={{ width: `${(r.objects / max) * 100}%` }} />
          </div>
          <span class="num">{formatNumber(r.objects)}</span>
        </div>
      ),
      sort: (r) => -r.objects,
    },
    { id: 'peak', header: m('peak'), align: 'end', cell: (r) => formatNumber(r.peak), sort: (r) => -r.peak },
  ];
  return (
    <Panel heading={m('detections')} headingId="detections-title" data-testid="detections">
      <DataTable
        caption={m('detections')}
        columns={columns}
        rows={rows?.sort((a, b) => b.objects - a.objects)}
        rowKey={(r) => r.label}
        loading={counts.loading}
        error={counts.error}
        onRetry={counts.reload}
        empty={<p class="muted">{m('detectionsEmpty')}</p>}
      />
    </Panel>
  );
}

function Alarms() {
  const alarms = useResource(() => api.get<Alarm[]>('/v1/video/alarms', { limit: 50 }), []);
  const columns: Column<Alarm>[] = [
    { id: 'time', header: m('time'), cell: (a) => formatTime(a.time), sort: (a) => a.time },
    { id: 'device', header: m('device'), cell: (a) => <span class="mono">{a.deviceId}</span> },
    {
      id: 'priority',
      header: m('priority'),
      cell: (a) => <span class={`pill ${a.priority <= 2 ? 'bad' : 'warn'}`}>{a.priority}</span>,
      sort: (a) => a.priority,
    },
    { id: 'type', header: m('type'), cell: (a) => a.alarmType ?? '—' },
    { id: 'description', header: m('description'), cell: (a) => a.description },
  ];
  return (
    <Panel heading={m('alarms')} headingId="alarms-title">
      <ResourceTable
        caption={m('alarms')}
        columns={columns}
        resource={alarms}
        rowKey={(a) => `${a.time}-${a.deviceId}-${a.description}`}
        empty={m('alarmsEmpty')}
      />
    </Panel>
  );
}
