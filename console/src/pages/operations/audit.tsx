/**
 * Audit log search (`GET /v1/audit`): by actor, action (exact or `prefix*`) and time
 * (local time in the form, ISO 8601 to the hub), paged with `after=<next>`. Platform
 * admins see everything; agency people the entries of their own agency.
 */
import { useState } from 'preact/hooks';
import { type ApiError, api, asApiError } from '../../api.ts';
import { type Column, DataTable } from '../../components/data-table.tsx';
import { formatTime } from '../../i18n.ts';
import { m } from './messages.ts';

interface AuditEntry {
  id: number;
  at: string;
  actor: { kind: string; id: string | null; username: string | null; agencyId: string | null };
  action: string;
  targetType: string | null;
  targetId: string | null;
  after: unknown;
  outcome: 'success' | 'failure' | 'refused';
  reason: string | null;
}

interface AuditPage {
  entries: AuditEntry[];
  next: number | null;
}

/** `datetime-local` value (local time) → ISO 8601, or undefined. */
function isoOf(local: string): string | undefined {
  if (!local) return undefined;
  const d = new Date(local);
  return Number.isNaN(d.getTime()) ? undefined : d.toISOString();
}

function detailOf(e: AuditEntry): string {
  const after = e.after as { path?: string; message?: string } | null;
  if (after && typeof after === 'object' && typeof after.path === 'string') return after.path;
  return e.reason ?? '';
}

export function AuditTab() {
  const [q, setQ] = useState({ actor: '', action: '', since: '', until: '' });
  const [rows, setRows] = useState<AuditEntry[] | undefined>(undefined);
  const [next, setNext] = useState<number | null>(null);
  const [error, setError] = useState<ApiError | undefined>(undefined);
  const [loading, setLoading] = useState(false);

  const search = async (after?: number) => {
    setLoading(true);
    setError(undefined);
    const params = new URLSearchParams({ limit: '200' });
    if (q.actor.trim()) params.set('actor', q.actor.trim());
    if (q.action.trim()) params.set('action', q.action.trim());
    const since = isoOf(q.since);
    const until = isoOf(q.until);
    if (since) params.set('since', since);
    if (until) params.set('until', until);
    if (after !== undefined) params.set('after', String(after));
    const path = `/v1/audit?${params}`;
    try {
      const page = await api.request<AuditPage>('GET', path);
      setRows((old) => (after === undefined ? page.entries : [...(old ?? []), ...page.entries]));
      setNext(page.next);
    } catch (e) {
      setError(asApiError(e, path));
    } finally {
      setLoading(false);
    }
  };

  const set = (k: keyof typeof q) => (e: Event) =>
    setQ((old) => ({ ...old, [k]: (e.currentTarget as HTMLInputElement).value }));
  const columns: Column<AuditEntry>[] = [
    { id: 'at', header: m('audit.at'), sort: (e) => e.at, cell: (e) => formatTime(e.at) },
    {
      id: 'actor',
      header: m('audit.actor'),
      sort: (e) => e.actor.username ?? e.actor.kind,
      cell: (e) => (
        <span>
          {e.actor.username ?? e.actor.id ?? e.actor.kind}
          {e.actor.agencyId ? <span class="muted"> · {e.actor.agencyId}</span> : null}
        </span>
      ),
    },
    { id: 'action', header: m('audit.action'), sort: (e) => e.action, cell: (e) => <code>{e.action}</code> },
    { id: 'target', header: m('audit.target'), cell: (e) => e.targetId ?? '—' },
    {
      id: 'outcome',
      header: m('audit.outcome'),
      sort: (e) => e.outcome,
      cell: (e) => <span class={`outcome outcome-${e.outcome}`}>{m(`outcome.${e.outcome}`)}</span>,
    },
    { id: 'detail', header: m('audit.detail'), cell: (e) => <code class="small">{detailOf(e)}</code> },
  ];

  return (
    <section class="panel" aria-labelledby="audit-title">
      <h2 id="audit-title">{m('audit.caption')}</h2>
      <form
        class="inline-form audit-search"
        aria-label={m('audit.caption')}
        onSubmit={(e) => {
          e.preventDefault();
          void search();
        }}
      >
        <label>
          <span>{m('audit.actor')}</span>
          <input name="actor" value={q.actor} onInput={set('actor')} />
        </label>
        <label>
          <span>{m('audit.action')}</span>
          <input
            name="action"
            value={q.action}
            placeholder={m('audit.actionPlaceholder')}
            onInput={set('action')}
          />
        </label>
        <label>
          <span>{m('audit.since')}</span>
          <input name="since" type="datetime-local" value={q.since} onInput={set('since')} />
        </label>
        <label>
          <span>{m('audit.until')}</span>
          <input name="until" type="datetime-local" value={q.until} onInput={set('until')} />
        </label>
        <button type="submit" class="btn btn-primary" disabled={loading}>
          {m('audit.search')}
        </button>
      </form>
      {rows === undefined && !error && !loading ? null : (
        <DataTable
          caption={m('audit.caption')}
          columns={columns}
          rows={rows}
          rowKey={(e) => String(e.id)}
          loading={loading}
          error={error}
          onRetry={() => void search()}
          empty={<p class="muted">{m('audit.empty')}</p>}
        />
      )}
      {next !== null ? (
        <button type="button" class="btn" disabled={loading} onClick={() => void search(next)}>
          {m('audit.more')}
        </button>
      ) : null}
    </section>
  );
}
