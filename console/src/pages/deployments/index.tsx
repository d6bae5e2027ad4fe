/**
 * Deployments: push a published algorithm version to edge nodes (targets by agency or
 * node, video sources, canary share), list them, and follow one live: every node's
 * state (queued, downloading n %, verifying, loading, active, failed with its reason,
 * rolled back), with pause, resume and roll back. The page re-reads the deployment on
 * every `rollout` event of the live feed and every second while it is open (download
 * percentages change without the feed's per-state counts changing).
 */
import { useEffect, useState } from 'preact/hooks';
import { type ApiError, api, asApiError } from '../../api.ts';
import { type Column, DataTable, ResourceTable } from '../../components/data-table.tsx';
import { AdminHead } from '../../components/page-head.tsx';
import { Panel } from '../../components/panel.tsx';
import { Empty, ErrorPanel, Loading } from '../../components/states.tsx';
import { useResource } from '../../components/use-resource.ts';
import { formatNumber, formatTime } from '../../i18n.ts';
import { liveConnected, onLiveEvent } from '../../live.ts';
import { useRoute } from '../../router.ts';
import { useValue } from '../../signal.ts';
import type { Algorithm } from '../algorithms/index.tsx';
import '../../components/page.css';
import '../algorithms/centre.css';
import { m } from './messages.ts';

type DeploymentState =
  | 'canary'
  | 'rolling'
  | 'completed'
  | 'paused'
  | 'rolled-back'
  | 'cancelled'
  | 'superseded';
type NodeState =
  | 'pending'
  | 'queued'
  | 'downloading'
  | 'verifying'
  | 'loading'
  | 'active'
  | 'failed'
  | 'rolled-back'
  | 'refused'
  | 'superseded'
  | 'cancelled';

interface Source {
  id: string;
  url: string;
  fps: number;
}

/** A deployment as `GET /v1/deployments` lists it. */
interface DeploymentSummary {
  id: string;
  algorithmId: string;
  version: string;
  state: DeploymentState;
  reason: string | null;
  stage: 'canary' | 'rolling';
  rollout: { canaryShare: number; gate: { minActiveShare: number; maxFailed: number; timeoutMs: number } };
  targets: { nodes: string[]; agencies: string[] };
  sources: Source[];
  createdAt: string;
  total: number;
  counts: Record<string, number>;
}

interface NodeView {
  nodeId: string;
  canary: boolean;
  state: NodeState;
  progress: number | null;
  reason: string | null;
  code: string | null;
  activeVersion: string | null;
  reportedAt: string | null;
  stats: { fps: number } | null;
}

interface DeploymentDetail extends DeploymentSummary {
  nodes: NodeView[];
  stats: { nodesReporting: number; fps: number; inferP50Ms: number | null; inferP95Ms: number | null };
  history: Array<{
    fromState: string | null;
    toState: string;
    actor: string;
    reason: string | null;
    at: string;
  }>;
}

interface Agency {
  id: string;
  name: string;
  kind: string;
  nodes: string[];
}

const ACTIONS: Record<'pause' | 'resume' | 'rollback', DeploymentState[]> = {
  pause: ['canary', 'rolling'],
  resume: ['paused'],
  rollback: ['canary', 'rolling', 'completed', 'paused'],
};

function deploymentClass(s: DeploymentState): string {
  if (s === 'completed') return 'ok';
  if (s === 'canary' || s === 'rolling') return 'info';
  if (s === 'paused') return 'warn';
  if (s === 'rolled-back') return 'bad';
  return '';
}

function nodeClass(s: NodeState): string {
  if (s === 'active') return 'ok';
  if (s === 'failed' || s === 'refused') return 'bad';
  if (s === 'rolled-back') return 'warn';
  if (s === 'pending' || s === 'superseded' || s === 'cancelled') return '';
  return 'info';
}

/** A node's state in words, with its download percentage. */
function nodeStateText(n: Pick<NodeView, 'state' | 'progress'>): string {
  return m(`nstate.${n.state}`, { pct: Math.round((n.progress ?? 0) * 100) });
}

const pageHref = (id?: string) => (id ? `#/deployments/${encodeURIComponent(id)}` : '#/deployments');

function ActiveBar({ d }: { d: Pick<DeploymentSummary, 'counts' | 'total'> }) {
  const active = d.counts.active ?? 0;
  const pct = d.total ? Math.round((active / d.total) * 100) : 0;
  return (
    <div style="display:grid;gap:0.2rem;min-width:8rem">
      <div class="progress" aria-hidden="true">
        <span style={{ width: `${pct}%` }} />
      </div>
      <span class="muted" style="font-size:0.82rem">
        {m('nodesActive', { active, total: d.total })}
      </span>
    </div>
  );
}

/** The deployments page: the list, or one deployment when the route names it. */
export default function DeploymentsPage() {
  const route = useRoute();
  const id = route.rest[0];
  return id ? <DeploymentView id={id} /> : <DeploymentList />;
}

function DeploymentList() {
  const list = useResource(() => api.get<DeploymentSummary[]>('/v1/deployments'), []);
  const [creating, setCreating] = useState(false);
  useEffect(() => onLiveEvent((e) => e.event === 'rollout' && list.reload()), [list.reload]);
  const columns: Column<DeploymentSummary>[] = [
    {
      id: 'id',
      header: m('id'),
      cell: (d) => (
        <a class="mono" href={pageHref(d.id)}>
          {d.id}
        </a>
      ),
    },
    {
      id: 'algorithm',
      header: m('algorithm'),
      cell: (d) => `${d.algorithmId} ${d.version}`,
      sort: (d) => `${d.algorithmId} ${d.version}`,
    },
    {
      id: 'state',
      header: m('state'),
      cell: (d) => <span class={`pill ${deploymentClass(d.state)}`}>{m(`dstate.${d.state}`)}</span>,
      sort: (d) => d.state,
    },
    { id: 'progress', header: m('progress'), cell: (d) => <ActiveBar d={d} /> },
    { id: 'created', header: m('createdAt'), cell: (d) => formatTime(d.createdAt), sort: (d) => d.createdAt },
  ];
  return (
    <section class="admin-page" aria-labelledby="deploy-title">
      <AdminHead
        titleId="deploy-title"
        title={m('title')}
        subtitle={m('subtitle')}
        actions={
          <button
            type="button"
            class={`btn${creating ? '' : ' btn-primary'}`}
            aria-expanded={creating ? 'true' : 'false'}
            data-testid="new-deployment"
            onClick={() => setCreating(!creating)}
          >
            {creating ? m('cancelCreate') : `＋ ${m('create')}`}
          </button>
        }
      />
      {creating ? <CreateForm /> : null}
      <Panel tag="div" heading={m('list')}>
        <ResourceTable
          caption={m('list')}
          columns={columns}
          resource={list}
          rowKey={(d) => d.id}
          onRowClick={(d) => {
            location.hash = pageHref(d.id);
          }}
          empty={m('empty')}
        />
      </Panel>
    </section>
  );
}

function CreateForm() {
  const inputs = useResource(
    () => Promise.all([api.get<Algorithm[]>('/v1/algorithms'), api.get<Agency[]>('/v1/agencies')]),
    [],
  );
  const [version, setVersion] = useState('');
  const [agencies, setAgencies] = useState<Set<string>>(new Set());
  const [nodes, setNodes] = useState<Set<string>>(new Set());
  const [sources, setSources] = useState<Source[]>([
    { id: 'cam-01', url: 'rtsp://127.0.0.1/live/cam-01', fps: 2 },
  ]);
  const [canary, setCanary] = useState(34);
  const [busy, setBusy] = useState(false);
  const [failure, setFailure] = useState<ApiError | null>(null);
  const [problem, setProblem] = useState<string | null>(null);
  if (inputs.error) return <ErrorPanel error={inputs.error} onRetry={inputs.reload} />;
  if (!inputs.data) return <Loading />;
  const [algorithms, agencyList] = inputs.data;
  const published = algorithms.flatMap((a) =>
    a.versions.filter((v) => v.state === 'published').map((v) => `${v.algorithmId}@${v.version}`),
  );
  const chosen = version || published[0] || '';
  const toggle = (set: Set<string>, value: string, update: (s: Set<string>) => void) => {
    const next = new Set(set);
    if (next.has(value)) next.delete(value);
    else next.add(value);
    update(next);
  };
  const submit = async (e: Event) => {
    e.preventDefault();
    setFailure(null);
    setProblem(null);
    if (agencies.size === 0 && nodes.size === 0) {
      setProblem(m('needTarget'));
      return;
    }
    const [algorithmId = '', ver = ''] = chosen.split('@');
    setBusy(true);
    try {
      const created = await api.request<DeploymentDetail>('POST', '/v1/deployments', {
        body: {
          algorithmId,
          version: ver,
          targets: {
            ...(agencies.size ? { agencies: [...agencies] } : {}),
            ...(nodes.size ? { nodes: [...nodes] } : {}),
          },
          sources: sources.filter((s) => s.id && s.url),
          rollout: { canaryShare: Math.min(1, Math.max(0, canary / 100)) },
        },
      });
      location.hash = pageHref(created.id);
    } catch (err) {
      setFailure(asApiError(err));
    } finally {
      setBusy(false);
    }
  };
  if (published.length === 0) return <Empty title={m('noPublished')} />;
  const withNodes = agencyList.filter((a) => a.nodes.length > 0);
  return (
    <form class="panel" onSubmit={submit} aria-label={m('create')} data-testid="create-deployment">
      <h2>{m('create')}</h2>
      <div class="form-grid">
        <label>
          {m('version')}
          <select name="version" value={chosen} onChange={(e) => setVersion(e.currentTarget.value)}>
            {published.map((v) => (
              <option key={v} value={v}>
                {v.replace('@', ' ')}
              </option>
            ))}
          </select>
        </label>
        <label>
          {m('canary')}
          <input
            type="number"
            name="canary"
            min={0}
            max={100}
            value={canary}
            onInput={(e) => setCanary(Number(e.currentTarget.value))}
          />
        </label>
      </div>
      <h3>{m('targets')}</h3>
      <fieldset class="field" style="border:0;padding:0;margin:0">
        <legend>{m('targetAgencies')}</legend>
        <div class="row-actions">
          {agencyList.map((a) => (
            <label key={a.id} class="chip">
              <input
                type="checkbox"
                name="agency"
                value={a.id}
                checked={agencies.has(a.id)}
                onChange={() => toggle(agencies, a.id, setAgencies)}
              />
              {a.name} ({a.nodes.length})
            </label>
          ))}
        </div>
      </fieldset>
      <fieldset class="field" style="border:0;padding:0;margin:0.6rem 0 0">
        <legend>{m('targetNodes')}</legend>
        {withNodes.length === 0 ? <p class="muted">{m('noNodes')}</p> : null}
        {withNodes.map((a) => (
          <div key={a.id} class="row-actions" style="align-items:center;margin-bottom:0.3rem">
            <span class="muted" style="min-width:6rem">
              {a.name}
            </span>
            {a.nodes.map((n) => (
              <label key={n} class="chip mono">
                <input
                  type="checkbox"
                  name="node"
                  value={n}
                  checked={nodes.has(n)}
                  onChange={() => toggle(nodes, n, setNodes)}
                />
                {n}
              </label>
            ))}
          </div>
        ))}
      </fieldset>
      <h3>{m('sources')}</h3>
      {sources.map((s, i) => (
        <div key={String(i)} class="form-grid" style="margin-bottom:0.4rem;align-items:end">
          <label>
            {m('sourceId')}
            <input
              name={`source-id-${i}`}
              value={s.id}
              onInput={(e) =>
                setSources(sources.map((x, j) => (j === i ? { ...x, id: e.currentTarget.value } : x)))
              }
            />
          </label>
          <label>
            {m('sourceUrl')}
            <input
              name={`source-url-${i}`}
              value={s.url}
              onInput={(e) =>
                setSources(sources.map((x, j) => (j === i ? { ...x, url: e.currentTarget.value } : x)))
              }
            />
          </label>
          <label>
            {m('fps')}
            <input
              type="number"
              name={`source-fps-${i}`}
              min={0.1}
              max={60}
              step={0.1}
              value={s.fps}
              onInput={(e) =>
                setSources(
                  sources.map((x, j) => (j === i ? { ...x, fps: Number(e.currentTarget.value) } : x)),
                )
              }
            />
          </label>
          <div>
            <button type="button" class="btn" onClick={() => setSources(sources.filter((_, j) => j !== i))}>
              {m('removeSource')}
            </button>
          </div>
        </div>
      ))}
      <p class="row-actions">
        <button
          type="button"
          class="btn"
          onClick={() =>
            setSources([
              ...sources,
              { id: `cam-${String(sources.length + 1).padStart(2, '0')}`, url: '', fps: 2 },
            ])
          }
        >
          ＋ {m('addSource')}
        </button>
      </p>
      {problem ? (
        <p class="notice" role="alert">
          {problem}
        </p>
      ) : null}
      {failure ? <ErrorPanel error={failure} compact /> : null}
      <p style="margin-bottom:0">
        <button type="submit" class="btn btn-primary" disabled={busy}>
          {busy ? m('submitting') : m('submit')}
        </button>
      </p>
    </form>
  );
}

function DeploymentView({ id }: { id: string }) {
  const [detail, setDetail] = useState<DeploymentDetail | null>(null);
  const [error, setError] = useState<ApiError | null>(null);
  const [failure, setFailure] = useState<ApiError | null>(null);
  const [busy, setBusy] = useState(false);
  const [round, setRound] = useState(0);
  const connected = useValue(liveConnected);
  useEffect(() => {
    const abort = new AbortController();
    let timer: ReturnType<typeof setTimeout> | undefined;
    const load = async () => {
      clearTimeout(timer);
      try {
        const d = await api.request<DeploymentDetail>('GET', `/v1/deployments/${encodeURIComponent(id)}`, {
          signal: abort.signal,
        });
        setDetail(d);
        setError(null);
      } catch (e) {
        if (abort.signal.aborted) return;
        setError(asApiError(e));
      }
      if (!abort.signal.aborted) timer = setTimeout(load, 1000);
    };
    void load();
    const off = onLiveEvent((e) => {
      if (e.event === 'rollout' && (e.data as { id?: string }).id === id) void load();
    });
    return () => {
      abort.abort();
      clearTimeout(timer);
      off();
    };
  }, [id, round]);
  const act = async (action: keyof typeof ACTIONS) => {
    if (action === 'rollback' && !confirm(m('rollbackConfirm'))) return;
    setBusy(true);
    setFailure(null);
    try {
      setDetail(
        await api.request<DeploymentDetail>('POST', `/v1/deployments/${encodeURIComponent(id)}/${action}`, {
          body: {},
        }),
      );
    } catch (e) {
      setFailure(asApiError(e));
    } finally {
      setBusy(false);
    }
  };
  if (!detail)
    return (
      <section class="admin-page">
        <p>
          <a href={pageHref()}>{m('back')}</a>
        </p>
        {error ? <ErrorPanel error={error} onRetry={() => setRound((r) => r + 1)} /> : <Loading />}
      </section>
    );
  const d = detail;
  const columns: Column<NodeView>[] = [
    {
      id: 'node',
      header: m('node'),
      cell: (n) => <span class="mono">{n.nodeId}</span>,
      sort: (n) => n.nodeId,
    },
    {
      id: 'canary',
      header: m('isCanary'),
      cell: (n) => (n.canary ? '✓' : ''),
      sort: (n) => (n.canary ? 0 : 1),
    },
    {
      id: 'state',
      header: m('state'),
      cell: (n) => (
        <div style="display:grid;gap:0.2rem">
          <span class={`pill ${nodeClass(n.state)}`} data-node-state={n.state}>
            {nodeStateText(n)}
          </span>
          {n.state === 'downloading' ? (
            <div class="progress" aria-hidden="true">
              <span style={{ width: `${Math.round((n.progress ?? 0) * 100)}%` }} />
            </div>
          ) : null}
        </div>
      ),
      sort: (n) => n.state,
    },
    {
      id: 'reason',
      header: m('reason'),
      cell: (n) =>
        n.reason ? (
          <span>
            {n.code ? <code class="error-code">{n.code}</code> : null} {n.reason}
          </span>
        ) : (
          ''
        ),
    },
    { id: 'active', header: m('activeVersion'), cell: (n) => n.activeVersion ?? '—' },
    {
      id: 'fps',
      header: m('fps'),
      align: 'end',
      cell: (n) => (n.stats ? formatNumber(n.stats.fps, 1) : '—'),
    },
    {
      id: 'reported',
      header: m('reported'),
      cell: (n) => formatTime(n.reportedAt),
      sort: (n) => n.reportedAt ?? '',
    },
  ];
  return (
    <section
      class="admin-page"
      aria-labelledby="deployment-title"
      data-testid="deployment"
      data-state={d.state}
    >
      <p style="margin:0">
        <a href={pageHref()}>{m('back')}</a>
      </p>
      <header class="admin-head">
        <div>
          <h1 id="deployment-title">
            {d.algorithmId} {d.version}{' '}
            <span class={`pill ${deploymentClass(d.state)}`} data-testid="deployment-state">
              {m(`dstate.${d.state}`)}
            </span>
          </h1>
          <p class="muted">
            <span class="mono">{d.id}</span> · {formatTime(d.createdAt)} ·{' '}
            {m('gate', {
              share: Math.round(d.rollout.gate.minActiveShare * 100),
              failed: d.rollout.gate.maxFailed,
            })}
          </p>
        </div>
        <div class="admin-actions">
          <span class={`live-dot muted${connected ? ' on' : ''}`}>
            <span aria-hidden="true" />
            &nbsp;{m('live')}
          </span>
          {(Object.keys(ACTIONS) as Array<keyof typeof ACTIONS>).map((a) => (
            <button
              key={a}
              type="button"
              class={`btn${a === 'rollback' ? '' : ' btn-primary'}`}
              data-action={a}
              disabled={busy || !ACTIONS[a].includes(d.state)}
              onClick={() => void act(a)}
            >
              {m(a)}
            </button>
          ))}
        </div>
      </header>
      {failure ? <ErrorPanel error={failure} compact /> : null}
      {error ? <ErrorPanel error={error} compact /> : null}
      <div class="panel">
        <ActiveBar d={d} />
        <p class="row-actions" style="margin:0.5rem 0 0">
          {Object.entries(d.counts)
            .filter(([, n]) => n > 0)
            .map(([s, n]) => (
              <span key={s} class={`pill ${nodeClass(s as NodeState)}`}>
                {m(`nstate.${s as NodeState}`, { pct: '' }).replace(/\s*%$/, '')} {n}
              </span>
            ))}
          {d.stats.nodesReporting > 0 ? (
            <span class="muted">{m('fpsTotal', { fps: formatNumber(d.stats.fps, 1) })}</span>
          ) : null}
        </p>
        {d.state === 'completed' && d.reason ? <p class="muted">{m('done', { reason: d.reason })}</p> : null}
      </div>
      <div class="panel">
        <DataTable caption={m('node')} columns={columns} rows={d.nodes} rowKey={(n) => n.nodeId} />
      </div>
      <Panel tag="div" heading={m('history')}>
        <ol class="muted" style="margin:0;padding-left:1.2rem;font-size:0.88rem">
          {d.history.map((h) => (
            <li key={`${h.at}-${h.toState}`}>
              {formatTime(h.at)} · {h.fromState ? `${h.fromState} → ` : ''}
              {h.toState} · {h.actor}
              {h.reason ? ` · ${h.reason}` : ''}
            </li>
          ))}
        </ol>
      </Panel>
    </section>
  );
}
