/**
 * The sensing data catalogue (001 Art. 48): data resources with grade, category and the
 * forms they are offered in; apply for access, follow the applications, and decide them
 * when your agency owns the resource (`/v1/catalogue/resources`, `/v1/catalogue/applications`).
 */
import { useState } from 'preact/hooks';
import { api } from '../../api.ts';
import { useAction } from '../../components/action.ts';
import { type Column, ResourceTable } from '../../components/data-table.tsx';
import {
  DecisionActions,
  DecisionComment,
  decisionColumns,
  useDecisionDesk,
} from '../../components/decision.tsx';
import { ChoiceField, Field } from '../../components/form.tsx';
import { PageHead } from '../../components/page-head.tsx';
import { Panel } from '../../components/panel.tsx';
import { ErrorPanel } from '../../components/states.tsx';
import { useResource } from '../../components/use-resource.ts';
import { formatTime } from '../../i18n.ts';
import { DEVICE_KINDS, holds, myAgency, Pill } from '../ledger/ui.tsx';
import { m } from './messages.ts';

interface Resource {
  id: string;
  title: string;
  deviceKind: string;
  dataType: string;
  item: string;
  ownerAgency: string | null;
  grade: number;
  category: string;
  forms: Array<'raw' | 'desensitised' | 'analysis'>;
  description: string | null;
}

interface Application {
  id: string;
  resourceId: string;
  applicantAgency: string;
  form: 'raw' | 'desensitised' | 'analysis';
  purpose: string;
  status: 'pending' | 'granted' | 'refused' | 'revoked';
  appliedAt: string;
  decidedAt: string | null;
  comment: string | null;
}

const CATEGORIES = [
  'environment',
  'traffic',
  'public-safety',
  'urban-operations',
  'hazard-monitoring',
  'infrastructure',
] as const;

/** The catalogue page. */
export default function CataloguePage() {
  const [category, setCategory] = useState('');
  const [kind, setKind] = useState('');
  const [chosen, setChosen] = useState<Resource | null>(null);
  const resources = useResource(
    () =>
      api.get<Resource[]>('/v1/catalogue/resources', {
        category: category || undefined,
        deviceKind: kind || undefined,
      }),
    [category, kind],
  );
  const apps = useResource(() => api.get<Application[]>('/v1/catalogue/applications', { limit: 500 }), []);
  const owners = new Map((resources.data ?? []).map((r) => [r.id, r.ownerAgency]));
  const columns: Column<Resource>[] = [
    { id: 'id', header: m('col.resource'), cell: (r) => <span class="mono">{r.id}</span>, sort: (r) => r.id },
    { id: 'title', header: m('col.title'), cell: (r) => r.title, sort: (r) => r.title },
    { id: 'kind', header: m('col.kind'), cell: (r) => r.deviceKind, sort: (r) => r.deviceKind },
    { id: 'item', header: m('col.item'), cell: (r) => `${r.dataType} · ${r.item}` },
    { id: 'grade', header: m('col.grade'), cell: (r) => `L${r.grade}`, sort: (r) => r.grade, align: 'end' },
    { id: 'category', header: m('col.category'), cell: (r) => r.category, sort: (r) => r.category },
    { id: 'forms', header: m('col.forms'), cell: (r) => r.forms.map((f) => m(`form.${f}`)).join(' / ') },
    { id: 'owner', header: m('col.owner'), cell: (r) => r.ownerAgency ?? m('res.citywide') },
    {
      id: 'apply',
      header: m('col.apply'),
      cell: (r) => (
        <button type="button" class="btn" data-apply={r.id} onClick={() => setChosen(r)}>
          {m('res.apply')}
        </button>
      ),
    },
  ];
  return (
    <div class="work">
      <PageHead title={m('title')} intro={m('intro')} />
      <Panel aria-label={m('title')}>
        <div class="filters" style={{ marginBottom: '0.5rem' }}>
          <ChoiceField
            label={m('filter.category')}
            name="category"
            value={category}
            onChange={setCategory}
            choices={CATEGORIES}
            all={m('filter.all')}
          />
          <ChoiceField
            label={m('filter.kind')}
            name="deviceKind"
            value={kind}
            onChange={setKind}
            choices={DEVICE_KINDS}
            all={m('filter.all')}
          />
        </div>
        <ResourceTable
          caption={m('title')}
          columns={columns}
          resource={resources}
          rowKey={(r) => r.id}
          empty={m('res.empty')}
        />
      </Panel>
      {chosen ? (
        <ApplyForm
          key={chosen.id}
          resource={chosen}
          onClose={() => setChosen(null)}
          onApplied={apps.reload}
        />
      ) : null}
      <Applications apps={apps} owners={owners} />
    </div>
  );
}

function ApplyForm({
  resource,
  onClose,
  onApplied,
}: {
  resource: Resource;
  onClose: () => void;
  onApplied: () => void;
}) {
  const action = useAction();
  const [form, setForm] = useState<string>(resource.forms[0] ?? 'analysis');
  const [purpose, setPurpose] = useState('');
  const [done, setDone] = useState(false);
  return (
    <form
      class="panel"
      aria-labelledby="data-apply-title"
      data-testid="data-apply"
      onSubmit={async (e) => {
        e.preventDefault();
        setDone(false);
        const ok = await action.run(() =>
          api.request('POST', '/v1/catalogue/applications', {
            body: { resource: resource.id, form, purpose: purpose.trim() },
          }),
        );
        if (ok) {
          setDone(true);
          setPurpose('');
          onApplied();
        }
      }}
    >
      <h2 id="data-apply-title">{m('apply.title', { resource: resource.title })}</h2>
      <div class="form-grid">
        <Field label={m('apply.form')}>
          <select name="form" value={form} onChange={(e) => setForm(e.currentTarget.value)}>
            {resource.forms.map((f) => (
              <option key={f} value={f}>
                {m(`form.${f}`)}
              </option>
            ))}
          </select>
        </Field>
        <Field label={m('apply.purpose')} hint={m('apply.purposeHint')} class="wide">
          <input
            name="purpose"
            required
            minLength={5}
            maxLength={2000}
            value={purpose}
            onInput={(e) => setPurpose(e.currentTarget.value)}
          />
        </Field>
      </div>
      <div class="actions">
        <button type="submit" class="btn btn-primary" disabled={action.busy}>
          {m('apply.submit')}
        </button>
        <button type="button" class="btn" onClick={onClose}>
          {m('apply.cancel')}
        </button>
        {done ? (
          <span class="success" role="status" data-testid="data-applied">
            ✓ {m('apply.done')}
          </span>
        ) : null}
      </div>
      {action.error ? <ErrorPanel error={action.error} compact /> : null}
    </form>
  );
}

function Applications({
  apps,
  owners,
}: {
  apps: ReturnType<typeof useResource<Application[]>>;
  owners: Map<string, string | null>;
}) {
  const desk = useDecisionDesk(apps.reload);
  const agency = myAgency();
  const decides = (a: Application) => {
    const owner = owners.get(a.resourceId);
    // City-wide resources are decided by the platform; an agency's by that agency.
    return owner === undefined
      ? false
      : owner === null
        ? holds('platform-admin') && !agency
        : owner === agency || !agency;
  };
  const actions = (a: Application) =>
    decides(a) ? (
      <DecisionActions
        choices={
          a.status === 'pending'
            ? [
                { decision: 'grant', label: m('do.grant') },
                { decision: 'refuse', label: m('do.refuse') },
              ]
            : a.status === 'granted'
              ? [{ decision: 'revoke', label: m('do.revoke') }]
              : []
        }
        busy={desk.action.busy}
        onDecide={(decision) => desk.decide(`/v1/catalogue/applications/${a.id}/decision`, decision)}
      />
    ) : null;
  const columns: Column<Application>[] = [
    {
      id: 'res',
      header: m('col.resource'),
      cell: (a) => <span class="mono">{a.resourceId}</span>,
      sort: (a) => a.resourceId,
    },
    {
      id: 'applicant',
      header: m('col.applicant'),
      cell: (a) => a.applicantAgency,
      sort: (a) => a.applicantAgency,
    },
    { id: 'form', header: m('col.form'), cell: (a) => m(`form.${a.form}`) },
    { id: 'purpose', header: m('col.purpose'), cell: (a) => a.purpose },
    {
      id: 'status',
      header: m('col.status'),
      cell: (a) => <Pill state={a.status} label={m(`status.${a.status}`)} />,
      sort: (a) => a.status,
    },
    {
      id: 'applied',
      header: m('col.applied'),
      cell: (a) => formatTime(a.appliedAt),
      sort: (a) => a.appliedAt,
    },
    ...decisionColumns({ decision: m('col.decision'), actions: m('col.actions') }, actions),
  ];
  return (
    <Panel heading={m('apps.title')} headingId="data-apps-title" data-testid="data-applications">
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
