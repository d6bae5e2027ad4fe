/**
 * Carriers (001 Art. 46): the pole catalogue filtered by free capacity, mount applications
 * on an existing pole, and the pole owner's decisions (`/v1/carriers`).
 */
import { useMemo, useState } from 'preact/hooks';
import { api } from '../../api.ts';
import { useAction } from '../../components/action.ts';
import { type Column, DataTable, ResourceTable } from '../../components/data-table.tsx';
import {
  DecisionActions,
  DecisionComment,
  decisionColumns,
  useDecisionDesk,
} from '../../components/decision.tsx';
import { ChoiceField, Field, FilterBar } from '../../components/form.tsx';
import { PageHead } from '../../components/page-head.tsx';
import { Panel } from '../../components/panel.tsx';
import { ErrorPanel } from '../../components/states.tsx';
import { type Resource, useResource } from '../../components/use-resource.ts';
import { formatNumber, formatTime } from '../../i18n.ts';
import { myAgency, Pill } from '../ledger/ui.tsx';
import { m } from './messages.ts';

interface Pole {
  id: string;
  geometry: { coordinates: [number, number] };
  properties: {
    id: string;
    kind: string;
    ownerAgency: string;
    road: string | null;
    powerStatus: string;
    networkKind: string;
    networkStatus: string;
    slots: number;
    freeSlots: number;
    freePowerW: number;
  };
}

interface MountApplication {
  id: string;
  kind: string;
  applicantAgency: string;
  ownerAgency: string;
  poleId: string | null;
  deviceCode: string;
  powerW: number;
  slots: number;
  purpose: string | null;
  state: 'pending' | 'approved' | 'refused';
  decidedAt: string | null;
  comment: string | null;
  createdAt: string;
}

const POLE_KINDS = ['lamp', 'traffic', 'other'] as const;

/** The carriers page. */
export default function CarriersPage() {
  const [draft, setDraft] = useState({ minFreeSlots: '1', minFreePowerW: '', kind: '', owner: '' });
  const [filter, setFilter] = useState(draft);
  const [pole, setPole] = useState<Pole | null>(null);
  const poles = useResource(
    () =>
      api.get<{ features: Pole[] }>('/v1/carriers', {
        minFreeSlots: filter.minFreeSlots || undefined,
        minFreePowerW: filter.minFreePowerW || undefined,
        kind: filter.kind || undefined,
        owner: filter.owner || undefined,
        limit: 500,
      }),
    [filter],
  );
  const apps = useResource(() => api.get<MountApplication[]>('/v1/carriers/applications'), []);
  const columns = useMemo<Column<Pole>[]>(
    () => [
      { id: 'id', header: m('col.pole'), cell: (p) => <span class="mono">{p.id}</span>, sort: (p) => p.id },
      { id: 'kind', header: m('col.kind'), cell: (p) => p.properties.kind, sort: (p) => p.properties.kind },
      {
        id: 'owner',
        header: m('col.owner'),
        cell: (p) => p.properties.ownerAgency,
        sort: (p) => p.properties.ownerAgency,
      },
      { id: 'road', header: m('col.road'), cell: (p) => p.properties.road ?? '—' },
      { id: 'power', header: m('col.power'), cell: (p) => <Pill state={p.properties.powerStatus} /> },
      {
        id: 'network',
        header: m('col.network'),
        cell: (p) => (
          <Pill
            state={p.properties.networkStatus}
            label={`${p.properties.networkKind} ${p.properties.networkStatus}`}
          />
        ),
      },
      {
        id: 'slots',
        header: m('col.slots'),
        cell: (p) => `${p.properties.freeSlots} / ${p.properties.slots}`,
        sort: (p) => p.properties.freeSlots,
        align: 'end',
      },
      {
        id: 'freePower',
        header: m('col.freePower'),
        cell: (p) => `${formatNumber(p.properties.freePowerW)} W`,
        sort: (p) => p.properties.freePowerW,
        align: 'end',
      },
      {
        id: 'pos',
        header: m('col.position'),
        cell: (p) => (
          <span class="mono">
            {p.geometry.coordinates[0].toFixed(5)}, {p.geometry.coordinates[1].toFixed(5)}
          </span>
        ),
      },
    ],
    [],
  );
  return (
    <div class="work">
      <PageHead title={m('title')} intro={m('intro')} />
      <Panel aria-label={m('title')}>
        <FilterBar
          search={m('filter.search')}
          onSearch={() => setFilter({ ...draft })}
          after={
            poles.data ? (
              <span class="muted" data-testid="pole-count">
                {m('poles.count', { n: poles.data.features.length })}
              </span>
            ) : null
          }
        >
          <Field label={m('filter.slots')}>
            <input
              name="minFreeSlots"
              type="number"
              min={0}
              max={64}
              value={draft.minFreeSlots}
              onInput={(e) => setDraft({ ...draft, minFreeSlots: e.currentTarget.value })}
            />
          </Field>
          <Field label={m('filter.power')}>
            <input
              name="minFreePowerW"
              type="number"
              min={0}
              value={draft.minFreePowerW}
              onInput={(e) => setDraft({ ...draft, minFreePowerW: e.currentTarget.value })}
            />
          </Field>
          <ChoiceField
            label={m('filter.kind')}
            name="kind"
            value={draft.kind}
            onChange={(kind) => setDraft({ ...draft, kind })}
            choices={POLE_KINDS}
            all={m('filter.all')}
          />
          <Field label={m('filter.owner')}>
            <input
              name="owner"
              value={draft.owner}
              onInput={(e) => setDraft({ ...draft, owner: e.currentTarget.value.trim() })}
            />
          </Field>
        </FilterBar>
        <div style={{ maxHeight: '24rem', overflow: 'auto', marginTop: '0.5rem' }}>
          <DataTable
            caption={m('title')}
            columns={columns}
            rows={poles.data?.features}
            rowKey={(p) => p.id}
            loading={poles.loading}
            error={poles.error}
            onRetry={poles.reload}
            onRowClick={setPole}
            empty={<p class="muted">{m('poles.empty')}</p>}
          />
        </div>
      </Panel>
      <MountForm pole={pole} onApplied={apps.reload} />
      <Applications apps={apps} />
    </div>
  );
}

function MountForm({ pole, onApplied }: { pole: Pole | null; onApplied: () => void }) {
  const action = useAction();
  const [done, setDone] = useState(false);
  if (!pole)
    return (
      <Panel>
        <p class="muted" style={{ margin: 0 }}>
          {m('apply.choose')}
        </p>
      </Panel>
    );
  return (
    <form
      class="panel"
      aria-labelledby="mount-title"
      data-testid="mount-form"
      onSubmit={async (e) => {
        e.preventDefault();
        setDone(false);
        const f = new FormData(e.currentTarget);
        const purpose = String(f.get('purpose') ?? '').trim();
        const ok = await action.run(() =>
          api.request('POST', '/v1/carriers/applications', {
            body: {
              kind: 'mount',
              poleId: pole.id,
              deviceCode: String(f.get('deviceCode') ?? '').trim(),
              powerW: Number(f.get('powerW')),
              slots: Number(f.get('slots')),
              ...(purpose ? { purpose } : {}),
            },
          }),
        );
        if (ok) {
          setDone(true);
          onApplied();
        }
      }}
    >
      <h2 id="mount-title">{m('apply.title', { pole: pole.id })}</h2>
      <div class="form-grid">
        <Field label={m('apply.device')}>
          <input name="deviceCode" class="mono" required pattern="[0-9]{20}" inputMode="numeric" />
        </Field>
        <Field label={m('apply.power')}>
          <input name="powerW" type="number" min={0} step="any" required defaultValue="15" />
        </Field>
        <Field label={m('apply.slots')}>
          <input name="slots" type="number" min={1} max={16} required defaultValue="1" />
        </Field>
        <Field label={m('apply.purpose')} class="wide">
          <input name="purpose" maxLength={2000} />
        </Field>
      </div>
      <div class="actions">
        <button type="submit" class="btn btn-primary" disabled={action.busy}>
          {m('apply.submit')}
        </button>
        {done ? (
          <span class="success" role="status" data-testid="mount-applied">
            ✓ {m('apply.done')}
          </span>
        ) : null}
      </div>
      {action.error ? <ErrorPanel error={action.error} compact /> : null}
    </form>
  );
}

function Applications({ apps }: { apps: Resource<MountApplication[]> }) {
  const desk = useDecisionDesk(apps.reload);
  const agency = myAgency();
  const actions = (a: MountApplication) =>
    a.state === 'pending' && (agency === undefined || a.ownerAgency === agency) ? (
      <DecisionActions
        choices={[
          { decision: 'approve', label: m('do.approve') },
          { decision: 'refuse', label: m('do.refuse') },
        ]}
        busy={desk.action.busy}
        onDecide={(decision) =>
          desk.decide(`/v1/carriers/applications/${encodeURIComponent(a.id)}/decision`, decision)
        }
      />
    ) : null;
  const columns: Column<MountApplication>[] = [
    {
      id: 'pole',
      header: m('col.pole'),
      cell: (a) => <span class="mono">{a.poleId ?? '—'}</span>,
      sort: (a) => a.poleId ?? '',
    },
    { id: 'device', header: m('col.device'), cell: (a) => <span class="mono">{a.deviceCode}</span> },
    {
      id: 'applicant',
      header: m('col.applicant'),
      cell: (a) => a.applicantAgency,
      sort: (a) => a.applicantAgency,
    },
    { id: 'owner', header: m('col.owner'), cell: (a) => a.ownerAgency, sort: (a) => a.ownerAgency },
    {
      id: 'slots',
      header: m('apply.slots'),
      cell: (a) => `${a.slots} · ${formatNumber(a.powerW)} W`,
      align: 'end',
    },
    {
      id: 'state',
      header: m('col.state'),
      cell: (a) => <Pill state={a.state} label={m(`state.${a.state}`)} />,
      sort: (a) => a.state,
    },
    {
      id: 'created',
      header: m('col.created'),
      cell: (a) => formatTime(a.createdAt),
      sort: (a) => a.createdAt,
    },
    ...decisionColumns({ decision: m('col.decision'), actions: m('col.actions') }, actions),
  ];
  return (
    <Panel heading={m('apps.title')} headingId="apps-title" data-testid="mount-applications">
      <DecisionComment label={m('apps.comment')} desk={desk} />
      <ResourceTable
        caption={m('apps.title')}
        columns={columns}
        resource={apps}
        rowKey={(a) => a.id}
        empty={m('apps.empty')}
      />
    </Panel>
  );
}
