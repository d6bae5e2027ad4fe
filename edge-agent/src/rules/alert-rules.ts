/**
 * Local alert rules ("situation in the cloud, scene at the edge, alert on the
 * device"): every analysed frame is checked on the node itself, so an alert is
 * raised within one frame of the scene changing, with or without a hub link.
 */
import {
  type AlertRule,
  AlertRuleSchema,
  type AnalyticsObject,
  CitysenseError,
  type EdgeAlert,
  type VideoAnalyticsFrame,
} from '@citysense/protocol';
import { Type } from '@sinclair/typebox';
import { Value } from '@sinclair/typebox/value';

const RuleList = Type.Array(AlertRuleSchema, { maxItems: 64 });

/** Validates rules (defaults filled in); throws CS_ERR_RULE_INVALID listing every problem. */
export function parseAlertRules(doc: unknown): AlertRule[] {
  const rules = Value.Default(RuleList, structuredClone(doc ?? []));
  const problems = [...Value.Errors(RuleList, rules)].map((e) => `${e.path || '/'}: ${e.message}`);
  const ids = new Set<string>();
  if (problems.length === 0)
    for (const r of rules as AlertRule[]) {
      if (ids.has(r.id)) problems.push(`rule id ${r.id} appears twice`);
      ids.add(r.id);
    }
  if (problems.length > 0)
    throw new CitysenseError(
      'CS_ERR_RULE_INVALID',
      `invalid alert rules: ${problems.slice(0, 10).join('; ')}`,
      400,
      {
        problems,
      },
    );
  return rules as AlertRule[];
}

/** True when point (x, y) lies inside the polygon (ray casting; normalised coordinates). */
export function insidePolygon(
  x: number,
  y: number,
  polygon: ReadonlyArray<readonly [number, number]>,
): boolean {
  let inside = false;
  for (let i = 0, j = polygon.length - 1; i < polygon.length; j = i++) {
    const [xi, yi] = polygon[i] ?? [0, 0];
    const [xj, yj] = polygon[j] ?? [0, 0];
    if (yi > y !== yj > y && x < ((xj - xi) * (y - yi)) / (yj - yi) + xi) inside = !inside;
  }
  return inside;
}

/** True when `time` (ms) falls in the HH:MM window in the node's local time; windows may cross midnight. */
export function withinHours(time: number, hours: { from: string; to: string } | undefined): boolean {
  if (!hours) return true;
  const d = new Date(time);
  const now = d.getHours() * 60 + d.getMinutes();
  const from = minutesOf(hours.from);
  const to = minutesOf(hours.to);
  return from <= to ? now >= from && now < to : now >= from || now < to;
}

function minutesOf(hhmm: string): number {
  const [h = '0', m = '0'] = hhmm.split(':');
  return Number(h) * 60 + Number(m);
}

/** Per rule and source: when it last fired, and since when a dwell zone has been held. */
interface RuleState {
  lastFiredAt?: number;
  heldSince?: number;
  lastSeenAt?: number;
}

/** Evaluates a set of rules frame by frame, keeping dwell and cooldown state per source. */
export class AlertRuleEngine {
  readonly #rules: readonly AlertRule[];
  readonly #state = new Map<string, RuleState>();

  constructor(rules: readonly AlertRule[]) {
    this.#rules = rules;
  }

  /** The alerts this frame raises (empty most of the time). */
  evaluate(frame: VideoAnalyticsFrame): EdgeAlert[] {
    const alerts: EdgeAlert[] = [];
    for (const rule of this.#rules) {
      if (rule.sources && !rule.sources.includes(frame.source)) continue;
      const key = `${rule.id}\u0000${frame.source}`;
      const state = this.#state.get(key) ?? {};
      this.#state.set(key, state);
      const t = frame.utcTimeMs;
      if (!withinHours(t, rule.activeHours)) {
        state.heldSince = undefined;
        continue;
      }
      const matching = frame.objects.filter((o) => matches(rule, o));
      const count = matching.length;
      let fires = false;
      let heldSeconds = 0;
      switch (rule.kind) {
        case 'presence':
          fires = count >= rule.minCount;
          break;
        case 'count':
          fires = count > rule.threshold;
          break;
        case 'dwell': {
          const gapMs = rule.gapSeconds * 1000;
          if (count >= rule.minCount) {
            if (state.heldSince === undefined || t - (state.lastSeenAt ?? t) > gapMs) state.heldSince = t;
            state.lastSeenAt = t;
            heldSeconds = (t - state.heldSince) / 1000;
            fires = heldSeconds >= rule.seconds;
          } else if (state.lastSeenAt === undefined || t - state.lastSeenAt > gapMs) {
            state.heldSince = undefined;
          }
          break;
        }
      }
      if (!fires) continue;
      if (state.lastFiredAt !== undefined && t - state.lastFiredAt < rule.cooldownSeconds * 1000) continue;
      state.lastFiredAt = t;
      alerts.push({
        utcTimeMs: t,
        ruleId: rule.id,
        kind: rule.kind,
        severity: rule.severity,
        source: frame.source,
        algorithmId: frame.algorithmId,
        algorithmVersion: frame.algorithmVersion,
        objects: matching,
        count,
        heldSeconds,
        message: rule.message ?? describe(rule, count, heldSeconds),
      });
    }
    return alerts;
  }
}

function matches(rule: AlertRule, o: AnalyticsObject): boolean {
  if (!rule.labels.includes(o.label) || o.likelihood < rule.minScore) return false;
  if (!rule.zone) return true;
  // The foot point: where a person or vehicle stands, not the middle of its box.
  return insidePolygon((o.box.left + o.box.right) / 2, o.box.bottom, rule.zone);
}

function describe(rule: AlertRule, count: number, heldSeconds: number): string {
  const what = `${count} ${rule.labels.join('/')}${rule.zone ? ' in the zone' : ''}`;
  switch (rule.kind) {
    case 'presence':
      return `${what}`;
    case 'count':
      return `${what}, more than ${rule.threshold}`;
    case 'dwell':
      return `${what} for ${Math.round(heldSeconds)} s`;
  }
}
