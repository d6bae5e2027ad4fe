/**
 * SQL of the rules engine: rules, alarms, their transitions and the webhook outbox.
 * Small named queries over the tables of `migrations/0120_alarms.sql`.
 */
import { CitysenseError } from '@citysense/protocol';
import type { Database, Queryable } from '../storage/database.ts';
import type { SeriesKey } from './evaluator.ts';
import { type AlarmRule, type RuleInput, SEVERITY_RANK, type Severity } from './rules.ts';

/** States of an alarm: active → acknowledged → cleared (or active → cleared). */
export const ALARM_STATES = ['active', 'acknowledged', 'cleared'] as const;
/** One alarm state. */
export type AlarmState = (typeof ALARM_STATES)[number];
/** Transitions recorded in an alarm's history and sent to webhooks. */
export type AlarmTransition = 'raised' | 'acknowledged' | 'cleared';

/** An alarm as the API returns it. */
export interface AlarmView {
  id: string;
  ruleId: string;
  ruleName: string;
  node: string;
  device: string;
  metric: string;
  severity: Severity;
  agencyId: string | null;
  state: AlarmState;
  message: string | null;
  count: number;
  firstValue: number | null;
  lastValue: number | null;
  raisedAt: string;
  lastAt: string;
  acknowledgedAt: string | null;
  acknowledgedBy: string | null;
  ackComment: string | null;
  clearedAt: string | null;
  clearedBy: string | null;
  clearReason: string | null;
}

/** One entry of an alarm's history. */
export interface AlarmEventView {
  id: number;
  time: string;
  transition: AlarmTransition;
  actor: string | null;
  comment: string | null;
  value: number | null;
}

/** One webhook notification and where its delivery stands. */
export interface DeliveryView {
  id: number;
  eventId: number;
  alarmId: string;
  target: string;
  state: 'pending' | 'delivered' | 'failed';
  attempts: number;
  nextAttemptAt: string | null;
  lastError: string | null;
  deliveredAt: string | null;
}

/** Filter of `GET /v1/alarms`. */
export interface AlarmFilter {
  /** `open` = active or acknowledged. */
  state?: AlarmState | 'open' | undefined;
  severity?: Severity | undefined;
  node?: string | undefined;
  rule?: string | undefined;
  /** Raised at or after. */
  since?: Date | undefined;
  /** Only alarms of these agencies plus platform-wide ones; undefined = all. */
  agencyId?: string | undefined;
  limit: number;
}

interface RuleRow {
  id: string;
  name: string;
  enabled: boolean;
  severity: Severity;
  agency_id: string | null;
  definition: string | Pick<AlarmRule, 'scope' | 'condition' | 'message' | 'webhookUrl'>;
  created_at: Date;
  updated_at: Date;
}

interface AlarmRow {
  id: string;
  rule_id: string;
  rule_name: string;
  node_id: string;
  device: string;
  metric: string;
  severity: Severity;
  agency_id: string | null;
  state: AlarmState;
  message: string | null;
  count: number;
  first_value: number | null;
  last_value: number | null;
  raised_at: Date;
  last_at: Date;
  acknowledged_at: Date | null;
  acknowledged_by: string | null;
  ack_comment: string | null;
  cleared_at: Date | null;
  cleared_by: string | null;
  clear_reason: string | null;
}

const iso = (d: Date | null): string | null => (d ? new Date(d).toISOString() : null);

function ruleOf(r: RuleRow): AlarmRule {
  const d =
    typeof r.definition === 'string' ? (JSON.parse(r.definition) as RuleRow['definition']) : r.definition;
  if (typeof d === 'string') throw new Error('rule definition is not an object');
  return {
    id: r.id,
    name: r.name,
    enabled: r.enabled,
    severity: r.severity,
    agencyId: r.agency_id,
    scope: d.scope,
    condition: d.condition,
    message: d.message ?? null,
    webhookUrl: d.webhookUrl ?? null,
    createdAt: new Date(r.created_at).toISOString(),
    updatedAt: new Date(r.updated_at).toISOString(),
  };
}

/** The API view of an alarm row. */
export function alarmOf(r: AlarmRow): AlarmView {
  return {
    id: r.id,
    ruleId: r.rule_id,
    ruleName: r.rule_name,
    node: r.node_id,
    device: r.device,
    metric: r.metric,
    severity: r.severity,
    agencyId: r.agency_id,
    state: r.state,
    message: r.message,
    count: Number(r.count),
    firstValue: r.first_value,
    lastValue: r.last_value,
    raisedAt: new Date(r.raised_at).toISOString(),
    lastAt: new Date(r.last_at).toISOString(),
    acknowledgedAt: iso(r.acknowledged_at),
    acknowledgedBy: r.acknowledged_by,
    ackComment: r.ack_comment,
    clearedAt: iso(r.cleared_at),
    clearedBy: r.cleared_by,
    clearReason: r.clear_reason,
  };
}

/** CS_ERR_ALARM_NOT_FOUND (404). */
export const alarmNotFound = (id: string) =>
  new CitysenseError('CS_ERR_ALARM_NOT_FOUND', `no alarm ${id}; list them with GET /v1/alarms`, 404, { id });
/** CS_ERR_RULE_NOT_FOUND (404). */
export const ruleNotFound = (id: string) =>
  new CitysenseError(
    'CS_ERR_RULE_NOT_FOUND',
    `no alarm rule ${id}; list them with GET /v1/alarm-rules`,
    404,
    {
      id,
    },
  );

/** Data access of the rules engine. */
export class AlarmStore {
  readonly db: Database;

  constructor(db: Database) {
    this.db = db;
  }

  /** Every rule, by id. */
  async listRules(): Promise<AlarmRule[]> {
    const { rows } = await this.db.query<RuleRow>('SELECT * FROM alarm_rules ORDER BY id');
    return rows.map(ruleOf);
  }

  /** One rule, or undefined. */
  async getRule(id: string): Promise<AlarmRule | undefined> {
    const { rows } = await this.db.query<RuleRow>('SELECT * FROM alarm_rules WHERE id = $1', [id]);
    return rows[0] ? ruleOf(rows[0]) : undefined;
  }

  /** Inserts (`create`) or replaces a rule; CS_ERR_RULE_DUPLICATE (409) when creating an existing id. */
  async saveRule(id: string, input: RuleInput, create: boolean): Promise<AlarmRule> {
    const definition = JSON.stringify({
      scope: input.scope,
      condition: input.condition,
      message: input.message ?? null,
      webhookUrl: input.webhookUrl ?? null,
    });
    const params = [
      id,
      input.name,
      input.enabled ?? true,
      input.severity,
      input.agencyId ?? null,
      definition,
    ];
    const { rows } = create
      ? await this.db.query<RuleRow>(
          `INSERT INTO alarm_rules (id, name, enabled, severity, agency_id, definition)
           VALUES ($1, $2, $3, $4, $5, $6::jsonb) ON CONFLICT (id) DO NOTHING RETURNING *`,
          params,
        )
      : await this.db.query<RuleRow>(
          `UPDATE alarm_rules SET name = $2, enabled = $3, severity = $4, agency_id = $5, definition = $6::jsonb,
             updated_at = now() WHERE id = $1 RETURNING *`,
          params,
        );
    const row = rows[0];
    if (!row) {
      if (create)
        throw new CitysenseError(
          'CS_ERR_RULE_DUPLICATE',
          `alarm rule ${id} exists; change it with PUT /v1/alarm-rules/${id} or pick another id`,
          409,
          { id },
        );
      throw ruleNotFound(id);
    }
    return ruleOf(row);
  }

  /** Whether an agency of that id exists (agencies live in the auth directory). */
  async agencyExists(id: string): Promise<boolean> {
    const { rows } = await this.db.query('SELECT 1 FROM agencies WHERE id = $1', [id]);
    return rows.length > 0;
  }

  /** Deletes a rule; false when there was none. */
  async deleteRule(id: string): Promise<boolean> {
    const { affectedRows } = await this.db.query('DELETE FROM alarm_rules WHERE id = $1', [id]);
    return affectedRows > 0;
  }

  /** Alarms not cleared yet. */
  async openAlarms(): Promise<AlarmView[]> {
    const { rows } = await this.db.query<AlarmRow>("SELECT * FROM alarms WHERE state <> 'cleared'");
    return rows.map(alarmOf);
  }

  /** Alarms matching `f`, most severe first, then newest first. */
  async list(f: AlarmFilter): Promise<AlarmView[]> {
    const where: string[] = [];
    const params: unknown[] = [];
    const add = (sql: string, value: unknown) => {
      params.push(value);
      where.push(sql.replace('?', `$${params.length}`));
    };
    if (f.state === 'open') where.push("state <> 'cleared'");
    else if (f.state) add('state = ?', f.state);
    if (f.severity) add('severity = ?', f.severity);
    if (f.node) add('node_id = ?', f.node);
    if (f.rule) add('rule_id = ?', f.rule);
    if (f.since) add('raised_at >= ?', f.since);
    if (f.agencyId !== undefined) add('(agency_id IS NULL OR agency_id = ?)', f.agencyId);
    params.push(f.limit);
    const { rows } = await this.db.query<AlarmRow>(
      `SELECT * FROM alarms ${where.length > 0 ? `WHERE ${where.join(' AND ')}` : ''}
       ORDER BY severity_rank, raised_at DESC, id LIMIT $${params.length}`,
      params,
    );
    return rows.map(alarmOf);
  }

  /** One alarm, or undefined. */
  async get(id: string, q: Queryable = this.db, lock = false): Promise<AlarmView | undefined> {
    if (!/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i.test(id)) return undefined;
    const { rows } = await q.query<AlarmRow>(
      `SELECT * FROM alarms WHERE id = $1${lock ? ' FOR UPDATE' : ''}`,
      [id],
    );
    return rows[0] ? alarmOf(rows[0]) : undefined;
  }

  /** An alarm's transitions, oldest first. */
  async history(id: string): Promise<AlarmEventView[]> {
    const { rows } = await this.db.query<{
      id: number;
      time: Date;
      transition: AlarmTransition;
      actor: string | null;
      comment: string | null;
      value: number | null;
    }>(
      'SELECT id, time, transition, actor, comment, value FROM alarm_events WHERE alarm_id = $1 ORDER BY id',
      [id],
    );
    return rows.map((r) => ({ ...r, id: Number(r.id), time: new Date(r.time).toISOString() }));
  }

  /** Webhook notifications of one alarm, or the most recent ones of a state. */
  async deliveries(f: {
    alarmId?: string;
    state?: DeliveryView['state'];
    limit: number;
  }): Promise<DeliveryView[]> {
    const { rows } = await this.db.query<{
      id: number;
      event_id: number;
      alarm_id: string;
      target: string;
      state: DeliveryView['state'];
      attempts: number;
      next_attempt_at: Date | null;
      last_error: string | null;
      delivered_at: Date | null;
    }>(
      `SELECT id, event_id, alarm_id, target, state, attempts, next_attempt_at, last_error, delivered_at
       FROM alarm_webhook_deliveries
       WHERE ($1::uuid IS NULL OR alarm_id = $1) AND ($2::text IS NULL OR state = $2)
       ORDER BY id DESC LIMIT $3`,
      [f.alarmId ?? null, f.state ?? null, f.limit],
    );
    return rows.map((r) => ({
      id: Number(r.id),
      eventId: Number(r.event_id),
      alarmId: r.alarm_id,
      target: r.target,
      state: r.state,
      attempts: r.attempts,
      nextAttemptAt: r.state === 'pending' ? iso(r.next_attempt_at) : null,
      lastError: r.last_error,
      deliveredAt: iso(r.delivered_at),
    }));
  }

  /** Deliveries per state. */
  async deliveryCounts(): Promise<Record<DeliveryView['state'], number>> {
    const { rows } = await this.db.query<{ state: DeliveryView['state']; n: number }>(
      'SELECT state, count(*)::int AS n FROM alarm_webhook_deliveries GROUP BY state',
    );
    const out = { pending: 0, delivered: 0, failed: 0 };
    for (const r of rows) out[r.state] = Number(r.n);
    return out;
  }

  /**
   * Opens an alarm. When another writer (a hub replica) already holds the open alarm of
   * this series, counts into that one instead and returns its id with `opened: false`.
   */
  async insertAlarm(
    tx: Queryable,
    a: { id: string; rule: AlarmRule; series: SeriesKey; value: number | null; at: Date },
  ): Promise<{ id: string; opened: boolean }> {
    const { rows } = await tx.query<{ id: string }>(
      `INSERT INTO alarms (id, rule_id, rule_name, node_id, device, metric, severity, severity_rank, agency_id, state,
         message, count, first_value, last_value, raised_at, last_at)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, 'active', $10, 1, $11, $11, $12, $12)
       ON CONFLICT (rule_id, node_id, device, metric) WHERE state <> 'cleared' DO NOTHING RETURNING id`,
      [
        a.id,
        a.rule.id,
        a.rule.name,
        a.series.node,
        a.series.device,
        a.series.metric,
        a.rule.severity,
        SEVERITY_RANK[a.rule.severity],
        a.rule.agencyId,
        a.rule.message,
        a.value,
        a.at,
      ],
    );
    if (rows[0]) return { id: rows[0].id, opened: true };
    const existing = await tx.query<{ id: string }>(
      `UPDATE alarms SET count = count + 1, last_value = COALESCE($5, last_value), last_at = GREATEST(last_at, $6)
       WHERE rule_id = $1 AND node_id = $2 AND device = $3 AND metric = $4 AND state <> 'cleared' RETURNING id`,
      [a.rule.id, a.series.node, a.series.device, a.series.metric, a.value, a.at],
    );
    const id = existing.rows[0]?.id;
    if (!id) throw new Error('alarm insert conflicted but no open alarm was found');
    return { id, opened: false };
  }

  /** Adds de-duplicated repeats to an open alarm. */
  async addRepeats(id: string, n: number, value: number | null, at: Date): Promise<void> {
    await this.db.query(
      `UPDATE alarms SET count = count + $2, last_value = COALESCE($3, last_value), last_at = GREATEST(last_at, $4)
       WHERE id = $1 AND state <> 'cleared'`,
      [id, n, value, at],
    );
  }

  /** Moves an alarm to `acknowledged` or `cleared`; returns the updated alarm. */
  async transition(
    tx: Queryable,
    id: string,
    to: 'acknowledged' | 'cleared',
    t: {
      actor: string | null;
      comment: string | null;
      reason: string | null;
      value: number | null;
      at: Date;
    },
  ): Promise<AlarmView> {
    const { rows } =
      to === 'acknowledged'
        ? await tx.query<AlarmRow>(
            `UPDATE alarms SET state = 'acknowledged', acknowledged_at = $2, acknowledged_by = $3, ack_comment = $4
             WHERE id = $1 RETURNING *`,
            [id, t.at, t.actor, t.comment],
          )
        : await tx.query<AlarmRow>(
            `UPDATE alarms SET state = 'cleared', cleared_at = $2, cleared_by = $3, clear_reason = $4,
               last_value = COALESCE($5, last_value)
             WHERE id = $1 RETURNING *`,
            [id, t.at, t.actor, t.reason, t.value],
          );
    const row = rows[0];
    if (!row) throw alarmNotFound(id);
    return alarmOf(row);
  }

  /** Records a transition; returns the event id. */
  async addEvent(
    tx: Queryable,
    e: {
      alarmId: string;
      transition: AlarmTransition;
      at: Date;
      actor: string | null;
      comment: string | null;
      value: number | null;
    },
  ): Promise<number> {
    const { rows } = await tx.query<{ id: number }>(
      `INSERT INTO alarm_events (alarm_id, time, transition, actor, comment, value)
       VALUES ($1, $2, $3, $4, $5, $6) RETURNING id`,
      [e.alarmId, e.at, e.transition, e.actor, e.comment, e.value],
    );
    return Number(rows[0]?.id);
  }

  /** Queues one webhook notification per target. */
  async enqueueDeliveries(
    tx: Queryable,
    d: {
      eventId: number;
      alarmId: string;
      targets: readonly string[];
      body: (target: string) => string;
      at: Date;
    },
  ): Promise<void> {
    for (const target of d.targets) {
      await tx.query(
        `INSERT INTO alarm_webhook_deliveries (event_id, alarm_id, target, body, state, next_attempt_at)
         VALUES ($1, $2, $3, $4, 'pending', $5)`,
        [d.eventId, d.alarmId, target, d.body(target), d.at],
      );
    }
  }
}
