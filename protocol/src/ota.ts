/**
 * Over-the-air updates: the contract between the hub's campaign scheduler and the
 * agent's updater, for the agent's own software and for gateway firmware images.
 *
 * An artifact is one file (`.csota`): a header line, the manifest (`OtaManifest`), the
 * centre's `DetachedSignature` over the exact manifest bytes, then the payload, whose
 * SHA-256 the manifest carries (layout in firmware-ota/src/artifact.ts). The hub computes what each node should install
 * (desired state, like algorithm assignments); the node polls it over HTTP with its
 * node credentials (HTTP Basic), is nudged by an NCMD metric when it changes, downloads
 * the artifact with HTTP Range (resumable), verifies SHA-256 and signature, writes the
 * payload to its inactive A/B slot, activates it and, after the restart, reports
 * `healthy` or `rolled-back`.
 *
 *   GET /v1/nodes/:id/ota                           → OtaDocument
 *   PUT /v1/nodes/:id/ota/:campaignId/status        ← OtaStatus
 *   GET /v1/ota/artifacts/:artifactId/file          artifact file, HTTP Range
 *   NCMD metric OTA_REVISION (Int64)                → poll now
 */
import { type Static, Type } from '@sinclair/typebox';

/** NCMD metric (Int64): the node's OTA document changed to this revision; fetch it now. */
export const OTA_REVISION = 'citysense/OTA Revision';

/** The `format` field of every artifact manifest. */
export const OTA_MANIFEST_FORMAT = 'citysense.ota/1';

/** What an artifact updates: the agent's own software, or the gateway's firmware image. */
export const OTA_TARGETS = ['agent', 'firmware'] as const;
/** One of `OTA_TARGETS`. */
export type OtaTarget = (typeof OTA_TARGETS)[number];

const Sha256 = Type.String({ pattern: '^[0-9a-f]{64}$' });
const SemVer = Type.String({
  pattern: '^(0|[1-9]\\d*)\\.(0|[1-9]\\d*)\\.(0|[1-9]\\d*)(?:-[0-9A-Za-z.-]+)?(?:\\+[0-9A-Za-z.-]+)?$',
  maxLength: 64,
  description: 'semantic version',
});
const ArtifactId = Type.String({
  pattern: '^[a-z0-9][a-z0-9_.-]{0,63}$',
  description: 'artifact name, e.g. citysense-agent or lamp-gateway-fw',
});

/** The manifest at the head of an artifact file; the signature covers its exact bytes. */
export const OtaManifestSchema = Type.Object(
  {
    format: Type.Literal(OTA_MANIFEST_FORMAT),
    name: ArtifactId,
    version: SemVer,
    target: Type.Union(OTA_TARGETS.map((t) => Type.Literal(t))),
    /** Gateway hardware models it installs on; any when absent. */
    hardware: Type.Optional(Type.Array(Type.String({ minLength: 1, maxLength: 64 }), { maxItems: 32 })),
    /** Oldest agent version that can install it (the updater's own format), when it matters. */
    minAgentVersion: Type.Optional(SemVer),
    payload: Type.Object(
      {
        bytes: Type.Integer({ minimum: 1 }),
        sha256: Sha256,
      },
      { additionalProperties: false },
    ),
    createdAt: Type.String({
      pattern: '^\\d{4}-\\d{2}-\\d{2}T\\d{2}:\\d{2}:\\d{2}(\\.\\d+)?(Z|[+-]\\d{2}:\\d{2})$',
      description: 'ISO 8601 date-time',
    }),
    notes: Type.Optional(Type.String({ maxLength: 4000 })),
  },
  { additionalProperties: false },
);
/** An artifact manifest. */
export type OtaManifest = Static<typeof OtaManifestSchema>;

/** One update a node must install for one campaign. */
export const OtaAssignmentSchema = Type.Object({
  campaignId: Type.String({ minLength: 1, maxLength: 64 }),
  artifactId: Type.String({ minLength: 1, maxLength: 64 }),
  name: ArtifactId,
  version: SemVer,
  target: Type.Union(OTA_TARGETS.map((t) => Type.Literal(t))),
  /** SHA-256 and size of the whole artifact file: the download check and cache key. */
  sha256: Sha256,
  bytes: Type.Integer({ minimum: 1 }),
  /** Download path on the hub (HTTP Range), e.g. /v1/ota/artifacts/<id>/file. */
  filePath: Type.String({ pattern: '^/v1/' }),
  /** Seconds the node waits for its health check after activation before rolling back. */
  healthTimeoutSeconds: Type.Integer({ minimum: 10, maximum: 3600, default: 300 }),
});
/** One OTA assignment. */
export type OtaAssignment = Static<typeof OtaAssignmentSchema>;

/** The desired OTA state of one node: at most one update per target. */
export const OtaDocumentSchema = Type.Object({
  nodeId: Type.String(),
  /** Increases on every change; the node reports it back so the hub knows what it has seen. */
  revision: Type.Integer({ minimum: 0 }),
  updates: Type.Array(OtaAssignmentSchema, { maxItems: OTA_TARGETS.length }),
  /** Public keys allowed to sign artifacts. */
  trustedKeys: Type.Array(Type.String()),
});
/** A node's desired OTA state. */
export type OtaDocument = Static<typeof OtaDocumentSchema>;

/**
 * Where a node is with one update: `downloading` (with progress), `verifying`,
 * `installing` (written to the inactive slot), `activating` (switching slots and
 * restarting), `healthy` (new version passed its health check; final), `failed`
 * (nothing changed on the node: bad download, bad signature, incompatible, disk),
 * `rolled-back` (the new version failed its health check, crash-looped or timed out;
 * the previous slot runs again).
 */
export const OTA_STATES = [
  'queued',
  'downloading',
  'verifying',
  'installing',
  'activating',
  'healthy',
  'failed',
  'rolled-back',
] as const;
/** One of `OTA_STATES`. */
export type OtaState = (typeof OTA_STATES)[number];

/** A node's report on one update. */
export const OtaStatusSchema = Type.Object(
  {
    revision: Type.Integer({ minimum: 0, description: 'the OTA revision the node acted on' }),
    state: Type.Union(OTA_STATES.map((s) => Type.Literal(s))),
    /** Download progress 0..1 while downloading. */
    progress: Type.Optional(Type.Number({ minimum: 0, maximum: 1 })),
    /** Why it failed or rolled back, with the error code. */
    reason: Type.Optional(Type.String({ maxLength: 2000 })),
    code: Type.Optional(Type.String({ maxLength: 64 })),
    /** The version running now for this target (the previous one after a rollback). */
    runningVersion: Type.Optional(Type.String({ maxLength: 64 })),
    /** The slot running now. */
    slot: Type.Optional(Type.Union([Type.Literal('a'), Type.Literal('b')])),
  },
  { additionalProperties: false },
);
/** A status report. */
export type OtaStatus = Static<typeof OtaStatusSchema>;
