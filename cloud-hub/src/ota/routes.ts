import {
  CitysenseError,
  OTA_STATES,
  OtaDocumentSchema,
  OtaManifestSchema,
  type OtaStatus,
  OtaStatusSchema,
} from '@citysense/protocol';
import { type Static, Type } from '@sinclair/typebox';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { actorOf } from '../audit/audit-log.ts';
import { can, type PersonPrincipal, requireRole, requireUser } from '../auth/access.ts';
import type { Role } from '../auth/roles.ts';
import {
  acceptFileUploads,
  FILE_UPLOAD_BODY,
  refuseDeclaredOver,
  type UploadTexts,
  uploadSource,
} from '../http/file-upload.ts';
import { sendRangedFile } from '../http/ranged-file.ts';
import { DEFAULT_CANARY_SHARE, DEFAULT_GATE } from '../rollouts/rollout.ts';
import {
  DateTime,
  EntityId,
  Nullable,
  reportReplySchema,
  rolloutActionRoutes,
  rolloutCountFields,
  rolloutEventSchema,
  rolloutIdSchema,
  rolloutNodeSchema,
  rolloutStateFields,
} from '../rollouts/rollout-routes.ts';
import { artifactTooLarge, type OtaArtifactService } from './artifact-service.ts';
import {
  CAMPAIGN_ACTIONS,
  CAMPAIGN_STATES,
  type CampaignAction,
  OTA_NODE_STATES,
} from './campaign-rollout.ts';
import { type CampaignService, DEFAULT_HEALTH_TIMEOUT_S } from './campaign-service.ts';

const ArtifactId = Type.String({ pattern: '^art_[0-9a-f]{12}$', description: 'artifact id' });
const CampaignId = rolloutIdSchema('campaign id');
const CampaignStateSchema = Type.Union(CAMPAIGN_STATES.map((s) => Type.Literal(s)));
const NodeStateSchema = Type.Union(OTA_NODE_STATES.map((s) => Type.Literal(s)));

const ArtifactView = Type.Object({
  id: Type.String(),
  name: Type.String(),
  version: Type.String(),
  target: Type.String(),
  manifest: OtaManifestSchema,
  sha256: Type.String({ description: 'SHA-256 of the whole .csota file' }),
  bytes: Type.Integer(),
  signerKey: Type.String({ description: 'public key of the signer' }),
  uploadedBy: Type.String(),
  createdAt: DateTime,
  campaigns: Type.Array(Type.String(), { description: 'campaigns that use it' }),
});

const Targets = Type.Object(
  {
    nodes: Type.Optional(Type.Array(EntityId, { maxItems: 10_000, description: 'node ids' })),
    agencies: Type.Optional(
      Type.Array(EntityId, { maxItems: 1000, description: 'agencies (districts, bureaus): all their nodes' }),
    ),
    carriers: Type.Optional(
      Type.Array(Type.String({ minLength: 1, maxLength: 64 }), {
        maxItems: 10_000,
        description: 'carrier (pole) ids: the nodes mounted on them',
      }),
    ),
  },
  { additionalProperties: false },
);

const CreateBody = Type.Object(
  {
    artifactId: ArtifactId,
    targets: Targets,
    canaryShare: Type.Optional(
      Type.Number({
        minimum: 0,
        maximum: 1,
        default: DEFAULT_CANARY_SHARE,
        description: 'share of the eligible nodes in the canary (rounded up, at least one)',
      }),
    ),
    gate: Type.Optional(
      Type.Object(
        {
          minHealthyShare: Type.Optional(
            Type.Number({
              minimum: 0,
              maximum: 1,
              default: DEFAULT_GATE.minActiveShare,
              description: 'share of canary nodes that must report healthy',
            }),
          ),
          maxFailed: Type.Optional(
            Type.Integer({
              minimum: 0,
              default: DEFAULT_GATE.maxFailed,
              description: 'failed or rolled-back nodes tolerated; one more pauses the campaign',
            }),
          ),
          timeoutMs: Type.Optional(
            Type.Integer({
              minimum: 1000,
              maximum: 7 * 24 * 3_600_000,
              default: DEFAULT_GATE.timeoutMs,
              description: 'the canary must pass the gate within this time, or the campaign pauses',
            }),
          ),
        },
        { additionalProperties: false },
      ),
    ),
    healthTimeoutSeconds: Type.Optional(
      Type.Integer({
        minimum: 10,
        maximum: 3600,
        default: DEFAULT_HEALTH_TIMEOUT_S,
        description: 'seconds a node waits for the new version to pass its health check before rolling back',
      }),
    ),
  },
  { additionalProperties: false },
);

const NodeView = rolloutNodeSchema(
  NodeStateSchema,
  { runningVersion: Nullable(Type.String()), slot: Nullable(Type.String()) },
  'download progress 0..1 while downloading',
);

const Event = rolloutEventSchema('who: a person, hub (the rollout itself) or node:<id>');

const CampaignSummary = Type.Object({
  id: Type.String(),
  artifactId: Type.String(),
  name: Type.String(),
  version: Type.String(),
  target: Type.String(),
  ...rolloutStateFields(CampaignStateSchema),
  rollout: Type.Object({
    canaryShare: Type.Number(),
    gate: Type.Object({
      minHealthyShare: Type.Number(),
      maxFailed: Type.Integer(),
      timeoutMs: Type.Integer(),
    }),
    healthTimeoutSeconds: Type.Integer(),
  }),
  targets: Type.Object({
    nodes: Type.Array(Type.String()),
    agencies: Type.Array(Type.String()),
    carriers: Type.Array(Type.String()),
  }),
  agencies: Type.Array(Type.String(), { description: "the targets' agencies ('' for nodes of none)" }),
  ...rolloutCountFields,
  totals: Type.Object({
    eligible: Type.Integer({ description: 'nodes in the rollout (not refused, superseded or cancelled)' }),
    healthy: Type.Integer(),
    failed: Type.Integer({ description: 'failed or rolled back' }),
    inFlight: Type.Integer({ description: 'queued … activating' }),
    downloadProgress: Nullable(Type.Number({ description: 'mean progress of the nodes downloading' })),
  }),
});

const CampaignDetail = Type.Object({
  ...CampaignSummary.properties,
  nodes: Type.Array(NodeView),
  history: Type.Array(Event, { description: 'transitions of the campaign itself' }),
});

const ReportReply = reportReplySchema(NodeStateSchema, { campaignState: CampaignStateSchema });

const ArtifactParam = Type.Object({ id: ArtifactId });
const CampaignParam = Type.Object({ id: CampaignId });
const NodeParam = Type.Object({ id: EntityId });
const ReportParams = Type.Object({ id: EntityId, campaignId: CampaignId });

const err = { $ref: 'Error#' };
const errors = { 400: err, 401: err, 403: err, 404: err, 409: err };
const TAG = 'ota';
/** Who runs campaigns: the platform, and agency operators for their own nodes. */
const OPERATORS: readonly Role[] = ['platform-admin', 'agency-operator'];

/** Dependencies of the OTA routes. */
export interface OtaRouteDeps {
  artifacts: OtaArtifactService;
  campaigns: CampaignService;
}

/** OTA artifacts and campaigns for operators, and the OTA contract the nodes use (protocol/src/ota.ts). */
export async function otaRoutes(app: FastifyInstance, deps: OtaRouteDeps): Promise<void> {
  const { artifacts, campaigns } = deps;
  await app.register(async (scope) => uploadRoute(scope, artifacts));

  app.get<{ Querystring: { name?: string } }>(
    '/v1/ota/artifacts',
    {
      config: { auth: 'user' },
      schema: {
        tags: [TAG],
        summary: 'OTA artifacts, newest first',
        querystring: Type.Object({ name: Type.Optional(Type.String({ maxLength: 64 })) }),
        response: { 200: Type.Array(ArtifactView), ...errors },
      },
    },
    async (request) => {
      requireRole(request, OPERATORS);
      return artifacts.list(request.query.name);
    },
  );

  app.get<{ Params: Static<typeof ArtifactParam> }>(
    '/v1/ota/artifacts/:id',
    {
      config: { auth: 'user' },
      schema: {
        tags: [TAG],
        summary: 'One artifact: manifest, SHA-256, size, uploader, campaigns using it',
        params: ArtifactParam,
        response: { 200: ArtifactView, ...errors },
      },
    },
    async (request) => {
      requireRole(request, OPERATORS);
      return artifacts.get(request.params.id);
    },
  );

  app.delete<{ Params: Static<typeof ArtifactParam> }>(
    '/v1/ota/artifacts/:id',
    {
      config: { auth: 'user' },
      schema: {
        tags: [TAG],
        summary: 'Delete an artifact no campaign uses (409 CS_ERR_OTA_ARTIFACT_IN_USE otherwise)',
        params: ArtifactParam,
        response: { 204: Type.Null(), ...errors },
      },
    },
    async (request, reply) => {
      requireRole(request, 'platform-admin');
      await artifacts.remove(request.params.id);
      return reply.status(204).send();
    },
  );

  // GET and HEAD in one route: fastify's own HEAD route would read the whole file to discard it.
  app.route<{ Params: Static<typeof ArtifactParam> }>({
    method: ['GET', 'HEAD'],
    url: '/v1/ota/artifacts/:id/file',
    config: { auth: 'user-or-node' },
    schema: {
      tags: [TAG],
      summary: 'Download an artifact: operators any, a node only one of a campaign that targets it',
      description:
        'Nodes authenticate with HTTP Basic `<node id>:<MQTT password>`; another artifact is 403 ' +
        'CS_ERR_OTA_NOT_TARGETED. Supports `Range: bytes=N-` and `bytes=N-M` (206, resume), `If-Range` and ' +
        '`If-None-Match`; the ETag is the SHA-256 of the file.',
      security: [{ admin: [] }, { user: [] }, { node: [] }],
      params: ArtifactParam,
      response: {
        200: Type.String({ format: 'binary' }),
        206: Type.String({ format: 'binary' }),
        416: err,
        ...errors,
      },
    },
    handler: async (request, reply) => {
      const principal = request.principal;
      if (!principal) throw new CitysenseError('CS_ERR_AUTH_REQUIRED', 'authentication required', 401);
      if (principal.kind !== 'node') requireRole(request, OPERATORS);
      const file = await artifacts.downloadable(principal, request.params.id);
      const sent = sendRangedFile(request, reply, file);
      if (sent.span)
        request.log.debug(
          {
            artifact: file.record.id,
            by: principal.kind === 'node' ? principal.nodeId : actorOf(principal).username,
            from: sent.span.start,
            bytes: sent.span.bytes,
          },
          'OTA artifact download',
        );
      return sent.reply;
    },
  });

  app.post<{ Body: Static<typeof CreateBody> }>(
    '/v1/ota/campaigns',
    {
      config: { auth: 'user' },
      schema: {
        tags: [TAG],
        summary: 'Roll an artifact out to nodes, canary first, with a health gate',
        description:
          'Targets are nodes, agencies (all their nodes) and/or carriers (the nodes on those poles). Nodes whose ' +
          "hardware model the manifest's `hardware` rules out are listed as `refused`. The canary gets the " +
          'update at once; the rest when minHealthyShare of the canary reports healthy with at most maxFailed ' +
          'failed or rolled-back nodes; more failures, or no pass within timeoutMs, pause the campaign. A node ' +
          'holds one campaign per target (agent, firmware): a newer one takes it over. Agency operators may ' +
          'target nodes of their own agency only.',
        body: CreateBody,
        response: { 201: CampaignDetail, ...errors },
      },
    },
    async (request, reply) => {
      const who = requireRole(request, OPERATORS);
      const b = request.body;
      const resolved = await campaigns.resolveTargets(b.targets);
      requireScope(request, [...resolved.agencies.values()]);
      const created = await campaigns.create(
        {
          artifactId: b.artifactId,
          targets: b.targets,
          canaryShare: b.canaryShare,
          gate: b.gate,
          healthTimeoutSeconds: b.healthTimeoutSeconds,
        },
        resolved,
        actorOf(who),
      );
      return reply.status(201).send(created);
    },
  );

  app.get<{
    Querystring: { state?: Static<typeof CampaignStateSchema>; artifactId?: string; limit?: number };
  }>(
    '/v1/ota/campaigns',
    {
      config: { auth: 'user' },
      schema: {
        tags: [TAG],
        summary: 'Campaigns, newest first, with target nodes counted per state (those one may see)',
        querystring: Type.Object({
          state: Type.Optional(CampaignStateSchema),
          artifactId: Type.Optional(ArtifactId),
          limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 1000, default: 100 })),
        }),
        response: { 200: Type.Array(CampaignSummary), ...errors },
      },
    },
    async (request) => {
      const who = requireRole(request, OPERATORS);
      const list = await campaigns.list(request.query);
      return list.filter((c) => inScope(who, c.agencies));
    },
  );

  app.get<{ Params: Static<typeof CampaignParam> }>(
    '/v1/ota/campaigns/:id',
    {
      config: { auth: 'user' },
      schema: {
        tags: [TAG],
        summary: 'One campaign: every node’s state and download progress, counts, totals, history',
        params: CampaignParam,
        response: { 200: CampaignDetail, ...errors },
      },
    },
    async (request) => {
      requireRole(request, OPERATORS);
      requireScope(request, await campaigns.agenciesOf(request.params.id));
      return campaigns.get(request.params.id);
    },
  );

  app.get<{ Params: Static<typeof CampaignParam>; Querystring: { nodeId?: string } }>(
    '/v1/ota/campaigns/:id/events',
    {
      config: { auth: 'user' },
      schema: {
        tags: [TAG],
        summary: 'Every transition of a campaign and of its nodes: when, who, why',
        params: CampaignParam,
        querystring: Type.Object({ nodeId: Type.Optional(EntityId) }),
        response: { 200: Type.Array(Event), ...errors },
      },
    },
    async (request) => {
      requireRole(request, OPERATORS);
      requireScope(request, await campaigns.agenciesOf(request.params.id));
      return campaigns.events(request.params.id, request.query.nodeId);
    },
  );

  const summaries: Record<CampaignAction, string> = {
    pause: 'Pause: no further node gets the update until resumed; nodes that have it go on',
    resume:
      'Resume a paused campaign where it was: failures so far are acknowledged (they no longer count ' +
      'against maxFailed), the gate clock restarts and the gate is evaluated again',
    abort:
      'Abort: nodes waiting or still downloading never get the update; nodes already installing finish ' +
      '(a half-written slot is the node’s to roll back)',
  };
  rolloutActionRoutes(app, {
    base: '/v1/ota/campaigns',
    actions: CAMPAIGN_ACTIONS,
    summaries,
    noun: 'campaign',
    stateCode: 'CS_ERR_OTA_CAMPAIGN_STATE',
    tag: TAG,
    params: CampaignParam,
    detail: CampaignDetail,
    errors,
    auth: 'user',
    act: async (request, action) => {
      const who = requireRole(request, OPERATORS);
      requireScope(request, await campaigns.agenciesOf(request.params.id));
      return campaigns.act(request.params.id, action, actorOf(who), request.body.reason ?? null);
    },
  });

  app.get<{ Params: Static<typeof NodeParam> }>(
    '/v1/nodes/:id/ota',
    {
      config: { auth: 'admin-or-node' },
      schema: {
        tags: [TAG],
        summary: 'What a node must install (OtaDocument); the node polls it, nudged by NCMD',
        description:
          'Nodes authenticate with HTTP Basic `<node id>:<MQTT password>` and read only their own ' +
          '(403 CS_ERR_OTA_OTHER_NODE). At most one update per target; `revision` increases on every change ' +
          'and the hub then sends NCMD metric `citysense/OTA Revision` (Int64).',
        security: [{ admin: [] }, { node: [] }],
        params: NodeParam,
        response: { 200: OtaDocumentSchema, ...errors },
      },
    },
    async (request) => {
      mustBeSelf(request, request.params.id, false);
      return campaigns.document(request.params.id);
    },
  );

  app.put<{ Params: Static<typeof ReportParams>; Body: OtaStatus }>(
    '/v1/nodes/:id/ota/:campaignId/status',
    {
      config: { auth: 'admin-or-node' },
      schema: {
        tags: [TAG],
        summary: 'A node reports where it is with one update (OtaStatus)',
        description:
          `States: ${OTA_STATES.join(', ')}. Only the node itself reports. A report about an older revision ` +
          'than it already reported, or about an update it no longer holds, is accepted (200, applied false) ' +
          'and changes nothing. `failed` and `rolled-back` take the update out of the node’s document and ' +
          'count against the campaign’s maxFailed.',
        security: [{ node: [] }],
        params: ReportParams,
        body: OtaStatusSchema,
        response: { 200: ReportReply, ...errors },
      },
    },
    async (request) => {
      mustBeSelf(request, request.params.id, true);
      return campaigns.report(request.params.id, request.params.campaignId, request.body);
    },
  );
}

async function uploadRoute(scope: FastifyInstance, artifacts: OtaArtifactService): Promise<void> {
  // This scope takes the artifact as a stream: no JSON or text parsing of a 1 GiB body.
  await acceptFileUploads(scope, artifacts.maxArtifactBytes);
  scope.post(
    '/v1/ota/artifacts',
    {
      config: { auth: 'user' },
      schema: {
        tags: [TAG],
        summary: 'Upload a signed OTA artifact (.csota)',
        description:
          'Send the file as `application/octet-stream` or as `multipart/form-data` in field `file`; it is ' +
          'streamed to disk (limit: hub option otaMaxArtifactBytes, 413 CS_ERR_OTA_ARTIFACT_TOO_LARGE). It must ' +
          'be signed by a trusted signer (GET /v1/algorithm-signers): 403 CS_ERR_OTA_UNTRUSTED_KEY; a broken ' +
          'file 400 CS_ERR_OTA_ARTIFACT_INVALID, CS_ERR_OTA_SIGNATURE or CS_ERR_OTA_DIGEST; name and version ' +
          'already stored 409 CS_ERR_OTA_ARTIFACT_EXISTS.',
        body: FILE_UPLOAD_BODY,
        response: { 201: ArtifactView, 413: err, 415: err, ...errors },
      },
      validatorCompiler: () => () => true,
      onRequest: refuseDeclaredOver(() => artifacts.maxArtifactBytes, artifactTooLarge),
    },
    async (request, reply) => {
      const who = requireRole(request, 'platform-admin');
      const created = await artifacts.upload(await uploadSource(request, UPLOAD_TEXTS), actorOf(who));
      return reply.status(201).send(created);
    },
  );
}

const UPLOAD_TEXTS: UploadTexts = {
  noun: 'artifact',
  hint: 'it',
  invalidCode: 'CS_ERR_OTA_UPLOAD_INVALID',
  typeCode: 'CS_ERR_OTA_UPLOAD_TYPE',
};

/** Whether `who` may act on nodes of every one of `agencies` ('' / null: no agency, the platform's alone). */
function inScope(who: PersonPrincipal, agencies: ReadonlyArray<string | null>): boolean {
  return agencies.every((a) => (a ? can(who, OPERATORS, { agencyId: a }) : can(who, 'platform-admin')));
}

/** Checks the operator's scope over every agency of a campaign's nodes; CS_ERR_AUTH_FORBIDDEN otherwise. */
function requireScope(request: FastifyRequest, agencies: ReadonlyArray<string | null>): void {
  for (const a of new Set(agencies.map((x) => x || null)))
    if (a === null) requireRole(request, 'platform-admin');
    else requireRole(request, OPERATORS, { agencyId: a });
}

/** The node `nodeId` itself (or the admin token unless `nodeOnly`); 403 CS_ERR_OTA_OTHER_NODE otherwise. */
function mustBeSelf(request: FastifyRequest, nodeId: string, nodeOnly: boolean): void {
  const p = request.principal;
  if (!p) throw new CitysenseError('CS_ERR_AUTH_REQUIRED', 'authentication required', 401);
  if (p.kind === 'node' && p.nodeId === nodeId) return;
  if (p.kind === 'node')
    throw new CitysenseError(
      'CS_ERR_OTA_OTHER_NODE',
      `node ${p.nodeId} cannot act for node ${nodeId}: use the node's own credentials`,
      403,
    );
  if (nodeOnly)
    throw new CitysenseError(
      'CS_ERR_OTA_NODE_ONLY',
      'only the node itself reports its status (HTTP Basic <node id>:<MQTT password>)',
      403,
    );
  requireUser(request);
}
