/**
 * The hub rules engine: keeps rules, runs the evaluator on the ingest path, and turns
 * its decisions into tiered alarms — one open alarm per (rule, node, device, metric),
 * repeats de-duplicated into a count, active → acknowledged → cleared with the full
 * history — and webhook notifications. Database writes leave the ingest path: they go
 * through one ordered queue, repeats are coalesced and flushed every `flushMs`.
 */
import { randomUUID } from 'node:crypto';
import { CitysenseError, componentLogger, errorMessage, type Logger } from '@citysense/protocol';
import { Counter, Gauge, type MetricsRegistry } from '../http/metrics.ts';
import type { Database } from '../storage/database.ts';
import {
  type AlarmEventView,
  type AlarmFilter,
  AlarmStore,
  type AlarmTransition,
  type AlarmView,
  alarmNotFound,
  type DeliveryView,
  ruleNotFound,
} from './alarm-store.ts';
import { AlarmWebhooks } from './alarm-webhooks.ts';
import {
  type AlarmSink,
  alarmKey,
  RuleEvaluator,
  type SeriesKey,
  type TelemetryObserver,
} from './evaluator.ts';
import { type AlarmRule, type RuleInput, SEVERITIES, type Severity } from './rules.ts';

/** Options of the alarm service. */
export interface AlarmServiceOptions {
  db: Database;
  /** Where the service registers its gauges and counters. */
  metrics: MetricsRegistry;
  /** Sent in webhook bodies so that receivers can tell hubs apart. */
  hubId: string;
  /** Every transition is POSTed here (rules may add their own target). */
  webhookUrl?: string | undefined;
  webhookSecret: string | Buffer;
  webhookBackoffMs: number;
  webhookMaxBackoffMs: number;
  webhookMaxAttempts: number;
  webhookTimeoutMs: number;
  /** How often absence and duration rules are checked. */
  tickMs: number;
  /** How often de-duplicated repeats are written. */
  flushMs: number;
  logger?: Logger;
}

interface OpenAlarm extends SeriesKey {
  id: string;
  ruleId: string;
  severity: Severity;
  /** Repeats not written yet. */
  repeats: number;
  lastValue: number | null;
  lastAt: number;
}

/** Who made a change by hand. */
export interface AlarmActor {
  name: string;
}

/** An alarm with its history and notifications. */
export interface AlarmDetail extends AlarmView {
  history: AlarmEventView[];
  deliveries: DeliveryView[];
}

/** Rules, alarms and their notifications; observes ingest as a `TelemetryObserver`. */
export class AlarmService implements TelemetryObserver, AlarmSink {
  readonly store: AlarmStore;
  readonly #o: AlarmServiceOptions;
  readonly #log: Logger;
  readonly #evaluator: RuleEvaluator;
  readonly #webhooks: AlarmWebhooks;
  readonly #rules = new Map<string, AlarmRule>();
  readonly #open = new Map<string, OpenAlarm>();
  readonly #dirty = new Set<string>();
  readonly #transitions: Counter;
  #queue: Promise<unknown> = Promise.resolve();
  #tick: NodeJS.Timeout | undefined;
  #flush: NodeJS.Timeout | undefined;
  #abort: AbortController | undefined;

  constructor(options: AlarmServiceOptions) {
    this.#o = options;
    this.#log = componentLogger('alarms', options.logger);
    this.store = new AlarmStore(options.db);
    this.#evaluator = new RuleEvaluator(this, this.#log);
    const failures = options.metrics.register(
      new Counter('citysense_alarm_webhook_failures_total', 'Alarm webhook POSTs that failed (each attempt)'),
    );
    this.#transitions = options.metrics.register(
      new Counter('citysense_alarm_transitions_total', 'Alarm transitions by kind and severity'),
    );
    options.metrics.register(
      new Gauge('citysense_alarms_open', 'Open (active or acknowledged) alarms by severity', () => {
        const n = new Map<Severity, number>(SEVERITIES.map((s) => [s, 0]));
        for (const a of this.#open.values()) n.set(a.severity, (n.get(a.severity) ?? 0) + 1);
        return [...n].map(([severity, v]) => [{ severity }, v]);
      }),
    );
    this.#webhooks = new AlarmWebhooks({
      db: options.db,
      secret: options.webhookSecret,
      backoffMs: options.webhookBackoffMs,
      maxBackoffMs: options.webhookMaxBackoffMs,
      maxAttempts: options.webhookMaxAttempts,
      timeoutMs: options.webhookTimeoutMs,
      failures,
      logger: this.#log,
    });
  }

  /** Loads rules and open alarms, starts the timers and webhook delivery; idempotent. */
  async start(): Promise<void> {
    if (this.#abort) return;
    this.#abort = new AbortController();
    for (const rule of await this.store.listRules()) {
      this.#rules.set(rule.id, rule);
      this.#evaluator.upsert(rule);
    }
    for (const a of await this.store.openAlarms()) {
      const key = alarmKey(a.ruleId, a);
      this.#open.set(key, {
        id: a.id,
        ruleId: a.ruleId,
        node: a.node,
        device: a.device,
        metric: a.metric,
        severity: a.severity,
        repeats: 0,
        lastValue: a.lastValue,
        lastAt: Date.parse(a.lastAt),
      });
      this.#evaluator.markRaised(a.ruleId, a);
    }
    this.#tick = setInterval(() => this.#evaluator.tick(), this.#o.tickMs);
    this.#tick.unref();
    await this.#webhooks.start();
    this.#log.info({ rules: this.#evaluator.ruleCount, open: this.#open.size }, 'rules engine started');
  }

  /** Writes pending repeats, stops timers and webhook delivery. */
  async stop(): Promise<void> {
    if (!this.#abort) return;
    clearInterval(this.#tick);
    clearTimeout(this.#flush);
    this.#tick = undefined;
    this.#flush = undefined;
    this.#flushRepeats();
    this.#abort.abort();
    await this.#queue.catch(() => undefined);
    await this.#webhooks.stop();
    this.#abort = undefined;
  }

  /** Waits until every decision so far is written (tests, shutdown). */
  async settled(): Promise<void> {
    this.#flushRepeats();
    await this.#queue.catch(() => undefined);
  }

  // --- ingest (TelemetryObserver) -------------------------------------------------------

  /** @inheritdoc */
  value(node: string, device: string, metric: string, time: number, value: number | null): void {
    this.#evaluator.observe(node, device, metric, time, value);
  }

  /** @inheritdoc */
  nodeState(node: string, online: boolean): void {
    this.#evaluator.nodeState(node, online);
  }

  // --- evaluator decisions (AlarmSink) --------------------------------------------------

  /** @inheritdoc */
  raise(key: string, rule: AlarmRule, series: SeriesKey, value: number | null, at: number): void {
    const open: OpenAlarm = {
      id: randomUUID(),
      ruleId: rule.id,
      node: series.node,
      device: series.device,
      metric: series.metric,
      severity: rule.severity,
      repeats: 0,
      lastValue: value,
      lastAt: at,
    };
    this.#open.set(key, open);
    this.#transitions.inc({ transition: 'raised', severity: rule.severity });
    this.#background('raise', async () => {
      const db = this.#o.db;
      await db.transaction(async (tx) => {
        const when = new Date(at);
        const inserted = await this.store.insertAlarm(tx, {
          id: open.id,
          rule,
          series: open,
          value,
          at: when,
        });
        // A hub replica opened it first: count into that alarm.
        if (!inserted.opened) {
          open.id = inserted.id;
          return;
        }
        await this.#recordTransition(tx, rule, inserted.id, 'raised', {
          at: when,
          actor: null,
          comment: null,
          value,
        });
      });
      this.#webhooks.kick();
    });
  }

  /** @inheritdoc */
  repeat(key: string, value: number | null, at: number): void {
    const open = this.#open.get(key);
    if (!open) return;
    open.repeats++;
    open.lastValue = value;
    if (at > open.lastAt) open.lastAt = at;
    this.#dirty.add(key);
    this.#flush ??= setTimeout(() => {
      this.#flush = undefined;
      this.#flushRepeats();
    }, this.#o.flushMs);
  }

  /** @inheritdoc */
  clear(key: string, value: number | null, at: number): void {
    const open = this.#open.get(key);
    if (!open) return;
    this.#open.delete(key);
    this.#writeRepeats(key, open);
    this.#transitions.inc({ transition: 'cleared', severity: open.severity });
    this.#background('clear', () =>
      this.#clearStored(open.id, {
        at: new Date(at),
        actor: null,
        comment: null,
        reason: 'condition',
        value,
      }),
    );
  }

  // --- rules ----------------------------------------------------------------------------

  /** Every rule. */
  listRules(): AlarmRule[] {
    return [...this.#rules.values()].sort((a, b) => a.id.localeCompare(b.id));
  }

  /** One rule; CS_ERR_RULE_NOT_FOUND (404). */
  getRule(id: string): AlarmRule {
    const rule = this.#rules.get(id);
    if (!rule) throw ruleNotFound(id);
    return rule;
  }

  /** Creates a rule (id generated when absent); CS_ERR_RULE_DUPLICATE (409) on an existing id. */
  async createRule(input: RuleInput): Promise<AlarmRule> {
    await this.#checkAgency(input);
    const rule = await this.store.saveRule(input.id ?? `rule-${randomUUID().slice(0, 8)}`, input, true);
    this.#rules.set(rule.id, rule);
    this.#evaluator.upsert(rule);
    return rule;
  }

  /**
   * Replaces a rule. Disabling it clears its open alarms (`rule-disabled`); a new scope or
   * condition clears them too (`rule-changed`: the new rule raises afresh where it holds);
   * other edits keep them open, clearing by the rule as before.
   */
  async replaceRule(id: string, input: RuleInput): Promise<AlarmRule> {
    const before = this.getRule(id);
    await this.#checkAgency(input);
    const rule = await this.store.saveRule(id, input, false);
    this.#rules.set(id, rule);
    this.#evaluator.upsert(rule);
    const changed =
      JSON.stringify([before.scope, before.condition]) !== JSON.stringify([rule.scope, rule.condition]);
    if (!rule.enabled) await this.#clearRule(id, 'rule-disabled');
    else if (changed) await this.#clearRule(id, 'rule-changed');
    else for (const a of this.#open.values()) if (a.ruleId === id) this.#evaluator.markRaised(id, a);
    return rule;
  }

  /** Deletes a rule and clears its open alarms (reason `rule-deleted`). */
  async deleteRule(id: string, actor: AlarmActor): Promise<void> {
    this.getRule(id);
    await this.store.deleteRule(id);
    this.#rules.delete(id);
    this.#evaluator.remove(id);
    await this.#clearRule(id, 'rule-deleted', actor.name);
  }

  // --- alarms ---------------------------------------------------------------------------

  /** Alarms matching a filter (repeats written first, so counts are current). */
  async list(filter: AlarmFilter): Promise<AlarmView[]> {
    await this.settled();
    return this.store.list(filter);
  }

  /** One alarm with its history and notifications; CS_ERR_ALARM_NOT_FOUND (404). */
  async get(id: string): Promise<AlarmDetail> {
    await this.settled();
    const alarm = await this.store.get(id);
    if (!alarm) throw alarmNotFound(id);
    const [history, deliveries] = await Promise.all([
      this.store.history(id),
      this.store.deliveries({ alarmId: id, limit: 1000 }),
    ]);
    return { ...alarm, history, deliveries };
  }

  /** Acknowledges an active alarm; 404 unknown, CS_ERR_ALARM_STATE (409) unless active. */
  acknowledge(id: string, actor: AlarmActor, comment: string | null): Promise<AlarmView> {
    return this.#enqueue(async () => {
      const out = await this.#o.db.transaction(async (tx) => {
        const alarm = await this.store.get(id, tx, true);
        if (!alarm) throw alarmNotFound(id);
        if (alarm.state !== 'active')
          throw new CitysenseError(
            'CS_ERR_ALARM_STATE',
            `alarm ${id} is ${alarm.state}; only an active alarm can be acknowledged`,
            409,
            { id, state: alarm.state },
          );
        const at = new Date();
        const updated = await this.store.transition(tx, id, 'acknowledged', {
          actor: actor.name,
          comment,
          reason: null,
          value: null,
          at,
        });
        const rule = this.#rules.get(alarm.ruleId);
        await this.#recordTransition(tx, rule, id, 'acknowledged', {
          at,
          actor: actor.name,
          comment,
          value: null,
        });
        return updated;
      });
      this.#transitions.inc({ transition: 'acknowledged', severity: out.severity });
      this.#webhooks.kick();
      return out;
    });
  }

  /** Clears an open alarm by hand; 404 unknown, CS_ERR_ALARM_STATE (409) when already cleared. */
  async clearManually(id: string, actor: AlarmActor, comment: string | null): Promise<AlarmView> {
    const alarm = await this.#enqueue(() => this.store.get(id));
    if (!alarm) throw alarmNotFound(id);
    if (alarm.state === 'cleared') throw this.#alreadyCleared(alarm);
    const key = alarmKey(alarm.ruleId, alarm);
    const open = this.#open.get(key);
    if (open?.id === id) {
      this.#open.delete(key);
      this.#writeRepeats(key, open);
      // The condition may still hold: the next violation opens a new alarm.
      this.#evaluator.reset(key);
    }
    const out = await this.#enqueue(() =>
      this.#clearStored(id, { at: new Date(), actor: actor.name, comment, reason: 'manual', value: null }),
    );
    if (!out) throw this.#alreadyCleared(alarm);
    this.#transitions.inc({ transition: 'cleared', severity: out.severity });
    return out;
  }

  /** Where webhook delivery stands: counts per state and the latest failures. */
  async webhookStatus(): Promise<{
    url: string | null;
    counts: Record<DeliveryView['state'], number>;
    recentFailures: DeliveryView[];
  }> {
    const [counts, failed, retrying] = await Promise.all([
      this.store.deliveryCounts(),
      this.store.deliveries({ state: 'failed', limit: 20 }),
      this.store.deliveries({ state: 'pending', limit: 20 }),
    ]);
    return {
      url: this.#o.webhookUrl ?? null,
      counts,
      recentFailures: [...retrying.filter((d) => d.lastError !== null), ...failed],
    };
  }

  async #checkAgency(input: RuleInput): Promise<void> {
    if (input.agencyId == null || (await this.store.agencyExists(input.agencyId))) return;
    throw new CitysenseError(
      'CS_ERR_RULE_INVALID',
      `agencyId ${input.agencyId} is not a known agency; create it first (PUT /v1/agencies/:agency) or leave it out for a platform-wide rule`,
      400,
      [{ path: '/agencyId', message: 'unknown agency' }],
    );
  }

  #alreadyCleared(alarm: AlarmView): CitysenseError {
    return new CitysenseError('CS_ERR_ALARM_STATE', `alarm ${alarm.id} is already cleared`, 409, {
      id: alarm.id,
      state: 'cleared',
    });
  }

  /** Clears every open alarm of a rule. */
  async #clearRule(ruleId: string, reason: string, actor: string | null = null): Promise<void> {
    const cleared: OpenAlarm[] = [];
    for (const [key, a] of this.#open) {
      if (a.ruleId !== ruleId) continue;
      this.#open.delete(key);
      this.#writeRepeats(key, a);
      cleared.push(a);
    }
    for (const a of cleared) {
      await this.#enqueue(() =>
        this.#clearStored(a.id, { at: new Date(), actor, comment: null, reason, value: null }),
      );
    }
  }

  /** Clears a stored alarm unless it already is; returns it, or undefined when it was cleared. */
  async #clearStored(
    id: string,
    t: { at: Date; actor: string | null; comment: string | null; reason: string; value: number | null },
  ): Promise<AlarmView | undefined> {
    const out = await this.#o.db.transaction(async (tx) => {
      const alarm = await this.store.get(id, tx, true);
      if (!alarm || alarm.state === 'cleared') return undefined;
      const updated = await this.store.transition(tx, id, 'cleared', { ...t });
      await this.#recordTransition(tx, this.#rules.get(alarm.ruleId), id, 'cleared', {
        at: t.at,
        actor: t.actor,
        comment: t.comment ?? t.reason,
        value: t.value,
      });
      return updated;
    });
    if (out) this.#webhooks.kick();
    return out;
  }

  /** Stores a transition and queues its notifications, in the caller's transaction. */
  async #recordTransition(
    tx: Parameters<Parameters<Database['transaction']>[0]>[0],
    rule: AlarmRule | undefined,
    alarmId: string,
    transition: AlarmTransition,
    t: { at: Date; actor: string | null; comment: string | null; value: number | null },
  ): Promise<void> {
    const eventId = await this.store.addEvent(tx, { alarmId, transition, ...t });
    const targets = [...new Set([this.#o.webhookUrl, rule?.webhookUrl ?? undefined])].filter(
      (u): u is string => typeof u === 'string',
    );
    if (targets.length === 0) return;
    const alarm = await this.store.get(alarmId, tx);
    const body = JSON.stringify({
      event: `alarm.${transition}`,
      eventId,
      hubId: this.#o.hubId,
      time: t.at.toISOString(),
      transition: { kind: transition, actor: t.actor, comment: t.comment, value: t.value },
      alarm,
    });
    await this.store.enqueueDeliveries(tx, { eventId, alarmId, targets, body: () => body, at: t.at });
  }

  #flushRepeats(): void {
    clearTimeout(this.#flush);
    this.#flush = undefined;
    for (const key of this.#dirty) {
      const open = this.#open.get(key);
      if (open) this.#writeRepeats(key, open);
    }
    this.#dirty.clear();
  }

  /** Queues the write of an alarm's pending repeats (before its clear, which is queued after). */
  #writeRepeats(key: string, open: OpenAlarm): void {
    this.#dirty.delete(key);
    if (open.repeats === 0) return;
    const n = open.repeats;
    const value = open.lastValue;
    const at = new Date(open.lastAt);
    open.repeats = 0;
    // `open.id` is read when the write runs: a raise queued earlier may have replaced it.
    this.#background('repeat', () => this.store.addRepeats(open.id, n, value, at));
  }

  /** Runs `op` after everything queued before it; its result or error goes to the caller. */
  #enqueue<T>(op: () => Promise<T>): Promise<T> {
    const run = this.#queue.then(op, op);
    this.#queue = run.catch(() => undefined);
    return run;
  }

  /**
   * Queues a write decided on the ingest path. A failing database is retried with
   * backoff while the hub runs, so an alarm is not dropped by a transient outage.
   */
  #background(what: string, op: () => Promise<unknown>): void {
    void this.#enqueue(async () => {
      for (let attempt = 1; ; attempt++) {
        try {
          await op();
          return;
        } catch (err) {
          const stopping = !this.#abort || this.#abort.signal.aborted;
          const delay = Math.min(5000, 100 * 2 ** Math.min(attempt, 6));
          this.#log.error(
            { err: errorMessage(err), what, attempt, retryInMs: stopping ? null : delay },
            stopping ? 'alarm write failed while stopping; not retried' : 'alarm write failed; retrying',
          );
          if (stopping) return;
          await new Promise((r) => setTimeout(r, delay));
        }
      }
    });
  }
}
