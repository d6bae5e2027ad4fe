/**
 * One node (`#/fleet/<nodeId>`): facts, health charts from the continuous aggregate,
 * what it runs, and the remote operations a field engineer uses on site: the doctor
 * report, the log tail (follow with the cursor), a driver restart (confirmed first),
 * and a replacement token for a new box.
 */
import { useEffect, useRef, useState } from 'preact/hooks';
import { api, asApiError } from '../../api.ts';
import { ErrorPanel, Loading } from '../../components/states.tsx';
import { useResource } from '../../components/use-resource.ts';
import { formatNumber, formatTime } from '../../i18n.ts';
import { LineChart } from './charts.tsx';
import { m } from './messages.ts';
import {
  bucketFor,
  type DoctorReport,
  type FleetNode,
  type LogLine,
  type LogTail,
  loadHealth,
  type NodeInference,
  nodePath,
  type OperationView,
  operationError,
  runOperation,
  series,
} from './model.ts';
import { StatusPill } from './status.tsx';
import { type CreatedToken, TokenCard } from './token.tsx';

const RANGES = [1, 6, 24] as const;
const FOLLOW_S = 3;

/** The node page. */
export default function NodePage({ nodeId }: { nodeId: string }) {
  const node = useResource((signal) => api.request<FleetNode>('GET', nodePath(nodeId), { signal }), [nodeId]);
  const [hours, setHours] = useState<(typeof RANGES)[number]>(1);
  const health = useResource((signal) => loadHealth(api, nodeId, hours, signal), [nodeId, hours]);
  const inference = useResource(
    (signal) => api.request<NodeInference>('GET', nodePath(nodeId, '/inference'), { signal }),
    [nodeId],
  );
  const [driverIds, setDriverIds] = useState<string[]>([]);

  if (node.error)
    return (
      <section class="fleet-page">
        <a href="#/fleet" class="back-link">
          {m('back')}
        </a>
        <ErrorPanel error={node.error} onRetry={node.reload} />
      </section>
    );
  if (!node.data) return <Loading />;
  const n = node.data;
  const known = [...new Set([...driverIds, ...n.devices.map((d) => d.id)])];
  const rows = health.data ?? [];
  const range: [number, number] = [Date.now() - hours * 3600_000, Date.now()];
  const caption = (title: string) => (last: string, max: string, points: number) =>
    m('chart.caption', { title, last, max, points });

  return (
    <section class="fleet-page node-page" aria-labelledby="node-title">
      <a href="#/fleet" class="back-link">
        {m('back')}
      </a>
      <header class="fleet-head">
        <div>
          <h1 id="node-title">
            {n.name ?? n.id} <StatusPill status={n.status} />
          </h1>
          {n.name && n.name !== n.id ? <p class="muted node-id">{n.id}</p> : null}
        </div>
        <dl class="node-facts">
          <dt>{m('node.agency')}</dt>
          <dd>{n.agencyId ?? m('noAgency')}</dd>
          <dt>{m('node.agent')}</dt>
          <dd>{n.agentVersion ?? '—'}</dd>
          <dt>{m('node.lastSeen')}</dt>
          <dd>{n.lastSeen ? formatTime(n.lastSeen) : '—'}</dd>
          <dt>{m('node.enrolled')}</dt>
          <dd>{formatTime(n.enrolledAt)}</dd>
          <dt>{m('node.position')}</dt>
          <dd>{n.location ? `${n.location.lon.toFixed(6)}, ${n.location.lat.toFixed(6)}` : '—'}</dd>
          {n.poleId ? (
            <>
              <dt>{m('node.pole')}</dt>
              <dd>{n.poleId}</dd>
            </>
          ) : null}
        </dl>
      </header>

      <section class="panel" aria-labelledby="health-title">
        <div class="panel-head">
          <h2 id="health-title">{m('health', { bucket: bucketFor(hours) })}</h2>
          <fieldset class="segmented">
            <legend class="sr-only">{m('range.label')}</legend>
            {RANGES.map((h) => (
              <label key={h} class="chip">
                <input type="radio" name="range" checked={hours === h} onChange={() => setHours(h)} />
                {m(`range.${h}h`)}
              </label>
            ))}
          </fieldset>
        </div>
        {health.error ? (
          <ErrorPanel error={health.error} onRetry={health.reload} compact />
        ) : !health.data ? (
          <Loading />
        ) : (
          <div class="charts" data-testid="health-charts">
            <LineChart
              range={range}
              title={m('chart.cpu')}
              points={series(rows, 'cpuPercent')}
              fixedMax={100}
              emptyText={m('chart.empty')}
              captionText={caption(m('chart.cpu'))}
            />
            <LineChart
              range={range}
              title={m('chart.memory')}
              points={series(rows, 'memoryPercent')}
              fixedMax={100}
              emptyText={m('chart.empty')}
              captionText={caption(m('chart.memory'))}
            />
            <LineChart
              range={range}
              title={m('chart.spool')}
              points={series(rows, 'spoolRecords')}
              emptyText={m('chart.empty')}
              captionText={caption(m('chart.spool'))}
            />
            <LineChart
              range={range}
              title={m('chart.rtt')}
              points={series(rows, 'linkRttMs')}
              emptyText={m('chart.empty')}
              captionText={caption(m('chart.rtt'))}
            />
          </div>
        )}
      </section>

      <div class="node-grid">
        <DoctorPanel
          nodeId={n.id}
          onDrivers={(ids) => setDriverIds((old) => [...new Set([...old, ...ids])])}
        />
        <section class="panel" aria-labelledby="models-title">
          <h2 id="models-title">{m('models')}</h2>
          {inference.error ? (
            <ErrorPanel error={inference.error} onRetry={inference.reload} compact />
          ) : !inference.data ? (
            <Loading />
          ) : inference.data.algorithms.length === 0 ? (
            <p class="muted">{m('noModels')}</p>
          ) : (
            <table class="data-table compact-table">
              <thead>
                <tr>
                  <th scope="col">{m('models.algorithm')}</th>
                  <th scope="col">{m('models.version')}</th>
                  <th scope="col">{m('models.active')}</th>
                  <th scope="col">{m('models.state')}</th>
                  <th scope="col" class="num">
                    {m('models.fps')}
                  </th>
                </tr>
              </thead>
              <tbody>
                {inference.data.algorithms.map((a) => (
                  <tr key={a.algorithmId}>
                    <td>
                      <code>{a.algorithmId}</code>
                    </td>
                    <td>{a.version}</td>
                    <td>{a.activeVersion ?? '—'}</td>
                    <td>{a.state}</td>
                    <td class="num">{a.stats?.fps === undefined ? '—' : formatNumber(a.stats.fps, 1)}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          )}
        </section>
      </div>

      <LogPanel nodeId={n.id} />

      <div class="node-grid">
        <DriverPanel nodeId={n.id} known={known} />
        <ReplacePanel nodeId={n.id} />
      </div>
    </section>
  );
}

/** Progress line of a running operation. */
function OpProgress({ op }: { op: OperationView | null }) {
  if (!op || (op.state !== 'pending' && op.state !== 'running')) return null;
  return (
    <p class="op-progress" role="status">
      <span class="spinner" aria-hidden="true" /> {m(op.state === 'pending' ? 'op.pending' : 'op.running')}
    </p>
  );
}

/** Runs an operation with progress and error state; aborts when the page goes away. */
function useOperation(nodeId: string) {
  const [op, setOp] = useState<OperationView | null>(null);
  const [error, setError] = useState<unknown>(null);
  const abort = useRef<AbortController | null>(null);
  useEffect(() => () => abort.current?.abort(), []);
  const run = async (kind: string, params: unknown): Promise<OperationView | null> => {
    abort.current?.abort();
    const a = new AbortController();
    abort.current = a;
    setError(null);
    try {
      const done = await runOperation(api, nodeId, kind, params, setOp, a.signal);
      const failure = operationError(done);
      if (failure) setError(failure);
      return failure ? null : done;
    } catch (e) {
      if (!a.signal.aborted) setError(asApiError(e, nodePath(nodeId, '/operations')));
      return null;
    }
  };
  const busy = op !== null && (op.state === 'pending' || op.state === 'running');
  return { op, error, busy, run };
}

function DoctorPanel({ nodeId, onDrivers }: { nodeId: string; onDrivers: (ids: string[]) => void }) {
  const { op, error, busy, run } = useOperation(nodeId);
  const [report, setReport] = useState<DoctorReport | null>(null);
  const doctor = async () => {
    const done = await run('doctor', { timeoutMs: 5000 });
    if (!done) return;
    const r = done.result as DoctorReport;
    setReport(r);
    onDrivers(r.checks.filter((c) => c.name.startsWith('driver:')).map((c) => c.name.slice(7)));
  };
  return (
    <section class="panel" aria-labelledby="doctor-title">
      <div class="panel-head">
        <h2 id="doctor-title">{m('doctor')}</h2>
        <button
          type="button"
          class="btn btn-primary"
          disabled={busy}
          onClick={doctor}
          data-testid="run-doctor"
        >
          {report ? m('doctor.rerun') : m('doctor.run')}
        </button>
      </div>
      {!report && !busy && !error ? <p class="muted">{m('doctor.hint')}</p> : null}
      <OpProgress op={op} />
      {error ? <ErrorPanel error={error} compact /> : null}
      {report ? (
        <div data-testid="doctor-report">
          <p class={`doctor-verdict ${report.healthy ? 'is-ok' : 'is-bad'}`}>
            {report.healthy ? m('doctor.healthy') : m('doctor.unhealthy')}{' '}
            <span class="muted">{m('doctor.at', { at: formatTime(report.at) })}</span>
          </p>
          <ul class="doctor-checks">
            {report.checks.map((c) => (
              <li key={c.name} data-verdict={c.verdict}>
                <span class={`verdict verdict-${c.verdict}`}>{m(`verdict.${c.verdict}`)}</span>
                <code class="check-name">{c.name}</code>
                <span class="check-detail">{c.detail}</span>
              </li>
            ))}
          </ul>
        </div>
      ) : null}
    </section>
  );
}

const LEVELS = ['trace', 'debug', 'info', 'warn', 'error'] as const;

function LogPanel({ nodeId }: { nodeId: string }) {
  const { op, error, busy, run } = useOperation(nodeId);
  const [lines, setLines] = useState<LogLine[] | null>(null);
  const [gap, setGap] = useState(false);
  const [level, setLevel] = useState<(typeof LEVELS)[number]>('info');
  const [count, setCount] = useState(100);
  const [follow, setFollow] = useState(false);
  const cursor = useRef<number | null>(null);
  const box = useRef<HTMLOListElement>(null);

  const fetchTail = async (since: number | null) => {
    const done = await run('log-tail', {
      lines: count,
      level,
      ...(since === null ? {} : { since }),
    });
    if (!done) return false;
    const tail = done.result as LogTail;
    cursor.current = tail.next;
    setGap(tail.gap);
    // Keep the last 1000 lines on screen while following.
    setLines((old) => (since === null ? tail.lines : [...(old ?? []), ...tail.lines].slice(-1000)));
    return true;
  };

  // Follow: ask for what came after the cursor, one request at a time.
  useEffect(() => {
    if (!follow) return;
    let stopped = false;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const tick = async () => {
      const ok = await fetchTail(cursor.current);
      if (!stopped && ok) timer = setTimeout(tick, FOLLOW_S * 1000);
      else if (!ok) setFollow(false);
    };
    void tick();
    return () => {
      stopped = true;
      clearTimeout(timer);
    };
  }, [follow]);

  useEffect(() => {
    const el = box.current;
    if (el) el.scrollTop = el.scrollHeight;
  }, [lines]);

  return (
    <section class="panel" aria-labelledby="log-title">
      <div class="panel-head">
        <h2 id="log-title">{m('logs')}</h2>
        <form
          class="inline-form"
          onSubmit={(e) => {
            e.preventDefault();
            cursor.current = null;
            void fetchTail(null);
          }}
        >
          <label>
            <span>{m('logs.level')}</span>
            <select
              name="logLevel"
              value={level}
              onChange={(e) => setLevel(e.currentTarget.value as (typeof LEVELS)[number])}
            >
              {LEVELS.map((l) => (
                <option key={l} value={l}>
                  {l}
                </option>
              ))}
            </select>
          </label>
          <label>
            <span>{m('logs.lines')}</span>
            <input
              name="logLines"
              type="number"
              min={1}
              max={1000}
              value={count}
              onInput={(e) => setCount(Math.min(1000, Math.max(1, Number(e.currentTarget.value) || 100)))}
            />
          </label>
          <label class="chip">
            <input
              type="checkbox"
              name="follow"
              checked={follow}
              onChange={(e) => setFollow(e.currentTarget.checked)}
            />
            {m('logs.follow')}
          </label>
          <button type="submit" class="btn btn-primary" disabled={busy} data-testid="fetch-log">
            {m('logs.fetch')}
          </button>
        </form>
      </div>
      {follow ? (
        <p class="muted" role="status">
          {m('logs.following', { s: FOLLOW_S })}
        </p>
      ) : (
        <OpProgress op={op} />
      )}
      {error ? <ErrorPanel error={error} compact /> : null}
      {gap ? <p class="notice">{m('logs.gap')}</p> : null}
      {lines === null ? (
        <p class="muted">{m('logs.empty')}</p>
      ) : (
        <ol class="log-lines" ref={box} aria-label={m('logs.caption')} data-testid="log-lines">
          {lines.map((l) => (
            <li key={l.seq} class={`log-${l.level}`}>
              <time>{new Date(l.time).toLocaleTimeString()}</time>
              <span class="log-level">{l.level}</span>
              {l.component ? <span class="log-component">{l.component}</span> : null}
              <span class="log-msg">{l.msg}</span>
            </li>
          ))}
        </ol>
      )}
    </section>
  );
}

function DriverPanel({ nodeId, known }: { nodeId: string; known: string[] }) {
  const { op, error, busy, run } = useOperation(nodeId);
  const [driverId, setDriverId] = useState('');
  const [confirming, setConfirming] = useState(false);
  const [done, setDone] = useState<{ driverId: string; state: string; restarts: number } | null>(null);
  const id = driverId.trim() || known[0] || '';
  const restart = async () => {
    setConfirming(false);
    setDone(null);
    const finished = await run('driver-restart', { driverId: id });
    if (finished) setDone(finished.result as { driverId: string; state: string; restarts: number });
  };
  return (
    <section class="panel" aria-labelledby="driver-title">
      <h2 id="driver-title">{m('drivers')}</h2>
      <p class="muted">{m('drivers.hint')}</p>
      <form
        class="inline-form"
        onSubmit={(e) => {
          e.preventDefault();
          if (id) setConfirming(true);
        }}
      >
        <label>
          <span>{m('drivers.id')}</span>
          <input
            name="driverId"
            list="driver-ids"
            value={driverId}
            placeholder={known[0] ?? ''}
            onInput={(e) => setDriverId(e.currentTarget.value)}
          />
          <datalist id="driver-ids">
            {known.map((d) => (
              <option key={d} value={d} />
            ))}
          </datalist>
        </label>
        <button type="submit" class="btn" disabled={busy || !id} data-testid="restart-driver">
          {m('drivers.restart')}
        </button>
      </form>
      {confirming ? (
        <div class="confirm" role="alertdialog" aria-labelledby="driver-confirm">
          <p id="driver-confirm">{m('drivers.confirm', { id })}</p>
          <button type="button" class="btn btn-danger" onClick={restart} data-testid="confirm-restart">
            {m('drivers.yes')}
          </button>
          <button type="button" class="btn" onClick={() => setConfirming(false)}>
            {m('drivers.cancel')}
          </button>
        </div>
      ) : null}
      <OpProgress op={op} />
      {error ? <ErrorPanel error={error} compact /> : null}
      {done ? (
        <p class="notice-ok" role="status" data-testid="driver-restarted">
          {m('drivers.done', { id: done.driverId, state: done.state, n: done.restarts })}
        </p>
      ) : null}
    </section>
  );
}

function ReplacePanel({ nodeId }: { nodeId: string }) {
  const [confirming, setConfirming] = useState(false);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>(null);
  const [created, setCreated] = useState<CreatedToken | null>(null);
  const create = async () => {
    setConfirming(false);
    setBusy(true);
    setError(null);
    try {
      setCreated(
        await api.request<CreatedToken>('POST', nodePath(nodeId, '/replacement-tokens'), {
          body: { ttl: '24h' },
        }),
      );
    } catch (e) {
      setError(asApiError(e, nodePath(nodeId, '/replacement-tokens')));
    } finally {
      setBusy(false);
    }
  };
  return (
    <section class="panel" aria-labelledby="replace-title">
      <h2 id="replace-title">{m('replace')}</h2>
      <p class="muted">{m('replace.hint')}</p>
      {confirming ? (
        <div class="confirm" role="alertdialog" aria-labelledby="replace-confirm">
          <p id="replace-confirm">{m('replace.confirm', { id: nodeId })}</p>
          <button type="button" class="btn btn-danger" onClick={create}>
            {m('replace.yes')}
          </button>
          <button type="button" class="btn" onClick={() => setConfirming(false)}>
            {m('drivers.cancel')}
          </button>
        </div>
      ) : (
        <button type="button" class="btn" disabled={busy} onClick={() => setConfirming(true)}>
          {m('replace.create')}
        </button>
      )}
      {error ? <ErrorPanel error={error} compact /> : null}
      {created ? <TokenCard created={created} /> : null}
    </section>
  );
}
