/**
 * Algorithm assignments: the contract between the hub's deployment scheduler and
 * the edge agent's inference runtime. The hub computes what each node should run
 * (desired state); the node polls it over HTTP (node credentials, HTTP Basic),
 * is nudged by an NCMD metric when it changes, and reports per-assignment status.
 *
 *   GET /v1/nodes/:id/assignments                      → AssignmentsDocument
 *   PUT /v1/nodes/:id/assignments/:deploymentId/status ← AssignmentStatus
 *   NCMD metric ASSIGNMENTS_REVISION (Int64)           → poll now
 */
import { type Static, Type } from '@sinclair/typebox';

/** NCMD metric (Int64): the node's assignments changed to this revision; fetch them now. */
export const ASSIGNMENTS_REVISION = 'citysense/Assignments Revision';

const SourceId = Type.String({
  pattern: '^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$',
  description: 'video source id',
});

/** A video source an assignment runs on. */
export const VideoSourceSchema = Type.Object({
  id: SourceId,
  /** rtsp://, rtmp://, http(s)://, or a file/folder path on the node. */
  url: Type.String({ minLength: 1, maxLength: 2048 }),
  fps: Type.Number({ exclusiveMinimum: 0, maximum: 60, default: 2 }),
});
/** One video source. */
export type VideoSource = Static<typeof VideoSourceSchema>;

const Point = Type.Tuple([Type.Number({ minimum: 0, maximum: 1 }), Type.Number({ minimum: 0, maximum: 1 })], {
  description: '[x, y] normalised to the frame, origin top-left',
});
const HourMinute = Type.String({
  pattern: '^([01]\\d|2[0-3]):[0-5]\\d$',
  description: 'HH:MM, node local time',
});

/**
 * A local alert rule evaluated on the node for every analysed frame ("alert on the
 * device"): objects of `labels` whose foot point (bottom centre of the box) lies in
 * `zone` (whole frame when absent) are counted; the rule fires when
 * - `kind: 'presence'`: count ≥ `minCount`;
 * - `kind: 'count'`: count > `threshold`;
 * - `kind: 'dwell'`: the zone has held ≥ `minCount` such objects without a break
 *   longer than `gapSeconds` for at least `seconds`.
 * Only inside `activeHours` when set (a window may cross midnight), at most once per
 * `cooldownSeconds` per source.
 */
export const AlertRuleSchema = Type.Object(
  {
    id: Type.String({ pattern: '^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$' }),
    kind: Type.Union([Type.Literal('presence'), Type.Literal('count'), Type.Literal('dwell')]),
    labels: Type.Array(Type.String({ minLength: 1, maxLength: 128 }), { minItems: 1, maxItems: 32 }),
    /** Sources the rule watches; all of the assignment's when absent. */
    sources: Type.Optional(Type.Array(SourceId, { maxItems: 64 })),
    zone: Type.Optional(Type.Array(Point, { minItems: 3, maxItems: 64 })),
    minCount: Type.Integer({ minimum: 1, default: 1 }),
    threshold: Type.Integer({ minimum: 0, default: 0 }),
    seconds: Type.Number({ minimum: 0, maximum: 86_400, default: 10 }),
    gapSeconds: Type.Number({ minimum: 0, maximum: 3600, default: 2 }),
    minScore: Type.Number({ minimum: 0, maximum: 1, default: 0 }),
    activeHours: Type.Optional(Type.Object({ from: HourMinute, to: HourMinute })),
    cooldownSeconds: Type.Number({ minimum: 0, maximum: 86_400, default: 60 }),
    severity: Type.Union([Type.Literal('info'), Type.Literal('warning'), Type.Literal('critical')], {
      default: 'warning',
    }),
    message: Type.Optional(Type.String({ maxLength: 500 })),
  },
  { additionalProperties: false },
);
/** A local alert rule. */
export type AlertRule = Static<typeof AlertRuleSchema>;

/** What one node must run for one deployment. */
export const AlgorithmAssignmentSchema = Type.Object({
  deploymentId: Type.String({ minLength: 1, maxLength: 64 }),
  algorithmId: Type.String({ minLength: 1, maxLength: 64 }),
  version: Type.String({ minLength: 1, maxLength: 64 }),
  /** SHA-256 of the package file: the node's cache key and download check. */
  sha256: Type.String({ pattern: '^[0-9a-f]{64}$' }),
  bytes: Type.Integer({ minimum: 1 }),
  /** Download path on the hub (supports HTTP Range), e.g. /v1/algorithms/yolox-nano/versions/1.0.0/package. */
  packagePath: Type.String({ pattern: '^/v1/' }),
  sources: Type.Array(VideoSourceSchema, { maxItems: 64 }),
  /** Local alert rules evaluated on the node's analysed frames. */
  rules: Type.Optional(Type.Array(AlertRuleSchema, { maxItems: 64 })),
});
/** One assignment. */
export type AlgorithmAssignment = Static<typeof AlgorithmAssignmentSchema>;

/** The desired state of one node. */
export const AssignmentsDocumentSchema = Type.Object({
  nodeId: Type.String(),
  /** Increases on every change; the node reports it back so the hub knows what it has seen. */
  revision: Type.Integer({ minimum: 0 }),
  assignments: Type.Array(AlgorithmAssignmentSchema),
  /** Public keys allowed to sign packages (the centre's and registered signers'). */
  trustedKeys: Type.Array(Type.String()),
});
/** A node's desired state. */
export type AssignmentsDocument = Static<typeof AssignmentsDocumentSchema>;

/** Where a node is with one assignment. */
export const ASSIGNMENT_STATES = [
  'queued',
  'downloading',
  'verifying',
  'loading',
  'active',
  'failed',
  'rolled-back',
] as const;
/** One of `ASSIGNMENT_STATES`. */
export type AssignmentState = (typeof ASSIGNMENT_STATES)[number];

/** Inference figures of a running assignment, over the last reporting window. */
export const InferenceStatsSchema = Type.Object({
  frames: Type.Integer({ minimum: 0, description: 'frames inferred since the model became active' }),
  fps: Type.Number({ minimum: 0 }),
  inferP50Ms: Type.Number({ minimum: 0 }),
  inferP95Ms: Type.Number({ minimum: 0 }),
  errors: Type.Integer({ minimum: 0, description: 'failed inferences and source errors since active' }),
  droppedFrames: Type.Integer({ minimum: 0 }),
});
/** Inference figures. */
export type InferenceStats = Static<typeof InferenceStatsSchema>;

/** A node's report on one assignment. */
export const AssignmentStatusSchema = Type.Object(
  {
    revision: Type.Integer({ minimum: 0, description: 'the assignments revision the node acted on' }),
    state: Type.Union(ASSIGNMENT_STATES.map((s) => Type.Literal(s))),
    /** Download progress 0..1 while downloading. */
    progress: Type.Optional(Type.Number({ minimum: 0, maximum: 1 })),
    /** Why it failed or rolled back, with the error code. */
    reason: Type.Optional(Type.String({ maxLength: 2000 })),
    code: Type.Optional(Type.String({ maxLength: 64 })),
    /** The version actually running for this algorithm (the previous one after a failed swap). */
    activeVersion: Type.Optional(Type.String({ maxLength: 64 })),
    stats: Type.Optional(InferenceStatsSchema),
  },
  { additionalProperties: false },
);
/** A status report. */
export type AssignmentStatus = Static<typeof AssignmentStatusSchema>;
