import type { MetricType, Quality } from '@citysense/device-drivers';
import {
  CitysenseError,
  DataType,
  type DataTypeCode,
  decodePayload,
  encodePayload,
  errorMessage,
  type MetricValue,
  QualityCode,
  type SparkplugMetric,
} from '@citysense/protocol';

/**
 * Spool record encoding, version 1:
 *
 *   byte 0      format version (1)
 *   byte 1      length n of the device id in bytes (0 = node-level record)
 *   2 .. 2+n    device id, UTF-8 (Sparkplug ids are ASCII, at most 64 characters)
 *   rest        Sparkplug B payload with metric NAMES, datatypes, per-metric
 *               timestamps and the `Quality` property for non-good readings
 *
 * Names, not aliases, go to disk: aliases belong to one birth, and a record may be
 * published after a restart or a driver change that reassigns them.
 */
const FORMAT_VERSION = 1;

/** One decoded spool record: the metrics of one device (or of the node). */
export interface TelemetryRecord {
  /** Sparkplug device id; null for node-level records (health). */
  device: string | null;
  /** Metrics with name, datatype and timestamp. */
  metrics: SparkplugMetric[];
}

/** Sparkplug datatype of a driver metric type (double→Double, int→Int64, bool→Boolean, string→String, bytes→Bytes). */
export function datatypeOf(type: MetricType): DataTypeCode {
  switch (type) {
    case 'double':
      return DataType.Double;
    case 'int':
      return DataType.Int64;
    case 'bool':
      return DataType.Boolean;
    case 'string':
      return DataType.String;
    case 'bytes':
      return DataType.Bytes;
  }
}

/** The metric type a value implies when the driver did not declare one. */
export function inferMetricType(value: unknown): MetricType {
  if (typeof value === 'boolean') return 'bool';
  if (typeof value === 'string') return 'string';
  if (value instanceof Uint8Array) return 'bytes';
  return 'double';
}

/** `Quality` property value for a reading quality; undefined for good (omitted on the wire). */
export function qualityProperty(quality: Quality): number | undefined {
  return quality === 'good' ? undefined : QualityCode[quality];
}

/**
 * Coerces a driver value to its declared type. Returns undefined when the value
 * cannot represent the type (a string for a double), so the caller records it as bad.
 */
export function coerceValue(type: MetricType, value: unknown): MetricValue {
  switch (type) {
    case 'double':
      return typeof value === 'number' && !Number.isNaN(value) ? value : undefined;
    case 'int':
      return typeof value === 'number' && Number.isFinite(value) ? Math.round(value) : undefined;
    case 'bool':
      return typeof value === 'boolean' ? value : undefined;
    case 'string':
      return typeof value === 'string' ? value : undefined;
    case 'bytes':
      return value instanceof Uint8Array ? value : undefined;
  }
}

/** Encodes one record for the spool. */
export function encodeRecord(record: TelemetryRecord): Uint8Array {
  const device = Buffer.from(record.device ?? '', 'utf8');
  if (device.length > 255) {
    throw new CitysenseError(
      'CS_ERR_RECORD_DEVICE_ID',
      `device id "${record.device}" is longer than 255 bytes`,
      400,
    );
  }
  const payload = encodePayload({ metrics: record.metrics });
  const out = new Uint8Array(2 + device.length + payload.length);
  out[0] = FORMAT_VERSION;
  out[1] = device.length;
  out.set(device, 2);
  out.set(payload, 2 + device.length);
  return out;
}

/** Decodes one spool record; throws CS_ERR_RECORD_DECODE on bytes this agent did not write. */
export function decodeRecord(bytes: Uint8Array): TelemetryRecord {
  const fail = (why: string) =>
    new CitysenseError('CS_ERR_RECORD_DECODE', `spool record is unreadable: ${why}`, 500);
  if (bytes.length < 2) throw fail('too short');
  if (bytes[0] !== FORMAT_VERSION) throw fail(`unknown format version ${bytes[0]}`);
  const n = bytes[1] ?? 0;
  if (bytes.length < 2 + n) throw fail('truncated device id');
  const device = n === 0 ? null : Buffer.from(bytes.subarray(2, 2 + n)).toString('utf8');
  try {
    return { device, metrics: decodePayload(bytes.subarray(2 + n)).metrics };
  } catch (err) {
    throw fail(errorMessage(err));
  }
}
