import { readFile } from 'node:fs/promises';
import { type DoctorReport, formatReport } from '@citysense/edge-agent';
import {
  CitysenseError,
  type ConfigApplyResult,
  LOG_LEVELS,
  type LogLine,
  type LogTailResult,
} from '@citysense/protocol';
import { Type } from '@sinclair/typebox';
import { loadConfig, optionsOf, parseArgs, renderHelp } from '../config-loader.ts';
import { HubClient } from '../hub-client.ts';
import type { Command } from '../main.ts';
import { untilSignal } from '../signals.ts';
import { adminTokenFrom } from './token.ts';

const NodeOptionsSchema = Type.Object({
  hub: Type.String({ default: 'http://localhost:8080', pattern: '^https?://', description: 'hub URL' }),
  adminToken: Type.Optional(
    Type.String({ description: 'admin, session or API token (default: read from <data-dir>/admin-token)' }),
  ),
  dataDir: Type.String({ default: './data', description: "the hub's data dir, to read its admin token" }),
  json: Type.Boolean({ default: false, description: 'print JSON' }),
  follow: Type.Boolean({ default: false, description: 'logs: keep printing new lines until Ctrl-C' }),
  level: Type.Optional(
    Type.Union(
      LOG_LEVELS.map((l) => Type.Literal(l)),
      { description: 'logs: at least this level' },
    ),
  ),
  component: Type.Optional(
    Type.String({ description: 'logs: only this component (uplink, driver-host, …)' }),
  ),
  lines: Type.Integer({ minimum: 1, maximum: 1000, default: 100, description: 'logs: how many lines' }),
  intervalMs: Type.Integer({ minimum: 500, default: 2000, description: 'logs --follow: ask this often' }),
  comment: Type.Optional(
    Type.String({ maxLength: 500, description: 'config push: why (kept in the history)' }),
  ),
  healthTimeoutMs: Type.Optional(
    Type.Integer({
      minimum: 500,
      maximum: 600_000,
      description: 'config push: the node must be healthy within this time or it rolls back',
    }),
  ),
  timeoutMs: Type.Optional(
    Type.Integer({
      minimum: 1000,
      description: 'the operation expires when the node has not answered by then',
    }),
  ),
});
type NodeOptions = {
  hub: string;
  adminToken?: string;
  dataDir: string;
  json: boolean;
  follow: boolean;
  level?: string;
  component?: string;
  lines: number;
  intervalMs: number;
  comment?: string;
  healthTimeoutMs?: number;
  timeoutMs?: number;
};
const nodeOptions = optionsOf(NodeOptionsSchema, {
  adminToken: ['CITYSENSE_ADMIN_TOKEN'],
  hub: ['CITYSENSE_HUB'],
});

const USAGE = `Usage:
  citysense node doctor <nodeId> [--json]
  citysense node logs <nodeId> [--follow] [--level warn] [--component uplink] [--lines 100]
  citysense node restart-driver <nodeId> <driverId>
  citysense node config push <nodeId> <file.json> [--comment "why"] [--health-timeout-ms 30000]
  citysense node config history <nodeId> [--json]`;

interface OperationView {
  id: string;
  kind: string;
  state: string;
  code: string | null;
  message: string | null;
  result: unknown;
  deadline: string;
}

const TERMINAL = new Set(['succeeded', 'failed', 'rolled-back', 'expired']);

/** `citysense node`: remote operations on one edge node through the hub (audited there). */
export const nodeCommand: Command = {
  name: 'node',
  summary: 'remote operations on a node: doctor | logs | restart-driver | config push | config history',
  async run(argv) {
    const args = parseArgs(argv, nodeOptions);
    const [action, ...rest] = args.positionals;
    if (args.help || !action) {
      process.stdout.write(`${renderHelp(USAGE, nodeCommand.summary, nodeOptions)}\n`);
      return args.help ? 0 : 2;
    }
    const o = loadConfig<NodeOptions>(NodeOptionsSchema, nodeOptions, args, process.env);
    const client = new HubClient(o.hub, adminTokenFrom(o));
    const need = (n: number) => {
      if (rest.length < n)
        throw new CitysenseError('CS_ERR_CONFIG_INVALID', `missing arguments\n${USAGE}`, 400);
      return rest as string[];
    };
    switch (action) {
      case 'doctor':
        return doctor(client, need(1)[0] as string, o);
      case 'logs':
        return logs(client, need(1)[0] as string, o);
      case 'restart-driver': {
        const [nodeId, driverId] = need(2);
        return restartDriver(client, nodeId as string, driverId as string, o);
      }
      case 'config': {
        const [sub, nodeId, file] = rest;
        if (sub === 'push' && nodeId && file) return pushConfig(client, nodeId, file, o);
        if (sub === 'history' && nodeId) return history(client, nodeId, o);
        throw new CitysenseError(
          'CS_ERR_CONFIG_INVALID',
          `usage: config push <nodeId> <file> | config history <nodeId>\n${USAGE}`,
          400,
        );
      }
      default:
        throw new CitysenseError('CS_ERR_CONFIG_INVALID', `unknown action "${action}"\n${USAGE}`, 400);
    }
  },
};

const nodePath = (nodeId: string) => `/v1/nodes/${encodeURIComponent(nodeId)}`;

/** Asks for an operation and waits until the node answered or it expired. */
async function operate(client: HubClient, nodeId: string, kind: string, params: unknown, o: NodeOptions) {
  const created = await client.request<OperationView>('POST', `${nodePath(nodeId)}/operations`, {
    kind,
    params,
    ...(o.timeoutMs ? { timeoutMs: o.timeoutMs } : {}),
  });
  return waitFor(client, nodeId, created);
}

async function waitFor(client: HubClient, nodeId: string, op: OperationView): Promise<OperationView> {
  let current = op;
  while (!TERMINAL.has(current.state)) {
    await new Promise((r) => setTimeout(r, 300));
    current = await client.request<OperationView>('GET', `${nodePath(nodeId)}/operations/${current.id}`);
  }
  return current;
}

function outcomeLine(op: OperationView): string {
  return `${op.kind} ${op.id}: ${op.state}${op.code ? ` [${op.code}]` : ''}${op.message ? ` ${op.message}` : ''}\n`;
}

async function doctor(client: HubClient, nodeId: string, o: NodeOptions): Promise<number> {
  const op = await operate(client, nodeId, 'doctor', {}, o);
  if (op.state !== 'succeeded') {
    process.stderr.write(outcomeLine(op));
    return 1;
  }
  const report = op.result as DoctorReport;
  process.stdout.write(o.json ? `${JSON.stringify(report, null, 2)}\n` : formatReport(report));
  return report.healthy ? 0 : 1;
}

function formatLine(l: LogLine): string {
  const fields = l.fields ? ` ${JSON.stringify(l.fields)}` : '';
  return `${new Date(l.time).toISOString()} ${l.level.toUpperCase().padEnd(5)} ${(l.component ?? '-').padEnd(12)} ${l.msg}${fields}\n`;
}

async function logs(client: HubClient, nodeId: string, o: NodeOptions): Promise<number> {
  const base = {
    lines: o.lines,
    ...(o.level ? { level: o.level } : {}),
    ...(o.component ? { component: o.component } : {}),
  };
  let since: number | undefined;
  let stop = false;
  if (o.follow)
    void untilSignal().then(() => {
      stop = true;
    });
  do {
    const op = await operate(client, nodeId, 'log-tail', since === undefined ? base : { ...base, since }, o);
    if (op.state !== 'succeeded') {
      process.stderr.write(outcomeLine(op));
      return 1;
    }
    const tail = op.result as LogTailResult;
    if (tail.gap) process.stderr.write('… lines were overwritten on the node before they could be read …\n');
    for (const l of tail.lines) process.stdout.write(o.json ? `${JSON.stringify(l)}\n` : formatLine(l));
    since = tail.next;
    if (o.follow && !stop) await new Promise((r) => setTimeout(r, o.intervalMs));
  } while (o.follow && !stop);
  return 0;
}

async function restartDriver(
  client: HubClient,
  nodeId: string,
  driverId: string,
  o: NodeOptions,
): Promise<number> {
  const op = await operate(client, nodeId, 'driver-restart', { driverId }, o);
  process.stdout.write(o.json ? `${JSON.stringify(op, null, 2)}\n` : outcomeLine(op));
  return op.state === 'succeeded' ? 0 : 1;
}

async function pushConfig(client: HubClient, nodeId: string, file: string, o: NodeOptions): Promise<number> {
  let doc: unknown;
  try {
    doc = JSON.parse(await readFile(file, 'utf8'));
  } catch (err) {
    throw new CitysenseError(
      'CS_ERR_CONFIG_INVALID',
      `${file} is not readable JSON: ${(err as Error).message}`,
      400,
    );
  }
  // An agent config file works too: only the part the hub manages is sent.
  const drivers = (doc as { drivers?: unknown } | null)?.drivers;
  const pushed = await client.request<{ version: number; operation: OperationView }>(
    'PUT',
    `${nodePath(nodeId)}/config`,
    {
      config: { drivers },
      ...(o.comment ? { comment: o.comment } : {}),
      ...(o.healthTimeoutMs ? { healthTimeoutMs: o.healthTimeoutMs } : {}),
    },
  );
  process.stderr.write(`version ${pushed.version} stored; waiting for ${nodeId} to apply it…\n`);
  const op = await waitFor(client, nodeId, pushed.operation);
  if (o.json) process.stdout.write(`${JSON.stringify(op, null, 2)}\n`);
  else {
    process.stdout.write(outcomeLine(op));
    const r = op.result as ConfigApplyResult | null;
    if (r?.drivers) for (const d of r.drivers) process.stdout.write(`  ${d.id.padEnd(24)} ${d.state}\n`);
  }
  return op.state === 'succeeded' ? 0 : 1;
}

async function history(client: HubClient, nodeId: string, o: NodeOptions): Promise<number> {
  const h = await client.request<{
    activeVersion: number | null;
    versions: Array<{
      version: number;
      state: string;
      reason: string | null;
      comment: string | null;
      author: { username: string | null; kind: string };
      createdAt: string;
    }>;
  }>('GET', `${nodePath(nodeId)}/config/versions`);
  if (o.json) {
    process.stdout.write(`${JSON.stringify(h, null, 2)}\n`);
    return 0;
  }
  process.stdout.write(`${nodeId} runs version ${h.activeVersion ?? '(local configuration)'}\n`);
  for (const v of h.versions)
    process.stdout.write(
      `${String(v.version).padStart(4)}  ${v.state.padEnd(11)} ${v.createdAt}  ${v.author.username ?? v.author.kind}  ${v.comment ?? ''}${v.reason ? `  (${v.reason})` : ''}\n`,
    );
  return 0;
}
