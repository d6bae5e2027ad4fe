/**
 * What the web console shows live: platform health (nodes online, alarms open, ingest
 * rate) and the changes behind it (node online/offline, alarm raised/cleared, rollout
 * progress), pushed to `GET /v1/events` subscribers.
 *
 * The feed samples the hub's own services on one timer shared by every subscriber and
 * sends differences, so the services need no event plumbing of their own and an idle
 * hub (no console open) does no work beyond reading one in-memory counter.
 */
import { componentLogger, errorMessage, type Logger } from '@citysense/protocol';
import type { Role } from '../auth/roles.ts';

/** A node as the feed compares it. */
export interface FeedNode {
  id: string;
  online: boolean;
}

/** An open alarm as the feed compares it. */
export interface FeedAlarm {
  id: string;
  severity: string;
  node: string;
  ruleName: string;
  agencyId: string | null;
  state: string;
}

/** A deployment as the feed compares it. */
export interface FeedRollout {
  id: string;
  algorithmId: string;
  version: string;
  state: string;
  stage: string;
  total: number;
  counts: Record<string, number>;
}

/** Where the feed reads from; hub.ts wires these to the registry, alarms and deployments. */
export interface LiveFeedSources {
  nodes(): Promise<FeedNode[]>;
  openAlarms(): Promise<FeedAlarm[]>;
  rollouts(): Promise<FeedRollout[]>;
  /** Readings committed since start (a monotonic counter). */
  readingsCommitted(): number;
}

/** Platform health for the console header (`GET /v1/health/summary`). */
export interface HealthSummary {
  at: string;
  nodes: { online: number; total: number };
  alarms: { open: number; bySeverity: Record<string, number> };
  ingest: { readingsPerSecond: number; windowS: number };
}

/** One server-sent event: `event:` name, JSON `data:`, and who may receive it. */
export interface FeedEvent {
  event: 'summary' | 'node' | 'alarm' | 'rollout';
  data: unknown;
  /** Roles that receive it; undefined = every signed-in user. */
  roles?: readonly Role[];
  /** Agency the event belongs to; agency-bound roles receive only their own (null = platform-wide). */
  agencyId?: string | null;
}

/** Options of the live feed. */
export interface LiveFeedOptions {
  sources: LiveFeedSources;
  /** How often sources are sampled while someone listens; default 2 s. */
  intervalMs?: number;
  /** Ingest rate window; default 60 s. */
  rateWindowMs?: number;
  logger?: Logger;
}

const NODE_ROLES: readonly Role[] = ['platform-admin', 'field-engineer'];
const ALARM_ROLES: readonly Role[] = ['platform-admin', 'agency-operator', 'field-engineer'];
const ROLLOUT_ROLES: readonly Role[] = ['platform-admin', 'algorithm-admin', 'field-engineer'];

/** Samples hub state on one shared timer and fans the differences out to subscribers. */
export class LiveFeed {
  readonly #o: Required<Omit<LiveFeedOptions, 'logger'>>;
  readonly #log: Logger;
  readonly #listeners = new Set<(e: FeedEvent) => void>();
  readonly #samples: Array<{ t: number; n: number }> = [];
  #timer: NodeJS.Timeout | undefined;
  #polling: Promise<void> | undefined;
  #nodes: Map<string, boolean> | undefined;
  #alarms: Map<string, FeedAlarm> | undefined;
  #rollouts: Map<string, string> | undefined;
  #lastSummary = '';

  constructor(options: LiveFeedOptions) {
    this.#o = { intervalMs: 2000, rateWindowMs: 60_000, ...options };
    this.#log = componentLogger('console-feed', options.logger);
  }

  /** Starts sampling the ingest counter; idempotent. */
  async start(): Promise<void> {
    if (this.#timer) return;
    this.#sampleIngest();
    this.#timer = setInterval(() => this.#tick(), this.#o.intervalMs);
    this.#timer.unref();
  }

  /** Stops the timer and drops every subscriber; idempotent. */
  async stop(): Promise<void> {
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = undefined;
    this.#listeners.clear();
    await this.#polling;
  }

  /** Number of connected subscribers. */
  get subscribers(): number {
    return this.#listeners.size;
  }

  /** Receives every event from now on; returns the unsubscribe function. */
  subscribe(listener: (e: FeedEvent) => void): () => void {
    this.#listeners.add(listener);
    return () => {
      this.#listeners.delete(listener);
      if (this.#listeners.size === 0) {
        // Forget the baseline: the next subscriber starts from a fresh snapshot.
        this.#nodes = undefined;
        this.#alarms = undefined;
        this.#rollouts = undefined;
        this.#lastSummary = '';
      }
    };
  }

  /** Current platform health. */
  async summary(): Promise<HealthSummary> {
    const [nodes, alarms] = await Promise.all([this.#o.sources.nodes(), this.#o.sources.openAlarms()]);
    return this.#summarise(nodes, alarms);
  }

  /** Samples now instead of waiting for the timer (tests, and a new subscriber's first view). */
  poll(): Promise<void> {
    this.#polling ??= this.#poll().finally(() => {
      this.#polling = undefined;
    });
    return this.#polling;
  }

  #tick(): void {
    this.#sampleIngest();
    if (this.#listeners.size > 0) void this.poll();
  }

  #sampleIngest(): void {
    const now = Date.now();
    this.#samples.push({ t: now, n: this.#o.sources.readingsCommitted() });
    while (this.#samples.length > 2 && (this.#samples[0]?.t ?? now) < now - this.#o.rateWindowMs)
      this.#samples.shift();
  }

  #rate(): { readingsPerSecond: number; windowS: number } {
    const first = this.#samples[0];
    const now = { t: Date.now(), n: this.#o.sources.readingsCommitted() };
    if (!first || now.t - first.t < 500) return { readingsPerSecond: 0, windowS: 0 };
    const seconds = (now.t - first.t) / 1000;
    return { readingsPerSecond: +((now.n - first.n) / seconds).toFixed(1), windowS: Math.round(seconds) };
  }

  #summarise(nodes: FeedNode[], alarms: FeedAlarm[]): HealthSummary {
    const bySeverity: Record<string, number> = {};
    for (const a of alarms) bySeverity[a.severity] = (bySeverity[a.severity] ?? 0) + 1;
    return {
      at: new Date().toISOString(),
      nodes: { online: nodes.filter((n) => n.online).length, total: nodes.length },
      alarms: { open: alarms.length, bySeverity },
      ingest: this.#rate(),
    };
  }

  async #poll(): Promise<void> {
    try {
      const [nodes, alarms, rollouts] = await Promise.all([
        this.#o.sources.nodes(),
        this.#o.sources.openAlarms(),
        this.#o.sources.rollouts(),
      ]);
      const at = new Date().toISOString();
      if (this.#nodes)
        for (const n of nodes)
          if (this.#nodes.get(n.id) !== n.online)
            this.#emit({ event: 'node', data: { id: n.id, online: n.online, at }, roles: NODE_ROLES });
      this.#nodes = new Map(nodes.map((n) => [n.id, n.online]));

      const open = new Map(alarms.map((a) => [a.id, a]));
      if (this.#alarms) {
        for (const a of alarms)
          if (!this.#alarms.has(a.id))
            this.#emit({
              event: 'alarm',
              data: { ...a, change: 'raised', at },
              roles: ALARM_ROLES,
              agencyId: a.agencyId,
            });
        for (const [id, a] of this.#alarms)
          if (!open.has(id))
            this.#emit({
              event: 'alarm',
              data: { ...a, state: 'cleared', change: 'cleared', at },
              roles: ALARM_ROLES,
              agencyId: a.agencyId,
            });
      }
      this.#alarms = open;

      const seen = new Map<string, string>();
      for (const r of rollouts) {
        const key = JSON.stringify([r.state, r.stage, r.total, r.counts]);
        seen.set(r.id, key);
        if (this.#rollouts && this.#rollouts.get(r.id) !== key)
          this.#emit({ event: 'rollout', data: { ...r, at }, roles: ROLLOUT_ROLES });
      }
      this.#rollouts = seen;

      const summary = this.#summarise(nodes, alarms);
      const key = JSON.stringify([summary.nodes, summary.alarms, summary.ingest]);
      if (key !== this.#lastSummary) {
        this.#lastSummary = key;
        this.#emit({ event: 'summary', data: summary });
      }
    } catch (err) {
      this.#log.warn({ err: errorMessage(err) }, 'live feed sample failed; retrying at the next tick');
    }
  }

  #emit(e: FeedEvent): void {
    for (const listener of this.#listeners) listener(e);
  }
}
