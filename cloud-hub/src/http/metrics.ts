/**
 * A small Prometheus registry (text exposition format 0.0.4): counters and gauges
 * with labels, and summaries kept as sum/count plus a sliding window for quantiles.
 */

type Labels = Record<string, string>;

const labelKey = (labels: Labels | undefined): string =>
  labels
    ? Object.keys(labels)
        .sort()
        .map(
          (k) =>
            `${k}="${String(labels[k]).replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n')}"`,
        )
        .join(',')
    : '';

abstract class Metric {
  constructor(
    readonly name: string,
    readonly help: string,
    readonly type: 'counter' | 'gauge' | 'summary',
  ) {}
  abstract lines(): string[];
  header(): string[] {
    return [`# HELP ${this.name} ${this.help}`, `# TYPE ${this.name} ${this.type}`];
  }
}

/** A monotonically increasing counter. */
export class Counter extends Metric {
  readonly #values = new Map<string, number>();
  constructor(name: string, help: string) {
    super(name, help, 'counter');
  }
  /** Adds `n` (default 1) to the series with `labels`. */
  inc(labels?: Labels, n = 1): void {
    const k = labelKey(labels);
    this.#values.set(k, (this.#values.get(k) ?? 0) + n);
  }
  /** Current value of one series. */
  get(labels?: Labels): number {
    return this.#values.get(labelKey(labels)) ?? 0;
  }
  lines(): string[] {
    return [...this.#values].map(([k, v]) => `${this.name}${k ? `{${k}}` : ''} ${v}`);
  }
}

/** A gauge, set directly or computed at scrape time. */
export class Gauge extends Metric {
  readonly #values = new Map<string, number>();
  #collect: (() => Array<[Labels | undefined, number]>) | undefined;
  constructor(name: string, help: string, collect?: () => Array<[Labels | undefined, number]>) {
    super(name, help, 'gauge');
    this.#collect = collect;
  }
  /** Sets the series with `labels`. */
  set(labels: Labels | undefined, value: number): void {
    this.#values.set(labelKey(labels), value);
  }
  lines(): string[] {
    const entries: Array<[string, number]> = this.#collect
      ? this.#collect().map(([l, v]) => [labelKey(l), v])
      : [...this.#values];
    return entries.map(([k, v]) => `${this.name}${k ? `{${k}}` : ''} ${v}`);
  }
}

/** A summary over the last `window` observations (p50, p95, p99) plus total sum and count. */
export class Summary extends Metric {
  readonly #window: number[] = [];
  #sum = 0;
  #count = 0;
  constructor(
    name: string,
    help: string,
    readonly size = 1024,
  ) {
    super(name, help, 'summary');
  }
  /** Records one observation. */
  observe(v: number): void {
    this.#sum += v;
    this.#count += 1;
    this.#window.push(v);
    if (this.#window.length > this.size) this.#window.shift();
  }
  /** Quantile `q` of the window, or NaN when empty. */
  quantile(q: number): number {
    if (this.#window.length === 0) return Number.NaN;
    const sorted = [...this.#window].sort((a, b) => a - b);
    return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? Number.NaN;
  }
  lines(): string[] {
    return [
      ...[0.5, 0.95, 0.99].map((q) => `${this.name}{quantile="${q}"} ${this.quantile(q)}`),
      `${this.name}_sum ${this.#sum}`,
      `${this.name}_count ${this.#count}`,
    ];
  }
}

/** The set of metrics one process exposes at /metrics. */
export class MetricsRegistry {
  readonly #metrics: Metric[] = [];
  /** Registers a metric and returns it. */
  register<M extends Metric>(metric: M): M {
    this.#metrics.push(metric);
    return metric;
  }
  /** Renders the text exposition. */
  render(): string {
    return `${this.#metrics.flatMap((m) => [...m.header(), ...m.lines()]).join('\n')}\n`;
  }
}

/** The hub's metrics, shared by its components. */
export interface HubMetrics {
  registry: MetricsRegistry;
  /** Readings committed to the database. */
  readingsCommitted: Counter;
  /** MQTT messages received, by Sparkplug type. */
  messages: Counter;
  /** Rejected input, by reason (auth, acl, oversize, topic, decode, alias, seq, protocol). */
  rejected: Counter;
  /** Rebirth requests sent to nodes. */
  rebirths: Counter;
  /** Database latency of ingest batches, seconds. */
  dbLatency: Summary;
}

/** Creates the hub metric set. */
export function createHubMetrics(): HubMetrics {
  const registry = new MetricsRegistry();
  return {
    registry,
    readingsCommitted: registry.register(
      new Counter('citysense_readings_committed_total', 'Readings committed to the database'),
    ),
    messages: registry.register(
      new Counter('citysense_mqtt_messages_total', 'Sparkplug messages received by type'),
    ),
    rejected: registry.register(new Counter('citysense_rejected_total', 'Rejected input by reason')),
    rebirths: registry.register(
      new Counter('citysense_rebirth_requests_total', 'Rebirth NCMDs sent to nodes'),
    ),
    dbLatency: registry.register(
      new Summary('citysense_db_batch_seconds', 'Database latency of one ingest batch'),
    ),
  };
}
