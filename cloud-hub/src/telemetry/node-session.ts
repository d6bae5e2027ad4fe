import {
  BD_SEQ,
  EDGE_ALERT_METRIC,
  HEALTH_METRICS,
  HEALTH_PREFIX,
  NODE_PROPERTIES,
  QualityCode,
  SPOOL_ID,
  type SparkplugMetric,
  VIDEO_ANALYTICS_METRIC,
} from '@citysense/protocol';

/** Columns of `node_health`, keyed by the Sparkplug metric names agents report. */
export const HEALTH_COLUMNS: Readonly<Record<string, HealthColumn>> = {
  [HEALTH_METRICS.cpuPercent]: 'cpuPercent',
  [HEALTH_METRICS.memoryPercent]: 'memoryPercent',
  [HEALTH_METRICS.diskPercent]: 'diskPercent',
  [HEALTH_METRICS.temperatureC]: 'temperatureC',
  [HEALTH_METRICS.uptimeS]: 'uptimeS',
  [HEALTH_METRICS.spoolBytes]: 'spoolBytes',
  [HEALTH_METRICS.spoolRecords]: 'spoolRecords',
  [HEALTH_METRICS.spoolAgeS]: 'spoolAgeS',
  [HEALTH_METRICS.droppedRecords]: 'droppedRecords',
  [HEALTH_METRICS.linkRttMs]: 'linkRttMs',
};

/** One health column name. */
export type HealthColumn =
  | 'cpuPercent'
  | 'memoryPercent'
  | 'diskPercent'
  | 'temperatureC'
  | 'uptimeS'
  | 'spoolBytes'
  | 'spoolRecords'
  | 'spoolAgeS'
  | 'droppedRecords'
  | 'linkRttMs';

/** What a declared metric is for the hub. */
export type MetricRole =
  | { kind: 'reading'; seriesId: number }
  | { kind: 'health'; column: HealthColumn }
  | { kind: 'spool-id' }
  | { kind: 'video-analytics' }
  | { kind: 'edge-alert' }
  | { kind: 'ignored' };

/** A metric declared in a birth certificate. */
export interface DeclaredMetric {
  device: string;
  name: string;
  datatype: number;
  role: MetricRole;
}

/** Role of a metric by name alone; readings get their series id later. */
export function classifyMetric(device: string, name: string): MetricRole | 'reading' {
  if (name === SPOOL_ID) return { kind: 'spool-id' };
  if (name === VIDEO_ANALYTICS_METRIC) return { kind: 'video-analytics' };
  if (name === EDGE_ALERT_METRIC) return { kind: 'edge-alert' };
  if (device === '') {
    const column = HEALTH_COLUMNS[name];
    if (column) return { kind: 'health', column };
    if (
      name.startsWith(HEALTH_PREFIX) ||
      name === BD_SEQ ||
      name.startsWith('Node Control/') ||
      name.startsWith('Properties/')
    ) {
      return { kind: 'ignored' };
    }
  }
  return 'reading';
}

/** Sparkplug quality of a metric: the `Quality` property, or good. */
export function qualityOf(metric: SparkplugMetric): number {
  const q = metric.properties?.Quality;
  return typeof q === 'number' ? q : QualityCode.good;
}

/** The agent version an NBIRTH declares, if any. */
export function agentVersionOf(metrics: SparkplugMetric[]): string | null {
  const m = metrics.find((x) => x.name === NODE_PROPERTIES.agentVersion);
  return typeof m?.value === 'string' ? m.value : null;
}

/**
 * The host's view of one edge node's Sparkplug session (Sparkplug 3.0 §7): the
 * bdSeq of the current connection, the last seq seen, and the alias table built
 * from NBIRTH and DBIRTH.
 */
export class NodeSession {
  readonly nodeId: string;
  readonly bdSeq: number | null;
  lastSeq: number;
  /** Set after a seq gap or an unknown alias until the next NBIRTH. */
  awaitingRebirth = false;
  lastRebirthRequestAt = 0;
  readonly #byAlias = new Map<number, DeclaredMetric>();
  readonly #byName = new Map<string, DeclaredMetric>();
  readonly devices = new Map<string, { online: boolean }>();

  /** False when hub replicas share the node's data: each sees only part of the seq stream. */
  readonly #checkSeq: boolean;

  constructor(nodeId: string, bdSeq: number | null, birthSeq: number, checkSeq = true) {
    this.nodeId = nodeId;
    this.bdSeq = bdSeq;
    this.lastSeq = birthSeq;
    this.#checkSeq = checkSeq;
  }

  /** Declares a metric from a birth. */
  declare(alias: number | undefined, metric: DeclaredMetric): void {
    if (alias !== undefined) this.#byAlias.set(alias, metric);
    this.#byName.set(`${metric.device}\u0000${metric.name}`, metric);
  }

  /** Finds a metric of a data message by alias or name; undefined when it was never declared. */
  lookup(device: string, metric: SparkplugMetric): DeclaredMetric | undefined {
    if (metric.alias !== undefined) {
      const found = this.#byAlias.get(metric.alias);
      return found && found.device === device ? found : undefined;
    }
    return metric.name === undefined ? undefined : this.#byName.get(`${device}\u0000${metric.name}`);
  }

  /**
   * Checks and advances seq (0–255, wrapping; Sparkplug 3.0 §6.4.8). Returns false
   * on a gap, which means messages were lost.
   */
  advanceSeq(seq: number | undefined): boolean {
    if (!this.#checkSeq) return true;
    if (seq === undefined) return false;
    const expected = (this.lastSeq + 1) % 256;
    this.lastSeq = seq;
    return seq === expected;
  }
}
