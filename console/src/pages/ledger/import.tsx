/**
 * Bulk CSV import: the chosen file is split into parts of a few hundred rows, each sent
 * to `POST /v1/ledger/import?rowOffset=` (the same report a whole file gets, with file
 * line numbers), so the progress bar counts rows the hub has really filed.
 */
import { useMemo, useRef, useState } from 'preact/hooks';
import { type ApiError, asApiError } from '../../api.ts';
import { type Column, DataTable } from '../../components/data-table.tsx';
import { Field } from '../../components/form.tsx';
import { Panel } from '../../components/panel.tsx';
import { ErrorPanel } from '../../components/states.tsx';
import { m } from './messages.ts';
import { api } from './ui.tsx';

/** Rows per request: small enough for a smooth bar, large enough for batched filing. */
const PART_ROWS = 250;

interface RowError {
  row: number;
  column: string;
  code: string;
  message: string;
}

interface Report {
  rows: number;
  applied: number;
  failed: number;
  flagged: number;
  errors: RowError[];
  errorsTruncated: boolean;
}

/** One CSV record with the file line it starts on (RFC 4180: quoted fields may hold newlines). */
interface CsvRecord {
  line: number;
  text: string;
}

/** Splits CSV text into records without parsing fields (quotes respected). */
export function splitRecords(text: string): CsvRecord[] {
  const out: CsvRecord[] = [];
  let start = 0;
  let line = 1;
  let startLine = 1;
  let quoted = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (c === '"') quoted = !quoted;
    else if (c === '\n') {
      if (!quoted) {
        const rec = text.slice(start, i).replace(/\r$/, '');
        if (rec.trim() !== '') out.push({ line: startLine, text: rec });
        start = i + 1;
        startLine = line + 1;
      }
      line++;
    }
  }
  const last = text.slice(start).replace(/\r$/, '');
  if (last.trim() !== '') out.push({ line: startLine, text: last });
  return out;
}

type Phase =
  | { kind: 'idle' }
  | { kind: 'running'; done: number; total: number }
  | { kind: 'done' | 'stopped'; done: number; total: number };

/** The import panel. */
export function ImportPanel() {
  const [file, setFile] = useState<File | null>(null);
  const [phase, setPhase] = useState<Phase>({ kind: 'idle' });
  const [report, setReport] = useState<Report | null>(null);
  const [error, setError] = useState<ApiError | null>(null);
  const abort = useRef<AbortController | null>(null);

  const start = async () => {
    if (!file) return;
    setError(null);
    setReport(null);
    const ctl = new AbortController();
    abort.current = ctl;
    const records = splitRecords(await file.text());
    const [header, ...rows] = records;
    const total = rows.length;
    const sum: Report = { rows: 0, applied: 0, failed: 0, flagged: 0, errors: [], errorsTruncated: false };
    setReport({ ...sum });
    if (!header || total === 0) {
      setPhase({ kind: 'done', done: 0, total: 0 });
      return;
    }
    setPhase({ kind: 'running', done: 0, total });
    for (let i = 0; i < total; i += PART_ROWS) {
      if (ctl.signal.aborted) {
        setPhase({ kind: 'stopped', done: i, total });
        return;
      }
      const part = rows.slice(i, i + PART_ROWS);
      // The hub numbers the part's first data row 2 (header = 1); shift it to its file line.
      const rowOffset = (part[0]?.line ?? 2) - 2;
      try {
        const r = await api.request<Report>('POST', `/v1/ledger/import?rowOffset=${rowOffset}`, {
          raw: { contentType: 'text/csv', text: `${header.text}\n${part.map((p) => p.text).join('\n')}\n` },
          signal: ctl.signal,
        });
        sum.rows += r.rows;
        sum.applied += r.applied;
        sum.failed += r.failed;
        sum.flagged += r.flagged;
        sum.errors.push(...r.errors);
        sum.errorsTruncated ||= r.errorsTruncated;
        setReport({ ...sum, errors: [...sum.errors] });
        setPhase({ kind: 'running', done: Math.min(total, i + part.length), total });
      } catch (e) {
        if (ctl.signal.aborted) {
          setPhase({ kind: 'stopped', done: i, total });
          return;
        }
        setError(asApiError(e));
        setPhase({ kind: 'stopped', done: i, total });
        return;
      }
    }
    setPhase({ kind: 'done', done: total, total });
  };

  const columns = useMemo<Column<RowError>[]>(
    () => [
      { id: 'row', header: m('col.row'), cell: (e) => e.row, sort: (e) => e.row, align: 'end' },
      { id: 'column', header: m('col.column'), cell: (e) => <code>{e.column}</code>, sort: (e) => e.column },
      { id: 'code', header: m('col.errorCode'), cell: (e) => <code>{e.code}</code>, sort: (e) => e.code },
      { id: 'message', header: m('col.message'), cell: (e) => e.message },
    ],
    [],
  );
  const errorsCsv = useMemo(() => {
    if (!report || report.errors.length === 0) return null;
    const q = (s: string | number) => `"${String(s).replace(/"/g, '""')}"`;
    const body = [
      'row,column,code,message',
      ...report.errors.map((e) => [e.row, e.column, e.code, e.message].map(q).join(',')),
    ];
    return URL.createObjectURL(new Blob([`${body.join('\n')}\n`], { type: 'text/csv' }));
  }, [report]);
  const running = phase.kind === 'running';

  return (
    <Panel heading={m('imp.title')} headingId="imp-title">
      <p class="muted">{m('imp.help')}</p>
      <form
        class="filters"
        onSubmit={(e) => {
          e.preventDefault();
          void start();
        }}
      >
        <Field label={m('imp.file')}>
          <input
            type="file"
            name="csv"
            accept=".csv,text/csv"
            required
            onChange={(e) => setFile(e.currentTarget.files?.[0] ?? null)}
          />
        </Field>
        <button type="submit" class="btn btn-primary" disabled={!file || running}>
          {m('imp.start')}
        </button>
        {running ? (
          <button type="button" class="btn" onClick={() => abort.current?.abort()}>
            {m('imp.cancel')}
          </button>
        ) : null}
      </form>
      {phase.kind !== 'idle' ? (
        <div class="progress" style={{ marginTop: '1rem' }}>
          <progress
            max={Math.max(1, phase.total)}
            value={phase.done}
            aria-label={m('imp.progress', { done: phase.done, total: phase.total })}
          />
          <span data-testid="import-progress" aria-live="polite">
            {m('imp.progress', { done: phase.done, total: phase.total })}
          </span>
        </div>
      ) : null}
      {phase.kind === 'stopped' ? <p class="notice">{m('imp.stopped')}</p> : null}
      {error ? <ErrorPanel error={error} compact /> : null}
      {report && (phase.kind === 'done' || phase.kind === 'stopped') ? (
        <div data-testid="import-report" data-failed={report.failed} data-applied={report.applied}>
          {phase.total === 0 ? (
            <p class="notice">{m('imp.empty')}</p>
          ) : (
            <p class={report.failed ? 'warning' : 'success'}>
              {m('imp.summary', {
                rows: report.rows,
                applied: report.applied,
                failed: report.failed,
                flagged: report.flagged,
              })}
            </p>
          )}
          {report.errors.length ? (
            <>
              <h3>{m('imp.errors')}</h3>
              {report.errorsTruncated ? <p class="muted">{m('imp.truncated')}</p> : null}
              <DataTable
                caption={m('imp.errors')}
                columns={columns}
                rows={report.errors}
                rowKey={(e) => `${e.row}:${e.column}:${e.code}`}
              />
              {errorsCsv ? (
                <p>
                  <a class="btn" href={errorsCsv} download={`${file?.name ?? 'ledger'}.errors.csv`}>
                    {m('imp.download')}
                  </a>
                </p>
              ) : null}
            </>
          ) : phase.total > 0 ? (
            <p class="muted">{m('imp.noErrors')}</p>
          ) : null}
        </div>
      ) : null}
    </Panel>
  );
}
