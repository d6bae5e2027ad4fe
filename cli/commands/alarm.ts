import { readFile } from 'node:fs/promises';
import { CitysenseError, errorMessage } from '@citysense/protocol';
import { Type } from '@sinclair/typebox';
import { loadConfig, optionsOf, parseArgs, renderHelp } from '../config-loader.ts';
import { HubClient } from '../hub-client.ts';
import type { Command } from '../main.ts';
import { adminTokenFrom } from './token.ts';

const connection = {
  hub: Type.String({ default: 'http://localhost:8080', pattern: '^https?://', description: 'hub URL' }),
  adminToken: Type.Optional(
    Type.String({ description: 'admin token or API token (default: read from <data-dir>/admin-token)' }),
  ),
  dataDir: Type.String({ default: './data', description: "the hub's data dir, to read its admin token" }),
  json: Type.Boolean({ default: false, description: 'print JSON' }),
};
const aliases = { adminToken: ['CITYSENSE_ADMIN_TOKEN'], hub: ['CITYSENSE_HUB'] };

const AlarmOptionsSchema = Type.Object({
  ...connection,
  state: Type.Optional(Type.String({ description: 'list: active | acknowledged | cleared | open' })),
  severity: Type.Optional(Type.String({ description: 'list: critical | major | minor | warning' })),
  node: Type.Optional(Type.String({ description: 'list: only alarms of this node' })),
  rule: Type.Optional(Type.String({ description: 'list: only alarms of this rule' })),
  since: Type.Optional(Type.String({ description: 'list: raised at or after (ISO 8601 or epoch ms)' })),
  limit: Type.Integer({ minimum: 1, maximum: 10_000, default: 100, description: 'list: at most this many' }),
  comment: Type.Optional(Type.String({ description: 'ack/clear: why' })),
});
type AlarmOptions = {
  hub: string;
  adminToken?: string;
  dataDir: string;
  json: boolean;
  state?: string;
  severity?: string;
  node?: string;
  rule?: string;
  since?: string;
  limit: number;
  comment?: string;
};
const alarmOptions = optionsOf(AlarmOptionsSchema, aliases);

const RuleOptionsSchema = Type.Object({
  ...connection,
  id: Type.Optional(Type.String({ description: 'create: rule id (generated when absent)' })),
  name: Type.Optional(Type.String({ description: 'create: rule name' })),
  severity: Type.String({ default: 'major', description: 'create: critical | major | minor | warning' }),
  agency: Type.Optional(Type.String({ description: 'create: owner agency (default platform-wide)' })),
  nodes: Type.Optional(Type.String({ description: 'create: comma-separated node ids (default every node)' })),
  device: Type.Optional(Type.String({ description: "create: Sparkplug device ('' = node health)" })),
  metric: Type.Optional(Type.String({ description: 'create: metric name or pattern with *' })),
  kind: Type.String({
    default: 'threshold',
    description: 'create: threshold | rate-of-change | absence | duration',
  }),
  op: Type.Optional(Type.String({ description: 'create: > >= < <= == != (threshold, duration)' })),
  value: Type.Optional(Type.Number({ description: 'create: threshold value' })),
  clearValue: Type.Optional(Type.Number({ description: 'create: hysteresis clear value (threshold)' })),
  delta: Type.Optional(Type.Number({ description: 'create: change that raises (rate-of-change)' })),
  windowS: Type.Optional(Type.Number({ description: 'create: window, s (rate-of-change)' })),
  direction: Type.Optional(Type.String({ description: 'create: up | down | any (rate-of-change)' })),
  forS: Type.Optional(Type.Number({ description: 'create: seconds (absence, duration)' })),
  webhookUrl: Type.Optional(Type.String({ description: "create: this rule's own webhook target" })),
});
type RuleOptions = Omit<
  AlarmOptions,
  'state' | 'node' | 'rule' | 'since' | 'limit' | 'comment' | 'severity'
> & {
  id?: string;
  name?: string;
  severity: string;
  agency?: string;
  nodes?: string;
  device?: string;
  metric?: string;
  kind: string;
  op?: string;
  value?: number;
  clearValue?: number;
  delta?: number;
  windowS?: number;
  direction?: string;
  forS?: number;
  webhookUrl?: string;
};
const ruleOptions = optionsOf(RuleOptionsSchema, aliases);

const ALARM_USAGE = `Usage:
  citysense alarm list [--state open] [--severity critical] [--node id] [--rule id] [--since 2026-01-01T00:00:00Z] [--json]
  citysense alarm ack <alarm-id> [--comment "crew sent"]
  citysense alarm clear <alarm-id> [--comment "fixed"]`;
const RULE_USAGE = `Usage:
  citysense rule list [--json]
  citysense rule create <rule.json | ->
  citysense rule create --name "PM2.5 high" --metric PM2.5 --device air --op '>' --value 75 [--clear-value 50] [--severity major]
  citysense rule create --name "Gateway silent" --kind absence --metric PM2.5 --device air --nodes pole-001 --for-s 300
  citysense rule delete <rule-id>`;

interface AlarmView {
  id: string;
  ruleId: string;
  node: string;
  device: string;
  metric: string;
  severity: string;
  state: string;
  count: number;
  lastValue: number | null;
  raisedAt: string;
}
interface RuleView {
  id: string;
  name: string;
  enabled: boolean;
  severity: string;
  agencyId: string | null;
  scope: { nodes?: string[]; device?: string; metric: string };
  condition: Record<string, unknown> & { kind: string };
}

/** `citysense alarm list|ack|clear`: the hub's tiered alarms. */
export const alarmCommand: Command = {
  name: 'alarm',
  summary: 'hub alarms: list (filter by state, severity, node, rule, since), ack, clear',
  async run(argv) {
    const args = parseArgs(argv, alarmOptions);
    const [action, id] = args.positionals;
    if (args.help || (action !== 'list' && action !== 'ack' && action !== 'clear')) {
      console.log(renderHelp(ALARM_USAGE, alarmCommand.summary, alarmOptions));
      return args.help ? 0 : 2;
    }
    const o = loadConfig<AlarmOptions>(AlarmOptionsSchema, alarmOptions, args, process.env);
    const client = new HubClient(o.hub, adminTokenFrom(o));
    if (action === 'list') {
      const q = new URLSearchParams({ limit: String(o.limit) });
      for (const key of ['state', 'severity', 'node', 'rule', 'since'] as const) {
        const v = o[key];
        if (v !== undefined) q.set(key, v);
      }
      const alarms = await client.request<AlarmView[]>('GET', `/v1/alarms?${q}`);
      if (o.json) console.log(JSON.stringify(alarms, null, 2));
      else
        for (const a of alarms)
          console.log(
            `${a.id}  ${a.severity.padEnd(8)} ${a.state.padEnd(12)} ${a.ruleId.padEnd(20)} ${a.node}/${a.device || '-'}/${a.metric}  ×${a.count}  last ${a.lastValue ?? '-'}  since ${a.raisedAt}`,
          );
      return 0;
    }
    if (!id) throw new CitysenseError('CS_ERR_CLI_USAGE', `alarm ${action} needs the alarm id`, 2);
    const body = o.comment === undefined ? {} : { comment: o.comment };
    const a = await client.request<AlarmView>('POST', `/v1/alarms/${encodeURIComponent(id)}/${action}`, body);
    console.log(o.json ? JSON.stringify(a, null, 2) : `${a.id} is ${a.state}`);
    return 0;
  },
};

/** `citysense rule list|create|delete`: alarm rules of the hub's rules engine. */
export const ruleCommand: Command = {
  name: 'rule',
  summary: 'alarm rules: list, create (JSON file or flags), delete',
  async run(argv) {
    const args = parseArgs(argv, ruleOptions);
    const [action, target] = args.positionals;
    if (args.help || (action !== 'list' && action !== 'create' && action !== 'delete')) {
      console.log(renderHelp(RULE_USAGE, ruleCommand.summary, ruleOptions));
      return args.help ? 0 : 2;
    }
    const o = loadConfig<RuleOptions>(RuleOptionsSchema, ruleOptions, args, process.env);
    const client = new HubClient(o.hub, adminTokenFrom(o));
    if (action === 'list') {
      const rules = await client.request<RuleView[]>('GET', '/v1/alarm-rules');
      if (o.json) console.log(JSON.stringify(rules, null, 2));
      else for (const r of rules) console.log(describeRule(r));
      return 0;
    }
    if (action === 'delete') {
      if (!target) throw new CitysenseError('CS_ERR_CLI_USAGE', 'rule delete needs the rule id', 2);
      await client.request('DELETE', `/v1/alarm-rules/${encodeURIComponent(target)}`);
      console.log(`deleted rule ${target}`);
      return 0;
    }
    const body = target === undefined ? ruleFromFlags(o) : await ruleFromFile(target);
    const rule = await client.request<RuleView>('POST', '/v1/alarm-rules', body);
    console.log(o.json ? JSON.stringify(rule, null, 2) : `created ${describeRule(rule)}`);
    return 0;
  },
};

function describeRule(r: RuleView): string {
  const { kind, ...rest } = r.condition;
  const scope = `${r.scope.nodes?.length ? r.scope.nodes.join(',') : '*'}/${r.scope.device ?? '*'}/${r.scope.metric}`;
  return `${r.id.padEnd(20)} ${r.severity.padEnd(8)} ${r.enabled ? 'on ' : 'off'} ${kind.padEnd(14)} ${JSON.stringify(rest)}  ${scope}  ${r.agencyId ?? 'platform-wide'}  ${r.name}`;
}

async function ruleFromFile(path: string): Promise<unknown> {
  const text = path === '-' ? await readStdin() : await readFile(path, 'utf8');
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new CitysenseError('CS_ERR_CLI_USAGE', `${path} is not JSON: ${errorMessage(err)}`, 2);
  }
}

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

/** A rule from flags; the hub validates it (CS_ERR_RULE_INVALID names what is missing). */
function ruleFromFlags(o: RuleOptions): Record<string, unknown> {
  if (!o.metric || !o.name)
    throw new CitysenseError(
      'CS_ERR_CLI_USAGE',
      'rule create needs a JSON file, or at least --name and --metric',
      2,
    );
  const condition: Record<string, unknown> = { kind: o.kind };
  const put = (key: string, value: unknown) => {
    if (value !== undefined) condition[key] = value;
  };
  put('op', o.op);
  put('value', o.value);
  put('clearValue', o.clearValue);
  put('delta', o.delta);
  put('windowS', o.windowS);
  put('direction', o.direction);
  put('forS', o.forS);
  return {
    ...(o.id === undefined ? {} : { id: o.id }),
    name: o.name,
    severity: o.severity,
    ...(o.agency === undefined ? {} : { agencyId: o.agency }),
    ...(o.webhookUrl === undefined ? {} : { webhookUrl: o.webhookUrl }),
    scope: {
      metric: o.metric,
      ...(o.device === undefined ? {} : { device: o.device }),
      ...(o.nodes === undefined ? {} : { nodes: o.nodes.split(',').filter((n) => n !== '') }),
    },
    condition,
  };
}
