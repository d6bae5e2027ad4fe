/**
 * Converting OPC UA data values to readings: the value to the metric's declared type, the status code's
 * severity to a reading quality, and the source timestamp to the reading time.
 */
import type { Quality } from '../driver.ts';
import type { OpcUaNodeConfig } from './config.ts';

/** Value type of a mapped metric. */
export type OpcUaMetricType = OpcUaNodeConfig['type'];

/**
 * Quality of a status code by its severity bits (OPC 10000-4 §7.39: bits 31..30 are 00 Good,
 * 01 Uncertain, 10 Bad; 11 is reserved and read as Bad).
 */
export function statusQuality(statusCode: number): Quality {
  const severity = statusCode >>> 30;
  if (severity === 0) return 'good';
  if (severity === 1) return 'uncertain';
  return 'bad';
}

/** 64-bit integers arrive from node-opcua as [high, low] 32-bit words. */
function fromWords(value: unknown): number | undefined {
  if (!Array.isArray(value) || value.length !== 2) return undefined;
  const [high, low] = value as unknown[];
  if (typeof high !== 'number' || typeof low !== 'number') return undefined;
  return high * 2 ** 32 + (low >>> 0);
}

function asNumber(value: unknown): number | undefined {
  if (typeof value === 'number') return Number.isFinite(value) ? value : undefined;
  if (typeof value === 'boolean') return value ? 1 : 0;
  if (typeof value === 'bigint') return Number(value);
  return fromWords(value);
}

/**
 * `value` (a Variant's value) converted to `type`, or undefined when it cannot be: a double from any
 * number, an int from an integer (a fractional number is rounded), a bool from a boolean or a number,
 * a string from a string, LocalizedText, date or number.
 */
export function convertValue(type: OpcUaMetricType, value: unknown): number | boolean | string | undefined {
  switch (type) {
    case 'double':
      return asNumber(value);
    case 'int': {
      const n = asNumber(value);
      return n === undefined ? undefined : Number.isSafeInteger(Math.round(n)) ? Math.round(n) : undefined;
    }
    case 'bool':
      if (typeof value === 'boolean') return value;
      return typeof value === 'number' ? value !== 0 : undefined;
    case 'string':
      if (typeof value === 'string') return value;
      if (value instanceof Date) return value.toISOString();
      if (typeof value === 'number' || typeof value === 'boolean') return String(value);
      if (value && typeof value === 'object' && typeof (value as { text?: unknown }).text === 'string') {
        return (value as { text: string }).text;
      }
      return undefined;
  }
}

/** The value a metric of `type` reports when a Bad sample carries none and nothing came before. */
export function placeholderValue(type: OpcUaMetricType): number | boolean | string {
  if (type === 'bool') return false;
  if (type === 'string') return '';
  return 0;
}

/** Built-in DataType ids (OPC 10000-6 §5.1.2) mapped to metric types; others are not mapped. */
const DATA_TYPES: ReadonlyMap<number, OpcUaMetricType> = new Map([
  [1, 'bool'],
  [2, 'int'],
  [3, 'int'],
  [4, 'int'],
  [5, 'int'],
  [6, 'int'],
  [7, 'int'],
  [8, 'int'],
  [9, 'int'],
  [10, 'double'],
  [11, 'double'],
  [12, 'string'],
  [21, 'string'],
  [26, 'double'],
  [27, 'int'],
  [28, 'int'],
]);

/** The metric type of a variable of built-in DataType `ns=0;i=<id>`, or undefined. */
export function metricTypeOfDataType(namespace: number, id: unknown): OpcUaMetricType | undefined {
  return namespace === 0 && typeof id === 'number' ? DATA_TYPES.get(id) : undefined;
}

/** UCUM spellings of EngineeringUnits display names that differ (OPC 10000-8 §5.6.3 uses UNECE codes). */
const UCUM: ReadonlyMap<string, string> = new Map([
  ['°C', 'Cel'],
  ['℃', 'Cel'],
  ['°F', '[degF]'],
  ['kWh', 'kW.h'],
  ['Wh', 'W.h'],
]);

/** A unit for a metric from an EngineeringUnits display name. */
export function unitOfDisplayName(name: string): string {
  return UCUM.get(name) ?? name;
}
