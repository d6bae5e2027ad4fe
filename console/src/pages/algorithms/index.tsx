/**
 * The algorithm centre (001 Art. 49): packages and their versions through the
 * lifecycle draft → validated → filed → published → retired, upload of signed
 * `.csalgo` packages with progress, the adaptation test report, grants to agencies
 * and agencies' usage applications.
 */
import { useState } from 'preact/hooks';
import { ApiError, api, asApiError } from '../../api.ts';
import { type Column, DataTable, ResourceTable } from '../../components/data-table.tsx';
import { AdminHead } from '../../components/page-head.tsx';
import { Panel } from '../../components/panel.tsx';
import { Empty, ErrorPanel, Loading } from '../../components/states.tsx';
import { useResource } from '../../components/use-resource.ts';
import { formatNumber, formatTime } from '../../i18n.ts';
import { useRoute } from '../../router.ts';
import '../../components/page.css';
import './centre.css';
import { m } from './messages.ts';

/** Lifecycle states of a version, in order (cloud-hub/src/algorithms/catalogue.ts). */
export const VERSION_STATES = ['draft', 'validated', 'filed', 'published', 'retired'] as const;
type VersionState = (typeof VERSION_STATES)[number];
type Action = 'validate' | 'file' | 'publish' | 'retire';

/** What a version may do next, by state. */
const NEXT: Record<VersionState, Action[]> = {
  draft: ['validate'],
  validated: ['file'],
  filed: ['publish', 'retire'],
  published: ['retire'],
  retired: [],
};

/** A version as `GET /v1/algorithms` lists it. */
export interface VersionSummary {
  algorithmId: string;
  version: string;
  state: VersionState;
  sha256: string;
  bytes: number;
  signer: { name: string | null; fingerprint: string; algorithm: string };
  uploadedAt: string;
  updatedAt: string;
}

/** An algorithm with its versions. */
export interface Algorithm {
  id: string;
  name: string;
  task: string;
  createdAt: string;
  versions: VersionSummary[];
  agencies: string[];
}

interface Tensor {
  name: string;
  type: string;
  shape: Array<number | string>;
}
interface Report {
  passed: boolean;
  checkedAt: string;
  runtime: string;
  graph: { inputs: Tensor[]; outputs: Tensor[] } | null;
  tests: Array<{
    image: string;
    passed: boolean;
    inferMs: number;
    objects: Array<Record<string, unknown>>;
    expectations: Array<Record<string, unknown>>;
  }>;
  error?: { code: string; message: string };
  durationMs: number;
}
interface VersionDetail extends VersionSummary {
  manifest: Record<string, unknown>;
  report: Report | null;
  history: Array<{
    action: string;
    fromState: string | null;
    toState: string;
    actor: string;
    note: string | null;
    at: string;
  }>;
}
interface Agency {
  id: string;
  name: string;
  kind: string;
  nodes: string[];
  grants: string[];
}
interface Application {
  id: string;
  agencyId: string;
  algorithmId: string;
  purpose: string;
  state: 'pending' | 'approved' | 'rejected';
  createdAt: string;
}

/** Colour class of a version state. */
export function stateClass(state: string): string {
  if (state === 'published' || state === 'active' || state === 'completed') return 'ok';
  if (state === 'validated' || state === 'filed') return 'info';
  if (state === 'retired' || state === 'draft') return '';
  return 'warn';
}

function bytes(n: number): string {
  return n >= 1 << 20 ? `${formatNumber(n / (1 << 20), 1)} MiB` : `${formatNumber(n / 1024, 1)} KiB`;
}

const pageHref = (...rest: string[]) =>
  `#/algorithms${rest.map((r) => `/${encodeURIComponent(r)}`).join('')}`;

/** The algorithm-centre page. */
export default function AlgorithmsPage() {
  const route = useRoute();
  const [selectedId, selectedVersion] = route.rest;
  const list = useResource(() => api.get<Algorithm[]>('/v1/algorithms'), []);
  const [notice, setNotice] = useState<string | null>(null);
  const [failure, setFailure] = useState<ApiError | null>(null);
  const [progress, setProgress] = useState<{ name: string; pct: number } | null>(null);
  const [round, setRound] = useState(0);
  const selected = list.data?.find((a) => a.id === selectedId);

  const upload = async (file: File) => {
    setFailure(null);
    setNotice(null);
    setProgress({ name: file.name, pct: 0 });
    try {
      const v = await api.upload<VersionSummary & { created?: boolean }>(
        '/v1/algorithms/packages',
        file,
        (sent, total) => setProgress({ name: file.name, pct: total ? Math.round((sent / total) * 100) : 0 }),
      );
      setNotice(m('uploaded', { id: v.algorithmId, version: v.version }));
      list.reload();
      location.hash = pageHref(v.algorithmId, v.version);
    } catch (e) {
      setFailure(asApiError(e));
    } finally {
      setProgress(null);
    }
  };

  const columns: Column<Algorithm>[] = [
    {
      id: 'id',
      header: m('id'),
      cell: (a) => <a href={pageHref(a.id)}>{a.id}</a>,
      sort: (a) => a.id,
    },
    { id: 'name', header: m('name'), cell: (a) => a.name, sort: (a) => a.name },
    { id: 'task', header: m('task'), cell: (a) => a.task },
    {
      id: 'versions',
      header: m('versions'),
      align: 'end',
      cell: (a) => a.versions.length,
      sort: (a) => a.versions.length,
    },
  ];

  return (
    <section class="admin-page" aria-labelledby="algo-title">
      <AdminHead
        titleId="algo-title"
        title={m('title')}
        subtitle={m('subtitle')}
        actions={
          <label class="btn btn-primary file-button">
            ⇪ {m('upload')}
            <input
              type="file"
              name="package"
              accept=".csalgo"
              disabled={progress !== null}
              onChange={(e) => {
                const input = e.currentTarget;
                const file = input.files?.[0];
                input.value = '';
                if (file) void upload(file);
              }}
            />
          </label>
        }
      />
      {progress ? (
        <div class="panel" role="status" data-testid="upload-progress">
          <p style="margin:0 0 0.4rem">{m('uploading', { name: progress.name, pct: progress.pct })}</p>
          <div class="progress" aria-hidden="true">
            <span style={{ width: `${progress.pct}%` }} />
          </div>
        </div>
      ) : null}
      {notice ? (
        <p class="toast" role="status">
          {notice}
        </p>
      ) : null}
      {failure ? <ErrorPanel error={failure} compact /> : null}
      <div class="split">
        <Panel tag="div" heading={m('algorithms')}>
          <ResourceTable
            caption={m('algorithms')}
            columns={columns}
            resource={list}
            rowKey={(a) => a.id}
            onRowClick={(a) => {
              location.hash = pageHref(a.id);
            }}
            empty={m('emptyAlgorithms')}
          />
        </Panel>
        <div class="panel">
          {selected ? (
            <Versions
              algorithm={selected}
              selectedVersion={selectedVersion}
              onChanged={(text) => {
                setNotice(text);
                list.reload();
                setRound((r) => r + 1);
              }}
              round={round}
            />
          ) : list.data ? (
            <Empty title={m('chooseAlgorithm')} />
          ) : (
            <Loading />
          )}
        </div>
      </div>
      <Grants algorithms={list.data ?? []} onChanged={list.reload} />
    </section>
  );
}

function Versions(p: {
  algorithm: Algorithm;
  selectedVersion: string | undefined;
  onChanged: (notice: string) => void;
  round: number;
}) {
  const [busy, setBusy] = useState<string | null>(null);
  const [failure, setFailure] = useState<ApiError | null>(null);
  const act = async (v: VersionSummary, action: Action) => {
    setBusy(`${v.version}:${action}`);
    setFailure(null);
    try {
      const body = action === 'validate' ? undefined : {};
      const after = await api.request<VersionSummary>(
        'POST',
        `/v1/algorithms/${encodeURIComponent(v.algorithmId)}/versions/${encodeURIComponent(v.version)}/${action}`,
        body === undefined ? {} : { body },
      );
      p.onChanged(
        m('action.done', { id: after.algorithmId, version: after.version, state: m(`state.${after.state}`) }),
      );
      location.hash = pageHref(v.algorithmId, v.version);
    } catch (e) {
      setFailure(asApiError(e));
    } finally {
      setBusy(null);
    }
  };
  const versions = [...p.algorithm.versions].sort((a, b) => b.uploadedAt.localeCompare(a.uploadedAt));
  const columns: Column<VersionSummary>[] = [
    {
      id: 'version',
      header: m('version'),
      cell: (v) => <a href={pageHref(v.algorithmId, v.version)}>{v.version}</a>,
      sort: (v) => v.version,
    },
    {
      id: 'state',
      header: m('state'),
      cell: (v) => (
        <span class={`pill ${stateClass(v.state)}`} data-state={v.state}>
          {m(`state.${v.state}`)}
        </span>
      ),
      sort: (v) => VERSION_STATES.indexOf(v.state),
    },
    { id: 'size', header: m('size'), align: 'end', cell: (v) => bytes(v.bytes), sort: (v) => v.bytes },
    { id: 'signer', header: m('signer'), cell: (v) => v.signer.name ?? v.signer.fingerprint.slice(0, 12) },
    {
      id: 'uploaded',
      header: m('uploadedAt'),
      cell: (v) => formatTime(v.uploadedAt),
      sort: (v) => v.uploadedAt,
    },
    {
      id: 'actions',
      header: m('actions'),
      cell: (v) => (
        <div class="row-actions">
          {NEXT[v.state].map((action) => (
            <button
              key={action}
              type="button"
              class={`btn${action === 'retire' ? '' : ' btn-primary'}`}
              data-action={action}
              disabled={busy !== null}
              onClick={(e) => {
                e.stopPropagation();
                void act(v, action);
              }}
            >
              {busy === `${v.version}:${action}`
                ? m('action.busy', { action: m(`action.${action}`) })
                : m(`action.${action}`)}
            </button>
          ))}
        </div>
      ),
    },
  ];
  return (
    <div>
      <h2>
        {p.algorithm.name} <span class="muted mono">{p.algorithm.id}</span>
      </h2>
      <ol class="lifecycle" aria-label={m('lifecycle')}>
        {VERSION_STATES.map((s) => (
          <li key={s}>{m(`state.${s}`)}</li>
        ))}
      </ol>
      {failure ? <ErrorPanel error={failure} compact /> : null}
      <DataTable
        caption={m('versions')}
        columns={columns}
        rows={versions}
        rowKey={(v) => v.version}
        onRowClick={(v) => {
          location.hash = pageHref(v.algorithmId, v.version);
        }}
      />
      {p.selectedVersion ? (
        <VersionPanel algorithmId={p.algorithm.id} version={p.selectedVersion} round={p.round} />
      ) : null}
    </div>
  );
}

function shapeOf(t: Tensor): string {
  return `${t.name} ${t.type} [${t.shape.join('×')}]`;
}

function countLabels(objects: Array<Record<string, unknown>>): string {
  const counts = new Map<string, number>();
  for (const o of objects) {
    const label = String(o.label ?? o.class ?? '?');
    counts.set(label, (counts.get(label) ?? 0) + Number(o.count ?? o.minCount ?? 1));
  }
  return [...counts].map(([k, n]) => `${k}×${n}`).join(', ') || '—';
}

function VersionPanel(p: { algorithmId: string; version: string; round: number }) {
  const detail = useResource(
    () =>
      api.get<VersionDetail>(
        `/v1/algorithms/${encodeURIComponent(p.algorithmId)}/versions/${encodeURIComponent(p.version)}`,
      ),
    [p.algorithmId, p.version, p.round],
  );
  if (detail.error) return <ErrorPanel error={detail.error} onRetry={detail.reload} />;
  const v = detail.data;
  if (!v) return <Loading />;
  const r = v.report;
  return (
    <div data-testid="version-detail">
      <h3>
        {v.algorithmId} {v.version}{' '}
        <span class={`pill ${stateClass(v.state)}`} data-testid="version-state">
          {m(`state.${v.state}`)}
        </span>
      </h3>
      <dl class="facts">
        <dt>{m('sha256')}</dt>
        <dd class="mono">{v.sha256}</dd>
        <dt>{m('signer')}</dt>
        <dd>
          {v.signer.name ?? '—'} <span class="mono muted">{v.signer.fingerprint}</span>
        </dd>
      </dl>
      <h3>{m('report')}</h3>
      {r ? (
        <div data-testid="validation-report">
          <p>
            <span class={`pill ${r.passed ? 'ok' : 'bad'}`} data-passed={String(r.passed)}>
              {r.passed ? m('passed') : m('failed')}
            </span>{' '}
            <span class="muted">
              {formatTime(r.checkedAt)} · {m('runtime')} {r.runtime} · {m('duration')}{' '}
              {formatNumber(r.durationMs)} ms
            </span>
          </p>
          {r.error ? <ErrorPanel error={new ApiError(r.error.code, r.error.message, 0, '')} compact /> : null}
          {r.graph ? (
            <dl class="facts">
              <dt>{m('inputs')}</dt>
              <dd class="mono">{r.graph.inputs.map(shapeOf).join('; ')}</dd>
              <dt>{m('outputs')}</dt>
              <dd class="mono">{r.graph.outputs.map(shapeOf).join('; ')}</dd>
            </dl>
          ) : null}
          <div class="table-wrap">
            <table class="data-table">
              <caption class="sr-only">{m('tests')}</caption>
              <thead>
                <tr>
                  <th scope="col">{m('image')}</th>
                  <th scope="col">{m('state')}</th>
                  <th scope="col">{m('detected')}</th>
                  <th scope="col">{m('expected')}</th>
                  <th scope="col" class="num">
                    {m('inferMs')}
                  </th>
                </tr>
              </thead>
              <tbody>
                {r.tests.map((test) => (
                  <tr key={test.image}>
                    <td class="mono">{test.image}</td>
                    <td>
                      <span class={`pill ${test.passed ? 'ok' : 'bad'}`}>
                        {test.passed ? m('passed') : m('failed')}
                      </span>
                    </td>
                    <td>{countLabels(test.objects)}</td>
                    <td>{countLabels(test.expectations)}</td>
                    <td class="num">{formatNumber(test.inferMs, 1)}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        </div>
      ) : (
        <p class="muted">{m('noReport')}</p>
      )}
      <h3>{m('history')}</h3>
      <ol class="muted" style="margin:0;padding-left:1.2rem;font-size:0.88rem">
        {v.history.map((h) => (
          <li key={`${h.at}-${h.toState}`}>
            {formatTime(h.at)} · {h.action} ·{' '}
            {h.fromState ? `${m(`state.${h.fromState as VersionState}`)} → ` : ''}
            {m(`state.${h.toState as VersionState}`)} · {h.actor}
            {h.note ? ` · ${h.note}` : ''}
          </li>
        ))}
      </ol>
    </div>
  );
}

function Grants(p: { algorithms: Algorithm[]; onChanged: () => void }) {
  const agencies = useResource(() => api.get<Agency[]>('/v1/agencies'), []);
  const applications = useResource(
    () => api.get<Application[]>('/v1/algorithm-applications', { state: 'pending' }),
    [],
  );
  const [failure, setFailure] = useState<ApiError | null>(null);
  const [choice, setChoice] = useState<Record<string, string>>({});
  const run = async (call: () => Promise<unknown>) => {
    setFailure(null);
    try {
      await call();
      agencies.reload();
      applications.reload();
      p.onChanged();
    } catch (e) {
      setFailure(asApiError(e));
    }
  };
  const agencyColumns: Column<Agency>[] = [
    { id: 'agency', header: m('agency'), cell: (a) => `${a.name} (${a.id})`, sort: (a) => a.id },
    { id: 'kind', header: m('kind'), cell: (a) => a.kind },
    {
      id: 'nodes',
      header: m('nodes'),
      align: 'end',
      cell: (a) => a.nodes.length,
      sort: (a) => a.nodes.length,
    },
    {
      id: 'granted',
      header: m('granted'),
      cell: (a) => (
        <div class="row-actions">
          {a.grants.map((g) => (
            <span key={g} class="chip">
              {g}
              <button
                type="button"
                class="link-button"
                aria-label={`${m('revoke')} ${g}`}
                onClick={() =>
                  void run(() =>
                    api.request(
                      'DELETE',
                      `/v1/agencies/${encodeURIComponent(a.id)}/grants/${encodeURIComponent(g)}`,
                    ),
                  )
                }
              >
                ✕
              </button>
            </span>
          ))}
        </div>
      ),
    },
    {
      id: 'grant',
      header: m('grant'),
      cell: (a) => {
        const open = p.algorithms.filter((x) => !a.grants.includes(x.id));
        if (open.length === 0) return '—';
        const value = choice[a.id] ?? open[0]?.id ?? '';
        return (
          <div class="row-actions">
            <select
              aria-label={m('grantTo', { algorithm: '' })}
              name={`grant-${a.id}`}
              value={value}
              onChange={(e) => setChoice({ ...choice, [a.id]: e.currentTarget.value })}
            >
              {open.map((x) => (
                <option key={x.id} value={x.id}>
                  {x.id}
                </option>
              ))}
            </select>
            <button
              type="button"
              class="btn"
              data-grant={a.id}
              onClick={() =>
                void run(() =>
                  api.request('POST', `/v1/agencies/${encodeURIComponent(a.id)}/grants`, {
                    body: { algorithmId: value },
                  }),
                )
              }
            >
              {m('grant')}
            </button>
          </div>
        );
      },
    },
  ];
  const applicationColumns: Column<Application>[] = [
    { id: 'agency', header: m('agency'), cell: (a) => a.agencyId },
    { id: 'algorithm', header: m('id'), cell: (a) => a.algorithmId },
    { id: 'purpose', header: m('purpose'), cell: (a) => a.purpose },
    { id: 'at', header: m('appliedAt'), cell: (a) => formatTime(a.createdAt), sort: (a) => a.createdAt },
    {
      id: 'decide',
      header: m('actions'),
      cell: (a) => (
        <div class="row-actions">
          <button
            type="button"
            class="btn btn-primary"
            onClick={() =>
              void run(() =>
                api.request('POST', `/v1/algorithm-applications/${encodeURIComponent(a.id)}/approve`, {
                  body: {},
                }),
              )
            }
          >
            {m('approve')}
          </button>
          <button
            type="button"
            class="btn"
            onClick={() => {
              const reason = prompt(m('rejectPrompt'))?.trim();
              if (!reason) return;
              void run(() =>
                api.request('POST', `/v1/algorithm-applications/${encodeURIComponent(a.id)}/reject`, {
                  body: { reason },
                }),
              );
            }}
          >
            {m('reject')}
          </button>
        </div>
      ),
    },
  ];
  return (
    <div class="split">
      <Panel tag="div" heading={m('grants')}>
        <p class="muted" style="margin-top:0">
          {m('grantsHint')}
        </p>
        {failure ? <ErrorPanel error={failure} compact /> : null}
        <ResourceTable
          caption={m('grants')}
          columns={agencyColumns}
          resource={agencies}
          rowKey={(a) => a.id}
          empty={m('noAgencies')}
        />
      </Panel>
      <Panel tag="div" heading={m('applications')}>
        <ResourceTable
          caption={m('applications')}
          columns={applicationColumns}
          resource={applications}
          rowKey={(a) => a.id}
          empty={m('noApplications')}
        />
      </Panel>
    </div>
  );
}
