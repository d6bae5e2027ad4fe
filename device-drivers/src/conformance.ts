import { isValidId } from '@citysense/protocol';
import type { DeviceDescriptor, DriverFault, MetricType, Quality, Reading } from './driver.ts';

const METRIC_TYPES: ReadonlySet<MetricType> = new Set(['double', 'int', 'bool', 'string', 'bytes']);
const QUALITIES: ReadonlySet<Quality> = new Set(['good', 'uncertain', 'bad']);

/** Earliest reading time the contract accepts: 2000-01-01T00:00:00Z. */
export const EARLIEST_READING_TIME = Date.UTC(2000, 0, 1);

/** Inclusive window of acceptable reading times, ms since the epoch. */
export interface TimeWindow {
  min: number;
  max: number;
}

/**
 * Problems with a driver's device list: ids valid Sparkplug ids (Sparkplug 3.0 §4.1.1)
 * and unique, kinds named, metric names non-empty and unique per device, types known.
 * An empty array means the list conforms.
 */
export function checkDevices(devices: readonly DeviceDescriptor[]): string[] {
  const problems: string[] = [];
  const ids = new Set<string>();
  for (const d of devices) {
    if (!isValidId(d.id)) problems.push(`device id "${d.id}" is not a valid Sparkplug device id`);
    if (ids.has(d.id)) problems.push(`device id "${d.id}" is declared twice`);
    ids.add(d.id);
    if (typeof d.kind !== 'string' || d.kind.length === 0) problems.push(`device "${d.id}" has no kind`);
    if (d.metrics.length === 0) problems.push(`device "${d.id}" declares no metrics`);
    const names = new Set<string>();
    for (const m of d.metrics) {
      if (typeof m.name !== 'string' || m.name.trim().length === 0) {
        problems.push(`device "${d.id}" has a metric with an empty name`);
      }
      if (names.has(m.name)) problems.push(`device "${d.id}" declares metric "${m.name}" twice`);
      names.add(m.name);
      if (!METRIC_TYPES.has(m.type)) problems.push(`metric "${d.id}/${m.name}" has unknown type "${m.type}"`);
      if (m.unit !== undefined && typeof m.unit !== 'string') {
        problems.push(`metric "${d.id}/${m.name}" has a non-string unit`);
      }
    }
  }
  return problems;
}

function valueMatches(type: MetricType, value: unknown): boolean {
  switch (type) {
    case 'double':
      return typeof value === 'number' && Number.isFinite(value);
    case 'int':
      return typeof value === 'number' && Number.isSafeInteger(value);
    case 'bool':
      return typeof value === 'boolean';
    case 'string':
      return typeof value === 'string';
    case 'bytes':
      return value instanceof Uint8Array;
  }
}

/**
 * Problems with one readings batch: non-empty, only declared devices and metrics,
 * values of the declared type (numbers finite), known quality, integer times inside
 * `window`. An empty array means the batch conforms.
 */
export function checkReadings(
  devices: readonly DeviceDescriptor[],
  batch: readonly Reading[],
  window: TimeWindow,
): string[] {
  const problems: string[] = [];
  if (!Array.isArray(batch) || batch.length === 0) return ['a readings event carried an empty batch'];
  const types = new Map<string, MetricType>();
  for (const d of devices) for (const m of d.metrics) types.set(`${d.id}\u0000${m.name}`, m.type);
  for (const r of batch) {
    const where = `${r.device}/${r.metric}`;
    const type = types.get(`${r.device}\u0000${r.metric}`);
    if (type === undefined) {
      problems.push(`reading for undeclared metric "${where}"`);
    } else if (!valueMatches(type, r.value)) {
      problems.push(`reading "${where}" value ${String(r.value)} does not match declared type ${type}`);
    }
    if (!QUALITIES.has(r.quality)) problems.push(`reading "${where}" has unknown quality "${r.quality}"`);
    if (!Number.isSafeInteger(r.time) || r.time < window.min || r.time > window.max) {
      problems.push(
        `reading "${where}" time ${r.time} is not an integer ms inside [${window.min}, ${window.max}]`,
      );
    }
  }
  return problems;
}

/** Problems with a fault event: a code and a message, and a declared device if one is named. */
export function checkFault(devices: readonly DeviceDescriptor[], fault: DriverFault): string[] {
  const problems: string[] = [];
  if (typeof fault.code !== 'string' || fault.code.length === 0) problems.push('fault without a code');
  if (typeof fault.message !== 'string' || fault.message.length === 0) {
    problems.push(`fault ${fault.code} without a message`);
  }
  if (fault.device !== undefined && !devices.some((d) => d.id === fault.device)) {
    problems.push(`fault ${fault.code} names undeclared device "${fault.device}"`);
  }
  return problems;
}

/**
 * Problems with timestamp order across batches: per (device, metric) series times must
 * strictly increase, because storage keys readings on (device, metric, time). `last`
 * carries state between calls.
 */
export function checkSeriesOrder(batch: readonly Reading[], last: Map<string, number>): string[] {
  const problems: string[] = [];
  for (const r of batch) {
    const key = `${r.device}\u0000${r.metric}`;
    const previous = last.get(key);
    if (previous !== undefined && r.time <= previous) {
      problems.push(`reading "${r.device}/${r.metric}" time ${r.time} does not follow ${previous}`);
    }
    last.set(key, r.time);
  }
  return problems;
}
