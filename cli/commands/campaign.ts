import { readArtifactHead } from '@citysense/firmware-ota';
import { CitysenseError } from '@citysense/protocol';
import { Type } from '@sinclair/typebox';
import { loadConfig, optionsOf, parseArgs, parseDuration, renderHelp, splitList } from '../config-loader.ts';
import { type FleetSnapshot, meanProgress, type ProgressOut, watchFleet } from '../fleet-progress.ts';
import { HubClient } from '../hub-client.ts';
import type { Command } from '../main.ts';
import { adminTokenFrom } from './token.ts';

const CampaignOptionsSchema = Type.Object({
  hub: Type.String({ default: 'http://localhost:8080', pattern: '^https?://', description: 'hub URL' }),
  adminToken: Type.Optional(
    Type.String({ description: 'admin token or API token (default: read from <data-dir>/admin-token)' }),
  ),
  dataDir: Type.String({ default: './data', description: "the hub's data dir, to read its admin token" }),
  artifact: Type.Optional(
    Type.String({ description: 'create: artifact id (from upload or GET /v1/ota/artifacts)' }),
  ),
  nodes: Type.Optional(Type.String({ description: 'create: target node ids, comma-separated' })),
  agency: Type.Optional(
    Type.String({ description: 'create: target agencies or districts (all their nodes), comma-separated' }),
  ),
  carrier: Type.Optional(
    Type.String({ description: 'create: target carriers (the nodes on these poles), comma-separated' }),
  ),
  canary: Type.Number({
    minimum: 0,
    maximum: 1,
    default: 0.1,
    description: 'create: share of the nodes in the canary',
  }),
  minHealthy: Type.Number({
    minimum: 0,
    maximum: 1,
    default: 1,
    description: 'create: share of canary nodes that must be healthy before the rest get it',
  }),
  maxFailed: Type.Integer({
    minimum: 0,
    default: 0,
    description: 'create: failed or rolled-back nodes tolerated',
  }),
  gateTimeout: Type.String({
    default: '10m',
    pattern: '^\\d+(ms|s|m|h)$',
    description: 'create: the canary must pass within this time (e.g. 90s, 10m)',
  }),
  healthTimeout: Type.Integer({
    minimum: 10,
    maximum: 3600,
    default: 300,
    description: 'create: seconds a node waits for its health check after activation before rolling back',
  }),
  watch: Type.Boolean({
    default: false,
    description: 'create, show: follow the campaign with a progress bar',
  }),
  interval: Type.Integer({ minimum: 100, default: 1000, description: 'progress poll interval in ms' }),
  state: Type.Optional(Type.String({ description: 'list: only in this state, e.g. paused' })),
  reason: Type.Optional(Type.String({ description: 'pause, resume, abort: recorded with the transition' })),
  json: Type.Boolean({ default: false, description: 'print JSON' }),
});
type CampaignOptions = {
  hub: string;
  adminToken?: string;
  dataDir: string;
  artifact?: string;
  nodes?: string;
  agency?: string;
  carrier?: string;
  canary: number;
  minHealthy: number;
  maxFailed: number;
  gateTimeout: string;
  healthTimeout: number;
  watch: boolean;
  interval: number;
  state?: string;
  reason?: string;
  json: boolean;
};
const campaignOptions = optionsOf(CampaignOptionsSchema, {
  adminToken: ['CITYSENSE_ADMIN_TOKEN'],
  hub: ['CITYSENSE_HUB'],
});

const ACTIONS = ['upload', 'artifacts', 'create', 'list', 'show', 'pause', 'resume', 'abort'] as const;
type Action = (typeof ACTIONS)[number];

const USAGE = `Usage:
  citysense campaign upload <file.csota>
  citysense campaign artifacts [--json]
  citysense campaign create --artifact ID (--nodes a,b | --agency X | --carrier P) [--canary 0.1]
                            [--min-healthy 1] [--max-failed 0] [--gate-timeout 10m] [--health-timeout 300] [--watch]
  citysense campaign list [--state paused] [--json]
  citysense campaign show <campaignId> [--watch] [--json]
  citysense campaign pause|resume|abort <campaignId> [--reason "…"]`;

/** Campaign states an operator must act on (or that are over): watching stops there. */
const SETTLED = new Set(['completed', 'paused', 'aborted', 'superseded']);

/** Node states in the order an update moves through them. */
const STATE_ORDER = [
  'healthy',
  'activating',
  'installing',
  'verifying',
  'downloading',
  'queued',
  'pending',
  'failed',
  'rolled-back',
  'refused',
  'superseded',
  'cancelled',
];

/** A campaign as the hub returns it (cloud-hub/src/ota/campaign-service.ts CampaignView). */
export interface CampaignDetail {
  id: string;
  artifactId: string;
  name: string;
  version: string;
  target: string;
  state: string;
  reason: string | null;
  createdAt: string;
  total: number;
  counts: Record<string, number>;
  totals: {
    eligible: number;
    healthy: number;
    failed: number;
    inFlight: number;
    downloadProgress: number | null;
  };
  nodes?: Array<{
    nodeId: string;
    canary: boolean;
    state: string;
    progress: number | null;
    reason: string | null;
  }>;
}

interface ArtifactSummary {
  id: string;
  name: string;
  version: string;
  target: string;
  bytes: number;
  sha256: string;
  createdAt: string;
  campaigns: string[];
}

/** Where the command writes, and what stops it watching. */
export interface CampaignIo {
  out: ProgressOut;
  env: NodeJS.ProcessEnv;
  signal?: AbortSignal;
}

/** `citysense campaign`: OTA artifacts and fleet campaigns. */
export const campaignCommand: Command = {
  name: 'campaign',
  summary: 'OTA updates: upload artifacts, run staged campaigns over the fleet, watch, pause, resume, abort',
  run: (argv) => runCampaign(argv),
};

/**
 * Runs `citysense campaign …`. Resolves to the exit code: a watched campaign gives 0
 * when it completed, 1 when it paused or was aborted, 130 when interrupted.
 */
export async function runCampaign(
  argv: string[],
  io: CampaignIo = { out: process.stdout, env: process.env },
): Promise<number> {
  const args = parseArgs(argv, campaignOptions);
  const [action, target] = args.positionals;
  if (args.help || !ACTIONS.some((a) => a === action)) {
    io.out.write(`${renderHelp(USAGE, 'OTA artifacts and fleet campaigns', campaignOptions)}\n`);
    return args.help ? 0 : 2;
  }
  const o = loadConfig<CampaignOptions>(CampaignOptionsSchema, campaignOptions, args, io.env);
  const token = adminTokenFrom(o);
  const hub = new HubClient(o.hub, token);
  const print = (value: unknown, text: string) =>
    io.out.write(o.json ? `${JSON.stringify(value, null, 2)}\n` : `${text}\n`);
  switch (action as Action) {
    case 'upload': {
      const artifact = await upload(required(target, 'the artifact file'), o.hub, token, io);
      print(artifact, `uploaded ${artifact.name} ${artifact.version} (${artifact.target}) as ${artifact.id}`);
      return 0;
    }
    case 'artifacts': {
      const list = await hub.request<ArtifactSummary[]>('GET', '/v1/ota/artifacts');
      print(
        list,
        list.length === 0
          ? 'no artifacts'
          : list
              .map(
                (a) =>
                  `${a.id}  ${`${a.name} ${a.version}`.padEnd(32)} ${a.target.padEnd(8)} ${String(a.bytes).padStart(12)} B  ${a.campaigns.length} campaign(s)`,
              )
              .join('\n'),
      );
      return 0;
    }
    case 'create': {
      const created = await hub.request<CampaignDetail>('POST', '/v1/ota/campaigns', requestOf(o));
      if (!o.json) {
        io.out.write(
          `campaign ${created.id}: ${created.name} ${created.version} onto ${created.totals.eligible} node(s), canary ` +
            `${(created.nodes ?? [])
              .filter((n) => n.canary)
              .map((n) => n.nodeId)
              .join(', ')}\n`,
        );
        for (const n of (created.nodes ?? []).filter((x) => x.state === 'refused'))
          io.out.write(`  refused ${n.nodeId}: ${n.reason ?? 'no reason given'}\n`);
      }
      if (o.watch) return follow(hub, created, o, io);
      if (o.json) print(created, '');
      return 0;
    }
    case 'list': {
      const qs = o.state ? `?state=${encodeURIComponent(o.state)}` : '';
      const list = await hub.request<CampaignDetail[]>('GET', `/v1/ota/campaigns${qs}`);
      print(list, list.length === 0 ? 'no campaigns' : list.map(listLine).join('\n'));
      return 0;
    }
    case 'show': {
      const id = required(target, '<campaignId>');
      const c = await hub.request<CampaignDetail>('GET', `/v1/ota/campaigns/${encodeURIComponent(id)}`);
      if (o.watch) return follow(hub, c, o, io);
      print(c, [listLine(c), ...(c.nodes ?? []).map(nodeLine)].join('\n'));
      return 0;
    }
    case 'pause':
    case 'resume':
    case 'abort': {
      const id = required(target, '<campaignId>');
      const c = await hub.request<CampaignDetail>(
        'POST',
        `/v1/ota/campaigns/${encodeURIComponent(id)}/${action}`,
        o.reason ? { reason: o.reason } : {},
      );
      print(c, `${c.id} ${c.state}: ${c.reason ?? ''}`);
      return 0;
    }
  }
}

function requestOf(o: CampaignOptions): unknown {
  const nodes = splitList(o.nodes);
  const agencies = splitList(o.agency);
  const carriers = splitList(o.carrier);
  if (!o.artifact) throw usageError('create needs --artifact ID');
  if (nodes.length + agencies.length + carriers.length === 0)
    throw usageError('give --nodes a,b,c, --agency X and/or --carrier P');
  return {
    artifactId: o.artifact,
    targets: {
      ...(nodes.length > 0 ? { nodes } : {}),
      ...(agencies.length > 0 ? { agencies } : {}),
      ...(carriers.length > 0 ? { carriers } : {}),
    },
    canaryShare: o.canary,
    gate: { minHealthyShare: o.minHealthy, maxFailed: o.maxFailed, timeoutMs: durationOption(o.gateTimeout) },
    healthTimeoutSeconds: o.healthTimeout,
  };
}

/** Follows a campaign with the fleet progress bar until it settles. */
async function follow(
  hub: HubClient,
  c: CampaignDetail,
  o: CampaignOptions,
  io: CampaignIo,
): Promise<number> {
  const final = await watchFleet({
    initial: c,
    fetch: () => hub.request<CampaignDetail>('GET', `/v1/ota/campaigns/${encodeURIComponent(c.id)}`),
    settled: (x) => SETTLED.has(x.state),
    snapshot: snapshotOf,
    order: STATE_ORDER,
    intervalMs: o.interval,
    out: io.out,
    quiet: o.json,
    signal: io.signal,
  });
  if (!final) {
    io.out.write(`stopped watching; ${c.id} goes on at the hub (citysense campaign show ${c.id})\n`);
    return 130;
  }
  if (o.json) io.out.write(`${JSON.stringify(final, null, 2)}\n`);
  else {
    io.out.write(`${final.state}: ${final.reason ?? ''}\n`);
    if (final.state === 'paused')
      io.out.write(
        `resume with: citysense campaign resume ${final.id}, or stop it: citysense campaign abort ${final.id}\n`,
      );
  }
  return final.state === 'completed' ? 0 : 1;
}

/** A campaign as the fleet progress display shows it. */
export function snapshotOf(c: CampaignDetail): FleetSnapshot {
  const downloading = (c.nodes ?? []).flatMap((n) =>
    n.state === 'downloading' && n.progress !== null ? [n.progress] : [],
  );
  return {
    id: c.id,
    title: `${c.name} ${c.version} (${c.target})`,
    state: c.state,
    reason: c.reason,
    total: c.total,
    counts: c.counts,
    downloadProgress: meanProgress(downloading) ?? c.totals.downloadProgress,
    footer: [
      `  ${'fleet'.padEnd(12)} ${c.totals.healthy}/${c.totals.eligible} healthy, ${c.totals.inFlight} in flight, ${c.totals.failed} failed`,
    ],
  };
}

function listLine(c: CampaignDetail): string {
  const counts = STATE_ORDER.flatMap((s) => ((c.counts[s] ?? 0) > 0 ? [`${s} ${c.counts[s]}`] : []));
  return `${c.id}  ${`${c.name} ${c.version}`.padEnd(28)} ${c.state.padEnd(10)} ${c.createdAt}  ${counts.join(', ')}`;
}

function nodeLine(n: NonNullable<CampaignDetail['nodes']>[number]): string {
  const progress =
    n.state === 'downloading' && n.progress !== null ? ` ${Math.round(n.progress * 100)} %` : '';
  return `  ${n.nodeId.padEnd(24)} ${n.canary ? 'canary ' : '       '}${n.state}${progress}${n.reason ? ` — ${n.reason}` : ''}`;
}

/** Streams the file to the hub with progress on stderr; checks the head locally first. */
async function upload(file: string, hubUrl: string, token: string, io: CampaignIo): Promise<ArtifactSummary> {
  // A file that is no artifact fails here, not after the transfer.
  const head = await readArtifactHead(file);
  const label = `${head.manifest.name} ${head.manifest.version}`;
  const { body } = await new HubClient(hubUrl, token).uploadFile<ArtifactSummary>(
    '/v1/ota/artifacts',
    file,
    label,
    io.signal,
  );
  return body;
}

function required(value: string | undefined, what: string): string {
  if (!value) throw usageError(`missing ${what}`);
  return value;
}

/** `90s`, `10m`, `1h`, `500ms` in milliseconds; a usage error otherwise. */
function durationOption(text: string): number {
  const ms = parseDuration(text);
  if (ms === undefined) throw usageError(`not a duration: ${text} (e.g. 90s, 10m)`);
  return ms;
}

function usageError(message: string): CitysenseError {
  return new CitysenseError('CS_ERR_CONFIG_INVALID', `${message}\n\n${USAGE}`, 400);
}
