/**
 * The rules engine's hot path. Sits on the ingest path, so it is synchronous, never
 * throws and does no I/O: rules are indexed by metric name (patterns resolved once per
 * metric and cached), each matching series keeps a few numbers of state, and changes
 * of state go to an `AlarmSink` that writes them asynchronously. Absence and duration
 * rules also fire from `tick()`, driven by a timer.
 */
import { componentLogger, errorMessage, HEALTH_PREFIX, type Logger } from '@citysense/protocol';
import { type AlarmRule, compare, metricMatcher, NODE_ONLINE_METRIC } from './rules.ts';

/** The series an alarm is about. */
export interface SeriesKey {
  node: string;
  /** '' for node-level metrics (health). */
  device: string;
  metric: string;
}

/** Receives the evaluator's decisions; implementations must return quickly. */
export interface AlarmSink {
  /** The condition started to hold: open an alarm (`value` null for absence). */
  raise(key: string, rule: AlarmRule, series: SeriesKey, value: number | null, at: number): void;
  /** The condition holds again while the alarm is open: de-duplicate into it. */
  repeat(key: string, value: number | null, at: number): void;
  /** The condition cleared. */
  clear(key: string, value: number | null, at: number): void;
}

/** Sees readings and node sessions as they are ingested (implemented by the alarm service). */
export interface TelemetryObserver {
  /** One stored value; `value` null for text. Must not throw or block. */
  value(node: string, device: string, metric: string, time: number, value: number | null): void;
  /** A node's Sparkplug session started (NBIRTH) or ended (NDEATH). */
  nodeState(node: string, online: boolean): void;
}

/** Identity of one (rule, node, device, metric): the de-duplication key of its alarms. */
export function alarmKey(ruleId: string, s: SeriesKey): string {
  return `${ruleId}\u0000${s.node}\u0000${s.device}\u0000${s.metric}`;
}

interface CompiledRule {
  rule: AlarmRule;
  nodes: ReadonlySet<string> | null;
  device: string | undefined;
  matches: (metric: string) => boolean;
}

interface SeriesState extends SeriesKey {
  rule: CompiledRule;
  raised: boolean;
  /** Hub clock of the last matching value. */
  lastSeen: number;
  lastValue: number | null;
  /** Duration rules: hub clock since the condition holds. */
  since: number | undefined;
  /** Rate-of-change rules: samples in the window, [sample time, value]. */
  window: Array<[number, number]> | undefined;
}

/** Most samples a rate-of-change window keeps per series. */
const MAX_WINDOW = 10_000;
/** Metric names whose rule lists are cached before the cache starts over. */
const MAX_RESOLVED = 100_000;
const NONE: readonly CompiledRule[] = [];

/** Evaluates threshold, rate-of-change, absence and duration rules over incoming values. */
export class RuleEvaluator {
  readonly #sink: AlarmSink;
  readonly #log: Logger;
  readonly #rules = new Map<string, CompiledRule>();
  #resolved = new Map<string, readonly CompiledRule[]>();
  readonly #states = new Map<string, SeriesState>();
  /** Keys of absence and duration series, which `tick()` looks at. */
  readonly #timed = new Set<string>();

  constructor(sink: AlarmSink, logger?: Logger) {
    this.#sink = sink;
    this.#log = componentLogger('alarm-evaluator', logger);
  }

  /** Enabled rules being evaluated. */
  get ruleCount(): number {
    return this.#rules.size;
  }

  /** Adds or replaces a rule (a disabled rule is removed); its series start from scratch. */
  upsert(rule: AlarmRule, now = Date.now()): void {
    this.remove(rule.id);
    if (!rule.enabled) return;
    const nodes = rule.scope.nodes && rule.scope.nodes.length > 0 ? new Set(rule.scope.nodes) : null;
    const compiled: CompiledRule = {
      rule,
      nodes,
      device: rule.scope.device,
      matches: metricMatcher(rule.scope.metric),
    };
    this.#rules.set(rule.id, compiled);
    this.#resolved = new Map();
    // An absence rule naming its nodes and series watches them from now on, even if they never send.
    const device = rule.scope.device ?? (rule.scope.metric.startsWith(HEALTH_PREFIX) ? '' : undefined);
    if (
      rule.condition.kind === 'absence' &&
      nodes &&
      device !== undefined &&
      !rule.scope.metric.includes('*')
    ) {
      for (const node of nodes) this.#state(compiled, { node, device, metric: rule.scope.metric }, now);
    }
  }

  /** Stops evaluating a rule and forgets its series. */
  remove(ruleId: string): void {
    if (!this.#rules.delete(ruleId)) return;
    this.#resolved = new Map();
    for (const [key, s] of this.#states) {
      if (s.rule.rule.id === ruleId) {
        this.#states.delete(key);
        this.#timed.delete(key);
      }
    }
  }

  /** Marks a series as having an open alarm (alarms loaded at start), so that it can clear. */
  markRaised(ruleId: string, series: SeriesKey, now = Date.now()): void {
    const compiled = this.#rules.get(ruleId);
    if (!compiled) return;
    this.#state(compiled, series, now).raised = true;
  }

  /** Forgets a series' state (its alarm was cleared by hand): the next violation raises anew. */
  reset(key: string): void {
    const s = this.#states.get(key);
    if (!s) return;
    s.raised = false;
    s.since = undefined;
    s.window = undefined;
  }

  /** One ingested value (`value` null for text: counts as presence only). Never throws. */
  observe(
    node: string,
    device: string,
    metric: string,
    time: number,
    value: number | null,
    now = Date.now(),
  ): void {
    if (this.#rules.size === 0) return;
    let rules = this.#resolved.get(metric);
    if (rules === undefined) {
      rules = this.#resolve(metric);
      if (this.#resolved.size >= MAX_RESOLVED) this.#resolved = new Map();
      this.#resolved.set(metric, rules);
    }
    if (rules.length === 0) return;
    try {
      for (const c of rules) {
        if (c.nodes !== null && !c.nodes.has(node)) continue;
        if (c.device !== undefined && c.device !== device) continue;
        const key = alarmKey(c.rule.id, { node, device, metric });
        const s = this.#states.get(key) ?? this.#state(c, { node, device, metric }, now, key);
        s.lastSeen = now;
        this.#evaluate(key, s, time, value, now);
      }
    } catch (err) {
      this.#log.error({ err: errorMessage(err), node, device, metric }, 'rule evaluation failed');
    }
  }

  /** A node session change, as the synthetic `Health/Online` metric (1 online, 0 offline). */
  nodeState(node: string, online: boolean, now = Date.now()): void {
    this.observe(node, '', NODE_ONLINE_METRIC, now, online ? 1 : 0, now);
  }

  /** Fires absence and duration rules whose time has come. */
  tick(now = Date.now()): void {
    for (const key of this.#timed) {
      const s = this.#states.get(key);
      if (!s || s.raised) continue;
      const c = s.rule.rule.condition;
      if (c.kind === 'absence' && now - s.lastSeen >= c.forS * 1000) {
        s.raised = true;
        this.#sink.raise(key, s.rule.rule, s, null, now);
      } else if (c.kind === 'duration' && s.since !== undefined && now - s.since >= c.forS * 1000) {
        s.raised = true;
        this.#sink.raise(key, s.rule.rule, s, s.lastValue, now);
      }
    }
  }

  #resolve(metric: string): readonly CompiledRule[] {
    const out: CompiledRule[] = [];
    for (const c of this.#rules.values()) if (c.matches(metric)) out.push(c);
    return out.length === 0 ? NONE : out;
  }

  #state(c: CompiledRule, series: SeriesKey, now: number, key = alarmKey(c.rule.id, series)): SeriesState {
    let s = this.#states.get(key);
    if (!s) {
      s = {
        node: series.node,
        device: series.device,
        metric: series.metric,
        rule: c,
        raised: false,
        lastSeen: now,
        lastValue: null,
        since: undefined,
        window: undefined,
      };
      this.#states.set(key, s);
      const kind = c.rule.condition.kind;
      if (kind === 'absence' || kind === 'duration') this.#timed.add(key);
    }
    return s;
  }

  #evaluate(key: string, s: SeriesState, time: number, value: number | null, now: number): void {
    const c = s.rule.rule.condition;
    const rule = s.rule.rule;
    if (c.kind === 'absence') {
      if (s.raised) {
        s.raised = false;
        this.#sink.clear(key, value, now);
      }
      return;
    }
    if (value === null || !Number.isFinite(value)) return;
    s.lastValue = value;
    let holds: boolean;
    switch (c.kind) {
      case 'threshold':
        holds = compare(c.op, value, c.value);
        if (!holds && s.raised && compare(c.op, value, c.clearValue ?? c.value)) return; // inside the hysteresis band
        break;
      case 'duration':
        holds = compare(c.op, value, c.value);
        if (holds) {
          s.since ??= now;
          if (!s.raised && now - s.since < c.forS * 1000) return;
        } else s.since = undefined;
        break;
      case 'rate-of-change': {
        s.window ??= [];
        const w = s.window;
        w.push([time, value]);
        const start = time - c.windowS * 1000;
        let drop = 0;
        while (drop < w.length && (w[drop]?.[0] ?? 0) < start) drop++;
        if (w.length - drop > MAX_WINDOW) drop = w.length - MAX_WINDOW;
        if (drop > 0) w.splice(0, drop);
        let min = value;
        let max = value;
        for (const [, v] of w) {
          if (v < min) min = v;
          if (v > max) max = v;
        }
        const dir = c.direction ?? 'any';
        holds =
          ((dir === 'up' || dir === 'any') && value - min >= c.delta) ||
          ((dir === 'down' || dir === 'any') && max - value >= c.delta);
        break;
      }
    }
    if (holds) {
      if (s.raised) this.#sink.repeat(key, value, time);
      else {
        s.raised = true;
        this.#sink.raise(key, rule, s, value, time);
      }
    } else if (s.raised) {
      s.raised = false;
      this.#sink.clear(key, value, time);
    }
  }
}
