/**
 * Reuse and share (001 Art. 45 "reuse before build"): apply to share another agency's
 * ledger device, follow your agency's requests, and approve or refuse the requests other
 * agencies make for yours (`/v1/catalogue/shares`).
 */
import type { ComponentChildren } from 'preact';
import { useMemo, useState } from 'preact/hooks';
import { api } from '../../api.ts';
import { useAction } from '../../components/action.ts';
import { type Column, DataTable } from '../../components/data-table.tsx';
import {
  DecisionActions,
  DecisionComment,
  decisionColumns,
  useDecisionDesk,
} from '../../components/decision.tsx';
import { Field } from '../../components/form.tsx';
import { PageHead } from '../../components/page-head.tsx';
import { Panel } from '../../components/panel.tsx';
import { ErrorPanel } from '../../components/states.tsx';
import { type Resource, useResource } from '../../components/use-resource.ts';
import { formatTime } from '../../i18n.ts';
import { useRoute } from '../../router.ts';
import { myAgency, Pill } from '../ledger/ui.tsx';
import { m } from './messages.ts';

interface Share {
  id: string;
  deviceCode: string;
  ownerAgency: string;
  applicantAgency: string;
  purpose: string;
  status: 'pending' | 'approved' | 'refused' | 'revoked';
  appliedBy: string;
  appliedAt: string;
  decidedBy: string | null;
  decidedAt: string | null;
  comment: string | null;
}

/** The reuse page. */
export default function ReusePage() {
  const route = useRoute();
  const shares = useResource(() => api.get<Share[]>('/v1/catalogue/shares', { limit: 500 }), []);
  const agency = myAgency();
  const incoming = shares.data?.filter((s) => agency === undefined || s.ownerAgency === agency);
  const mine = shares.data?.filter((s) => agency === undefined || s.applicantAgency === agency);
  return (
    <div class="work">
      <PageHead title={m('title')} intro={m('intro')} />
      <ApplyForm initial={route.params.get('device') ?? ''} onApplied={shares.reload} />
      <Incoming rows={incoming} shares={shares} />
      <Panel heading={m('mine.title')} headingId="mine-title">
        <ShareTable rows={mine} shares={shares} testid="shares-mine" empty={m('mine.empty')} />
      </Panel>
    </div>
  );
}

function ApplyForm({ initial, onApplied }: { initial: string; onApplied: () => void }) {
  const action = useAction();
  const [device, setDevice] = useState(initial);
  const [purpose, setPurpose] = useState('');
  const [done, setDone] = useState(false);
  return (
    <form
      class="panel"
      aria-labelledby="apply-title"
      onSubmit={async (e) => {
        e.preventDefault();
        setDone(false);
        const ok = await action.run(() =>
          api.request('POST', '/v1/catalogue/shares', {
            body: { device: device.trim(), purpose: purpose.trim() },
          }),
        );
        if (ok) {
          setDone(true);
          setPurpose('');
          onApplied();
        }
      }}
    >
      <h2 id="apply-title">{m('apply.title')}</h2>
      <div class="form-grid">
        <Field label={m('apply.device')} hint={m('apply.deviceHint')}>
          <input
            name="device"
            required
            pattern="[0-9]{20}"
            inputMode="numeric"
            class="mono"
            value={device}
            onInput={(e) => setDevice(e.currentTarget.value)}
          />
        </Field>
        <Field label={m('apply.purpose')} hint={m('apply.purposeHint')}>
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
        {done ? (
          <span class="success" role="status" data-testid="share-applied">
            ✓ {m('apply.done')}
          </span>
        ) : null}
      </div>
      {action.error ? <ErrorPanel error={action.error} compact /> : null}
    </form>
  );
}

type SharesResource = Resource<Share[]>;

function Incoming({ rows, shares }: { rows: Share[] | undefined; shares: SharesResource }) {
  const desk = useDecisionDesk(shares.reload);
  return (
    <Panel heading={m('incoming.title')} headingId="incoming-title">
      <DecisionComment label={m('incoming.comment')} desk={desk} />
      <ShareTable
        rows={rows}
        shares={shares}
        testid="shares-incoming"
        empty={m('incoming.empty')}
        actions={(s) => (
          <DecisionActions
            choices={
              s.status === 'pending'
                ? [
                    { decision: 'approve', label: m('do.approve') },
                    { decision: 'refuse', label: m('do.refuse') },
                  ]
                : s.status === 'approved'
                  ? [{ decision: 'revoke', label: m('do.revoke') }]
                  : []
            }
            busy={desk.action.busy}
            onDecide={(decision) => desk.decide(`/v1/catalogue/shares/${s.id}/decision`, decision)}
          />
        )}
      />
    </Panel>
  );
}

function ShareTable({
  rows,
  shares,
  testid,
  empty,
  actions,
}: {
  rows: Share[] | undefined;
  shares: SharesResource;
  testid: string;
  empty: string;
  actions?: (s: Share) => ComponentChildren;
}) {
  const columns = useMemo<Column<Share>[]>(
    () => [
      {
        id: 'device',
        header: m('col.device'),
        cell: (s) => <span class="mono">{s.deviceCode}</span>,
        sort: (s) => s.deviceCode,
      },
      { id: 'owner', header: m('col.owner'), cell: (s) => s.ownerAgency, sort: (s) => s.ownerAgency },
      {
        id: 'applicant',
        header: m('col.applicant'),
        cell: (s) => s.applicantAgency,
        sort: (s) => s.applicantAgency,
      },
      { id: 'purpose', header: m('col.purpose'), cell: (s) => s.purpose },
      {
        id: 'status',
        header: m('col.status'),
        cell: (s) => <Pill state={s.status} label={m(`status.${s.status}`)} />,
        sort: (s) => s.status,
      },
      {
        id: 'applied',
        header: m('col.applied'),
        cell: (s) => formatTime(s.appliedAt),
        sort: (s) => s.appliedAt,
      },
      ...decisionColumns({ decision: m('col.decided'), actions: m('col.actions') }, actions),
    ],
    [actions],
  );
  return (
    <div data-testid={testid}>
      <DataTable
        caption={testid}
        columns={columns}
        rows={rows}
        rowKey={(s) => s.id}
        loading={shares.loading}
        error={shares.error}
        onRetry={shares.reload}
        empty={<p class="muted">{empty}</p>}
      />
    </div>
  );
}
