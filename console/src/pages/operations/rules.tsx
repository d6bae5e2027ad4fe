/**
 * Alarm rules (`/v1/alarm-rules`): list, create and delete. The form sends what the
 * user typed and lets the hub judge it: a CS_ERR_RULE_INVALID answer lists every
 * problem with its JSON path, shown next to the field it names (cloud-hub/src/alarms/rules.ts).
 */
import { useState } from 'preact/hooks';
import { type ApiError, api, asApiError } from '../../api.ts';
import { type Column, DataTable } from '../../components/data-table.tsx';
import { ErrorPanel } from '../../components/states.tsx';
import { useResource } from '../../components/use-resource.ts';
import { session } from '../../session.ts';
import { useValue } from '../../signal.ts';
import { Severity } from './alarms.tsx';
import { m } from './messages.ts';

const SEVERITIES = ['critical', 'major', 'minor', 'warning'] as const;
const KINDS = ['threshold', 'duration', 'absence', 'rate-of-change'] as const;
const OPS = ['>', '>=', '<', '<=', '==', '!='] as const;

interface Condition {
  kind: (typeof KINDS)[number];
  op?: string;
  value?: number;
  clearValue?: number;
  forS?: number;
  delta?: number;
  windowS?: number;
}

/** A stored rule. */
interface Rule {
  id: string;
  name: string;
  enabled: boolean;
  severity: (typeof SEVERITIES)[number];
  agencyId: string | null;
  scope: { nodes?: string[]; device?: string; metric: string };
  condition: Condition;
}

/** One problem the hub found, `{ path: '/condition/clearValue', message }`. */
interface Problem {
  path: string;
  message: string;
}

function describe(c: Condition): string {
  switch (c.kind) {
    case 'threshold':
      return `${c.op} ${c.value}${c.clearValue === undefined ? '' : ` (↺ ${c.clearValue})`}`;
    case 'duration':
      return `${c.op} ${c.value} ≥ ${c.forS}s`;
    case 'absence':
      return `∅ ${c.forS}s`;
    default:
      return `Δ ${c.delta} / ${c.windowS}s`;
  }
}

export function RulesTab() {
  const rules = useResource((signal) => api.request<Rule[]>('GET', '/v1/alarm-rules', { signal }), []);
  const [deleting, setDeleting] = useState<Rule | null>(null);
  const [error, setError] = useState<unknown>(null);
  const columns: Column<Rule>[] = [
    { id: 'name', header: m('rules.name'), sort: (r) => r.name, cell: (r) => <strong>{r.name}</strong> },
    {
      id: 'severity',
      header: m('rules.severity'),
      sort: (r) => SEVERITIES.indexOf(r.severity),
      cell: (r) => <Severity level={r.severity} />,
    },
    {
      id: 'scope',
      header: m('rules.scope'),
      cell: (r) => (
        <span>
          <code>{r.scope.metric}</code>
          {r.scope.device !== undefined ? <span class="muted"> @ {r.scope.device || '—'}</span> : null}
          {r.scope.nodes?.length ? <span class="muted"> · {r.scope.nodes.join(', ')}</span> : null}
        </span>
      ),
    },
    {
      id: 'condition',
      header: m('rules.condition'),
      cell: (r) => (
        <span>
          {m(`kind.${r.condition.kind}`)} <code>{describe(r.condition)}</code>
        </span>
      ),
    },
    {
      id: 'agency',
      header: m('rules.agency'),
      sort: (r) => r.agencyId ?? '',
      cell: (r) => r.agencyId ?? m('rules.platform'),
    },
    {
      id: 'actions',
      header: '',
      cell: (r) => (
        <button type="button" class="btn btn-ghost" data-action="delete" onClick={() => setDeleting(r)}>
          {m('rules.delete')}
        </button>
      ),
    },
  ];
  return (
    <>
      <section class="panel" aria-labelledby="rules-title">
        <div class="panel-head">
          <h2 id="rules-title">{m('rules.caption')}</h2>
          <button type="button" class="btn" onClick={rules.reload}>
            {m('refresh')}
          </button>
        </div>
        {deleting ? (
          <div class="confirm" role="alertdialog" aria-labelledby="rule-delete">
            <p id="rule-delete">{m('rules.confirmDelete', { name: deleting.name })}</p>
            <button
              type="button"
              class="btn btn-danger"
              onClick={async () => {
                const path = `/v1/alarm-rules/${encodeURIComponent(deleting.id)}`;
                setDeleting(null);
                try {
                  await api.request('DELETE', path);
                  setError(null);
                } catch (e) {
                  setError(asApiError(e, path));
                }
                rules.reload();
              }}
            >
              {m('rules.yes')}
            </button>
            <button type="button" class="btn" onClick={() => setDeleting(null)}>
              {m('ota.cancel')}
            </button>
          </div>
        ) : null}
        {error ? <ErrorPanel error={error} compact /> : null}
        <DataTable
          caption={m('rules.caption')}
          columns={columns}
          rows={rules.data}
          rowKey={(r) => r.id}
          loading={rules.loading}
          error={rules.error}
          onRetry={rules.reload}
          empty={<p class="muted">{m('rules.empty')}</p>}
        />
      </section>
      <RuleForm onCreated={rules.reload} />
    </>
  );
}

function RuleForm({ onCreated }: { onCreated: () => void }) {
  const s = useValue(session);
  const me = s?.me;
  const isAdmin =
    me?.kind === 'admin' || (me?.kind === 'user' && me.user.roles.some((g) => g.role === 'platform-admin'));
  const ownAgency = me?.kind === 'user' ? me.user.agencyId : null;
  const [f, setF] = useState({
    name: '',
    severity: 'major' as (typeof SEVERITIES)[number],
    agency: isAdmin ? '' : (ownAgency ?? ''),
    nodes: '',
    device: '',
    metric: '',
    kind: 'threshold' as (typeof KINDS)[number],
    op: '>',
    value: '',
    clearValue: '',
    forS: '',
    delta: '',
    windowS: '',
  });
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<ApiError | null>(null);
  const [created, setCreated] = useState<string | null>(null);
  const set = (k: keyof typeof f) => (e: Event) =>
    setF((old) => ({ ...old, [k]: (e.currentTarget as HTMLInputElement).value }));
  // Numbers go as typed: an empty or non-numeric field is left for the hub to name.
  const num = (v: string): number | string | undefined =>
    v.trim() === '' ? undefined : Number.isFinite(Number(v)) ? Number(v) : v;

  const problems: Problem[] =
    error?.code === 'CS_ERR_RULE_INVALID' && Array.isArray(error.details) ? (error.details as Problem[]) : [];
  const problemAt = (...paths: string[]) =>
    problems.filter((p) => paths.some((path) => p.path === path || p.path.startsWith(`${path}/`)));
  const fieldError = (id: string, ...paths: string[]) => {
    const found = problemAt(...paths);
    return found.length ? (
      <span class="field-error" id={`${id}-error`}>
        {found.map((p) => p.message).join('; ')}
      </span>
    ) : null;
  };
  const invalid = (...paths: string[]) => (problemAt(...paths).length > 0 ? 'true' : undefined);

  const submit = async (e: Event) => {
    e.preventDefault();
    setBusy(true);
    setError(null);
    setCreated(null);
    const condition: Record<string, unknown> = { kind: f.kind };
    if (f.kind === 'threshold' || f.kind === 'duration') {
      condition.op = f.op;
      condition.value = num(f.value);
    }
    if (f.kind === 'threshold' && f.clearValue.trim()) condition.clearValue = num(f.clearValue);
    if (f.kind === 'duration' || f.kind === 'absence') condition.forS = num(f.forS);
    if (f.kind === 'rate-of-change') {
      condition.delta = num(f.delta);
      condition.windowS = num(f.windowS);
    }
    const nodes = f.nodes
      .split(/[,\s]+/)
      .map((n) => n.trim())
      .filter(Boolean);
    const body = {
      name: f.name,
      severity: f.severity,
      agencyId: f.agency.trim() || null,
      scope: {
        metric: f.metric,
        ...(nodes.length ? { nodes } : {}),
        ...(f.device.trim() === '-' ? { device: '' } : f.device.trim() ? { device: f.device.trim() } : {}),
      },
      condition,
    };
    try {
      await api.request('POST', '/v1/alarm-rules', { body });
      setCreated(m('rules.created', { name: f.name }));
      setF((old) => ({ ...old, name: '', metric: '', value: '', clearValue: '' }));
      onCreated();
    } catch (err) {
      setError(asApiError(err, '/v1/alarm-rules'));
    } finally {
      setBusy(false);
    }
  };

  return (
    <section class="panel" aria-labelledby="rule-form-title">
      <h2 id="rule-form-title">{m('rules.new')}</h2>
      <form class="rule-form" onSubmit={submit} noValidate data-testid="rule-form">
        <label>
          <span>{m('rules.name')}</span>
          <input name="name" value={f.name} onInput={set('name')} aria-invalid={invalid('/name')} />
          {fieldError('name', '/name')}
        </label>
        <label>
          <span>{m('rules.severity')}</span>
          <select name="severity" value={f.severity} onChange={set('severity')}>
            {SEVERITIES.map((v) => (
              <option key={v} value={v}>
                {m(`severity.${v}`)}
              </option>
            ))}
          </select>
        </label>
        <label>
          <span>{m('rules.agency')}</span>
          {/* Operators write rules of their own agency only (the hub checks it too). */}
          <input
            name="agency"
            value={f.agency}
            placeholder={m('rules.platform')}
            readOnly={!isAdmin}
            onInput={set('agency')}
            aria-invalid={invalid('/agencyId')}
          />
          {fieldError('agency', '/agencyId')}
        </label>
        <label>
          <span>{m('rules.metric')}</span>
          <input
            name="metric"
            value={f.metric}
            placeholder={m('rules.metricPlaceholder')}
            onInput={set('metric')}
            aria-invalid={invalid('/scope/metric')}
          />
          {fieldError('metric', '/scope/metric')}
        </label>
        <label>
          <span>{m('rules.device')}</span>
          <input
            name="device"
            value={f.device}
            onInput={set('device')}
            aria-invalid={invalid('/scope/device')}
          />
          {fieldError('device', '/scope/device')}
        </label>
        <label class="wide">
          <span>{m('rules.nodes')}</span>
          <input name="nodes" value={f.nodes} onInput={set('nodes')} aria-invalid={invalid('/scope/nodes')} />
          {fieldError('nodes', '/scope/nodes')}
        </label>
        <label>
          <span>{m('rules.kind')}</span>
          <select name="kind" value={f.kind} onChange={set('kind')}>
            {KINDS.map((k) => (
              <option key={k} value={k}>
                {m(`kind.${k}`)}
              </option>
            ))}
          </select>
        </label>
        {f.kind === 'threshold' || f.kind === 'duration' ? (
          <>
            <label>
              <span>{m('rules.op')}</span>
              <select name="op" value={f.op} onChange={set('op')}>
                {OPS.map((o) => (
                  <option key={o} value={o}>
                    {o}
                  </option>
                ))}
              </select>
            </label>
            <label>
              <span>{m('rules.value')}</span>
              <input
                name="value"
                inputMode="decimal"
                value={f.value}
                onInput={set('value')}
                aria-invalid={
                  invalid('/condition/value') ??
                  (problems.some((p) => p.path === '/condition') ? 'true' : undefined)
                }
              />
              {fieldError('value', '/condition/value')}
            </label>
          </>
        ) : null}
        {f.kind === 'threshold' ? (
          <label>
            <span>{m('rules.clearValue')}</span>
            <input
              name="clearValue"
              inputMode="decimal"
              value={f.clearValue}
              onInput={set('clearValue')}
              aria-invalid={invalid('/condition/clearValue')}
            />
            {fieldError('clearValue', '/condition/clearValue')}
          </label>
        ) : null}
        {f.kind === 'duration' || f.kind === 'absence' ? (
          <label>
            <span>{m('rules.forS')}</span>
            <input
              name="forS"
              inputMode="numeric"
              value={f.forS}
              onInput={set('forS')}
              aria-invalid={invalid('/condition/forS')}
            />
            {fieldError('forS', '/condition/forS')}
          </label>
        ) : null}
        {f.kind === 'rate-of-change' ? (
          <>
            <label>
              <span>{m('rules.delta')}</span>
              <input
                name="delta"
                value={f.delta}
                onInput={set('delta')}
                aria-invalid={invalid('/condition/delta')}
              />
              {fieldError('delta', '/condition/delta')}
            </label>
            <label>
              <span>{m('rules.windowS')}</span>
              <input
                name="windowS"
                value={f.windowS}
                onInput={set('windowS')}
                aria-invalid={invalid('/condition/windowS')}
              />
              {fieldError('windowS', '/condition/windowS')}
            </label>
          </>
        ) : null}
        <div class="form-end">
          <button type="submit" class="btn btn-primary" disabled={busy}>
            {m('rules.create')}
          </button>
        </div>
      </form>
      {error && problems.length > 0 ? (
        <div class="state state-error compact" role="alert" data-code={error.code}>
          <p class="error-title">{m('rules.problems', { code: error.code })}</p>
          <ul class="problem-list">
            {problems.map((p) => (
              <li key={`${p.path}-${p.message}`}>
                <code>{p.path || '/'}</code> {p.message}
              </li>
            ))}
          </ul>
        </div>
      ) : error ? (
        <ErrorPanel error={error} compact />
      ) : null}
      {created ? (
        <p class="notice-ok" role="status">
          {created}
        </p>
      ) : null}
    </section>
  );
}
