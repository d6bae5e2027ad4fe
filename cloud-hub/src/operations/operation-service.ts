/**
 * Remote operations on edge nodes: the hub stores what an operator asked for, nudges
 * the node (NCMD `citysense/Operations Revision`), hands the node its pending
 * operations, takes the node's results and expires what the node never answered.
 * Every request, outcome and expiry is written to the audit log with who asked and
 * which node, so the trail holds the outcome and not only the HTTP request.
 */
import { randomBytes } from 'node:crypto';
import {
  CitysenseError,
  type ConfigApplyParams,
  ConfigApplyParamsSchema,
  componentLogger,
  errorMessage,
  isTerminalOperationState,
  type Logger,
  MAX_OPERATION_RESULT_BYTES,
  OPERATION_KINDS,
  OPERATION_PARAMS,
  type OperationKind,
  type OperationResult,
  type OperationState,
  type OperationsDocument,
  type RemoteConfig,
} from '@citysense/protocol';
import { Value } from '@sinclair/typebox/value';
import type { AuditActor, AuditLog } from '../audit/audit-log.ts';
import type { Database } from '../storage/database.ts';
import {
  type ConfigVersion,
  type ConfigVersionState,
  operationQueries as q,
  type StoredOperation,
} from './operation-store.ts';

/** Default time a node has to answer, per kind (config-apply adds its health timeout). */
const DEFAULT_TIMEOUT_MS: Record<OperationKind, number> = {
  doctor: 60_000,
  'log-tail': 30_000,
  'driver-restart': 60_000,
  'config-apply': 120_000,
  'config-rollback': 120_000,
};

/** Options of the operation service. */
export interface OperationServiceOptions {
  db: Database;
  audit: AuditLog;
  /** Nudges the node: its operations changed to `revision`. Failures are logged; the node also polls. */
  notify: (nodeId: string, revision: number) => Promise<void>;
  /** How often overdue operations are expired; default 5 s. Reads expire lazily as well. */
  sweepIntervalMs?: number;
  logger?: Logger;
}

/** An operation as the API shows it. */
export interface OperationView {
  id: string;
  nodeId: string;
  kind: string;
  params: unknown;
  state: OperationState;
  code: string | null;
  message: string | null;
  result: unknown;
  requestedBy: { kind: string; id: string | null; username: string | null; agencyId: string | null };
  createdAt: string;
  deadline: string;
  startedAt: string | null;
  finishedAt: string | null;
}

/** What the hub answers a node's result report. */
export interface ReportReply {
  /** False for a repeated terminal report: accepted, changed nothing. */
  applied: boolean;
  state: OperationState;
}

/** A configuration version as the API shows it. */
export interface ConfigVersionView {
  version: number;
  state: ConfigVersionState;
  reason: string | null;
  comment: string | null;
  author: { kind: string; id: string | null; username: string | null };
  createdAt: string;
  operationId: string | null;
  config: RemoteConfig;
}

const view = (op: StoredOperation): OperationView => ({
  id: op.id,
  nodeId: op.nodeId,
  kind: op.kind,
  params: op.params,
  state: op.state,
  code: op.code,
  message: op.message,
  result: op.result ?? null,
  requestedBy: op.requestedBy,
  createdAt: op.createdAt.toISOString(),
  deadline: op.deadline.toISOString(),
  startedAt: op.startedAt?.toISOString() ?? null,
  finishedAt: op.finishedAt?.toISOString() ?? null,
});

const newOperationId = () => `op-${randomBytes(8).toString('hex')}`;

function invalid(code: string, message: string, details?: unknown): CitysenseError {
  return new CitysenseError(code, message, 400, details);
}

/** Validates `params` of `kind` and applies defaults; CS_ERR_OPERATION_KIND / CS_ERR_OPERATION_INVALID (400). */
export function validateOperationParams(
  kind: string,
  params: unknown,
): { kind: OperationKind; params: unknown } {
  if (!(OPERATION_KINDS as readonly string[]).includes(kind))
    throw invalid(
      'CS_ERR_OPERATION_KIND',
      `unknown operation kind "${kind}": use one of ${OPERATION_KINDS.join(', ')}`,
    );
  const k = kind as OperationKind;
  const schema = OPERATION_PARAMS[k];
  const value = Value.Default(schema, structuredClone(params ?? {}));
  const problems = [...Value.Errors(schema, value)].map((e) => ({ path: e.path || '/', message: e.message }));
  if (problems.length > 0)
    throw invalid(
      'CS_ERR_OPERATION_INVALID',
      `invalid parameters for ${k}: ${problems.map((p) => `${p.path} ${p.message}`).join('; ')}`,
      problems,
    );
  return { kind: k, params: value };
}

/** Duplicate driver ids: the one semantic check the hub can make without knowing the node's build. */
function configProblems(config: RemoteConfig): Array<{ path: string; message: string }> {
  const seen = new Set<string>();
  const problems: Array<{ path: string; message: string }> = [];
  config.drivers.forEach((d, i) => {
    if (seen.has(d.id)) problems.push({ path: `/drivers/${i}/id`, message: `duplicate driver id "${d.id}"` });
    seen.add(d.id);
  });
  return problems;
}

/** Operator API and node API of remote operations. */
export class OperationService {
  readonly #o: OperationServiceOptions;
  readonly #log: Logger;
  #timer: NodeJS.Timeout | null = null;
  #sweeping: Promise<void> | null = null;

  constructor(o: OperationServiceOptions) {
    this.#o = o;
    this.#log = componentLogger('operations', o.logger);
  }

  /** Starts the expiry sweep. Idempotent. */
  async start(): Promise<void> {
    if (this.#timer) return;
    this.#timer = setInterval(() => {
      this.#sweeping ??= this.#expireOverdue()
        .catch((err: unknown) => this.#log.warn({ err: errorMessage(err) }, 'operation expiry sweep failed'))
        .finally(() => {
          this.#sweeping = null;
        });
    }, this.#o.sweepIntervalMs ?? 5_000);
    this.#timer.unref();
  }

  /** Stops the sweep and waits for one in flight. Idempotent. */
  async stop(): Promise<void> {
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = null;
    await this.#sweeping;
  }

  /** The agency of a node (null when it belongs to none), for access checks. */
  nodeAgency(nodeId: string): Promise<string | null> {
    return q.nodeAgency(this.#o.db, nodeId);
  }

  /**
   * Stores an operation for `nodeId` and nudges the node. `config-apply` is refused here:
   * configurations go through `pushConfig`, which versions them.
   */
  async create(
    nodeId: string,
    kind: string,
    params: unknown,
    actor: AuditActor,
    meta: { timeoutMs?: number | undefined; requestId?: string | undefined; ip?: string | undefined } = {},
  ): Promise<OperationView> {
    const checked = validateOperationParams(kind, params);
    if (checked.kind === 'config-apply')
      throw invalid(
        'CS_ERR_OPERATION_INVALID',
        'config-apply operations are created by PUT /v1/nodes/:id/config, which versions the configuration',
      );
    await this.#mustExist(nodeId);
    const op = await q.insert(this.#o.db, {
      id: newOperationId(),
      nodeId,
      kind: checked.kind,
      params: checked.params,
      requestedBy: actor,
      deadline: new Date(Date.now() + (meta.timeoutMs ?? DEFAULT_TIMEOUT_MS[checked.kind])),
    });
    this.#auditRequest(op, meta);
    await this.#nudge(nodeId, op.seq);
    return view(op);
  }

  /** Pending operations of a node, oldest first (the node's poll). Expires overdue ones first. */
  async document(nodeId: string): Promise<OperationsDocument> {
    await this.#expireOverdue(nodeId);
    const ops = await q.pending(this.#o.db, nodeId);
    return {
      nodeId,
      revision: await q.revision(this.#o.db, nodeId),
      operations: ops.map((op) => ({
        id: op.id,
        kind: op.kind,
        params: op.params,
        createdAt: op.createdAt.toISOString(),
        deadline: op.deadline.toISOString(),
      })),
    };
  }

  /**
   * A node's result. `running` is accepted from pending; a terminal state from pending or
   * running. Repeating the terminal state already stored is harmless (applied false);
   * anything else after the end is 409 CS_ERR_OPERATION_STATE.
   */
  async report(nodeId: string, operationId: string, report: OperationResult): Promise<ReportReply> {
    const bytes = report.result === undefined ? 0 : Buffer.byteLength(JSON.stringify(report.result));
    if (bytes > MAX_OPERATION_RESULT_BYTES)
      throw new CitysenseError(
        'CS_ERR_OPERATION_RESULT_TOO_LARGE',
        `result is ${bytes} bytes of JSON; at most ${MAX_OPERATION_RESULT_BYTES} are kept: send less (fewer log lines)`,
        413,
      );
    await this.#expireOverdue(nodeId);
    const op = await q.get(this.#o.db, nodeId, operationId);
    if (!op)
      throw new CitysenseError(
        'CS_ERR_OPERATION_NOT_FOUND',
        `node ${nodeId} has no operation ${operationId}`,
        404,
      );
    if (report.state === 'rolled-back' && op.kind !== 'config-apply')
      throw invalid('CS_ERR_OPERATION_INVALID', `only config-apply operations roll back, not ${op.kind}`);
    if (report.configVersion !== undefined)
      await q.setActiveVersion(this.#o.db, nodeId, report.configVersion);
    if (isTerminalOperationState(op.state)) {
      if (op.state === report.state) return { applied: false, state: op.state };
      throw new CitysenseError(
        'CS_ERR_OPERATION_STATE',
        `operation ${operationId} is already ${op.state}${op.state === 'expired' ? ': it passed its deadline; ask again' : ''}`,
        409,
      );
    }
    const from: OperationState[] = report.state === 'running' ? ['pending'] : ['pending', 'running'];
    const updated = await q.transition(this.#o.db, operationId, from, {
      state: report.state,
      code: report.code,
      message: report.message,
      result: report.result,
    });
    if (!updated) {
      // Another report won the race; answer with what is stored now.
      const now = await q.get(this.#o.db, nodeId, operationId);
      return { applied: false, state: now?.state ?? op.state };
    }
    if (isTerminalOperationState(updated.state)) {
      await this.#onFinished(updated);
      this.#auditOutcome(updated);
    }
    return { applied: true, state: updated.state };
  }

  /** One operation of a node; 404 CS_ERR_OPERATION_NOT_FOUND. */
  async get(nodeId: string, operationId: string): Promise<OperationView> {
    await this.#expireOverdue(nodeId);
    const op = await q.get(this.#o.db, nodeId, operationId);
    if (!op)
      throw new CitysenseError(
        'CS_ERR_OPERATION_NOT_FOUND',
        `node ${nodeId} has no operation ${operationId}`,
        404,
      );
    return view(op);
  }

  /** Operations, newest first. */
  async list(filter: {
    nodeId?: string;
    kind?: string;
    state?: string;
    limit?: number;
  }): Promise<OperationView[]> {
    await this.#expireOverdue(filter.nodeId);
    const ops = await q.list(this.#o.db, { ...filter, limit: filter.limit ?? 100 });
    return ops.map(view);
  }

  /**
   * Stores configuration version n+1 of a node and creates its `config-apply` operation.
   * The document was validated against the agent's schema by the route; duplicate driver
   * ids are refused here (CS_ERR_CONFIG_INVALID); the node checks the rest.
   */
  async pushConfig(
    nodeId: string,
    input: { config: RemoteConfig; comment?: string | undefined; healthTimeoutMs?: number | undefined },
    actor: AuditActor,
    meta: { requestId?: string | undefined; ip?: string | undefined } = {},
  ): Promise<{ version: number; operation: OperationView }> {
    const problems = configProblems(input.config);
    if (problems.length > 0)
      throw invalid(
        'CS_ERR_CONFIG_INVALID',
        `configuration has ${problems.length} problem(s): ${problems.map((p) => `${p.path}: ${p.message}`).join('; ')}`,
        problems,
      );
    await this.#mustExist(nodeId);
    const { version, op } = await this.#o.db.transaction(async (tx) => {
      const version = await q.nextConfigVersion(tx, nodeId);
      await q.insertConfig(tx, {
        nodeId,
        version,
        config: input.config,
        comment: input.comment ?? null,
        author: actor,
      });
      const params = Value.Default(ConfigApplyParamsSchema, {
        version,
        config: input.config,
        ...(input.healthTimeoutMs === undefined ? {} : { healthTimeoutMs: input.healthTimeoutMs }),
      }) as ConfigApplyParams;
      const op = await q.insert(tx, {
        id: newOperationId(),
        nodeId,
        kind: 'config-apply',
        params,
        requestedBy: actor,
        deadline: new Date(Date.now() + DEFAULT_TIMEOUT_MS['config-apply'] + params.healthTimeoutMs),
      });
      await q.linkConfigOperation(tx, nodeId, version, op.id);
      await q.supersedePending(tx, nodeId, version);
      return { version, op };
    });
    this.#o.audit.record({
      actor,
      action: 'node-config.push',
      targetType: 'node',
      targetId: nodeId,
      after: {
        version,
        operationId: op.id,
        comment: input.comment ?? null,
        drivers: input.config.drivers.length,
      },
      requestId: meta.requestId,
      ip: meta.ip,
    });
    this.#auditRequest(op, meta);
    await this.#nudge(nodeId, op.seq);
    return { version, operation: view(op) };
  }

  /** Configuration versions of a node, newest first, and the version the node last said it runs. */
  async configVersions(
    nodeId: string,
    limit = 100,
  ): Promise<{
    nodeId: string;
    activeVersion: number | null;
    reportedAt: string | null;
    versions: ConfigVersionView[];
  }> {
    await this.#expireOverdue(nodeId);
    const [versions, active] = await Promise.all([
      q.configVersions(this.#o.db, nodeId, limit),
      q.activeVersion(this.#o.db, nodeId),
    ]);
    return {
      nodeId,
      activeVersion: active?.version ?? null,
      reportedAt: active?.at.toISOString() ?? null,
      versions: versions.map((v: ConfigVersion) => ({
        version: v.version,
        state: v.state,
        reason: v.reason,
        comment: v.comment,
        author: { kind: v.author.kind, id: v.author.id, username: v.author.username },
        createdAt: v.createdAt.toISOString(),
        operationId: v.operationId,
        config: v.config,
      })),
    };
  }

  async #mustExist(nodeId: string): Promise<void> {
    if (!(await q.nodeExists(this.#o.db, nodeId)))
      throw new CitysenseError('CS_ERR_NODE_NOT_FOUND', `no enrolled node ${nodeId}`, 404);
  }

  async #nudge(nodeId: string, revision: number): Promise<void> {
    try {
      // Sparkplug 3.0 §6.4.7: an NCMD tells the node to fetch its operations now.
      await this.#o.notify(nodeId, revision);
    } catch (err) {
      // The node polls anyway (on connect and periodically): a lost nudge only delays.
      this.#log.warn({ nodeId, err: errorMessage(err) }, 'could not nudge the node about a new operation');
    }
  }

  /** A finished config-apply settles its configuration version. */
  async #onFinished(op: StoredOperation): Promise<void> {
    if (op.kind !== 'config-apply') return;
    const version = (op.params as { version?: number }).version;
    if (typeof version !== 'number') return;
    const state: ConfigVersionState =
      op.state === 'succeeded'
        ? 'applied'
        : op.state === 'rolled-back'
          ? 'rolled-back'
          : op.state === 'expired'
            ? 'expired'
            : 'refused';
    const reason = op.state === 'succeeded' ? null : [op.code, op.message].filter(Boolean).join(': ') || null;
    await q.setConfigState(this.#o.db, op.nodeId, version, state, reason);
  }

  async #expireOverdue(nodeId?: string): Promise<void> {
    const overdue = await q.overdue(this.#o.db, nodeId);
    for (const op of overdue) {
      const expired = await q.transition(this.#o.db, op.id, ['pending', 'running'], {
        state: 'expired',
        code: 'CS_ERR_OPERATION_EXPIRED',
        message:
          op.state === 'pending'
            ? 'the node did not fetch the operation before its deadline (offline?)'
            : 'the node took the operation but did not report a result before its deadline',
      });
      if (!expired) continue;
      this.#log.info({ nodeId: op.nodeId, operationId: op.id, kind: op.kind }, 'operation expired');
      await this.#onFinished(expired);
      this.#auditOutcome(expired);
    }
  }

  #auditRequest(
    op: StoredOperation,
    meta: { requestId?: string | undefined; ip?: string | undefined },
  ): void {
    this.#o.audit.record({
      actor: op.requestedBy,
      action: 'node-operation.request',
      targetType: 'node',
      targetId: op.nodeId,
      after: {
        operationId: op.id,
        kind: op.kind,
        params: summariseParams(op),
        deadline: op.deadline.toISOString(),
      },
      requestId: meta.requestId,
      ip: meta.ip,
    });
  }

  /** The outcome, attributed to the person who asked; the node that reported it is in `after`. */
  #auditOutcome(op: StoredOperation): void {
    this.#o.audit.record({
      actor: op.requestedBy,
      action: `node-operation.${op.state}`,
      targetType: 'node',
      targetId: op.nodeId,
      after: {
        operationId: op.id,
        kind: op.kind,
        state: op.state,
        code: op.code,
        message: op.message,
        reportedBy: op.state === 'expired' ? 'hub' : `node:${op.nodeId}`,
      },
      outcome: op.state === 'succeeded' ? 'success' : 'failure',
      reason: op.code ?? undefined,
    });
  }
}

/** Parameters for the audit trail: a configuration is summarised by its version and driver ids. */
function summariseParams(op: StoredOperation): unknown {
  if (op.kind !== 'config-apply') return op.params;
  const p = op.params as { version?: number; config?: RemoteConfig; healthTimeoutMs?: number };
  return {
    version: p.version,
    drivers: p.config?.drivers.map((d) => d.id) ?? [],
    healthTimeoutMs: p.healthTimeoutMs,
  };
}
