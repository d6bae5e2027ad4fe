import { createReadStream } from 'node:fs';
import { stat, writeFile } from 'node:fs/promises';
import { createInterface } from 'node:readline';
import { CitysenseError } from '@citysense/protocol';
import { Type } from '@sinclair/typebox';
import { loadConfig, optionsOf, parseArgs, renderHelp } from '../config-loader.ts';
import { HubClient } from '../hub-client.ts';
import type { Command } from '../main.ts';
import { adminTokenFrom } from './token.ts';

const LedgerOptionsSchema = Type.Object({
  hub: Type.String({ default: 'http://localhost:8080', pattern: '^https?://', description: 'hub URL' }),
  adminToken: Type.Optional(
    Type.String({ description: 'admin token (default: read from <data-dir>/admin-token)' }),
  ),
  dataDir: Type.String({ default: './data', description: "the hub's data dir, to read its admin token" }),
  json: Type.Boolean({ default: false, description: 'print JSON' }),
  report: Type.Optional(
    Type.String({
      description: 'import: error report file (default <file>.errors.csv, written when rows fail)',
    }),
  ),
  chunk: Type.Integer({
    minimum: 1,
    maximum: 100_000,
    default: 2000,
    description: 'import: rows per request (progress is shown per request)',
  }),
  kind: Type.Optional(Type.String({ description: 'list: only this device kind' })),
  state: Type.Optional(Type.String({ description: 'list: only this lifecycle state' })),
  owner: Type.Optional(Type.String({ description: 'list: only devices of this agency' })),
  limit: Type.Integer({ minimum: 1, maximum: 10_000, default: 100, description: 'list: at most this many' }),
});
type LedgerOptions = {
  hub: string;
  adminToken?: string;
  dataDir: string;
  json: boolean;
  report?: string;
  chunk: number;
  kind?: string;
  state?: string;
  owner?: string;
  limit: number;
};
const ledgerOptions = optionsOf(LedgerOptionsSchema, {
  adminToken: ['CITYSENSE_ADMIN_TOKEN'],
  hub: ['CITYSENSE_HUB'],
});

const USAGE = `Usage:
  citysense ledger verify [--json]
  citysense ledger import <file.csv> [--report errors.csv] [--chunk 2000]
  citysense ledger list [--kind camera] [--state active] [--owner agency] [--limit 100] [--json]`;

interface BrokenLink {
  seq: number;
  reason: string;
  deviceCode?: string;
  message: string;
}
interface VerifyReport {
  ok: boolean;
  entries: number;
  devices: number;
  head: { seq: number; hash: string };
  firstBroken: BrokenLink | null;
  problems: BrokenLink[];
  ms: number;
}
interface ImportReport {
  rows: number;
  applied: number;
  failed: number;
  flagged: number;
  errors: Array<{ row: number; column: string; code: string; message: string }>;
  errorsTruncated: boolean;
}
interface DeviceView {
  code: string;
  kind: string;
  state: string;
  ownerAgency: string;
  poleId: string | null;
  longitude: number;
  latitude: number;
}

/** `citysense ledger verify|import|list`: the city sensor ledger (一套台账). */
export const ledgerCommand: Command = {
  name: 'ledger',
  summary: 'sensor ledger: verify the filing chain, import devices from CSV, list devices',
  async run(argv) {
    const args = parseArgs(argv, ledgerOptions);
    const [action, target] = args.positionals;
    if (args.help || (action !== 'verify' && action !== 'import' && action !== 'list')) {
      console.log(renderHelp(USAGE, ledgerCommand.summary, ledgerOptions));
      return args.help ? 0 : 2;
    }
    const o = loadConfig<LedgerOptions>(LedgerOptionsSchema, ledgerOptions, args, process.env);
    const token = adminTokenFrom(o);
    const client = new HubClient(o.hub, token);
    if (action === 'verify') return verify(client, o.json);
    if (action === 'list') return list(client, o);
    if (!target) throw new CitysenseError('CS_ERR_CLI_USAGE', 'ledger import needs the CSV file', 2);
    return importFile(target, o, token);
  },
};

async function verify(client: HubClient, json: boolean): Promise<number> {
  const r = await client.request<VerifyReport>('GET', '/v1/ledger/verify');
  if (json) console.log(JSON.stringify(r, null, 2));
  else if (r.ok)
    console.log(
      `OK: ${r.entries} entries, ${r.devices} devices, head seq ${r.head.seq} (${r.head.hash.slice(0, 16)}…), ${r.ms} ms`,
    );
  else {
    const b = r.firstBroken;
    console.log(
      `BROKEN at seq ${b?.seq}: ${b?.reason}${b?.deviceCode ? ` (device ${b.deviceCode})` : ''} — ${b?.message}`,
    );
    if (r.problems.length > 1) console.log(`${r.problems.length - 1} more problem(s):`);
    for (const p of r.problems.slice(1, 20)) console.log(`  seq ${p.seq}: ${p.reason} — ${p.message}`);
  }
  return r.ok ? 0 : 1;
}

async function list(client: HubClient, o: LedgerOptions): Promise<number> {
  const q = new URLSearchParams({ limit: String(o.limit) });
  if (o.kind) q.set('kind', o.kind);
  if (o.state) q.set('state', o.state);
  if (o.owner) q.set('owner', o.owner);
  const devices = await client.request<DeviceView[]>('GET', `/v1/ledger/devices?${q}`);
  if (o.json) console.log(JSON.stringify(devices, null, 2));
  else
    for (const d of devices)
      console.log(
        `${d.code}  ${d.kind.padEnd(12)} ${d.state.padEnd(11)} ${d.ownerAgency.padEnd(16)} ${d.longitude.toFixed(6)},${d.latitude.toFixed(6)}  ${d.poleId ?? '-'}`,
      );
  return 0;
}

/**
 * Sends a CSV in parts of `--chunk` rows (each with the header, numbered by `rowOffset`
 * so that the report names lines of the file), with a progress bar on stderr and the
 * rows the hub refused written to a report file.
 */
async function importFile(file: string, o: LedgerOptions, token: string): Promise<number> {
  const size = (await stat(file)).size;
  const lines = createInterface({
    input: createReadStream(file, 'utf8'),
    crlfDelay: Number.POSITIVE_INFINITY,
  });
  const total: ImportReport = {
    rows: 0,
    applied: 0,
    failed: 0,
    flagged: 0,
    errors: [],
    errorsTruncated: false,
  };
  const started = performance.now();
  let header: string | undefined;
  let part: string[] = [];
  let partFirstLine = 0;
  let record: string[] = [];
  let recordLine = 0;
  let quotes = 0;
  let line = 0;
  let bytes = 0;
  const send = async () => {
    if (!header || part.length === 0) return;
    const body = `${header}\n${part.join('\n')}\n`;
    const report = await postCsv(o.hub, token, body, partFirstLine - 2);
    total.rows += report.rows;
    total.applied += report.applied;
    total.failed += report.failed;
    total.flagged += report.flagged;
    total.errors.push(...report.errors);
    total.errorsTruncated ||= report.errorsTruncated;
    part = [];
    progress(total, bytes / Math.max(1, size), started);
  };
  for await (const text of lines) {
    line++;
    bytes += Buffer.byteLength(text) + 1;
    if (record.length === 0) recordLine = line;
    record.push(text);
    // RFC 4180: a line break inside quotes belongs to the field; an odd quote count means it goes on.
    quotes += (text.match(/"/g) ?? []).length;
    if (quotes % 2 === 1) continue;
    const raw = record.join('\n');
    record = [];
    quotes = 0;
    if (header === undefined) {
      header = raw.replace(/^\uFEFF/, '');
      continue;
    }
    // Blank lines stay in the part so that line numbers in the report match the file.
    if (part.length === 0) partFirstLine = recordLine;
    part.push(raw);
    if (part.length >= o.chunk) await send();
  }
  if (record.length > 0) {
    if (part.length === 0) partFirstLine = recordLine;
    part.push(record.join('\n'));
  }
  await send();
  if (process.stderr.isTTY) process.stderr.write('\n');
  if (header === undefined) throw new CitysenseError('CS_ERR_LEDGER_CSV_HEADER', `${file} is empty`, 400);
  const seconds = (performance.now() - started) / 1000;
  console.log(
    `imported ${total.applied}/${total.rows} rows in ${seconds.toFixed(1)} s (${Math.round(total.rows / Math.max(seconds, 0.001))} rows/s)` +
      `, ${total.failed} refused, ${total.flagged} flagged as possible duplicate builds`,
  );
  if (total.failed > 0) {
    const reportFile = o.report ?? `${file}.errors.csv`;
    const rows = total.errors.map((e) => [e.row, e.column, e.code, e.message].map(csvCell).join(','));
    await writeFile(reportFile, `row,column,code,message\n${rows.join('\n')}\n`);
    console.log(`error report: ${reportFile}${total.errorsTruncated ? ' (truncated by the hub)' : ''}`);
    return 1;
  }
  return 0;
}

async function postCsv(hub: string, token: string, body: string, rowOffset: number): Promise<ImportReport> {
  const answer = await new HubClient(hub, token).send<ImportReport>(
    'POST',
    `/v1/ledger/import?rowOffset=${rowOffset}`,
    { body, contentType: 'text/csv; charset=utf-8' },
  );
  return answer.body;
}

/** One progress line: a bar by bytes read, rows done, rows/s, refused so far. */
function progress(r: ImportReport, fraction: number, started: number): void {
  const width = 30;
  const done = Math.min(width, Math.round(fraction * width));
  const rate = Math.round(r.rows / Math.max((performance.now() - started) / 1000, 0.001));
  const text = `[${'#'.repeat(done)}${'.'.repeat(width - done)}] ${Math.round(fraction * 100)}% ${r.rows} rows ${rate} rows/s ${r.failed} refused`;
  process.stderr.write(process.stderr.isTTY ? `\r${text}` : `${text}\n`);
}

function csvCell(value: string | number): string {
  const s = String(value);
  return /[",\n\r]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}
