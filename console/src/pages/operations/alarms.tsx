/**
 * Tiered alarms (`GET /v1/alarms`): most severe first, live through the `alarm` event
 * of the console feed; acknowledge with a comment (`POST …/ack`) and clear by hand
 * (`POST …/clear`). A 409 (CS_ERR_ALARM_STATE: someone else was faster) shows with its
 * code and the list reloads.
 */
import { useEffect, useState } from 'preact/hooks';
import { api, asApiError } from '../../api.ts';
import { type Column, DataTable } from '../../components/data-table.tsx';
import { ErrorPanel } from '../../components/states.tsx';
import { useResource } from '../../components/use-resource.ts';
import { formatTime } from '../../i18n.ts';
import { onLiveEvent } from '../../live.ts';
import { m } from './messages.ts';

/** An alarm as `GET /v1/alarms` lists it. */
export interface Alarm {
  id: string;
  ruleId: string;
  ruleName: string;
  node: string;
  device: string;
  metric: string;
  severity: 'critical' | 'major' | 'minor' | 'warning';
  agencyId: string | null;
  state: 'active' | 'acknowledged' | 'cleared';
  message: string | null;
  count: number;
  lastValue: number | null;
  raisedAt: string;
  lastAt: string;
  acknowledgedAt: string | null;
  acknowledgedBy: string | null;
  ackComment: string | null;
  clearedAt: string | null;
  clearReason: string | null;
}

const REASONS = ['condition', 'manual', 'rule-deleted', 'rule-disabled', 'rule-changed'] as const;

/** Why an alarm cleared, in words (unknown reasons as the hub sent them). */
function clearReason(reason: string | null): string {
  const known = REASONS.find((r) => r === reason);
  return known ? m(`reason.${known}`) : (reason ?? '');
}

/** Severity badge. */
export function Severity({ level }: { level: Alarm['severity'] }) {
  return <span class={`sev sev-${level}`}>{m(`severity.${level}`)}</span>;
}

export function AlarmsTab() {
  const [filter, setFilter] = useState<'open' | 'all'>('open');
  const alarms = useResource(
    (signal) =>
      api.request<Alarm[]>('GET', `/v1/alarms?limit=500${filter === 'open' ? '&state=open' : ''}`, {
        signal,
      }),
    [filter],
  );
  const [acting, setActing] = useState<{ alarm: Alarm; verb: 'ack' | 'clear' } | null>(null);
  const [live, setLive] = useState<string | null>(null);

  // Raised and cleared alarms arrive over the live feed: reload the list then.
  useEffect(
    () =>
      onLiveEvent((e) => {
        if (e.event !== 'alarm') return;
        const d = e.data as { ruleName?: string; node?: string; change?: string };
        if (d.change === 'raised') setLive(m('alarms.live', { rule: d.ruleName ?? '', node: d.node ?? '' }));
        alarms.reload();
      }),
    [alarms.reload],
  );

  const columns: Column<Alarm>[] = [
    {
      id: 'severity',
      header: m('col.severity'),
      sort: (a) => ['critical', 'major', 'minor', 'warning'].indexOf(a.severity),
      cell: (a) => <Severity level={a.severity} />,
    },
    {
      id: 'state',
      header: m('col.state'),
      sort: (a) => a.state,
      cell: (a) => (
        <span class={`alarm-state state-${a.state}`} data-state={a.state}>
          {m(`state.${a.state}`)}
        </span>
      ),
    },
    {
      id: 'rule',
      header: m('col.rule'),
      sort: (a) => a.ruleName,
      cell: (a) => (
        <div>
          <strong>{a.ruleName}</strong>
          {a.message ? <div class="muted">{a.message}</div> : null}
          {a.acknowledgedAt ? (
            <div class="muted small">
              {m('alarm.ackBy', {
                who: a.acknowledgedBy ?? '—',
                at: formatTime(a.acknowledgedAt),
                comment: a.ackComment ?? '',
              })}
            </div>
          ) : null}
          {a.clearedAt ? (
            <div class="muted small">
              {m('alarm.clearedBy', { at: formatTime(a.clearedAt), reason: clearReason(a.clearReason) })}
            </div>
          ) : null}
        </div>
      ),
    },
    {
      id: 'node',
      header: m('col.node'),
      sort: (a) => a.node,
      cell: (a) => (
        <span>
          {a.node}
          {a.device ? <span class="muted"> / {a.device}</span> : null}
        </span>
      ),
    },
    { id: 'metric', header: m('col.metric'), cell: (a) => <code>{a.metric}</code> },
    {
      id: 'value',
      header: m('col.value'),
      align: 'end',
      cell: (a) => (a.lastValue === null ? '—' : String(a.lastValue)),
    },
    { id: 'count', header: m('col.count'), align: 'end', sort: (a) => a.count, cell: (a) => a.count },
    { id: 'raised', header: m('col.raised'), sort: (a) => a.raisedAt, cell: (a) => formatTime(a.raisedAt) },
    {
      id: 'actions',
      header: m('col.actions'),
      cell: (a) =>
        a.state === 'cleared' ? null : (
          <div class="row-actions">
            {a.state === 'active' ? (
              <button
                type="button"
                class="btn"
                data-action="ack"
                onClick={(e) => {
                  e.stopPropagation();
                  setActing({ alarm: a, verb: 'ack' });
                }}
              >
                {m('alarm.ack')}
              </button>
            ) : null}
            <button
              type="button"
              class="btn"
              data-action="clear"
              onClick={(e) => {
                e.stopPropagation();
                setActing({ alarm: a, verb: 'clear' });
              }}
            >
              {m('alarm.clear')}
            </button>
          </div>
        ),
    },
  ];

  return (
    <section class="panel" aria-labelledby="alarms-title">
      <div class="panel-head">
        <h2 id="alarms-title">{m('tab.alarms')}</h2>
        <div class="inline-form">
          <label>
            <span>{m('alarms.filter')}</span>
            <select
              name="alarmState"
              value={filter}
              onChange={(e) => setFilter(e.currentTarget.value as 'open' | 'all')}
            >
              <option value="open">{m('alarms.open')}</option>
              <option value="all">{m('alarms.all')}</option>
            </select>
          </label>
          <button type="button" class="btn" onClick={alarms.reload}>
            {m('refresh')}
          </button>
        </div>
      </div>
      {live ? (
        <p class="notice" role="status" aria-live="polite">
          {live}
        </p>
      ) : null}
      {acting ? (
        <AlarmAction
          key={`${acting.alarm.id}-${acting.verb}`}
          alarm={acting.alarm}
          verb={acting.verb}
          onDone={() => {
            setActing(null);
            alarms.reload();
          }}
          onCancel={() => setActing(null)}
        />
      ) : null}
      <DataTable
        caption={m('alarms.caption')}
        columns={columns}
        rows={alarms.data}
        rowKey={(a) => a.id}
        loading={alarms.loading}
        error={alarms.error}
        onRetry={alarms.reload}
        empty={<p class="muted">{m('alarms.empty')}</p>}
      />
    </section>
  );
}

function AlarmAction({
  alarm,
  verb,
  onDone,
  onCancel,
}: {
  alarm: Alarm;
  verb: 'ack' | 'clear';
  onDone: () => void;
  onCancel: () => void;
}) {
  const [comment, setComment] = useState('');
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>(null);
  const path = `/v1/alarms/${encodeURIComponent(alarm.id)}/${verb}`;
  return (
    <form
      class="confirm alarm-action"
      aria-label={verb === 'ack' ? m('alarm.submitAck') : m('alarm.submitClear')}
      onSubmit={async (e) => {
        e.preventDefault();
        setBusy(true);
        setError(null);
        try {
          await api.request('POST', path, { body: comment.trim() ? { comment: comment.trim() } : {} });
          onDone();
        } catch (err) {
          setError(asApiError(err, path));
        } finally {
          setBusy(false);
        }
      }}
    >
      <p>
        <Severity level={alarm.severity} /> <strong>{alarm.ruleName}</strong> · {alarm.node}
      </p>
      <label class="grow">
        <span class="sr-only">{m('alarm.comment')}</span>
        <input
          name="comment"
          value={comment}
          maxLength={2000}
          placeholder={m('alarm.commentPlaceholder')}
          aria-label={m('alarm.comment')}
          onInput={(e) => setComment(e.currentTarget.value)}
          // biome-ignore lint/a11y/noAutofocus: the form opens on the user's click; typing the comment is next.
          autoFocus
        />
      </label>
      <button type="submit" class="btn btn-primary" disabled={busy} data-testid="alarm-submit">
        {verb === 'ack' ? m('alarm.submitAck') : m('alarm.submitClear')}
      </button>
      <button type="button" class="btn" onClick={onCancel}>
        {m('alarm.cancel')}
      </button>
      {error ? <ErrorPanel error={error} compact /> : null}
    </form>
  );
}
