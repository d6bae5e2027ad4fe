/**
 * The sensor ledger for agency operators: search and page through devices, a device's
 * unified code, lifecycle history and moves, registration of one device with the
 * duplicate-build check (reuse or justify), and bulk CSV import with progress and a
 * row-by-row error report.
 */
import { useMemo, useState } from 'preact/hooks';
import type { ApiError } from '../../api.ts';
import { useAction } from '../../components/action.ts';
import { type Column, DataTable } from '../../components/data-table.tsx';
import { ChoiceField, Field, FilterBar } from '../../components/form.tsx';
import { PageHead } from '../../components/page-head.tsx';
import { Panel } from '../../components/panel.tsx';
import { ErrorPanel, Loading } from '../../components/states.tsx';
import { useResource } from '../../components/use-resource.ts';
import { formatNumber, formatTime } from '../../i18n.ts';
import { href, navigate, useRoute } from '../../router.ts';
import { CodeParts } from './code-parts.tsx';
import { ImportPanel } from './import.tsx';
import { DEVICE_KINDS, DEVICE_STATES, m, stateLabel } from './messages.ts';
import { api, holds, myAgency, Pill } from './ui.tsx';

/** A ledger device as `GET /v1/ledger/devices` answers it. */
export interface LedgerDevice {
  code: string;
  kind: string;
  model: string | null;
  vendor: string | null;
  ownerAgency: string;
  poleId: string | null;
  longitude: number;
  latitude: number;
  installedOn: string | null;
  gb35114Level: string | null;
  network: string | null;
  dataItems: string[];
  state: string;
  stateTimes: Record<string, string>;
  duplicates: string[];
  resolution: string | null;
  reuseOf: string | null;
  justification: string | null;
}

/** A standing device near a proposed one (duplicate check). */
export interface NearbyDevice {
  code: string;
  kind: string;
  ownerAgency: string;
  poleId: string | null;
  state: string;
  longitude: number;
  latitude: number;
  distanceM: number;
}

interface HistoryEntry {
  seq: number;
  time: string;
  action: string;
  actor: { kind: string; id: string; agencyId?: string } | null;
  state: string | null;
  detail: Record<string, unknown>;
}

const PAGE = 50;
/** Moves an operator makes by hand; review moves go through the joint review. */
const HAND_MOVES: Record<string, Array<'installed' | 'active' | 'maintenance' | 'retired'>> = {
  proposed: ['retired'],
  approved: ['installed', 'retired'],
  installed: ['active'],
  active: ['maintenance', 'retired'],
  maintenance: ['active', 'retired'],
};

/** The ledger page and its sub-pages (`#/ledger`, `/new`, `/import`, `/<code>`). */
export default function LedgerPage() {
  const route = useRoute();
  const sub = route.rest[0] ?? '';
  const tab = sub === 'new' || sub === 'import' ? sub : '';
  return (
    <div class="work">
      <PageHead title={m('title')} />
      <nav class="work-tabs" aria-label={m('title')}>
        <a href={href('ledger')} aria-current={tab === '' ? 'page' : undefined}>
          {m('tab.devices')}
        </a>
        {holds('agency-operator') ? (
          <>
            <a href="#/ledger/new" aria-current={tab === 'new' ? 'page' : undefined}>
              {m('tab.register')}
            </a>
            <a href="#/ledger/import" aria-current={tab === 'import' ? 'page' : undefined}>
              {m('tab.import')}
            </a>
          </>
        ) : null}
      </nav>
      {sub === 'new' ? (
        <RegisterForm />
      ) : sub === 'import' ? (
        <ImportPanel />
      ) : /^\d{20}$/.test(sub) ? (
        <DeviceDetail code={sub} />
      ) : (
        <DeviceList />
      )}
    </div>
  );
}

function DeviceList() {
  const [draft, setDraft] = useState({ kind: '', state: '', owner: '', q: '' });
  const [filter, setFilter] = useState(draft);
  // Keyset pages: the code each page starts after.
  const [cursors, setCursors] = useState<string[]>(['']);
  const after = cursors[cursors.length - 1] ?? '';
  const list = useResource(
    () =>
      api.get<LedgerDevice[]>('/v1/ledger/devices', {
        kind: filter.kind || undefined,
        state: filter.state || undefined,
        owner: filter.owner || undefined,
        q: filter.q || undefined,
        after: after || undefined,
        limit: PAGE + 1,
      }),
    [filter, after],
  );
  const rows = list.data?.slice(0, PAGE);
  const hasNext = (list.data?.length ?? 0) > PAGE;
  const columns = useMemo<Column<LedgerDevice>[]>(
    () => [
      {
        id: 'code',
        header: m('col.code'),
        cell: (d) => (
          <a class="mono" href={`#/ledger/${d.code}`}>
            {d.code}
          </a>
        ),
        sort: (d) => d.code,
      },
      { id: 'kind', header: m('col.kind'), cell: (d) => d.kind, sort: (d) => d.kind },
      { id: 'model', header: m('col.model'), cell: (d) => d.model ?? '—' },
      { id: 'agency', header: m('col.agency'), cell: (d) => d.ownerAgency, sort: (d) => d.ownerAgency },
      { id: 'pole', header: m('col.pole'), cell: (d) => d.poleId ?? '—' },
      { id: 'gb', header: m('col.gb35114'), cell: (d) => d.gb35114Level ?? '—' },
      {
        id: 'state',
        header: m('col.state'),
        cell: (d) => <Pill state={d.state} label={stateLabel(d.state)} />,
        sort: (d) => DEVICE_STATES.indexOf(d.state as (typeof DEVICE_STATES)[number]),
      },
      {
        id: 'since',
        header: m('col.updated'),
        cell: (d) => formatTime(d.stateTimes[d.state]),
        sort: (d) => d.stateTimes[d.state] ?? '',
      },
    ],
    [],
  );
  return (
    <section class="panel" aria-label={m('tab.devices')}>
      <FilterBar
        search={m('filter.search')}
        onSearch={() => {
          setCursors(['']);
          setFilter({ ...draft });
        }}
      >
        <ChoiceField
          label={m('filter.kind')}
          name="kind"
          value={draft.kind}
          onChange={(kind) => setDraft({ ...draft, kind })}
          choices={DEVICE_KINDS}
          all={m('filter.all')}
        />
        <ChoiceField
          label={m('filter.state')}
          name="state"
          value={draft.state}
          onChange={(state) => setDraft({ ...draft, state })}
          choices={DEVICE_STATES}
          all={m('filter.all')}
          labelOf={stateLabel}
        />
        <Field label={m('filter.agency')}>
          <input
            name="owner"
            value={draft.owner}
            placeholder={myAgency() ?? ''}
            onInput={(e) => setDraft({ ...draft, owner: e.currentTarget.value.trim() })}
          />
        </Field>
        <Field label={m('filter.text')}>
          <input
            name="q"
            type="search"
            value={draft.q}
            onInput={(e) => setDraft({ ...draft, q: e.currentTarget.value.trim() })}
          />
        </Field>
      </FilterBar>
      <DataTable
        caption={m('tab.devices')}
        columns={columns}
        rows={rows}
        rowKey={(d) => d.code}
        loading={list.loading}
        error={list.error}
        onRetry={list.reload}
        onRowClick={(d) => navigate(`ledger/${d.code}`)}
        empty={<p class="muted">{m('empty.devices')}</p>}
      />
      <div class="pager">
        <span class="muted">{m('page.n', { n: cursors.length })}</span>
        <button
          type="button"
          class="btn"
          disabled={cursors.length <= 1}
          onClick={() => setCursors((c) => c.slice(0, -1))}
        >
          {m('page.prev')}
        </button>
        <button
          type="button"
          class="btn"
          disabled={!hasNext}
          onClick={() => {
            const last = rows?.[rows.length - 1]?.code;
            if (last) setCursors((c) => [...c, last]);
          }}
        >
          {m('page.next')}
        </button>
      </div>
    </section>
  );
}

function DeviceDetail({ code }: { code: string }) {
  const [round, setRound] = useState(0);
  const device = useResource(() => api.get<LedgerDevice>(`/v1/ledger/devices/${code}`), [code, round]);
  const history = useResource(
    () => api.get<HistoryEntry[]>(`/v1/ledger/devices/${code}/history`),
    [code, round],
  );
  const action = useAction();
  const [sent, setSent] = useState<string | null>(null);
  const refresh = () => setRound((r) => r + 1);
  if (device.error) return <ErrorPanel error={device.error} onRetry={device.reload} />;
  const d = device.data;
  if (!d) return <Loading />;
  const moves = holds('agency-operator') ? (HAND_MOVES[d.state] ?? []) : [];
  // A flagged duplicate goes to review only once it is answered (reuse or justify).
  const unresolved = d.duplicates.length > 0 && !d.resolution;
  const move = async (to: string) => {
    const done = await action.run(() =>
      api.request<LedgerDevice>('POST', `/v1/ledger/devices/${code}/transitions`, {
        body: { to, from: d.state },
      }),
    );
    if (done) refresh();
  };
  const toReview = async () => {
    const project = await action.run(async () => {
      const created = await api.request<{ id: string }>('POST', '/v1/review/projects', {
        body: {
          name: `${d.kind} ${d.code}`,
          purpose: `${d.kind} ${d.model ?? ''}`.trim(),
          devices: [{ code }],
        },
      });
      return api.request<{ id: string }>('POST', `/v1/review/projects/${created.id}/submit`);
    });
    if (project) {
      setSent(project.id);
      refresh();
    }
  };
  return (
    <>
      <p>
        <a href={href('ledger')}>← {m('detail.back')}</a>
      </p>
      <div class="two-col">
        <section class="panel" aria-labelledby="device-title">
          <h2 id="device-title">
            {m('detail.title', { code: d.kind })} <Pill state={d.state} label={stateLabel(d.state)} />
          </h2>
          <dl class="facts">
            <dt>{m('detail.code')}</dt>
            <dd>
              <CodeParts code={d.code} />
            </dd>
            <dt>{m('col.kind')}</dt>
            <dd>{d.kind}</dd>
            <dt>{m('col.model')}</dt>
            <dd>{d.model ?? '—'}</dd>
            <dt>{m('detail.vendor')}</dt>
            <dd>{d.vendor ?? '—'}</dd>
            <dt>{m('col.agency')}</dt>
            <dd>{d.ownerAgency}</dd>
            <dt>{m('col.pole')}</dt>
            <dd>{d.poleId ?? '—'}</dd>
            <dt>{m('detail.position')}</dt>
            <dd class="mono">
              {d.longitude.toFixed(6)}, {d.latitude.toFixed(6)}
            </dd>
            <dt>{m('detail.installedOn')}</dt>
            <dd>{d.installedOn ?? '—'}</dd>
            <dt>{m('col.gb35114')}</dt>
            <dd>{d.gb35114Level ?? '—'}</dd>
            <dt>{m('detail.network')}</dt>
            <dd>{d.network ?? '—'}</dd>
            <dt>{m('detail.dataItems')}</dt>
            <dd>{d.dataItems.length ? d.dataItems.join(', ') : '—'}</dd>
          </dl>
          <h3>{m('detail.actions')}</h3>
          {sent ? (
            <p class="success" role="status">
              {m('detail.reviewSent', { id: sent })}
            </p>
          ) : null}
          {moves.length === 0 && d.state !== 'proposed' ? <p class="muted">{m('detail.noActions')}</p> : null}
          <div class="actions">
            {d.state === 'proposed' && holds('agency-operator') ? (
              <button
                type="button"
                class="btn btn-primary"
                disabled={action.busy || unresolved}
                title={m('detail.reviewNote')}
                onClick={toReview}
              >
                {m('detail.toReview')}
              </button>
            ) : null}
            {moves.map((to) => (
              <button
                key={to}
                type="button"
                class={to === 'retired' ? 'btn' : 'btn btn-primary'}
                data-move={to}
                disabled={action.busy}
                onClick={() => move(to)}
              >
                {m(`move.${to}`)}
              </button>
            ))}
          </div>
          {d.state === 'proposed' && unresolved ? <p class="muted">{m('detail.answerFirst')}</p> : null}
          {action.error ? <ErrorPanel error={action.error} compact /> : null}
        </section>
        <div class="work" style={{ padding: 0 }}>
          {d.state === 'proposed' || d.duplicates.length > 0 ? (
            <DuplicatePanel code={d.code} onResolved={refresh} />
          ) : null}
          <Panel heading={m('detail.history')} headingId="history-title">
            <History history={history.data} error={history.error} onRetry={history.reload} />
          </Panel>
        </div>
      </div>
    </>
  );
}

function History({
  history,
  error,
  onRetry,
}: {
  history: HistoryEntry[] | undefined;
  error: ApiError | undefined;
  onRetry: () => void;
}) {
  if (error) return <ErrorPanel error={error} onRetry={onRetry} compact />;
  if (!history) return <Loading />;
  if (history.length === 0) return <p class="muted">{m('detail.noHistory')}</p>;
  return (
    <ol class="history" data-testid="device-history">
      {history.map((h) => {
        const key = `action.${h.action}` as 'action.device.registered';
        const label = ['device.registered', 'device.transition', 'device.resolved'].includes(h.action)
          ? m(key)
          : h.action;
        const note = typeof h.detail.note === 'string' ? h.detail.note : null;
        return (
          <li key={h.seq}>
            <time dateTime={h.time}>{formatTime(h.time)}</time>
            <strong>{label}</strong>{' '}
            {typeof h.detail.from === 'string' ? `${stateLabel(h.detail.from)} → ` : ''}
            {h.state ? <Pill state={h.state} label={stateLabel(h.state)} /> : null}
            <div class="muted">
              {h.actor
                ? m('history.by', {
                    who: h.actor.agencyId ? `${h.actor.id} (${h.actor.agencyId})` : h.actor.id,
                  })
                : ''}
              {note ? ` · ${note}` : ''} · #{h.seq}
            </div>
          </li>
        );
      })}
    </ol>
  );
}

interface Duplicates {
  code: string;
  kind: string;
  radiusM: number;
  duplicates: NearbyDevice[];
  flagged: string[];
  resolution: string | null;
  reuseOf: string | null;
  justification: string | null;
}

/** The duplicate-build check of a proposed device: standing devices nearby, reuse or justify. */
export function DuplicatePanel({ code, onResolved }: { code: string; onResolved?: () => void }) {
  const dup = useResource(() => api.get<Duplicates>(`/v1/ledger/devices/${code}/duplicates`), [code]);
  const action = useAction();
  const [why, setWhy] = useState('');
  if (dup.error) return <ErrorPanel error={dup.error} onRetry={dup.reload} compact />;
  const d = dup.data;
  if (!d) return <Loading />;
  const resolve = async (body: { reuse: string } | { justify: string }) => {
    const ok = await action.run(() => api.request('POST', `/v1/ledger/devices/${code}/resolution`, { body }));
    if (ok) {
      dup.reload();
      onResolved?.();
    }
  };
  const resolved = d.resolution
    ? d.reuseOf
      ? m('detail.reuseOf', { code: d.reuseOf })
      : m('detail.justified', { text: d.justification ?? '' })
    : null;
  if (d.duplicates.length === 0 && d.flagged.length === 0)
    return (
      <p class="success" data-testid="duplicate-check" data-duplicates="0">
        ✓ {m('dup.none')}
      </p>
    );
  return (
    <section class="warning" data-testid="duplicate-check" data-duplicates={d.duplicates.length} role="alert">
      <h2>⚠ {m('dup.title', { radius: formatNumber(d.radiusM) })}</h2>
      {resolved ? (
        <p class="success" data-testid="duplicate-resolved">
          {m('dup.resolved', { what: resolved })}
        </p>
      ) : (
        <p>{m('dup.body')}</p>
      )}
      <ul class="history" style={{ borderLeft: 0 }}>
        {d.duplicates.map((n) => (
          <li key={n.code}>
            <a class="mono" href={`#/ledger/${n.code}`}>
              {n.code}
            </a>{' '}
            {n.kind} · {n.ownerAgency} · {n.poleId ?? '—'} ·{' '}
            <Pill state={n.state} label={stateLabel(n.state)} /> ·{' '}
            <strong>{m('dup.distance', { m: formatNumber(n.distanceM, 1) })}</strong>
            {!d.resolution ? (
              <div class="actions" style={{ marginTop: '0.3rem' }}>
                <button
                  type="button"
                  class="btn"
                  disabled={action.busy}
                  data-reuse={n.code}
                  onClick={() => resolve({ reuse: n.code })}
                >
                  {m('dup.reuse')}
                </button>
                {n.ownerAgency !== myAgency() ? (
                  <a class="btn" href={`#/reuse?device=${n.code}`}>
                    {m('dup.share')}
                  </a>
                ) : null}
              </div>
            ) : null}
          </li>
        ))}
      </ul>
      {!d.resolution ? (
        <form
          class="actions"
          onSubmit={(e) => {
            e.preventDefault();
            void resolve({ justify: why.trim() });
          }}
        >
          <Field label={m('dup.justify')} hint={m('dup.justifyHint')} class="wide">
            <textarea
              name="justify"
              rows={2}
              cols={40}
              minLength={10}
              required
              value={why}
              onInput={(e) => setWhy(e.currentTarget.value)}
            />
          </Field>
          <button type="submit" class="btn" disabled={action.busy}>
            {m('dup.justifySend')}
          </button>
        </form>
      ) : null}
      {action.error ? <ErrorPanel error={action.error} compact /> : null}
    </section>
  );
}

function RegisterForm() {
  const action = useAction();
  const [kind, setKind] = useState<string>('camera');
  const [gb, setGb] = useState('B');
  const [created, setCreated] = useState<LedgerDevice | null>(null);
  const submit = async (form: HTMLFormElement) => {
    const f = new FormData(form);
    const text = (name: string) => {
      const v = String(f.get(name) ?? '').trim();
      return v === '' ? undefined : v;
    };
    const items = (text('dataItems') ?? '')
      .split(/[,，;；\s]+/)
      .map((s) => s.trim())
      .filter(Boolean);
    const body: Record<string, unknown> = {
      kind,
      model: text('model'),
      vendor: text('vendor'),
      ownerAgency: text('ownerAgency') ?? myAgency(),
      poleId: text('poleId'),
      longitude: Number(text('longitude')),
      latitude: Number(text('latitude')),
      installedOn: text('installedOn'),
      gb35114Level: kind === 'camera' ? text('gb35114Level') : undefined,
      network: text('network'),
      dataItems: items.length ? items : undefined,
    };
    const done = await action.run(() => api.request<LedgerDevice>('POST', '/v1/ledger/devices', { body }));
    if (done) setCreated(done);
  };
  return (
    <>
      <form
        class="panel"
        aria-labelledby="reg-title"
        onSubmit={(e) => {
          e.preventDefault();
          void submit(e.currentTarget);
        }}
      >
        <h2 id="reg-title">{m('reg.title')}</h2>
        <div class="form-grid">
          <ChoiceField
            label={m('reg.kind')}
            name="kind"
            value={kind}
            onChange={setKind}
            choices={DEVICE_KINDS}
          />
          <Field label={m('reg.model')}>
            <input name="model" maxLength={128} />
          </Field>
          <Field label={m('reg.vendor')}>
            <input name="vendor" maxLength={128} />
          </Field>
          <Field label={m('reg.agency')}>
            <input
              name="ownerAgency"
              required
              defaultValue={myAgency() ?? ''}
              readOnly={myAgency() !== undefined}
            />
          </Field>
          <Field label={m('reg.pole')}>
            <input name="poleId" maxLength={64} placeholder="DC-L-0001" />
          </Field>
          <Field label={m('reg.lon')}>
            <input
              name="longitude"
              type="number"
              step="any"
              min={-180}
              max={180}
              required
              placeholder="116.3975"
            />
          </Field>
          <Field label={m('reg.lat')}>
            <input
              name="latitude"
              type="number"
              step="any"
              min={-90}
              max={90}
              required
              placeholder="39.9087"
            />
          </Field>
          <Field label={m('reg.installedOn')}>
            <input name="installedOn" type="date" />
          </Field>
          {kind === 'camera' ? (
            <Field label={m('reg.gb35114')} hint={m('reg.gbHint')}>
              <select name="gb35114Level" value={gb} onChange={(e) => setGb(e.currentTarget.value)}>
                <option value="">{m('reg.none')}</option>
                <option value="A">A</option>
                <option value="B">B</option>
                <option value="C">C</option>
                <option value="none">none</option>
              </select>
            </Field>
          ) : null}
          <Field label={m('reg.network')} hint={m('reg.networkHint')}>
            <input name="network" maxLength={64} />
          </Field>
          <Field label={m('reg.dataItems')} hint={m('reg.dataItemsHint')} class="wide">
            <input name="dataItems" />
          </Field>
        </div>
        <div class="actions">
          <button type="submit" class="btn btn-primary" disabled={action.busy}>
            {action.busy ? m('reg.busy') : m('reg.submit')}
          </button>
        </div>
        {action.error ? <ErrorPanel error={action.error} compact /> : null}
      </form>
      {created ? (
        <section class="panel" aria-live="polite" data-testid="registered" data-code={created.code}>
          <p class="success">
            ✓ {m('reg.done', { code: created.code })} <a href={`#/ledger/${created.code}`}>{m('reg.open')}</a>
          </p>
          <CodeParts code={created.code} />
          <div style={{ marginTop: '0.75rem' }}>
            <DuplicatePanel key={created.code} code={created.code} />
          </div>
        </section>
      ) : null}
    </>
  );
}
