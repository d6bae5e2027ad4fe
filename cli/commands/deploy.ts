import { readFile } from 'node:fs/promises';
import { CitysenseError, errorMessage, type VideoSource } from '@citysense/protocol';
import { Type } from '@sinclair/typebox';
import {
  type ConfigProblem,
  loadConfig,
  optionsOf,
  parseArgs,
  parseDuration,
  renderHelp,
  splitList,
} from '../config-loader.ts';
import {
  DeploymentClient,
  type DeploymentDetail,
  type DeploymentRequest,
  type DeploymentSummary,
  SETTLED_STATES,
} from '../deploy-client.ts';
import { type FleetSnapshot, meanProgress, watchFleet } from '../fleet-progress.ts';
import { HubClient } from '../hub-client.ts';
import { adminTokenFrom } from './token.ts';

const DeployOptionsSchema = Type.Object({
  hub: Type.String({ default: 'http://localhost:8080', pattern: '^https?://', description: 'hub URL' }),
  adminToken: Type.Optional(
    Type.String({ description: 'admin token (default: read from <data-dir>/admin-token)' }),
  ),
  dataDir: Type.String({ default: './data', description: "the hub's data dir, to read its admin token" }),
  nodes: Type.Optional(Type.String({ description: 'deploy: target node ids, comma-separated' })),
  agency: Type.Optional(
    Type.String({ description: 'deploy: target agencies (all their nodes), comma-separated' }),
  ),
  fps: Type.Number({
    exclusiveMinimum: 0,
    maximum: 60,
    default: 2,
    description: 'deploy: frames per second taken from each --source',
  }),
  canary: Type.Number({
    minimum: 0,
    maximum: 1,
    default: 0.1,
    description: 'deploy: share of the nodes in the canary (at least one node)',
  }),
  minActive: Type.Number({
    minimum: 0,
    maximum: 1,
    default: 1,
    description: 'deploy: share of canary nodes that must be active before the rest get it',
  }),
  maxFailed: Type.Integer({
    minimum: 0,
    default: 0,
    description: 'deploy: failed nodes tolerated before the deployment pauses',
  }),
  gateTimeout: Type.String({
    default: '10m',
    pattern: '^\\d+(ms|s|m|h)$',
    description: 'deploy: the canary must pass within this time (e.g. 90s, 10m)',
  }),
  rules: Type.Optional(
    Type.String({ description: 'deploy: JSON file with an array of local alert rules (AlertRule)' }),
  ),
  interval: Type.Integer({
    minimum: 100,
    default: 1000,
    description: 'deploy: progress poll interval in ms',
  }),
  detach: Type.Boolean({ default: false, description: 'deploy: create the deployment and return at once' }),
  algorithmId: Type.Optional(Type.String({ description: 'deployments: only this algorithm' })),
  state: Type.Optional(Type.String({ description: 'deployments: only in this state, e.g. paused' })),
  reason: Type.Optional(Type.String({ description: 'rollback: recorded with the transition' })),
  json: Type.Boolean({ default: false, description: 'print JSON' }),
});
type DeployOptions = {
  hub: string;
  adminToken?: string;
  dataDir: string;
  nodes?: string;
  agency?: string;
  fps: number;
  canary: number;
  minActive: number;
  maxFailed: number;
  gateTimeout: string;
  rules?: string;
  interval: number;
  detach: boolean;
  algorithmId?: string;
  state?: string;
  reason?: string;
  json: boolean;
};
const deployOptions = optionsOf(DeployOptionsSchema, {
  adminToken: ['CITYSENSE_ADMIN_TOKEN'],
  hub: ['CITYSENSE_HUB'],
});

/** `algo` actions this file runs. */
export const DEPLOY_ACTIONS = ['deploy', 'deployments', 'rollback'] as const;
/** One of `DEPLOY_ACTIONS`. */
export type DeployAction = (typeof DEPLOY_ACTIONS)[number];

const USAGE = `Usage:
  citysense algo deploy <algorithmId> <version> (--nodes a,b,c | --agency X) --source cam1=rtsp://… [--source …]
                        [--fps 2] [--canary 0.1] [--min-active 1] [--max-failed 0] [--gate-timeout 10m]
                        [--rules rules.json] [--detach]
  citysense algo deployments [--algorithm-id yolox-nano] [--state paused] [--json]
  citysense algo rollback <deploymentId> [--reason "…"]`;

const SOURCE_HELP = `  ${'--source <id>=<url>'.padEnd(34)} deploy: a video source of every target node (repeat the flag); id e.g. cam1
`;

/** Where the command writes, and what stops it watching. */
export interface DeployIo {
  /** Progress and results; a TTY gets a redrawn progress block. */
  out: NodeJS.WritableStream & { isTTY?: boolean; columns?: number };
  env: NodeJS.ProcessEnv;
  /** Stops watching (Ctrl-C); the deployment goes on at the hub. Default: SIGINT/SIGTERM. */
  signal?: AbortSignal;
}

/** The deploy action `argv` (the arguments after `algo`) asks for, if any. */
export function deployActionOf(argv: string[]): DeployAction | undefined {
  const first = parseArgs(takeRepeated(argv, '--source').rest, deployOptions).positionals[0];
  return DEPLOY_ACTIONS.find((a) => a === first);
}

/**
 * Runs `citysense algo deploy|deployments|rollback`; `argv` are the arguments
 * after `algo`, starting with the action. Resolves to the exit code: deploy
 * gives 0 when the deployment completed, 1 when it paused or was rolled back,
 * 130 when interrupted (the deployment goes on at the hub).
 */
export async function runDeployAction(
  argv: string[],
  io: DeployIo = { out: process.stdout, env: process.env },
): Promise<number> {
  const { values: sourceSpecs, rest, problems } = takeRepeated(argv, '--source');
  const args = parseArgs(rest, deployOptions);
  args.problems.push(...problems);
  const [action, ...targets] = args.positionals;
  if (args.help || !DEPLOY_ACTIONS.some((a) => a === action)) {
    io.out.write(
      `${renderHelp(USAGE, 'deploy algorithms onto nodes with a staged rollout', deployOptions, SOURCE_HELP)}\n`,
    );
    return args.help ? 0 : 2;
  }
  const o = loadConfig<DeployOptions>(DeployOptionsSchema, deployOptions, args, io.env);
  const client = new DeploymentClient(new HubClient(o.hub, adminTokenFrom(o)));
  switch (action as DeployAction) {
    case 'deploy': {
      const [algorithmId, version] = targets;
      if (!algorithmId || !version) throw usageError('deploy needs <algorithmId> <version>');
      const request = requestOf(algorithmId, version, sourceSpecs, o);
      if (o.rules) request.rules = await readRules(o.rules);
      return deploy(client, request, o, io);
    }
    case 'deployments':
      return list(client, o, io);
    case 'rollback': {
      const [id] = targets;
      if (!id) throw usageError('rollback needs <deploymentId>');
      const d = await client.act(id, 'rollback', o.reason);
      if (o.json) io.out.write(`${JSON.stringify(d, null, 2)}\n`);
      else
        io.out.write(
          `rolled back ${d.id} (${d.algorithmId} ${d.version}): ${d.counts['rolled-back'] ?? 0} node(s) rolled back; ` +
            'nodes that ran an earlier deployment of the algorithm got it back\n',
        );
      return 0;
    }
  }
}

/** The deployment body from the command line. */
function requestOf(
  algorithmId: string,
  version: string,
  specs: string[],
  o: DeployOptions,
): DeploymentRequest {
  const nodes = splitList(o.nodes);
  const agencies = splitList(o.agency);
  if (nodes.length === 0 && agencies.length === 0) throw usageError('give --nodes a,b,c or --agency X');
  if (specs.length === 0) throw usageError('give at least one --source <id>=<url>');
  return {
    algorithmId,
    version,
    targets: { ...(nodes.length > 0 ? { nodes } : {}), ...(agencies.length > 0 ? { agencies } : {}) },
    sources: specs.map((spec) => parseSource(spec, o.fps)),
    rollout: {
      canaryShare: o.canary,
      gate: { minActiveShare: o.minActive, maxFailed: o.maxFailed, timeoutMs: durationOption(o.gateTimeout) },
    },
  };
}

/** The rules file: a JSON array of alert rules; the hub validates each rule. */
async function readRules(path: string): Promise<NonNullable<DeploymentRequest['rules']>> {
  let parsed: unknown;
  try {
    parsed = JSON.parse(await readFile(path, 'utf8'));
  } catch (err) {
    throw new CitysenseError(
      'CS_ERR_CLI_INPUT',
      `could not read rules from ${path}: ${errorMessage(err)}`,
      400,
    );
  }
  if (!Array.isArray(parsed))
    throw new CitysenseError('CS_ERR_CLI_INPUT', `${path} must hold a JSON array of alert rules`, 400);
  return parsed as NonNullable<DeploymentRequest['rules']>;
}

/** `cam1=rtsp://…`: the id is everything before the first `=`. */
export function parseSource(spec: string, fps: number): VideoSource {
  const eq = spec.indexOf('=');
  const id = eq > 0 ? spec.slice(0, eq) : '';
  const url = spec.slice(eq + 1);
  if (!/^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$/.test(id) || url === '')
    throw usageError(`--source ${spec}: write <id>=<url>, e.g. cam1=rtsp://10.0.0.7/stream1`);
  return { id, url, fps };
}

async function deploy(client: DeploymentClient, request: DeploymentRequest, o: DeployOptions, io: DeployIo) {
  const created = await client.create(request);
  if (!o.json) {
    io.out.write(
      `deployment ${created.id}: ${created.algorithmId} ${created.version} onto ${created.total} node(s), ` +
        `canary ${created.nodes
          .filter((n) => n.canary)
          .map((n) => n.nodeId)
          .join(', ')}\n`,
    );
    for (const n of created.nodes.filter((x) => x.state === 'refused'))
      io.out.write(`  refused ${n.nodeId}: ${n.reason ?? n.code ?? 'no reason given'}\n`);
  }
  if (o.detach) {
    if (o.json) io.out.write(`${JSON.stringify(created, null, 2)}\n`);
    return 0;
  }
  const final = await watch(client, created, o, io);
  if (!final) {
    io.out.write(`stopped watching; ${created.id} goes on at the hub (citysense algo deployments)\n`);
    return 130;
  }
  if (o.json) io.out.write(`${JSON.stringify(final, null, 2)}\n`);
  else {
    io.out.write(`${final.state}: ${final.reason ?? ''}\n`);
    if (final.state === 'paused')
      io.out.write(
        `resume with POST ${o.hub}/v1/deployments/${final.id}/resume, or undo with: citysense algo rollback ${final.id}\n`,
      );
  }
  return final.state === 'completed' ? 0 : 1;
}

/** Polls the deployment until it settles; undefined when interrupted. */
function watch(
  client: DeploymentClient,
  created: DeploymentDetail,
  o: DeployOptions,
  io: DeployIo,
): Promise<DeploymentDetail | undefined> {
  return watchFleet({
    initial: created,
    fetch: () => client.get(created.id),
    settled: (d) => SETTLED_STATES.has(d.state),
    snapshot: snapshotOf,
    order: STATE_ORDER,
    intervalMs: o.interval,
    out: io.out,
    quiet: o.json,
    signal: io.signal,
  });
}

/** Node states in the order a rollout moves through them. */
const STATE_ORDER = [
  'active',
  'loading',
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

/** A deployment as the fleet progress display shows it. */
function snapshotOf(d: DeploymentDetail): FleetSnapshot {
  return {
    id: d.id,
    title: `${d.algorithmId} ${d.version}`,
    state: d.state,
    reason: d.reason,
    total: d.total,
    counts: d.counts,
    downloadProgress: meanProgress(
      d.nodes.flatMap((n) => (n.state === 'downloading' && n.progress !== null ? [n.progress] : [])),
    ),
    footer:
      d.stats.nodesReporting > 0
        ? [
            `  ${'inference'.padEnd(12)} ${d.stats.fps} fps over ${d.stats.nodesReporting} node(s), ` +
              `p50 ${d.stats.inferP50Ms ?? '-'} ms, p95 ${d.stats.inferP95Ms ?? '-'} ms, ${d.stats.errors} error(s)`,
          ]
        : [],
  };
}

async function list(client: DeploymentClient, o: DeployOptions, io: DeployIo): Promise<number> {
  const deployments = await client.list({ algorithmId: o.algorithmId, state: o.state });
  if (o.json) {
    io.out.write(`${JSON.stringify(deployments, null, 2)}\n`);
    return 0;
  }
  if (deployments.length === 0) io.out.write('no deployments\n');
  for (const d of deployments) io.out.write(`${listLine(d)}\n`);
  return 0;
}

function listLine(d: DeploymentSummary): string {
  const counts = STATE_ORDER.flatMap((s) => ((d.counts[s] ?? 0) > 0 ? [`${s} ${d.counts[s]}`] : []));
  return `${d.id}  ${`${d.algorithmId} ${d.version}`.padEnd(24)} ${d.state.padEnd(11)} ${d.createdAt}  ${counts.join(', ')}`;
}

/** Pulls every `flag <value>` / `flag=<value>` out of argv (parseArgs keeps only the last of a flag). */
function takeRepeated(
  argv: string[],
  flag: string,
): { values: string[]; rest: string[]; problems: ConfigProblem[] } {
  const values: string[] = [];
  const rest: string[] = [];
  const problems: ConfigProblem[] = [];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] ?? '';
    if (arg === flag) {
      const next = argv[i + 1];
      if (next === undefined || next.startsWith('--'))
        problems.push({ path: flag, message: 'needs a value' });
      else {
        values.push(next);
        i++;
      }
    } else if (arg.startsWith(`${flag}=`)) values.push(arg.slice(flag.length + 1));
    else rest.push(arg);
  }
  return { values, rest, problems };
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
