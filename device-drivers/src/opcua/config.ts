/**
 * Options of the OPC UA driver as one TypeBox schema: the server endpoint and its security, the user,
 * and either an explicit node map (`devices`) or a browse root (`browse`) from which variables are
 * discovered and named automatically (see `browse.ts` for the naming).
 */
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type Static, Type } from '@sinclair/typebox';
import { type DriverConfigProblem, resolveDriverConfig } from '../config.ts';

/** Sparkplug id pattern (Sparkplug 3.0 §4.1.1, as citysense restricts it). */
const ID_PATTERN = '^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$';

/** OPC UA NodeId in its string form (OPC 10000-6 §5.3.1.10): `ns=1;s=Pole/Lamp/Power`, `i=2258`, `nsu=…;s=…`. */
const NODE_ID_PATTERN = '^((ns=[0-9]+|nsu=[^;]+);)?[isgb]=.+$';

/** Security modes of a secure channel (OPC 10000-4 §7.20). */
export const OPCUA_SECURITY_MODES = ['None', 'Sign', 'SignAndEncrypt'] as const;
/** Security policies node-opcua implements (OPC 10000-7 profiles), by their short names. */
export const OPCUA_SECURITY_POLICIES = [
  'None',
  'Basic128Rsa15',
  'Basic256',
  'Basic256Sha256',
  'Aes128_Sha256_RsaOaep',
  'Aes256_Sha256_RsaPss',
] as const;

/** Reading value types an OPC UA variable can map to. */
export const OPCUA_METRIC_TYPES = ['double', 'int', 'bool', 'string'] as const;

/** One variable read as one metric. */
export const OpcUaNodeConfig = Type.Object(
  {
    nodeId: Type.String({
      pattern: NODE_ID_PATTERN,
      description: 'NodeId of the variable, e.g. ns=1;s=Pole/Lamp/Power',
    }),
    metric: Type.String({
      minLength: 1,
      maxLength: 128,
      description: 'Sparkplug metric name, e.g. Lamp/Power',
    }),
    type: Type.Union(
      OPCUA_METRIC_TYPES.map((t) => Type.Literal(t)),
      { description: 'Value type of the metric; the variable value is converted to it' },
    ),
    unit: Type.Optional(Type.String({ description: 'UCUM-style unit, e.g. W, Cel, kW.h' })),
    samplingIntervalMs: Type.Optional(
      Type.Integer({
        minimum: 0,
        description: 'Server-side sampling interval of this variable; default the driver-wide one',
      }),
    ),
  },
  { additionalProperties: false },
);

/** One device (a PLC, a meter) and the variables it maps. */
export const OpcUaDeviceConfig = Type.Object(
  {
    id: Type.String({ pattern: ID_PATTERN, description: 'Sparkplug device id' }),
    kind: Type.String({
      minLength: 1,
      default: 'opcua',
      description: 'What the device is, e.g. lamp-pole-plc',
    }),
    nodes: Type.Array(OpcUaNodeConfig, { minItems: 1, description: 'Variables of the device' }),
  },
  { additionalProperties: false },
);

/** Discovery of variables under one node instead of an explicit map. */
export const OpcUaBrowseConfig = Type.Object(
  {
    root: Type.String({ pattern: NODE_ID_PATTERN, description: 'NodeId to browse from, e.g. ns=1;s=Pole' }),
    maxDepth: Type.Integer({
      minimum: 1,
      maximum: 16,
      default: 4,
      description: 'Levels below the root to follow',
    }),
    deviceId: Type.Optional(
      Type.String({ pattern: ID_PATTERN, description: "Device id; default the root's browse name" }),
    ),
    kind: Type.String({ minLength: 1, default: 'opcua', description: 'Device kind' }),
  },
  { additionalProperties: false },
);

const Anonymous = Type.Object({ type: Type.Literal('anonymous') }, { additionalProperties: false });
const UserName = Type.Object(
  {
    type: Type.Literal('username'),
    username: Type.String({ minLength: 1 }),
    password: Type.String(),
  },
  { additionalProperties: false },
);

/** Options of an OpcUaDriver. */
export const OpcUaDriverConfig = Type.Object(
  {
    endpointUrl: Type.String({
      pattern: '^opc\\.tcp://[^/:]+(:[0-9]{1,5})?(/.*)?$',
      default: 'opc.tcp://localhost:4840',
      description: 'Server endpoint, opc.tcp://host:port[/path]',
    }),
    securityMode: Type.Union(
      OPCUA_SECURITY_MODES.map((m) => Type.Literal(m)),
      { default: 'None', description: 'Message security mode; must be one the server offers' },
    ),
    securityPolicy: Type.Union(
      OPCUA_SECURITY_POLICIES.map((p) => Type.Literal(p)),
      { default: 'None', description: 'Security policy; None exactly when securityMode is None' },
    ),
    user: Type.Union([Anonymous, UserName], {
      default: { type: 'anonymous' },
      description: 'User identity of the session',
    }),
    devices: Type.Optional(
      Type.Array(OpcUaDeviceConfig, { minItems: 1, description: 'Explicit node map; or give `browse`' }),
    ),
    browse: Type.Optional(OpcUaBrowseConfig),
    samplingIntervalMs: Type.Integer({
      minimum: 0,
      default: 1000,
      description: 'Default server-side sampling interval of a variable',
    }),
    publishingIntervalMs: Type.Integer({
      minimum: 10,
      default: 1000,
      description: 'How often the server sends the changes it sampled (one readings batch)',
    }),
    connectTimeoutMs: Type.Integer({
      minimum: 100,
      default: 10_000,
      description: 'Longest wait for a connection and session',
    }),
    pkiFolder: Type.String({
      minLength: 1,
      default: join(tmpdir(), 'citysense-opcua', 'client-pki'),
      description:
        'Client certificate store; put it on persistent storage in the field so that trusted server certificates survive a restart',
    }),
    acceptUnknownServerCertificate: Type.Boolean({
      default: false,
      description: 'Trust a server certificate not yet in pkiFolder/trusted (only on a network you control)',
    }),
    reconnect: Type.Object(
      {
        initialDelayMs: Type.Integer({
          minimum: 0,
          default: 500,
          description: 'First wait after a lost connection',
        }),
        maxDelayMs: Type.Integer({
          minimum: 0,
          default: 30_000,
          description: 'Longest wait between attempts',
        }),
      },
      { additionalProperties: false, default: {} },
    ),
  },
  { additionalProperties: false },
);

/** Resolved options of one mapped variable. */
export type OpcUaNodeConfig = Static<typeof OpcUaNodeConfig>;
/** Resolved options of one mapped device. */
export type OpcUaDeviceConfig = Static<typeof OpcUaDeviceConfig>;
/** Resolved browse options. */
export type OpcUaBrowseConfig = Static<typeof OpcUaBrowseConfig>;
/** Resolved options of an OpcUaDriver. */
export type OpcUaDriverConfig = Static<typeof OpcUaDriverConfig>;

/** Applies defaults and validates; throws CS_ERR_CONFIG_INVALID listing every problem at once. */
export function resolveOpcUaConfig(input: unknown): Readonly<OpcUaDriverConfig> {
  return resolveDriverConfig(OpcUaDriverConfig, input, 'OPC UA driver options', crossProblems);
}

/** What the schema cannot say: one of devices/browse, a consistent security pair, unique names. */
function crossProblems(config: OpcUaDriverConfig): DriverConfigProblem[] {
  const problems: DriverConfigProblem[] = [];
  if ((config.devices === undefined) === (config.browse === undefined)) {
    problems.push({ path: '/', message: 'give exactly one of `devices` (explicit node map) or `browse`' });
  }
  if ((config.securityMode === 'None') !== (config.securityPolicy === 'None')) {
    problems.push({
      path: '/securityPolicy',
      message: `securityPolicy ${config.securityPolicy} does not fit securityMode ${config.securityMode}: use None with None, a real policy with Sign or SignAndEncrypt`,
    });
  }
  if (config.reconnect.maxDelayMs < config.reconnect.initialDelayMs) {
    problems.push({ path: '/reconnect/maxDelayMs', message: 'must not be below initialDelayMs' });
  }
  const ids = new Set<string>();
  config.devices?.forEach((device, i) => {
    if (ids.has(device.id))
      problems.push({ path: `/devices/${i}/id`, message: `device id "${device.id}" is used twice` });
    ids.add(device.id);
    const metrics = new Set<string>();
    device.nodes.forEach((node, j) => {
      if (metrics.has(node.metric)) {
        problems.push({
          path: `/devices/${i}/nodes/${j}/metric`,
          message: `metric "${node.metric}" is used twice`,
        });
      }
      metrics.add(node.metric);
    });
  });
  return problems;
}
