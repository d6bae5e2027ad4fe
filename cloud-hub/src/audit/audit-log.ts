/**
 * The audit trail (003 §7.3.3; issue 6 "Audit"): who, from which agency, did what
 * to which target, when, with the state before and after, and whether it worked.
 * Rows go to `audit_log`, which a trigger keeps append-only (`0075_audit.sql`).
 *
 * `record` never blocks or fails the caller: events are queued and written in
 * batches (one multi-row INSERT) right after the current tick; a failed write is
 * logged with its events and counted, and the request goes on.
 */
import { componentLogger, errorMessage, type Logger } from '@citysense/protocol';
import type { FastifyRequest } from 'fastify';
import type { Counter } from '../http/metrics.ts';
import type { HttpAuditEvent, HttpPrincipal } from '../http/server.ts';
import type { Database } from '../storage/database.ts';

/** How an audited action ended. */
export type AuditOutcome = 'success' | 'failure' | 'refused';

/** Who acted. */
export interface AuditActor {
  kind: 'admin' | 'user' | 'node' | 'anonymous';
  id: string | null;
  username: string | null;
  agencyId: string | null;
}

/** One thing to record. */
export interface AuditEvent {
  actor: AuditActor;
  /** Dotted verb: `user.create`, `auth.login`, `auth.refused`, `http.write`. */
  action: string;
  targetType?: string | undefined;
  targetId?: string | undefined;
  before?: unknown;
  after?: unknown;
  requestId?: string | undefined;
  ip?: string | undefined;
  /** Default `success`. */
  outcome?: AuditOutcome;
  /** Error code or short reason of a failure/refusal. */
  reason?: string | undefined;
  /** Default: when `record` was called. */
  at?: Date;
}

/** One stored audit entry. */
export interface AuditEntry {
  id: number;
  at: Date;
  actor: AuditActor;
  action: string;
  targetType: string | null;
  targetId: string | null;
  before: unknown;
  after: unknown;
  requestId: string | null;
  ip: string | null;
  outcome: AuditOutcome;
  reason: string | null;
}

/** Filter and page of an audit query. */
export interface AuditQuery {
  since?: Date | undefined;
  until?: Date | undefined;
  /** Actor id or username. */
  actor?: string | undefined;
  /** Exact action, or a prefix ending in `*` (`user.*`). */
  action?: string | undefined;
  /** Target id. */
  target?: string | undefined;
  targetType?: string | undefined;
  outcome?: AuditOutcome | undefined;
  /** Only entries whose actor is of this agency. */
  agencyId?: string | undefined;
  /** Entries with an id above this one (the `next` of the previous page). */
  after?: number | undefined;
  limit?: number | undefined;
}

interface AuditRow {
  id: number;
  at: Date;
  actor_kind: AuditActor['kind'];
  actor_id: string | null;
  actor_username: string | null;
  agency_id: string | null;
  action: string;
  target_type: string | null;
  target_id: string | null;
  before: unknown;
  after: unknown;
  request_id: string | null;
  ip: string | null;
  outcome: AuditOutcome;
  reason: string | null;
}

const COLUMNS = [
  'at',
  'actor_kind',
  'actor_id',
  'actor_username',
  'agency_id',
  'action',
  'target_type',
  'target_id',
  'before',
  'after',
  'request_id',
  'ip',
  'outcome',
  'reason',
] as const;

/** The audit actor of a request's principal. */
export function actorOf(principal: HttpPrincipal | null): AuditActor {
  switch (principal?.kind) {
    case 'admin':
      return { kind: 'admin', id: null, username: 'admin', agencyId: null };
    case 'node':
      return { kind: 'node', id: principal.nodeId, username: null, agencyId: null };
    case 'user':
      return {
        kind: 'user',
        id: principal.userId,
        username: principal.username,
        agencyId: principal.agencyId,
      };
    default:
      return { kind: 'anonymous', id: null, username: null, agencyId: null };
  }
}

const json = (v: unknown) => (v === undefined || v === null ? null : JSON.stringify(v));

/** Options of the audit log. */
export interface AuditLogOptions {
  db: Database;
  logger?: Logger;
  /** Counts events that could not be written. */
  failures?: Counter;
  /** Events per INSERT; default 500. */
  maxBatch?: number;
}

/** Append-only audit log with batched, non-blocking writes. */
export class AuditLog {
  readonly #db: Database;
  readonly #log: Logger;
  readonly #failures: Counter | undefined;
  readonly #maxBatch: number;
  #queue: AuditEvent[] = [];
  #scheduled = false;
  #chain: Promise<void> = Promise.resolve();
  #failed = 0;

  constructor(options: AuditLogOptions) {
    this.#db = options.db;
    this.#log = componentLogger('audit', options.logger);
    this.#failures = options.failures;
    this.#maxBatch = options.maxBatch ?? 500;
  }

  /** Events that could not be written since start. */
  get failed(): number {
    return this.#failed;
  }

  /** Queues an event; it is written right after the current tick. Never throws. */
  record(event: AuditEvent): void {
    this.#queue.push({ ...event, at: event.at ?? new Date() });
    if (this.#scheduled) return;
    this.#scheduled = true;
    setImmediate(() => {
      this.#scheduled = false;
      void this.flush();
    });
  }

  /** Records an event of a request: actor, request id and address come from it. */
  recordRequest(request: FastifyRequest, event: Omit<AuditEvent, 'actor'> & { actor?: AuditActor }): void {
    request.auditRecorded = true;
    this.record({
      actor: actorOf(request.principal),
      requestId: request.id,
      ip: request.ip,
      ...event,
    });
  }

  /** Records what the HTTP layer reports: refused accesses and writes that no route recorded itself. */
  recordHttp(event: HttpAuditEvent): void {
    const r = event.request;
    const route = `${r.method} ${r.routeOptions.url ?? r.url.split('?')[0]}`;
    if (event.kind === 'refused')
      this.record({
        actor: actorOf(r.principal),
        action: 'auth.refused',
        targetType: 'route',
        targetId: route,
        after: { path: r.url.split('?')[0], message: event.error.message },
        requestId: r.id,
        ip: r.ip,
        outcome: 'refused',
        reason: event.error.code,
      });
    else
      this.record({
        actor: actorOf(r.principal),
        action: 'http.write',
        targetType: 'route',
        targetId: route,
        after: { path: r.url.split('?')[0], params: r.params ?? null, statusCode: event.statusCode },
        requestId: r.id,
        ip: r.ip,
      });
  }

  /** Writes every queued event; resolves when they are stored (or logged as failed). */
  flush(): Promise<void> {
    this.#chain = this.#chain.then(() => this.#drain());
    return this.#chain;
  }

  /** Writes what is queued. */
  async stop(): Promise<void> {
    await this.flush();
  }

  async #drain(): Promise<void> {
    while (this.#queue.length > 0) {
      const batch = this.#queue.splice(0, this.#maxBatch);
      const params: unknown[] = [];
      const tuples = batch.map((e) => {
        const values = [
          e.at ?? new Date(),
          e.actor.kind,
          e.actor.id,
          e.actor.username,
          e.actor.agencyId,
          e.action,
          e.targetType ?? null,
          e.targetId ?? null,
          json(e.before),
          json(e.after),
          e.requestId ?? null,
          e.ip ?? null,
          e.outcome ?? 'success',
          e.reason ?? null,
        ];
        const first = params.length;
        params.push(...values);
        return `(${values.map((_, i) => `$${first + i + 1}${i === 8 || i === 9 ? '::jsonb' : ''}`).join(', ')})`;
      });
      try {
        await this.#db.query(
          `INSERT INTO audit_log (${COLUMNS.join(', ')}) VALUES ${tuples.join(', ')}`,
          params,
        );
      } catch (err) {
        this.#failed += batch.length;
        this.#failures?.inc(undefined, batch.length);
        // The hub log is the fallback trail: keep what could not be stored there.
        this.#log.error({ err: errorMessage(err), events: batch }, 'could not write audit events');
      }
    }
  }

  /** Entries matching `q`, oldest first; `next` is the `after` of the following page, null at the end. */
  async query(q: AuditQuery): Promise<{ entries: AuditEntry[]; next: number | null }> {
    await this.flush();
    const where: string[] = [];
    const params: unknown[] = [];
    const add = (sql: (n: string) => string, value: unknown) => {
      params.push(value);
      where.push(sql(`$${params.length}`));
    };
    if (q.since) add((n) => `at >= ${n}`, q.since);
    if (q.until) add((n) => `at < ${n}`, q.until);
    if (q.actor) add((n) => `(actor_id = ${n} OR actor_username = ${n})`, q.actor);
    if (q.action?.endsWith('*'))
      add((n) => `action LIKE ${n}`, `${q.action.slice(0, -1).replace(/[\\%_]/g, (c) => `\\${c}`)}%`);
    else if (q.action) add((n) => `action = ${n}`, q.action);
    if (q.target) add((n) => `target_id = ${n}`, q.target);
    if (q.targetType) add((n) => `target_type = ${n}`, q.targetType);
    if (q.outcome) add((n) => `outcome = ${n}`, q.outcome);
    if (q.agencyId) add((n) => `agency_id = ${n}`, q.agencyId);
    if (q.after !== undefined) add((n) => `id > ${n}`, q.after);
    const limit = Math.min(Math.max(q.limit ?? 100, 1), 1000);
    params.push(limit + 1);
    const { rows } = await this.#db.query<AuditRow>(
      `SELECT id, ${COLUMNS.join(', ')} FROM audit_log ${where.length ? `WHERE ${where.join(' AND ')}` : ''}
        ORDER BY id LIMIT $${params.length}`,
      params,
    );
    const page = rows.slice(0, limit);
    return {
      entries: page.map((r) => ({
        id: Number(r.id),
        at: new Date(r.at),
        actor: { kind: r.actor_kind, id: r.actor_id, username: r.actor_username, agencyId: r.agency_id },
        action: r.action,
        targetType: r.target_type,
        targetId: r.target_id,
        before: r.before,
        after: r.after,
        requestId: r.request_id,
        ip: r.ip,
        outcome: r.outcome,
        reason: r.reason,
      })),
      next: rows.length > limit ? Number(page[page.length - 1]?.id) : null,
    };
  }
}
