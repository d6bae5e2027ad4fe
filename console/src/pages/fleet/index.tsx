/**
 * The field engineer's fleet (`#/fleet`): every node they may see with its online
 * state, CPU and spool sparklines from the continuous aggregate, spool backlog and
 * the models it runs; enrol a new box from here. `#/fleet/<nodeId>` is the node page.
 */
import { useEffect, useState } from 'preact/hooks';
import { api, asApiError } from '../../api.ts';
import { type Column, DataTable } from '../../components/data-table.tsx';
import { ErrorPanel } from '../../components/states.tsx';
import { useResource } from '../../components/use-resource.ts';
import { formatNumber, formatTime } from '../../i18n.ts';
import { onLiveEvent } from '../../live.ts';
import { useRoute } from '../../router.ts';
import { type Point, Sparkline } from './charts.tsx';
import { m } from './messages.ts';
import {
  type FleetNode,
  type HealthBucket,
  loadHealth,
  type NodeInference,
  nodePath,
  series,
} from './model.ts';
import NodePage from './node.tsx';
import { StatusPill } from './status.tsx';
import { type CreatedToken, TokenCard } from './token.tsx';
import './fleet.css';

/** Per-node extras loaded after the list: health buckets and what it runs. */
interface NodeExtras {
  cpu: Point[];
  spool: Point[];
  inference: NodeInference | null;
}

const lastHour = (): [number, number] => [Date.now() - 3600_000, Date.now()];

/** The fleet page, or the node page for `#/fleet/<nodeId>`. */
export default function FleetPage() {
  const route = useRoute();
  const nodeId = route.rest[0];
  return nodeId ? <NodePage nodeId={nodeId} /> : <FleetList />;
}

/** Loads extras for many nodes, four at a time (a fleet page must not flood the hub). */
async function loadExtras(
  nodes: FleetNode[],
  signal: AbortSignal,
  onOne: (id: string, extras: NodeExtras) => void,
): Promise<void> {
  const queue = [...nodes];
  const worker = async () => {
    for (let node = queue.shift(); node && !signal.aborted; node = queue.shift()) {
      const [health, inference] = await Promise.all([
        loadHealth(api, node.id, 1, signal).catch((): HealthBucket[] => []),
        api.request<NodeInference>('GET', nodePath(node.id, '/inference'), { signal }).catch(() => null),
      ]);
      if (!signal.aborted)
        onOne(node.id, {
          cpu: series(health, 'cpuPercent'),
          spool: series(health, 'spoolRecords'),
          inference,
        });
    }
  };
  await Promise.all([worker(), worker(), worker(), worker()]);
}

function FleetList() {
  const nodes = useResource((signal) => api.request<FleetNode[]>('GET', '/v1/nodes', { signal }), []);
  const [extras, setExtras] = useState<Record<string, NodeExtras>>({});
  const [online, setOnline] = useState<Record<string, boolean>>({});
  const [enrolling, setEnrolling] = useState(false);

  useEffect(() => {
    if (!nodes.data) return;
    const abort = new AbortController();
    void loadExtras(nodes.data, abort.signal, (id, x) => setExtras((e) => ({ ...e, [id]: x })));
    return () => abort.abort();
  }, [nodes.data]);

  // Live: a node going online or offline updates its row without a reload.
  useEffect(
    () =>
      onLiveEvent((e) => {
        if (e.event !== 'node') return;
        const d = e.data as { id?: string; online?: boolean };
        if (typeof d.id === 'string' && typeof d.online === 'boolean') {
          const { id, online: now } = d;
          setOnline((o) => ({ ...o, [id]: now }));
        }
      }),
    [],
  );

  const rows = nodes.data?.map((n) =>
    n.id in online && n.status !== 'deregistered'
      ? { ...n, status: online[n.id] ? ('online' as const) : ('offline' as const) }
      : n,
  );
  const spoolOf = (n: FleetNode) => n.health?.spoolRecords ?? null;

  const columns: Column<FleetNode>[] = [
    {
      id: 'node',
      header: m('col.node'),
      sort: (n) => n.name ?? n.id,
      cell: (n) => (
        <a href={`#/fleet/${encodeURIComponent(n.id)}`} class="node-link" data-node={n.id}>
          <strong>{n.name ?? n.id}</strong>
          {n.name && n.name !== n.id ? <span class="muted node-id">{n.id}</span> : null}
        </a>
      ),
    },
    {
      id: 'status',
      header: m('col.status'),
      sort: (n) => n.status,
      cell: (n) => <StatusPill status={n.status} />,
    },
    {
      id: 'agency',
      header: m('col.agency'),
      sort: (n) => n.agencyId ?? '',
      cell: (n) => n.agencyId ?? <span class="muted">{m('noAgency')}</span>,
    },
    {
      id: 'cpu',
      header: m('col.cpu'),
      sort: (n) => n.health?.cpuPercent ?? -1,
      cell: (n) => {
        const x = extras[n.id];
        if (!x) return <span class="muted">…</span>;
        const last = n.health?.cpuPercent ?? null;
        return (
          <Sparkline
            range={lastHour()}
            points={x.cpu}
            fixedMax={100}
            label={`${m('col.cpu')} ${n.id}`}
            format={(v) => `${formatNumber(v)}%`}
            tone={last !== null && last > 85 ? 'bad' : last !== null && last > 60 ? 'warn' : 'ok'}
          />
        );
      },
    },
    {
      id: 'spool',
      header: m('col.spool'),
      align: 'end',
      sort: (n) => spoolOf(n) ?? -1,
      cell: (n) => {
        const x = extras[n.id];
        if (!x) return <span class="muted">…</span>;
        const now = spoolOf(n);
        return (
          <span class="spool-cell">
            <Sparkline
              range={lastHour()}
              points={x.spool}
              label={`${m('col.spool')} ${n.id}`}
              format={(v) => m('records', { n: formatNumber(v) })}
              tone={now !== null && now > 1000 ? 'warn' : 'ok'}
            />
          </span>
        );
      },
    },
    {
      id: 'models',
      header: m('col.models'),
      cell: (n) => {
        const x = extras[n.id];
        if (!x) return <span class="muted">…</span>;
        const algos = x.inference?.algorithms ?? [];
        if (algos.length === 0) return <span class="muted">{m('noModels')}</span>;
        return (
          <ul class="model-list">
            {algos.map((a) => (
              <li key={a.algorithmId}>
                <code>{a.algorithmId}</code> {a.activeVersion ?? a.version}
              </li>
            ))}
          </ul>
        );
      },
    },
    {
      id: 'agent',
      header: m('col.agent'),
      sort: (n) => n.agentVersion ?? '',
      cell: (n) => n.agentVersion ?? <span class="muted">—</span>,
    },
    {
      id: 'lastSeen',
      header: m('col.lastSeen'),
      sort: (n) => n.lastSeen ?? '',
      cell: (n) => (n.lastSeen ? formatTime(n.lastSeen) : <span class="muted">—</span>),
    },
  ];

  const total = rows?.length ?? 0;
  const up = rows?.filter((n) => n.status === 'online').length ?? 0;
  const spooled = rows?.reduce((s, n) => s + (spoolOf(n) ?? 0), 0) ?? 0;

  return (
    <section class="fleet-page" aria-labelledby="fleet-title">
      <header class="fleet-head">
        <div>
          <h1 id="fleet-title">{m('title')}</h1>
          <p class="muted">{m('subtitle')}</p>
        </div>
        <div class="fleet-actions">
          {rows ? (
            <p class="fleet-summary" data-testid="fleet-summary">
              <span>{m('summary.online', { online: up, total })}</span>
              <span>{m('summary.spool', { n: formatNumber(spooled) })}</span>
            </p>
          ) : null}
          <button type="button" class="btn" onClick={nodes.reload}>
            {m('refresh')}
          </button>
          <button
            type="button"
            class="btn btn-primary"
            aria-expanded={enrolling}
            onClick={() => setEnrolling((o) => !o)}
          >
            {m('enrol')}
          </button>
        </div>
      </header>
      {enrolling ? <EnrolPanel onClose={() => setEnrolling(false)} /> : null}
      <DataTable
        caption={m('caption')}
        columns={columns}
        rows={rows}
        rowKey={(n) => n.id}
        loading={nodes.loading}
        error={nodes.error}
        onRetry={nodes.reload}
        onRowClick={(n) => {
          location.hash = `#/fleet/${encodeURIComponent(n.id)}`;
        }}
        empty={<p class="muted">{m('empty')}</p>}
      />
    </section>
  );
}

/** Enrol a new box: optional node id and lifetime → one-time token, command and QR code. */
function EnrolPanel({ onClose }: { onClose: () => void }) {
  const [name, setName] = useState('');
  const [expires, setExpires] = useState('24h');
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>(null);
  const [created, setCreated] = useState<CreatedToken | null>(null);
  const submit = async (e: Event) => {
    e.preventDefault();
    setBusy(true);
    setError(null);
    try {
      setCreated(
        await api.request<CreatedToken>('POST', '/v1/enrollment-tokens', {
          body: { ...(name.trim() ? { name: name.trim() } : {}), expires },
        }),
      );
    } catch (err) {
      setError(asApiError(err, '/v1/enrollment-tokens'));
    } finally {
      setBusy(false);
    }
  };
  return (
    <section class="panel enrol-panel" aria-labelledby="enrol-title">
      <div class="panel-head">
        <h2 id="enrol-title">{m('enrol.title')}</h2>
        <button type="button" class="btn btn-ghost" onClick={onClose}>
          {m('enrol.close')}
        </button>
      </div>
      <p class="muted">{m('enrol.hint')}</p>
      <form class="inline-form" onSubmit={submit}>
        <label>
          <span>{m('enrol.name')}</span>
          <input
            name="enrolName"
            value={name}
            placeholder={m('enrol.namePlaceholder')}
            pattern="[A-Za-z0-9][A-Za-z0-9_.:\-]{0,63}"
            onInput={(e) => setName(e.currentTarget.value)}
          />
        </label>
        <label>
          <span>{m('enrol.expires')}</span>
          <select name="enrolExpires" value={expires} onChange={(e) => setExpires(e.currentTarget.value)}>
            <option value="1h">{m('expires.1h')}</option>
            <option value="24h">{m('expires.24h')}</option>
            <option value="7d">{m('expires.7d')}</option>
          </select>
        </label>
        <button type="submit" class="btn btn-primary" disabled={busy}>
          {m('enrol.create')}
        </button>
      </form>
      {error ? <ErrorPanel error={error} compact /> : null}
      {created ? <TokenCard created={created} /> : null}
    </section>
  );
}
