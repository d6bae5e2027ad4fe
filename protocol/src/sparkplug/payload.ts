import { CitysenseError, errorMessage } from '../errors.ts';
import { loadProto, lookupType } from '../proto-root.ts';

// `long_value` is read as int64 instead of uint64: the same varint on the wire, but
// negative Int64 values (two's complement, Sparkplug 3.0 §6.4.16) then decode exactly
// without 64-bit objects. UInt64 values at or above 2^63 are mapped back below.
const root = loadProto('./sparkplug/sparkplug_b.proto', (text) =>
  text.replace(/uint64 long_value/g, 'int64 long_value'),
);
const PayloadType = lookupType(root, 'org.eclipse.tahu.protobuf.Payload');

/** Sparkplug B datatypes, Sparkplug 3.0 §6.4.16. */
export const DataType = {
  Unknown: 0,
  Int8: 1,
  Int16: 2,
  Int32: 3,
  Int64: 4,
  UInt8: 5,
  UInt16: 6,
  UInt32: 7,
  UInt64: 8,
  Float: 9,
  Double: 10,
  Boolean: 11,
  String: 12,
  DateTime: 13,
  Text: 14,
  UUID: 15,
  DataSet: 16,
  Bytes: 17,
  File: 18,
  Template: 19,
} as const;
/** A Sparkplug datatype code. */
export type DataTypeCode = number;

/** A decoded metric value; `undefined` for datatypes citysense does not store (DataSet, Template, arrays). */
export type MetricValue = number | boolean | string | Uint8Array | null | undefined;

/** Property values on a metric (`Quality`, `engUnit`, ...). */
export type PropertyValue = number | boolean | string;

/** One Sparkplug metric. */
export interface SparkplugMetric {
  name?: string | undefined;
  alias?: number | undefined;
  /** Milliseconds since the epoch. */
  timestamp?: number | undefined;
  datatype?: DataTypeCode | undefined;
  value: MetricValue;
  isNull?: boolean | undefined;
  isHistorical?: boolean | undefined;
  properties?: Record<string, PropertyValue> | undefined;
}

/** One Sparkplug payload. */
export interface SparkplugPayload {
  timestamp?: number | undefined;
  seq?: number | undefined;
  uuid?: string | undefined;
  metrics: SparkplugMetric[];
}

/** Sparkplug quality codes as carried in the `Quality` property (OPC DA convention used by Tahu hosts). */
export const QualityCode = { good: 192, uncertain: 64, bad: 0 } as const;

interface RawPropertySet {
  keys?: string[];
  values?: RawPropertyValue[];
}
interface RawPropertyValue {
  type?: number;
  is_null?: boolean;
  int_value?: number;
  long_value?: number;
  float_value?: number;
  double_value?: number;
  boolean_value?: boolean;
  string_value?: string;
}
interface RawMetric {
  name?: string;
  alias?: number;
  timestamp?: number;
  datatype?: number;
  is_historical?: boolean;
  is_null?: boolean;
  properties?: RawPropertySet;
  int_value?: number;
  long_value?: number;
  float_value?: number;
  double_value?: number;
  boolean_value?: boolean;
  string_value?: string;
  bytes_value?: Uint8Array;
}
interface RawPayload {
  timestamp?: number;
  seq?: number;
  uuid?: string;
  metrics?: RawMetric[];
}

const TWO_64 = 2 ** 64;

/** Decodes the value of a metric by its datatype (Sparkplug 3.0 §6.4.16: signed ints are two's complement). */
function decodeValue(datatype: number, m: RawMetric | RawPropertyValue): MetricValue {
  switch (datatype) {
    case DataType.Int8:
      return m.int_value === undefined ? undefined : (m.int_value << 24) >> 24;
    case DataType.Int16:
      return m.int_value === undefined ? undefined : (m.int_value << 16) >> 16;
    case DataType.Int32:
      return m.int_value === undefined ? undefined : m.int_value | 0;
    case DataType.UInt8:
    case DataType.UInt16:
    case DataType.UInt32:
      return m.int_value;
    case DataType.Int64:
      return m.long_value;
    case DataType.UInt64:
    case DataType.DateTime:
      return m.long_value === undefined ? undefined : m.long_value < 0 ? m.long_value + TWO_64 : m.long_value;
    case DataType.Float:
      return m.float_value;
    case DataType.Double:
      return m.double_value;
    case DataType.Boolean:
      return m.boolean_value;
    case DataType.String:
    case DataType.Text:
    case DataType.UUID:
      return m.string_value;
    case DataType.Bytes:
    case DataType.File:
      return 'bytes_value' in m ? m.bytes_value : undefined;
    case DataType.Unknown:
      // Data messages may omit the datatype (Sparkplug 3.0 §6.4.9: it comes from the
      // birth); return the raw field and let the host apply the birth's datatype.
      return (
        m.int_value ?? m.long_value ?? m.double_value ?? m.float_value ?? m.boolean_value ?? m.string_value
      );
    default:
      return undefined;
  }
}

/**
 * Applies a birth-declared datatype to a value decoded without one: reinterprets
 * two's-complement integers as signed. Other values pass through.
 */
export function applyDatatype(datatype: number, value: MetricValue): MetricValue {
  if (typeof value !== 'number') return value;
  switch (datatype) {
    case DataType.Int8:
      return (value << 24) >> 24;
    case DataType.Int16:
      return (value << 16) >> 16;
    case DataType.Int32:
      return value | 0;
    case DataType.UInt64:
    case DataType.DateTime:
      return value < 0 ? value + TWO_64 : value;
    default:
      return value;
  }
}

function encodeValue(datatype: number, value: MetricValue): Partial<RawMetric> {
  if (value === null || value === undefined) return {};
  switch (datatype) {
    case DataType.Int8:
    case DataType.Int16:
    case DataType.Int32:
    case DataType.UInt8:
    case DataType.UInt16:
    case DataType.UInt32:
      return { int_value: Number(value) >>> 0 };
    case DataType.Int64:
    case DataType.UInt64:
    case DataType.DateTime:
      return { long_value: Number(value) };
    case DataType.Float:
      return { float_value: Number(value) };
    case DataType.Double:
      return { double_value: Number(value) };
    case DataType.Boolean:
      return { boolean_value: Boolean(value) };
    case DataType.String:
    case DataType.Text:
    case DataType.UUID:
      return { string_value: String(value) };
    case DataType.Bytes:
    case DataType.File:
      return { bytes_value: value instanceof Uint8Array ? value : Buffer.from(String(value)) };
    default:
      throw new CitysenseError(
        'CS_ERR_SPARKPLUG_DATATYPE',
        `datatype ${datatype} cannot be encoded by citysense`,
        400,
      );
  }
}

function decodeProperties(set: RawPropertySet | undefined): Record<string, PropertyValue> | undefined {
  if (!set?.keys?.length) return undefined;
  const out: Record<string, PropertyValue> = {};
  set.keys.forEach((key, i) => {
    const pv = set.values?.[i];
    if (!pv || pv.is_null) return;
    const v = decodeValue(pv.type ?? 0, pv);
    if (typeof v === 'number' || typeof v === 'boolean' || typeof v === 'string') out[key] = v;
  });
  return out;
}

function encodeProperties(props: Record<string, PropertyValue>): RawPropertySet {
  const keys: string[] = [];
  const values: RawPropertyValue[] = [];
  for (const [key, v] of Object.entries(props)) {
    keys.push(key);
    if (typeof v === 'boolean') values.push({ type: DataType.Boolean, boolean_value: v });
    else if (typeof v === 'string') values.push({ type: DataType.String, string_value: v });
    else if (Number.isInteger(v)) values.push({ type: DataType.Int32, int_value: v >>> 0 });
    else values.push({ type: DataType.Double, double_value: v });
  }
  return { keys, values };
}

/** Decodes a Sparkplug B payload; throws CS_ERR_SPARKPLUG_DECODE on malformed bytes. */
export function decodePayload(bytes: Uint8Array): SparkplugPayload {
  let raw: RawPayload;
  try {
    raw = PayloadType.decode(bytes) as unknown as RawPayload;
  } catch (err) {
    throw new CitysenseError(
      'CS_ERR_SPARKPLUG_DECODE',
      `malformed Sparkplug B payload: ${errorMessage(err)}`,
      400,
    );
  }
  // protobufjs exposes absent optional fields as prototype defaults ('' or 0): only
  // fields present on the wire (own properties) count (Sparkplug 3.0 §6.4.7 optional presence).
  const own = <K extends keyof RawMetric>(m: RawMetric, k: K): RawMetric[K] | undefined =>
    Object.hasOwn(m, k) ? m[k] : undefined;
  const metrics: SparkplugMetric[] = (raw.metrics ?? []).map((m) => ({
    name: own(m, 'name'),
    alias: own(m, 'alias'),
    timestamp: own(m, 'timestamp'),
    datatype: own(m, 'datatype'),
    value: m.is_null ? null : decodeValue(m.datatype ?? 0, m),
    isNull: m.is_null,
    isHistorical: m.is_historical,
    properties: decodeProperties(m.properties),
  }));
  const has = (k: keyof RawPayload) => Object.hasOwn(raw, k);
  return {
    timestamp: has('timestamp') ? raw.timestamp : undefined,
    seq: has('seq') ? raw.seq : undefined,
    uuid: has('uuid') ? raw.uuid : undefined,
    metrics,
  };
}

/** Encodes a Sparkplug B payload. Metrics without datatype are rejected. */
export function encodePayload(payload: SparkplugPayload): Uint8Array {
  const metrics: RawMetric[] = payload.metrics.map((m) => {
    if (m.datatype === undefined) {
      throw new CitysenseError(
        'CS_ERR_SPARKPLUG_DATATYPE',
        `metric ${m.name ?? m.alias} has no datatype`,
        400,
      );
    }
    const raw: RawMetric = { datatype: m.datatype, ...encodeValue(m.datatype, m.value) };
    if (m.name !== undefined) raw.name = m.name;
    if (m.alias !== undefined) raw.alias = m.alias;
    if (m.timestamp !== undefined) raw.timestamp = m.timestamp;
    if (m.value === null || m.isNull) raw.is_null = true;
    if (m.isHistorical) raw.is_historical = true;
    if (m.properties && Object.keys(m.properties).length > 0) raw.properties = encodeProperties(m.properties);
    return raw;
  });
  const raw: RawPayload = { metrics };
  if (payload.timestamp !== undefined) raw.timestamp = payload.timestamp;
  if (payload.seq !== undefined) raw.seq = payload.seq;
  if (payload.uuid !== undefined) raw.uuid = payload.uuid;
  return PayloadType.encode(raw).finish();
}
