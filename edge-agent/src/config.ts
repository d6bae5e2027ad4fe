import { AlertRuleSchema, CitysenseError, DriverConfigSchema, VideoSourceSchema } from '@citysense/protocol';
import { type Static, type TSchema, Type } from '@sinclair/typebox';
import { Value } from '@sinclair/typebox/value';

const MiB = 1024 * 1024;

// Driver entries are part of the remote-configuration wire contract, so their schema lives in protocol.
export { DRIVER_TYPES } from '@citysense/protocol';

/** One driver instance to run (the schema the hub validates remote configurations against). */
export const DriverConfig = DriverConfigSchema;
/** One driver instance to run. */
export type DriverConfig = Static<typeof DriverConfig>;

/** WGS84 position of the pole the box is mounted on. */
export const Location = Type.Object(
  {
    lon: Type.Number({ minimum: -180, maximum: 180 }),
    lat: Type.Number({ minimum: -90, maximum: 90 }),
  },
  { additionalProperties: false },
);

/** The edge agent's whole configuration document; every field has a default except `token`. */
export const AgentConfig = Type.Object(
  {
    hubUrl: Type.String({
      default: 'http://localhost:8080',
      description: 'Base URL of the cloud hub (http or https)',
    }),
    token: Type.Optional(
      Type.String({ minLength: 1, description: 'One-time enrolment token; ignored once enrolled' }),
    ),
    stateDir: Type.String({
      minLength: 1,
      default: './data/agent',
      description: 'Identity, bdSeq and spool live here',
    }),
    name: Type.Optional(Type.String({ minLength: 1 })),
    location: Type.Optional(Location),
    poleId: Type.Optional(Type.String({ minLength: 1 })),
    spool: Type.Object(
      {
        maxBytes: Type.Integer({ minimum: MiB, default: 256 * MiB }),
        policy: Type.Union([Type.Literal('drop-oldest'), Type.Literal('reject-new')], {
          default: 'drop-oldest',
        }),
      },
      { default: {}, additionalProperties: false },
    ),
    uplink: Type.Object(
      {
        window: Type.Integer({
          minimum: 1,
          maximum: 65_536,
          default: 512,
          description: 'Max unacked records in flight',
        }),
        ackTimeoutMs: Type.Integer({ minimum: 100, default: 15_000 }),
        backoff: Type.Object(
          {
            initialMs: Type.Integer({ minimum: 1, default: 500 }),
            maxMs: Type.Integer({ minimum: 1, default: 30_000 }),
          },
          { default: {}, additionalProperties: false },
        ),
      },
      { default: {}, additionalProperties: false },
    ),
    healthIntervalMs: Type.Integer({ minimum: 100, default: 10_000 }),
    inference: Type.Object(
      {
        enabled: Type.Boolean({
          default: true,
          description: 'Run the algorithms the hub assigns to this node (video analytics)',
        }),
        pollIntervalMs: Type.Integer({
          minimum: 100,
          default: 30_000,
          description: 'How often to ask the hub for assignments; an NCMD or a reconnect asks at once',
        }),
        statsIntervalMs: Type.Integer({
          minimum: 100,
          default: 10_000,
          description: 'How often a running assignment reports its inference figures to the hub',
        }),
        maxParallelDownloads: Type.Integer({ minimum: 1, maximum: 16, default: 1 }),
        intraOpNumThreads: Type.Integer({
          minimum: 1,
          maximum: 256,
          default: 1,
          description: 'ONNX Runtime threads per model',
        }),
        localPackages: Type.Array(
          Type.Object(
            {
              file: Type.String({ minLength: 1, description: 'a .csalgo file on this gateway' }),
              sources: Type.Array(VideoSourceSchema, { minItems: 1, maxItems: 64 }),
              rules: Type.Optional(Type.Array(AlertRuleSchema, { maxItems: 64 })),
            },
            { additionalProperties: false },
          ),
          {
            default: [],
            description:
              'Packages imported on the gateway; each runs only once the centre has filed that exact package',
          },
        ),
        executionProviders: Type.Array(Type.String({ minLength: 1, maxLength: 64 }), {
          minItems: 1,
          maxItems: 8,
          default: ['cpu'],
          description:
            'ONNX Runtime execution providers in preference order (cpu, cuda, …); reported at enrolment',
        }),
      },
      { default: {}, additionalProperties: false },
    ),
    ota: Type.Object(
      {
        enabled: Type.Boolean({
          default: true,
          description:
            'Install the agent and firmware updates the hub assigns (A/B slots, health check, rollback)',
        }),
        pollIntervalMs: Type.Integer({
          minimum: 100,
          default: 60_000,
          description: 'How often to ask the hub for OTA updates; an NCMD or a reconnect asks at once',
        }),
        maxBoots: Type.Integer({
          minimum: 1,
          maximum: 20,
          default: 3,
          description:
            'Boots a new version may take without passing its health check before it is rolled back',
        }),
        hardwareModel: Type.Optional(
          Type.String({
            minLength: 1,
            maxLength: 64,
            description: "Gateway hardware model, matched against an artifact's hardware list",
          }),
        ),
        firmwareVersion: Type.String({
          default: '0.0.0',
          description: 'Version of the firmware the gateway shipped with (before any OTA)',
        }),
        bootloaderCommand: Type.Optional(
          Type.Array(Type.String({ minLength: 1 }), {
            minItems: 1,
            description:
              'Real hardware: command run as <command…> activate|rollback|confirm <slot> <slot dir> to switch the firmware slot',
          }),
        ),
        supervised: Type.Boolean({
          default: false,
          description: 'Set by `citysense agent --supervise` for the agent it runs; agent updates need it',
        }),
        slot: Type.Optional(
          Type.Union([Type.Literal('a'), Type.Literal('b'), Type.Literal('factory')], {
            description: 'Set by the supervisor: the agent slot this process runs from',
          }),
        ),
      },
      { default: {}, additionalProperties: false },
    ),
    drivers: Type.Array(DriverConfig, {
      default: [{ type: 'lamp-pole-sim', id: 'lamp-pole-sim', options: {} }],
    }),
  },
  { additionalProperties: false },
);
/** The edge agent's resolved configuration. */
export type AgentConfig = Static<typeof AgentConfig>;

/** One configuration problem, with a JSON pointer to the offending field. */
export interface ConfigProblem {
  path: string;
  message: string;
}

/** A deep-partial config as the CLI assembles it from flags, env and file. */
export type AgentConfigInput = Record<string, unknown>;

function literalChoices(schema: TSchema): string[] | null {
  const anyOf = (schema as { anyOf?: Array<{ const?: unknown }> }).anyOf;
  if (!anyOf?.every((s) => typeof s.const === 'string')) return null;
  return anyOf.map((s) => String(s.const));
}

function problemsOf(value: unknown): ConfigProblem[] {
  const problems: ConfigProblem[] = [];
  for (const e of Value.Errors(AgentConfig, value)) {
    const choices = literalChoices(e.schema);
    problems.push({
      path: e.path || '/',
      message: choices ? `must be one of ${choices.join(', ')}` : e.message,
    });
  }
  return problems;
}

/** Cross-field checks; tolerant of a structurally invalid document so all problems come out together. */
function semanticProblems(config: Partial<AgentConfig>): ConfigProblem[] {
  const problems: ConfigProblem[] = [];
  if (typeof config.hubUrl === 'string' && !isHttpUrl(config.hubUrl)) {
    problems.push({
      path: '/hubUrl',
      message: 'must be an http:// or https:// URL, e.g. https://hub.example.city',
    });
  }
  const backoff = config.uplink?.backoff;
  if (backoff && typeof backoff.maxMs === 'number' && backoff.maxMs < backoff.initialMs) {
    problems.push({ path: '/uplink/backoff/maxMs', message: 'must be at least uplink.backoff.initialMs' });
  }
  const seen = new Set<string>();
  if (Array.isArray(config.drivers)) {
    config.drivers.forEach((d, i) => {
      if (typeof d?.id !== 'string') return;
      if (seen.has(d.id))
        problems.push({ path: `/drivers/${i}/id`, message: `duplicate driver id "${d.id}"` });
      seen.add(d.id);
    });
  }
  return problems;
}

function isHttpUrl(text: string): boolean {
  try {
    const url = new URL(text);
    return url.protocol === 'http:' || url.protocol === 'https:';
  } catch {
    return false;
  }
}

function deepFreeze<T>(value: T): T {
  if (value && typeof value === 'object') {
    for (const v of Object.values(value)) deepFreeze(v);
    Object.freeze(value);
  }
  return value;
}

/**
 * Applies defaults to `input`, validates it and returns a frozen config. Every
 * problem is reported at once in one CS_ERR_CONFIG_INVALID error (details: ConfigProblem[]).
 */
export function resolveAgentConfig(input: AgentConfigInput = {}): Readonly<AgentConfig> {
  const value = Value.Default(AgentConfig, structuredClone(input));
  const problems = problemsOf(value);
  problems.push(...semanticProblems(value as Partial<AgentConfig>));
  if (problems.length > 0) {
    const list = problems.map((p) => `${p.path}: ${p.message}`).join('; ');
    throw new CitysenseError(
      'CS_ERR_CONFIG_INVALID',
      `agent configuration has ${problems.length} problem(s), fix them and start again: ${list}`,
      400,
      problems,
    );
  }
  return deepFreeze(value as AgentConfig);
}
