/**
 * Ledger chain verification (`GET /v1/ledger/verify`): every hash and signature of the
 * filing chain, and the device table against it; shows "chain intact" or the first
 * broken link and every problem.
 */
import { useState } from 'preact/hooks';
import { type ApiError, api, asApiError } from '../../api.ts';
import { ErrorPanel } from '../../components/states.tsx';
import { formatNumber, formatTime } from '../../i18n.ts';
import { m } from './messages.ts';

interface Broken {
  seq: number;
  reason: string;
  deviceCode?: string;
  message: string;
}

interface Verification {
  ok: boolean;
  entries: number;
  devices: number;
  head: { seq: number; hash: string };
  firstBroken: Broken | null;
  problems: Broken[];
  ms: number;
}

export function LedgerTab() {
  const [result, setResult] = useState<{ v: Verification; at: string } | null>(null);
  const [error, setError] = useState<ApiError | null>(null);
  const [busy, setBusy] = useState(false);
  const verify = async () => {
    setBusy(true);
    setError(null);
    try {
      setResult({
        v: await api.request<Verification>('GET', '/v1/ledger/verify'),
        at: new Date().toISOString(),
      });
    } catch (e) {
      setError(asApiError(e, '/v1/ledger/verify'));
    } finally {
      setBusy(false);
    }
  };
  return (
    <section class="panel" aria-labelledby="ledger-title">
      <div class="panel-head">
        <h2 id="ledger-title">{m('tab.ledger')}</h2>
        <button
          type="button"
          class="btn btn-primary"
          disabled={busy}
          onClick={verify}
          data-testid="verify-ledger"
        >
          {m('ledger.verify')}
        </button>
      </div>
      <p class="muted">{m('ledger.hint')}</p>
      {busy ? (
        <p class="op-progress" role="status">
          <span class="spinner" aria-hidden="true" /> {m('ledger.running')}
        </p>
      ) : null}
      {error ? <ErrorPanel error={error} onRetry={verify} compact /> : null}
      {result ? (
        <div
          class={`verify-result ${result.v.ok ? 'is-ok' : 'is-bad'}`}
          data-testid="ledger-result"
          role="status"
        >
          <p class="verify-verdict">
            <span aria-hidden="true">{result.v.ok ? '✓' : '✗'}</span>{' '}
            {result.v.ok ? m('ledger.intact') : m('ledger.broken')}
          </p>
          <dl class="node-facts">
            <dt>{m('ledger.entries')}</dt>
            <dd>{formatNumber(result.v.entries)}</dd>
            <dt>{m('ledger.devices')}</dt>
            <dd>{formatNumber(result.v.devices)}</dd>
            <dt>{m('ledger.ms')}</dt>
            <dd>{result.v.ms} ms</dd>
            <dt>{m('ledger.head')}</dt>
            <dd>
              #{result.v.head.seq} <code class="hash">{result.v.head.hash.slice(0, 16)}…</code>
            </dd>
          </dl>
          <p class="muted small">{m('ledger.at', { at: formatTime(result.at) })}</p>
          {result.v.firstBroken ? (
            <>
              <h3>{m('ledger.firstBroken')}</h3>
              <ul class="problem-list">
                {result.v.problems.map((p) => (
                  <li key={`${p.seq}-${p.reason}-${p.deviceCode ?? ''}`}>
                    #{p.seq} <code>{p.reason}</code> {p.deviceCode ? <code>{p.deviceCode}</code> : null}{' '}
                    {p.message}
                  </li>
                ))}
              </ul>
            </>
          ) : null}
        </div>
      ) : null}
    </section>
  );
}
