import { readFileSync } from 'node:fs';
import { CitysenseError, errorMessage } from '@citysense/protocol';
import type { TObject, TSchema } from '@sinclair/typebox';
import { Value } from '@sinclair/typebox/value';

/** One command-line option derived from a config schema property. */
export interface OptionSpec {
  /** `--http-port` */
  flag: string;
  /** Property path in the config document, e.g. `['spool', 'maxBytes']`. */
  path: string[];
  /** Environment variables, first match wins. */
  env: string[];
  kind: 'string' | 'number' | 'boolean';
  description: string;
  defaultValue: unknown;
}

/** One problem found in the configuration. */
export interface ConfigProblem {
  path: string;
  message: string;
}

const kebab = (s: string) => s.replace(/([a-z0-9])([A-Z])/g, '$1-$2').toLowerCase();
const envName = (path: string[]) =>
  `CITYSENSE_${path.map((p) => kebab(p).replace(/-/g, '_').toUpperCase()).join('_')}`;

/**
 * Derives flags and env variables from a TypeBox object schema: `httpPort` becomes
 * `--http-port` and `CITYSENSE_HTTP_PORT`; nested objects give `--spool-max-bytes`.
 * `aliases` adds well-known variables such as `DATABASE_URL`; `flagNames` renames
 * a flag (`hubUrl` → `--hub`).
 */
export function optionsOf(
  schema: TObject,
  aliases: Record<string, string[]> = {},
  flagNames: Record<string, string> = {},
  prefix: string[] = [],
): OptionSpec[] {
  const specs: OptionSpec[] = [];
  for (const [key, prop] of Object.entries(schema.properties) as Array<[string, TSchema]>) {
    const path = [...prefix, key];
    const type = prop.type as string | undefined;
    if (type === 'object' && prop.properties) {
      specs.push(...optionsOf(prop as TObject, aliases, flagNames, path));
      continue;
    }
    if (type !== 'string' && type !== 'integer' && type !== 'number' && type !== 'boolean') continue;
    const dotted = path.join('.');
    specs.push({
      flag: flagNames[dotted] ?? `--${path.map(kebab).join('-')}`,
      path,
      env: [envName(path), ...(aliases[dotted] ?? [])],
      kind: type === 'integer' ? 'number' : type,
      description: String(prop.description ?? ''),
      defaultValue: prop.default,
    });
  }
  return specs;
}

function setPath(doc: Record<string, unknown>, path: string[], value: unknown): void {
  let node = doc;
  for (const key of path.slice(0, -1)) {
    const next = node[key];
    if (typeof next !== 'object' || next === null) node[key] = {};
    node = node[key] as Record<string, unknown>;
  }
  const last = path[path.length - 1];
  if (last !== undefined) node[last] = value;
}

function coerce(spec: OptionSpec, raw: string): unknown {
  if (spec.kind === 'boolean') return raw === '' || raw === 'true' || raw === '1' || raw === 'yes';
  if (spec.kind === 'number') return raw.trim() !== '' && Number.isFinite(Number(raw)) ? Number(raw) : raw;
  return raw;
}

/** Command-line arguments split into known options, a config file path, and positionals. */
export interface ParsedArgs {
  values: Map<OptionSpec, string>;
  configFile: string | undefined;
  help: boolean;
  positionals: string[];
  problems: ConfigProblem[];
}

/** Parses `--flag value`, `--flag=value` and boolean `--flag [true|false]`; unknown flags are problems. */
export function parseArgs(argv: string[], specs: OptionSpec[]): ParsedArgs {
  const byFlag = new Map(specs.map((s) => [s.flag, s]));
  const out: ParsedArgs = {
    values: new Map(),
    configFile: undefined,
    help: false,
    positionals: [],
    problems: [],
  };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] ?? '';
    if (arg === '--help' || arg === '-h') {
      out.help = true;
      continue;
    }
    if (!arg.startsWith('--')) {
      out.positionals.push(arg);
      continue;
    }
    const eq = arg.indexOf('=');
    const flag = eq > 0 ? arg.slice(0, eq) : arg;
    const inline = eq > 0 ? arg.slice(eq + 1) : undefined;
    if (flag === '--config') {
      out.configFile = inline ?? argv[++i];
      continue;
    }
    const spec = byFlag.get(flag);
    if (!spec) {
      out.problems.push({ path: flag, message: 'unknown option (see --help)' });
      continue;
    }
    if (inline !== undefined) out.values.set(spec, inline);
    else if (spec.kind === 'boolean') {
      // `--flag`, or `--flag true|false` so that a default-on option can be turned off.
      const next = argv[i + 1];
      if (next === 'true' || next === 'false') {
        out.values.set(spec, next);
        i++;
      } else out.values.set(spec, 'true');
    } else {
      const next = argv[i + 1];
      if (next === undefined || next.startsWith('--'))
        out.problems.push({ path: flag, message: 'needs a value' });
      else out.values.set(spec, next);
      i++;
    }
  }
  return out;
}

/**
 * Builds the configuration: defaults < config file (JSON) < environment < flags,
 * then validates against the schema and reports every problem at once
 * (CS_ERR_CONFIG_INVALID, details = problems).
 */
export function loadConfig<T>(
  schema: TObject,
  specs: OptionSpec[],
  args: ParsedArgs,
  env: NodeJS.ProcessEnv,
): T {
  const problems = [...args.problems];
  let doc: Record<string, unknown> = {};
  if (args.configFile) {
    try {
      const parsed: unknown = JSON.parse(readFileSync(args.configFile, 'utf8'));
      if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed))
        throw new Error('top level must be a JSON object');
      doc = parsed as Record<string, unknown>;
    } catch (err) {
      problems.push({ path: args.configFile, message: `config file unreadable: ${errorMessage(err)}` });
    }
  }
  for (const spec of specs) {
    const fromEnv = spec.env.map((name) => env[name]).find((v) => v !== undefined && v !== '');
    if (fromEnv !== undefined) setPath(doc, spec.path, coerce(spec, fromEnv));
  }
  for (const [spec, raw] of args.values) setPath(doc, spec.path, coerce(spec, raw));
  const withDefaults = Value.Default(schema, doc) as Record<string, unknown>;
  for (const e of Value.Errors(schema, withDefaults)) {
    const spec = specs.find((s) => `/${s.path.join('/')}` === e.path);
    problems.push({ path: spec ? `${spec.flag} / ${spec.env[0]}` : e.path || '/', message: e.message });
  }
  if (problems.length > 0) {
    const text = problems.map((p) => `  - ${p.path}: ${p.message}`).join('\n');
    throw new CitysenseError(
      'CS_ERR_CONFIG_INVALID',
      `configuration has ${problems.length} problem(s):\n${text}`,
      400,
      problems,
    );
  }
  return Object.freeze(withDefaults) as T;
}

/** Renders `--help` for a command from its option specs. */
export function renderHelp(usage: string, summary: string, specs: OptionSpec[], extra = ''): string {
  const rows = specs.map((s) => {
    const def = s.defaultValue === undefined ? '' : ` (default ${JSON.stringify(s.defaultValue)})`;
    return `  ${`${s.flag}${s.kind === 'boolean' ? '' : ' <value>'}`.padEnd(34)} ${s.description}${def}\n  ${''.padEnd(34)} env ${s.env.join(', ')}`;
  });
  return `${usage}\n\n${summary}\n\nOptions:\n${rows.join('\n')}\n  ${'--config <file.json>'.padEnd(34)} read options from a JSON file (flags and env override it)\n  ${'--help'.padEnd(34)} show this help\n${extra}`;
}

/** What a command needs to read its options: schema, derived flags and help texts. */
export interface CommandOptionsSpec {
  schema: TObject;
  options: OptionSpec[];
  usage: string;
  summary: string;
  extraHelp?: string;
}

/**
 * Parses a command's argv: prints `--help` and returns undefined, or returns the
 * validated configuration (CS_ERR_CONFIG_INVALID listing every problem).
 */
export function readCommandOptions<T>(argv: string[], spec: CommandOptionsSpec): T | undefined {
  const args = parseArgs(argv, spec.options);
  if (args.help) {
    console.log(renderHelp(spec.usage, spec.summary, spec.options, spec.extraHelp));
    return undefined;
  }
  return loadConfig<T>(spec.schema, spec.options, args, process.env);
}

/** A comma-separated option as a list, blanks dropped. */
export function splitList(value: string | undefined): string[] {
  return (value ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '');
}

/** `90s`, `10m`, `1h`, `500ms` in milliseconds; undefined when `text` is not such a duration. */
export function parseDuration(text: string): number | undefined {
  const m = /^(\d+)(ms|s|m|h)$/.exec(text);
  const unit = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 } as const;
  if (!m?.[1] || !m[2]) return undefined;
  return Number(m[1]) * unit[m[2] as keyof typeof unit];
}
