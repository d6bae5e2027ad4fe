/**
 * OTA campaigns (`/v1/ota/campaigns`): each campaign with its overall progress, and on
 * opening it every target node's state and download progress; pause, resume and abort
 * (abort confirmed first). Progress follows the `rollout` live event and a 3 s refresh
 * while a campaign is open and still moving.
 */
import { useEffect, useState } from 'preact/hooks';
import { api, asApiError } from '../../api.ts';
import { type Column, DataTable } from '../../components/data-table.tsx';
import { ErrorPanel, Loading } from '../../components/states.tsx';
import { useResource } from '../../components/use-resource.ts';
import { formatTime } from '../../i18n.ts';
import { onLiveEvent } from '../../live.ts';
import { m } from './messages.ts';

interface CampaignSummary {
  id: string;
  name: string;
  version: string;
  target: string;
  state: string;
  reason: string | null;
  stage: string;
  createdBy: string;
  createdAt: string;
  total: number;
  counts: Record<string, number>;
  totals: {
    eligible: number;
    healthy: number;
    failed: number;
    inFlight: number;
    downloadProgress: number | null;
  };
}

interface CampaignDetail extends CampaignSummary {
  nodes: Array<{
    nodeId: string;
    canary: boolean;
    state: string;
    progress: number | null;
    reason: string | null;
    code: string | null;
    runningVersion: string | null;
  }>;
}

const MOVING = new Set(['canary', 'rolling']);

/** A labelled progress bar (native <progress>, so assistive tech reads it). */
function Bar({ value, label }: { value: number; label: string }) {
  return (
    <span class="bar">
      <progress max={1} value={value} aria-label={label} />
      <span class="bar-text">{Math.round(value * 100)}%</span>
    </span>
  );
}

export function OtaTab() {
  const campaigns = useResource(
    (signal) => api.request<CampaignSummary[]>('GET', '/v1/ota/campaigns', { signal }),
    [],
  );
  const [open, setOpen] = useState<string | null>(null);
  useEffect(() => onLiveEvent((e) => e.event === 'rollout' && campaigns.reload()), [campaigns.reload]);
  const columns: Column<CampaignSummary>[] = [
    {
      id: 'campaign',
      header: m('ota.campaign'),
      sort: (c) => c.createdAt,
      cell: (c) => (
        <div>
          <strong>
            {c.name} {c.version}
          </strong>
          <div class="muted small">
            {c.id} · {c.target} · {formatTime(c.createdAt)}
          </div>
        </div>
      ),
    },
    {
      id: 'state',
      header: m('ota.state'),
      sort: (c) => c.state,
      cell: (c) => (
        <span class={`campaign-state cs-${c.state}`} title={c.reason ?? undefined}>
          {c.state}
        </span>
      ),
    },
    { id: 'stage', header: m('ota.stage'), cell: (c) => c.stage },
    {
      id: 'progress',
      header: m('ota.progress'),
      cell: (c) => (
        <div>
          <Bar value={c.totals.eligible ? c.totals.healthy / c.totals.eligible : 0} label={c.id} />
          <div class="muted small">
            {m('ota.healthy', {
              healthy: c.totals.healthy,
              eligible: c.totals.eligible,
              failed: c.totals.failed,
            })}
          </div>
        </div>
      ),
    },
  ];
  return (
    <section class="panel" aria-labelledby="ota-title">
      <div class="panel-head">
        <h2 id="ota-title">{m('ota.caption')}</h2>
        <button type="button" class="btn" onClick={campaigns.reload}>
          {m('refresh')}
        </button>
      </div>
      <DataTable
        caption={m('ota.caption')}
        columns={columns}
        rows={campaigns.data}
        rowKey={(c) => c.id}
        loading={campaigns.loading}
        error={campaigns.error}
        onRetry={campaigns.reload}
        onRowClick={(c) => setOpen((o) => (o === c.id ? null : c.id))}
        empty={<p class="muted">{m('ota.empty')}</p>}
      />
      {open ? <CampaignPanel id={open} onChanged={campaigns.reload} /> : null}
    </section>
  );
}

function CampaignPanel({ id, onChanged }: { id: string; onChanged: () => void }) {
  const path = `/v1/ota/campaigns/${encodeURIComponent(id)}`;
  const detail = useResource((signal) => api.request<CampaignDetail>('GET', path, { signal }), [id]);
  const [confirmAbort, setConfirmAbort] = useState(false);
  const [error, setError] = useState<unknown>(null);
  const [busy, setBusy] = useState(false);
  const moving = detail.data ? MOVING.has(detail.data.state) : false;
  useEffect(() => {
    if (!moving) return;
    const timer = setInterval(detail.reload, 3000);
    return () => clearInterval(timer);
  }, [moving, detail.reload]);

  const act = async (action: 'pause' | 'resume' | 'abort') => {
    setBusy(true);
    setError(null);
    setConfirmAbort(false);
    try {
      await api.request('POST', `${path}/${action}`, { body: {} });
      detail.reload();
      onChanged();
    } catch (e) {
      setError(asApiError(e, `${path}/${action}`));
    } finally {
      setBusy(false);
    }
  };

  if (detail.error) return <ErrorPanel error={detail.error} onRetry={detail.reload} compact />;
  if (!detail.data) return <Loading />;
  const c = detail.data;
  const nodeColumns: Column<CampaignDetail['nodes'][number]>[] = [
    {
      id: 'node',
      header: m('ota.node'),
      sort: (n) => n.nodeId,
      cell: (n) => (
        <a href={`#/fleet/${encodeURIComponent(n.nodeId)}`}>
          {n.nodeId}
          {n.canary ? ' ★' : ''}
        </a>
      ),
    },
    {
      id: 'state',
      header: m('ota.nodeState'),
      sort: (n) => n.state,
      cell: (n) => (
        <span title={n.reason ?? undefined}>
          {n.state}
          {n.code ? <code class="small"> {n.code}</code> : null}
        </span>
      ),
    },
    {
      id: 'progress',
      header: m('ota.progress'),
      cell: (n) => (
        <Bar
          value={n.state === 'healthy' ? 1 : (n.progress ?? 0)}
          label={`${n.nodeId} ${m('ota.progress')}`}
        />
      ),
    },
    { id: 'version', header: m('ota.version'), cell: (n) => n.runningVersion ?? '—' },
  ];
  return (
    <section class="campaign-detail" aria-label={c.id}>
      <div class="panel-head">
        <h3>
          {c.name} {c.version} · {c.state}
        </h3>
        <div class="row-actions">
          {MOVING.has(c.state) ? (
            <button type="button" class="btn" disabled={busy} onClick={() => act('pause')}>
              {m('ota.pause')}
            </button>
          ) : null}
          {c.state === 'paused' ? (
            <button type="button" class="btn" disabled={busy} onClick={() => act('resume')}>
              {m('ota.resume')}
            </button>
          ) : null}
          {MOVING.has(c.state) || c.state === 'paused' ? (
            <button
              type="button"
              class="btn btn-danger"
              disabled={busy}
              onClick={() => setConfirmAbort(true)}
            >
              {m('ota.abort')}
            </button>
          ) : null}
        </div>
      </div>
      {confirmAbort ? (
        <div class="confirm" role="alertdialog" aria-labelledby="abort-confirm">
          <p id="abort-confirm">{m('ota.confirmAbort', { id: c.id })}</p>
          <button type="button" class="btn btn-danger" onClick={() => act('abort')}>
            {m('ota.yes')}
          </button>
          <button type="button" class="btn" onClick={() => setConfirmAbort(false)}>
            {m('ota.cancel')}
          </button>
        </div>
      ) : null}
      {error ? <ErrorPanel error={error} compact /> : null}
      <DataTable
        caption={m('ota.nodes')}
        columns={nodeColumns}
        rows={c.nodes}
        rowKey={(n) => n.nodeId}
        empty={<p class="muted">{m('ota.noNodes')}</p>}
      />
    </section>
  );
}
