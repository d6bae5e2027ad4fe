/**
 * Options of the MQTT sensor driver as one TypeBox schema. A mapping turns the JSON a platform
 * publishes on its own topics into readings, the way zigbee2mqtt converters do, but as data:
 * a topic filter, where the device id comes from, where the time is, and a path, type and
 * linear conversion per metric.
 *
 * Device ids and the Driver contract: `devices()` must be complete once `start` resolves (the
 * agent births devices from it and types readings by it). A mapping with a literal `device.id`
 * declares that device; a mapping that takes the id from a topic level (`fromTopic`) or from the
 * payload (`fromJson`) must list the ids it accepts in `devices`. A message naming an id that is
 * not listed is counted and reported (CS_ERR_MQTT_SENSOR_UNKNOWN_DEVICE), never turned into
 * readings of an undeclared device; adding it is a configuration change, like adding a meter.
 */
import { isValidId } from '@citysense/protocol';
import { type Static, Type } from '@sinclair/typebox';
import { type DriverConfigProblem, resolveDriverConfig } from '../config.ts';
import { compileJsonPath } from './json-path.ts';
import { topicFilterDepth, topicFilterProblems } from './topic-filter.ts';

const ID = '^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$';

/** Formats of a payload timestamp. */
export const MQTT_SENSOR_TIME_FORMATS = ['epoch-ms', 'epoch-s', 'iso8601'] as const;
/** Metric types a mapping may produce (no `bytes`: JSON carries none). */
export const MQTT_SENSOR_METRIC_TYPES = ['double', 'int', 'bool', 'string'] as const;

/** Where a message's device id comes from: exactly one of `id`, `fromTopic`, `fromJson`. */
export const MqttSensorDeviceSource = Type.Object(
  {
    id: Type.Optional(Type.String({ pattern: ID, description: 'Literal Sparkplug device id' })),
    fromTopic: Type.Optional(
      Type.Integer({
        minimum: 0,
        description: 'Index of the topic level holding the id, 0 = first (e.g. 1 in nbiot/{imei}/up)',
      }),
    ),
    fromJson: Type.Optional(
      Type.String({ minLength: 1, description: 'JSON path of the id in the payload, e.g. "$.meterId"' }),
    ),
    prefix: Type.Optional(
      Type.String({
        pattern: '^[A-Za-z0-9_.:-]{0,32}$',
        description: 'Prepended to a topic or JSON id, e.g. "manhole-"; `devices` lists the full ids',
      }),
    ),
  },
  { additionalProperties: false },
);

/** Where a message's time comes from; without it, the arrival time. */
export const MqttSensorTimeSource = Type.Object(
  {
    path: Type.String({ minLength: 1, description: 'JSON path of the timestamp, e.g. "$.ts"' }),
    format: Type.Union(
      MQTT_SENSOR_TIME_FORMATS.map((f) => Type.Literal(f)),
      { description: 'epoch-ms, epoch-s (numbers) or iso8601 (string with a zone)' },
    ),
  },
  { additionalProperties: false },
);

/** One metric read from the payload: `value = raw * scale + offset`. */
export const MqttSensorMetricMapping = Type.Object(
  {
    name: Type.String({ minLength: 1, description: 'Sparkplug metric name, e.g. "Water/Level"' }),
    path: Type.String({ minLength: 1, description: 'JSON path of the value, e.g. "$.data.pm25"' }),
    type: Type.Union(
      MQTT_SENSOR_METRIC_TYPES.map((t) => Type.Literal(t)),
      { description: 'Type of the reading' },
    ),
    unit: Type.Optional(Type.String({ description: 'UCUM-style unit of the converted value' })),
    scale: Type.Optional(Type.Number({ description: 'Multiplier of the raw number (double, int only)' })),
    offset: Type.Optional(Type.Number({ description: 'Added after scaling (double, int only)' })),
    optional: Type.Boolean({
      default: false,
      description: 'A message without this value is fine (partial uplinks); otherwise it is a payload fault',
    }),
  },
  { additionalProperties: false },
);

/** One mapping: messages on `topic` become readings of one device kind. */
export const MqttSensorMapping = Type.Object(
  {
    topic: Type.String({ minLength: 1, description: 'MQTT topic filter, "+" and "#" allowed' }),
    device: MqttSensorDeviceSource,
    devices: Type.Optional(
      Type.Array(Type.String({ pattern: ID }), {
        minItems: 1,
        description: 'Device ids accepted from the topic or payload; required with fromTopic/fromJson',
      }),
    ),
    kind: Type.String({ minLength: 1, description: 'What the devices are, e.g. "water-level"' }),
    time: Type.Optional(MqttSensorTimeSource),
    metrics: Type.Array(MqttSensorMetricMapping, { minItems: 1 }),
  },
  { additionalProperties: false },
);

/** Options of an MqttSensorDriver. */
export const MqttSensorDriverConfig = Type.Object(
  {
    url: Type.String({
      pattern: '^mqtts?://[^\\s]+$',
      default: 'mqtt://127.0.0.1:1883',
      description: 'Broker the sensors or their platform publish to: mqtt:// or mqtts://',
    }),
    username: Type.Optional(Type.String()),
    password: Type.Optional(Type.String()),
    clientId: Type.Optional(
      Type.String({ minLength: 1, maxLength: 128, description: 'Default: citysense-<driver id>-<random>' }),
    ),
    rejectUnauthorized: Type.Boolean({
      default: true,
      description: 'Verify the broker certificate on mqtts://; turn off only for a lab broker',
    }),
    qos: Type.Union([Type.Literal(0), Type.Literal(1), Type.Literal(2)], {
      default: 1,
      description: 'QoS of the subscriptions; duplicates that QoS 1 may deliver are dropped by time',
    }),
    keepaliveSeconds: Type.Integer({ minimum: 0, maximum: 65_535, default: 30 }),
    connectTimeoutMs: Type.Integer({ minimum: 100, default: 10_000 }),
    reconnectPeriodMs: Type.Integer({
      minimum: 100,
      default: 2000,
      description: 'Wait between reconnect attempts after the broker is lost',
    }),
    maxPayloadBytes: Type.Integer({
      minimum: 16,
      default: 65_536,
      description: 'Larger payloads are refused unparsed',
    }),
    faultIntervalMs: Type.Integer({
      minimum: 0,
      default: 60_000,
      description: 'At most one payload fault per device (or mapping) in this interval; the rest are counted',
    }),
    mappings: Type.Array(MqttSensorMapping, { minItems: 1 }),
  },
  { additionalProperties: false },
);

/** One metric of a mapping. */
export type MqttSensorMetricMapping = Static<typeof MqttSensorMetricMapping>;
/** One mapping. */
export type MqttSensorMapping = Static<typeof MqttSensorMapping>;
/** Resolved options of an MqttSensorDriver. */
export type MqttSensorDriverConfig = Static<typeof MqttSensorDriverConfig>;

/** Applies defaults and validates; throws CS_ERR_CONFIG_INVALID listing every problem at once. */
export function resolveMqttSensorConfig(input: unknown): Readonly<MqttSensorDriverConfig> {
  return resolveDriverConfig(MqttSensorDriverConfig, input, 'MQTT sensor driver options', mappingProblems);
}

/** What the schema cannot say: filters, paths, one id source, allow-lists, consistent devices. */
function mappingProblems(config: MqttSensorDriverConfig): DriverConfigProblem[] {
  const problems: DriverConfigProblem[] = [];
  const add = (path: string, message: string) => problems.push({ path, message });
  const checkPath = (path: string, source: string) => {
    const compiled = compileJsonPath(source);
    if (typeof compiled === 'string') add(path, compiled);
  };
  /** Per device: its kind and its metrics' types, to catch two mappings that disagree. */
  const declared = new Map<string, { kind: string; types: Map<string, string>; at: string }>();

  config.mappings.forEach((m, i) => {
    const at = `/mappings/${i}`;
    for (const p of topicFilterProblems(m.topic)) add(`${at}/topic`, p);
    const { id, fromTopic, fromJson } = m.device;
    const sources = [id, fromTopic, fromJson].filter((s) => s !== undefined).length;
    if (sources !== 1) {
      add(`${at}/device`, 'set exactly one of id, fromTopic, fromJson');
    }
    if (id !== undefined && m.devices !== undefined) {
      add(`${at}/devices`, 'a mapping with a literal device.id declares that device; remove devices');
    }
    if (id !== undefined && m.device.prefix !== undefined) {
      add(`${at}/device/prefix`, 'prefix applies to fromTopic/fromJson ids only');
    }
    if ((fromTopic !== undefined || fromJson !== undefined) && m.devices === undefined) {
      add(
        `${at}/devices`,
        'list the device ids this mapping accepts: devices() must be known when start resolves',
      );
    }
    if (fromTopic !== undefined && topicFilterProblems(m.topic).length === 0) {
      const { levels, open } = topicFilterDepth(m.topic);
      if (fromTopic >= levels && !open) {
        add(`${at}/device/fromTopic`, `topic "${m.topic}" has only ${levels} level(s) (0 to ${levels - 1})`);
      }
    }
    if (fromJson !== undefined) checkPath(`${at}/device/fromJson`, fromJson);
    if (m.time) checkPath(`${at}/time/path`, m.time.path);

    const names = new Set<string>();
    m.metrics.forEach((metric, j) => {
      const mat = `${at}/metrics/${j}`;
      checkPath(`${mat}/path`, metric.path);
      if (names.has(metric.name)) add(`${mat}/name`, `metric "${metric.name}" is mapped twice`);
      names.add(metric.name);
      const numeric = metric.type === 'double' || metric.type === 'int';
      if (!numeric && (metric.scale !== undefined || metric.offset !== undefined)) {
        add(mat, `scale and offset apply to double and int metrics, not ${metric.type}`);
      }
      if (metric.scale !== undefined && !Number.isFinite(metric.scale)) add(`${mat}/scale`, 'must be finite');
    });

    const ids = id !== undefined ? [id] : (m.devices ?? []);
    const seen = new Set<string>();
    ids.forEach((deviceId, k) => {
      const where = id !== undefined ? `${at}/device/id` : `${at}/devices/${k}`;
      if (!isValidId(deviceId)) return;
      if (seen.has(deviceId)) add(where, `device "${deviceId}" is listed twice`);
      seen.add(deviceId);
      if (m.device.prefix && id === undefined && !deviceId.startsWith(m.device.prefix)) {
        add(where, `device "${deviceId}" does not start with the prefix "${m.device.prefix}"`);
      }
      const before = declared.get(deviceId);
      if (!before) {
        declared.set(deviceId, {
          kind: m.kind,
          types: new Map(m.metrics.map((x) => [x.name, x.type])),
          at,
        });
        return;
      }
      if (before.kind !== m.kind) {
        add(`${at}/kind`, `device "${deviceId}" is "${before.kind}" in ${before.at}, "${m.kind}" here`);
      }
      for (const metric of m.metrics) {
        const type = before.types.get(metric.name);
        if (type !== undefined && type !== metric.type) {
          add(
            `${at}/metrics`,
            `metric "${deviceId}/${metric.name}" is ${type} in ${before.at}, ${metric.type} here`,
          );
        }
        before.types.set(metric.name, type ?? metric.type);
      }
    });
  });
  return problems;
}
