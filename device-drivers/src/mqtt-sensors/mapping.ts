/**
 * The declarative mapping compiled once at start and applied to every message: pure functions,
 * no I/O, so conversions are tested without a broker. A message either names a device and yields
 * values (some metrics may be missing or mistyped: those are problems, the rest still count), or
 * is refused as a whole with the reason.
 */
import { EARLIEST_READING_TIME } from '../conformance.ts';
import type { MetricDescriptor, MetricType, Quality } from '../driver.ts';
import type { MqttSensorDriverConfig, MqttSensorMapping } from './config.ts';
import { compileJsonPath, evaluateJsonPath, type JsonPath } from './json-path.ts';

/** Why (part of) a message was refused; each is one counter of the driver. */
export type PayloadProblemKind =
  | 'oversize'
  | 'notJson'
  | 'noDevice'
  | 'unknownDevice'
  | 'badTime'
  | 'missing'
  | 'wrongType';

/** One thing wrong with a message. */
export interface PayloadProblem {
  kind: PayloadProblemKind;
  message: string;
}

/** One metric of a compiled mapping. */
export interface CompiledMetric {
  name: string;
  path: JsonPath;
  type: Exclude<MetricType, 'bytes'>;
  unit: string | undefined;
  scale: number;
  offset: number;
  optional: boolean;
}

/** Where a compiled mapping takes the device id from. */
export type CompiledDeviceSource =
  | { from: 'id'; id: string }
  | { from: 'topic'; level: number; prefix: string }
  | { from: 'json'; path: JsonPath; prefix: string };

/** A mapping ready to apply. */
export interface CompiledMapping {
  /** Position in `mappings`, for messages. */
  index: number;
  topic: string;
  kind: string;
  device: CompiledDeviceSource;
  /** Every device id the mapping may produce readings for. */
  devices: ReadonlySet<string>;
  time: { path: JsonPath; format: 'epoch-ms' | 'epoch-s' | 'iso8601' } | undefined;
  metrics: readonly CompiledMetric[];
}

/** Values of one message for one device. */
export interface DecodedMessage {
  device: string;
  /** Source time in ms; the arrival time when the mapping has no time or it was unusable. */
  time: number;
  /** True when `time` came from the payload (then an earlier-or-equal time is a duplicate). */
  sourceTime: boolean;
  quality: Quality;
  values: { metric: string; value: number | boolean | string }[];
  /** Problems with single metrics or the time; the values above are still good. */
  problems: PayloadProblem[];
}

/** Outcome of applying one mapping to one message. */
export type MappingOutcome =
  | { ok: true; message: DecodedMessage }
  | { ok: false; device: string | undefined; problem: PayloadProblem };

const DAY_MS = 86_400_000;
const ISO8601 = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})$/;

function mustCompile(source: string): JsonPath {
  const path = compileJsonPath(source);
  // The config validation rejected bad paths already; reaching this is a bug here.
  if (typeof path === 'string') throw new Error(`uncompiled JSON path: ${path}`);
  return path;
}

/** Compiles the validated mappings of `config`. */
export function compileMappings(config: MqttSensorDriverConfig): CompiledMapping[] {
  return config.mappings.map((m, index) => compileMapping(m, index));
}

function compileMapping(m: MqttSensorMapping, index: number): CompiledMapping {
  const prefix = m.device.prefix ?? '';
  let device: CompiledDeviceSource;
  if (m.device.id !== undefined) device = { from: 'id', id: m.device.id };
  else if (m.device.fromTopic !== undefined) device = { from: 'topic', level: m.device.fromTopic, prefix };
  else device = { from: 'json', path: mustCompile(m.device.fromJson ?? '$'), prefix };
  return {
    index,
    topic: m.topic,
    kind: m.kind,
    device,
    devices: new Set(m.device.id !== undefined ? [m.device.id] : (m.devices ?? [])),
    time: m.time ? { path: mustCompile(m.time.path), format: m.time.format } : undefined,
    metrics: m.metrics.map((x) => ({
      name: x.name,
      path: mustCompile(x.path),
      type: x.type,
      unit: x.unit,
      scale: x.scale ?? 1,
      offset: x.offset ?? 0,
      optional: x.optional,
    })),
  };
}

/** Metric descriptors of a mapping's devices. */
export function mappingMetrics(mapping: CompiledMapping): MetricDescriptor[] {
  return mapping.metrics.map((m) => ({ name: m.name, type: m.type, unit: m.unit }));
}

/**
 * The device id a message is for, when it can be told without parsing the payload (literal id,
 * topic level); used to attribute an unparsable payload to its device.
 */
export function deviceBeforeParse(mapping: CompiledMapping, topic: string): string | undefined {
  const source = mapping.device;
  if (source.from === 'id') return source.id;
  if (source.from === 'topic') {
    const level = topic.split('/')[source.level];
    return level ? source.prefix + level : undefined;
  }
  return undefined;
}

/** Applies `mapping` to the parsed JSON `payload` that arrived on `topic` at `arrival` (ms). */
export function applyMapping(
  mapping: CompiledMapping,
  topic: string,
  payload: unknown,
  arrival: number,
): MappingOutcome {
  let device: string | undefined;
  if (mapping.device.from === 'json') {
    const raw = evaluateJsonPath(payload, mapping.device.path);
    if (typeof raw === 'string' || (typeof raw === 'number' && Number.isSafeInteger(raw))) {
      device = mapping.device.prefix + String(raw);
    } else {
      const message =
        raw === undefined
          ? `no device id at ${mapping.device.path.source}`
          : `device id at ${mapping.device.path.source} is ${describe(raw)}, not a string`;
      return { ok: false, device: undefined, problem: { kind: 'noDevice', message } };
    }
  } else {
    device = deviceBeforeParse(mapping, topic);
    if (device === undefined) {
      return {
        ok: false,
        device: undefined,
        problem: { kind: 'noDevice', message: `topic "${topic}" has no device id level` },
      };
    }
  }
  if (!mapping.devices.has(device)) {
    return {
      ok: false,
      device,
      problem: {
        kind: 'unknownDevice',
        message: `device "${device}" on "${topic}" is not in the devices of mapping ${mapping.index}; add it to accept its readings`,
      },
    };
  }

  const problems: PayloadProblem[] = [];
  let time = arrival;
  let sourceTime = false;
  let quality: Quality = 'good';
  if (mapping.time) {
    const parsed = parseTime(evaluateJsonPath(payload, mapping.time.path), mapping.time.format, arrival);
    if (typeof parsed === 'number') {
      time = parsed;
      sourceTime = true;
    } else {
      // The value is real but its time is not known: keep it, at arrival time, as uncertain.
      quality = 'uncertain';
      problems.push({ kind: 'badTime', message: `time at ${mapping.time.path.source} ${parsed}` });
    }
  }

  const values: DecodedMessage['values'] = [];
  for (const metric of mapping.metrics) {
    const raw = evaluateJsonPath(payload, metric.path);
    if (raw === undefined || raw === null) {
      if (!metric.optional) {
        problems.push({ kind: 'missing', message: `no value for ${metric.name} at ${metric.path.source}` });
      }
      continue;
    }
    const value = convertMetricValue(metric, raw);
    if (value === undefined) {
      problems.push({
        kind: 'wrongType',
        message: `${metric.name} at ${metric.path.source} is ${describe(raw)}, not ${metric.type}`,
      });
      continue;
    }
    values.push({ metric: metric.name, value });
  }
  return { ok: true, message: { device, time, sourceTime, quality, values, problems } };
}

/** The reading value of `raw` for `metric`, or undefined when it is not of the metric's type. */
export function convertMetricValue(
  metric: CompiledMetric,
  raw: unknown,
): number | boolean | string | undefined {
  switch (metric.type) {
    case 'double':
    case 'int': {
      const n = toNumber(raw);
      if (n === undefined) return undefined;
      const scaled = n * metric.scale + metric.offset;
      if (metric.type === 'double') return Number.isFinite(scaled) ? scaled : undefined;
      const rounded = Math.round(scaled);
      return Number.isSafeInteger(rounded) ? rounded : undefined;
    }
    case 'bool':
      if (typeof raw === 'boolean') return raw;
      if (raw === 0 || raw === 1) return raw === 1;
      return undefined;
    case 'string':
      return typeof raw === 'string' ? raw : undefined;
  }
}

/** A JSON number, or a string holding one (some LoRa payload decoders quote numbers). */
function toNumber(raw: unknown): number | undefined {
  if (typeof raw === 'number') return Number.isFinite(raw) ? raw : undefined;
  if (typeof raw === 'string' && raw.trim() !== '') {
    const n = Number(raw);
    return Number.isFinite(n) ? n : undefined;
  }
  return undefined;
}

/** Milliseconds since the epoch, or why `raw` is not a usable time. */
export function parseTime(
  raw: unknown,
  format: 'epoch-ms' | 'epoch-s' | 'iso8601',
  now: number,
): number | string {
  let ms: number;
  if (raw === undefined || raw === null) return 'is missing';
  if (format === 'iso8601') {
    if (typeof raw !== 'string' || !ISO8601.test(raw)) return `is ${describe(raw)}, not ISO 8601 with a zone`;
    ms = Date.parse(raw);
  } else {
    const n = toNumber(raw);
    if (n === undefined) return `is ${describe(raw)}, not a number of ${format}`;
    ms = format === 'epoch-s' ? n * 1000 : n;
  }
  ms = Math.floor(ms);
  // A device whose clock was never set sends 1970; a wrong unit sends the far future.
  if (!Number.isSafeInteger(ms) || ms < EARLIEST_READING_TIME || ms > now + DAY_MS) {
    return `${JSON.stringify(raw)} is not a plausible ${format} time`;
  }
  return ms;
}

function describe(raw: unknown): string {
  if (raw === null) return 'null';
  if (Array.isArray(raw)) return 'an array';
  if (typeof raw === 'object') return 'an object';
  const text = JSON.stringify(raw);
  return `${typeof raw} ${text.length > 40 ? `${text.slice(0, 40)}…` : text}`;
}
