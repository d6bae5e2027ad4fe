/**
 * Remote operations: the contract between the hub's operator API and the edge
 * agent's executor (`edge-agent/src/remote/`). An operator asks the hub for an
 * operation on one node (a doctor report, a log tail, a driver restart, a new
 * configuration); the hub stores it with a deadline and nudges the node with an NCMD
 * metric; the node fetches its pending operations over HTTP (node credentials, HTTP
 * Basic), runs them one at a time and reports a result. An operation the node never
 * answers expires at its deadline.
 *
 *   GET /v1/nodes/:id/operations                     → OperationsDocument (pending ones)
 *   PUT /v1/nodes/:id/operations/:opId/result        ← OperationResult
 *   NCMD metric OPERATIONS_REVISION (Int64)          → poll now
 *
 * Remote configuration is versioned on the hub (`PUT /v1/nodes/:id/config`) and
 * reaches the node as a `config-apply` operation carrying the whole `RemoteConfig`.
 * The remote document is the part of the agent configuration the hub may manage:
 * node-local settings (hub URL, state directory with the spool, enrolment token)
 * stay in the node's own file, so a pushed config can never orphan a node or lose
 * its buffered readings.
 */
import { type Static, Type } from '@sinclair/typebox';

/** NCMD metric (Int64): the node has new operations (this revision); fetch them now. */
export const OPERATIONS_REVISION = 'citysense/Operations Revision';

/** Largest `result` a node may report, in bytes of JSON. */
export const MAX_OPERATION_RESULT_BYTES = 128 * 1024;

/** Operation kinds; new kinds are added at the end (clients must refuse kinds they do not know). */
export const OPERATION_KINDS = [
  'doctor',
  'log-tail',
  'driver-restart',
  'config-apply',
  'config-rollback',
] as const;
/** One of `OPERATION_KINDS`. */
export type OperationKind = (typeof OPERATION_KINDS)[number];

/**
 * Where an operation is: `pending` (stored, not yet taken by the node), `running`,
 * then one terminal state. `rolled-back` is a config change the node undid because
 * it did not come back healthy; `expired` is the hub's verdict at the deadline.
 */
export const OPERATION_STATES = [
  'pending',
  'running',
  'succeeded',
  'failed',
  'rolled-back',
  'expired',
] as const;
/** One of `OPERATION_STATES`. */
export type OperationState = (typeof OPERATION_STATES)[number];

/** States a node may report. */
export const REPORTED_OPERATION_STATES = ['running', 'succeeded', 'failed', 'rolled-back'] as const;
/** One of `REPORTED_OPERATION_STATES`. */
export type ReportedOperationState = (typeof REPORTED_OPERATION_STATES)[number];

/** True for states an operation never leaves. */
export function isTerminalOperationState(state: OperationState): boolean {
  return state !== 'pending' && state !== 'running';
}

const EntityId = Type.String({ pattern: '^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$' });

// ── Remote configuration ────────────────────────────────────────────────────

/** Driver types the agent can host; each maps to one factory in the agent's driver registry. */
export const DRIVER_TYPES = [
  'gb28181',
  'lamp-pole-sim',
  'load-generator',
  'modbus',
  'mqtt-sensors',
  'onvif',
  'opcua',
  'video-quality',
] as const;

/** One driver instance to run (the agent's `drivers[]` entry). */
export const DriverConfigSchema = Type.Object(
  {
    type: Type.Union(
      DRIVER_TYPES.map((t) => Type.Literal(t)),
      { description: 'Driver type, one of the registry keys' },
    ),
    id: Type.String({
      pattern: '^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$',
      description: 'Driver instance id, unique in the agent',
    }),
    options: Type.Record(Type.String(), Type.Unknown(), {
      default: {},
      description: 'Passed to the driver factory',
    }),
    // Isolation and watchdog knobs are optional (no schema default) so a driver entry stays as written;
    // the agent's driver host applies the defaults (edge-agent/src/driver-host.ts).
    isolation: Type.Optional(
      Type.Union([Type.Literal('inline'), Type.Literal('process')], {
        description:
          'inline (default): in the agent process; process: own child process, a crash ends only the driver',
      }),
    ),
    startTimeoutMs: Type.Optional(
      Type.Integer({
        minimum: 100,
        description: 'Budget for building and starting the driver (default 30000)',
      }),
    ),
    stopTimeoutMs: Type.Optional(
      Type.Integer({
        minimum: 100,
        description: 'Budget for stopping; a process driver is then killed (default 10000)',
      }),
    ),
    stallAfterMs: Type.Optional(
      Type.Integer({
        minimum: 100,
        description: 'Restart the driver when it sends no readings for this long (default off)',
      }),
    ),
  },
  { additionalProperties: false },
);
/** One driver instance to run. */
export type DriverConfigDocument = Static<typeof DriverConfigSchema>;

/** The part of the agent configuration the hub manages remotely. */
export const RemoteConfigSchema = Type.Object(
  {
    drivers: Type.Array(DriverConfigSchema, { maxItems: 256, description: 'replaces the node’s drivers' }),
  },
  { additionalProperties: false },
);
/** A remotely managed configuration document. */
export type RemoteConfig = Static<typeof RemoteConfigSchema>;

// ── Parameters per kind ─────────────────────────────────────────────────────

/** Log levels, pino's names. */
export const LOG_LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'fatal'] as const;
/** One of `LOG_LEVELS`. */
export type LogLevelName = (typeof LOG_LEVELS)[number];

/** `doctor`: run the node's self-diagnosis. */
export const DoctorParamsSchema = Type.Object(
  {
    timeoutMs: Type.Optional(
      Type.Integer({ minimum: 500, maximum: 60_000, description: 'per check family' }),
    ),
  },
  { additionalProperties: false },
);

/** `log-tail`: the last lines of the agent's own log, optionally after a cursor. */
export const LogTailParamsSchema = Type.Object(
  {
    lines: Type.Integer({ minimum: 1, maximum: 1000, default: 100 }),
    level: Type.Optional(
      Type.Union(
        LOG_LEVELS.map((l) => Type.Literal(l)),
        { description: 'at least' },
      ),
    ),
    component: Type.Optional(Type.String({ minLength: 1, maxLength: 64 })),
    since: Type.Optional(
      Type.Integer({
        minimum: 0,
        description: 'only records after this cursor (`next` of the previous tail)',
      }),
    ),
  },
  { additionalProperties: false },
);
/** Parameters of `log-tail`. */
export type LogTailParams = Static<typeof LogTailParamsSchema>;

/** `driver-restart`: stop and start one hosted driver (fresh instance). */
export const DriverRestartParamsSchema = Type.Object({ driverId: EntityId }, { additionalProperties: false });
/** Parameters of `driver-restart`. */
export type DriverRestartParams = Static<typeof DriverRestartParamsSchema>;

/** `config-apply`: validate, apply, health-check, else roll back. Created by `PUT /v1/nodes/:id/config` only. */
export const ConfigApplyParamsSchema = Type.Object(
  {
    version: Type.Integer({ minimum: 1 }),
    config: RemoteConfigSchema,
    healthTimeoutMs: Type.Integer({
      minimum: 500,
      maximum: 600_000,
      default: 30_000,
      description: 'the node must be healthy within this time after applying, or it rolls back',
    }),
  },
  { additionalProperties: false },
);
/** Parameters of `config-apply`. */
export type ConfigApplyParams = Static<typeof ConfigApplyParamsSchema>;

/** `config-rollback`: go back to the last good configuration the node kept. */
export const ConfigRollbackParamsSchema = Type.Object(
  { reason: Type.Optional(Type.String({ maxLength: 500 })) },
  { additionalProperties: false },
);

/** Parameter schema of each kind. */
export const OPERATION_PARAMS = {
  doctor: DoctorParamsSchema,
  'log-tail': LogTailParamsSchema,
  'driver-restart': DriverRestartParamsSchema,
  'config-apply': ConfigApplyParamsSchema,
  'config-rollback': ConfigRollbackParamsSchema,
} as const satisfies Record<OperationKind, unknown>;

// ── Wire documents ──────────────────────────────────────────────────────────

/** One operation as the node receives it. */
export const OperationSchema = Type.Object({
  id: Type.String({ pattern: '^op-[0-9a-f]{16}$' }),
  kind: Type.String({ description: 'one of OPERATION_KINDS; a node refuses kinds it does not know' }),
  params: Type.Unknown({ description: 'validated per kind by the hub and again by the node' }),
  // ISO 8601 (no `format`: TypeBox's Value checks on the node know no formats).
  createdAt: Type.String({ maxLength: 64, description: 'ISO 8601' }),
  deadline: Type.String({ maxLength: 64, description: 'ISO 8601; the hub expires the operation after this' }),
});
/** One operation. */
export type Operation = Static<typeof OperationSchema>;

/** The node's pending operations, oldest first. */
export const OperationsDocumentSchema = Type.Object({
  nodeId: Type.String(),
  /** Increases whenever an operation is created for the node. */
  revision: Type.Integer({ minimum: 0 }),
  operations: Type.Array(OperationSchema),
});
/** A node's pending operations. */
export type OperationsDocument = Static<typeof OperationsDocumentSchema>;

/** A node's report on one operation. */
export const OperationResultSchema = Type.Object(
  {
    state: Type.Union(REPORTED_OPERATION_STATES.map((s) => Type.Literal(s))),
    /** Error code of a failure or rollback (`CS_ERR_…`). */
    code: Type.Optional(Type.String({ maxLength: 64 })),
    message: Type.Optional(Type.String({ maxLength: 2000 })),
    /** What the operation produced (doctor report, log lines, …); at most MAX_OPERATION_RESULT_BYTES of JSON. */
    result: Type.Optional(Type.Unknown()),
    /** The remote configuration version the node runs after this operation (null: none yet). */
    configVersion: Type.Optional(Type.Union([Type.Integer({ minimum: 1 }), Type.Null()])),
  },
  { additionalProperties: false },
);
/** A result report. */
export type OperationResult = Static<typeof OperationResultSchema>;

/** One line of a log tail. */
export interface LogLine {
  /** Cursor of the line: strictly increasing on the node since the agent started. */
  seq: number;
  /** ms since the epoch. */
  time: number;
  level: LogLevelName;
  component: string | null;
  msg: string;
  /** Other fields of the record, shortened. */
  fields?: Record<string, unknown>;
}

/** Result of `log-tail`. */
export interface LogTailResult {
  lines: LogLine[];
  /** Pass as `since` to follow. */
  next: number;
  /** True when records after `since` were already overwritten in the node's ring buffer. */
  gap: boolean;
}

/** Result of `driver-restart`. */
export interface DriverRestartResult {
  driverId: string;
  state: string;
  restarts: number;
}

/** Result of `config-apply` and `config-rollback`. */
export interface ConfigApplyResult {
  /** The version the operation was about. */
  version: number | null;
  /** The version running now. */
  activeVersion: number | null;
  drivers: Array<{ id: string; state: string }>;
}
