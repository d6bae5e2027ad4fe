import { PACKAGE_EXTENSION } from '@citysense/algorithms';
import { CitysenseError, SIGNATURE_ALGORITHMS, type SignatureAlgorithm } from '@citysense/protocol';
import { type Static, type TSchema, Type } from '@sinclair/typebox';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { Role } from '../auth/roles.ts';
import {
  acceptFileUploads,
  FILE_UPLOAD_BODY,
  refuseDeclaredOver,
  type UploadTexts,
  uploadSource,
} from '../http/file-upload.ts';
import { sendRangedFile } from '../http/ranged-file.ts';
import type { AlgorithmCentre } from './algorithm-centre.ts';
import type { ApplicationState } from './authorisation.ts';
import { TRANSITIONS, type TransitionAction, VERSION_STATES } from './catalogue.ts';
import { openToRoles } from './open-to-roles.ts';
import { packageTooLarge } from './package-artifacts.ts';

const Nullable = <T extends TSchema>(schema: T) => Type.Union([schema, Type.Null()]);
const DateTime = Type.String({ format: 'date-time' });

const AlgorithmId = Type.String({ pattern: '^[a-z0-9][a-z0-9._-]{1,63}$', description: 'algorithm id' });
const Version = Type.String({
  pattern: '^(0|[1-9]\\d*)\\.(0|[1-9]\\d*)\\.(0|[1-9]\\d*)(-[0-9A-Za-z.-]+)?$',
  description: 'semantic version',
});
const Sha256 = Type.String({ pattern: '^[0-9a-f]{64}$', description: 'SHA-256 of the package file' });
const EntityId = Type.String({ pattern: '^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$' });
const NodeIds = Type.Array(EntityId, { minItems: 1, maxItems: 10_000, description: 'node ids' });
const State = Type.Union(VERSION_STATES.map((s) => Type.Literal(s)));
const Note = Type.Object(
  { note: Type.Optional(Type.String({ maxLength: 4000, description: 'e.g. the filing number' })) },
  { additionalProperties: false },
);

const SignerSchema = Type.Object({
  name: Type.String(),
  algorithm: Type.String(),
  publicKey: Type.String(),
  fingerprint: Type.String(),
  builtin: Type.Boolean(),
  createdAt: DateTime,
});

const SignerBody = Type.Object(
  {
    name: Type.String({ pattern: '^[a-z0-9][a-z0-9._-]{0,63}$' }),
    algorithm: Type.Union(SIGNATURE_ALGORITHMS.map((a) => Type.Literal(a))),
    publicKey: Type.String({
      minLength: 40,
      maxLength: 2048,
      description: 'Ed25519: PEM (SPKI); sm2-sm3: hex 04…',
    }),
  },
  { additionalProperties: false },
);

const VersionSummary = Type.Object({
  algorithmId: Type.String(),
  version: Type.String(),
  state: State,
  sha256: Type.String(),
  bytes: Type.Integer(),
  signer: Type.Object({
    name: Nullable(Type.String()),
    fingerprint: Type.String(),
    algorithm: Type.String(),
  }),
  uploadedAt: DateTime,
  updatedAt: DateTime,
});

const Tensor = Type.Object({
  name: Type.String(),
  type: Type.String(),
  shape: Type.Array(Type.Union([Type.Number(), Type.String()])),
});

const Report = Type.Object(
  {
    passed: Type.Boolean(),
    checkedAt: Type.String(),
    runtime: Type.String(),
    graph: Nullable(Type.Object({ inputs: Type.Array(Tensor), outputs: Type.Array(Tensor) })),
    tests: Type.Array(
      Type.Object(
        {
          image: Type.String(),
          passed: Type.Boolean(),
          inferMs: Type.Number(),
          objects: Type.Array(Type.Object({}, { additionalProperties: true })),
          expectations: Type.Array(Type.Object({}, { additionalProperties: true })),
        },
        { additionalProperties: true },
      ),
    ),
    error: Type.Optional(Type.Object({ code: Type.String(), message: Type.String() })),
    durationMs: Type.Number(),
  },
  { additionalProperties: true, description: 'adaptation test report (适配纳管)' },
);

const VersionDetail = Type.Object({
  ...VersionSummary.properties,
  manifest: Type.Object({}, { additionalProperties: true }),
  report: Nullable(Report),
  history: Type.Array(
    Type.Object({
      action: Type.String(),
      fromState: Nullable(State),
      toState: State,
      actor: Type.String(),
      note: Nullable(Type.String()),
      at: DateTime,
    }),
  ),
});

const AlgorithmSchema = Type.Object({
  id: Type.String(),
  name: Type.String(),
  task: Type.String(),
  createdAt: DateTime,
  versions: Type.Array(VersionSummary),
  agencies: Type.Array(Type.String(), { description: 'agencies the centre granted it to' }),
});

const AgencySchema = Type.Object({
  id: Type.String(),
  name: Type.String(),
  kind: Type.String({ description: 'district, bureau or platform (PUT /v1/agencies/:agency sets it)' }),
  parentId: Nullable(Type.String()),
  createdAt: DateTime,
  nodes: Type.Array(Type.String()),
  grants: Type.Array(Type.String(), { description: 'algorithms the centre granted to the agency' }),
  nodeGrants: Type.Array(Type.Object({ algorithmId: Type.String(), nodeIds: Type.Array(Type.String()) })),
});

const ApplicationStates = ['pending', 'approved', 'rejected'] as const;
const ApplicationSchema = Type.Object({
  id: Type.String(),
  agencyId: Type.String(),
  algorithmId: Type.String(),
  purpose: Type.String(),
  state: Type.Union(ApplicationStates.map((s) => Type.Literal(s))),
  reason: Nullable(Type.String()),
  createdAt: DateTime,
  decidedAt: Nullable(DateTime),
});

const IdParam = Type.Object({ id: AlgorithmId });
const VersionParams = Type.Object({ id: AlgorithmId, version: Version });
const AgencyParam = Type.Object({ agency: EntityId });
const ApplicationParam = Type.Object({ id: Type.String({ minLength: 1, maxLength: 64 }) });
const AlgorithmRef = Type.Object({ algorithmId: AlgorithmId }, { additionalProperties: false });

/** Lets a client POST without a body where every body field is optional. */
const emptyBodyAsObject = async (request: FastifyRequest) => {
  request.body ??= {};
};

const err = { $ref: 'Error#' };
const errors = { 400: err, 401: err, 404: err, 409: err };
const TAG_ALGORITHMS = 'algorithm centre';
const TAG_AUTHORISATION = 'algorithm authorisation';
/** Nodes as well as the admin: OpenAPI `security` of routes with `config.auth: 'admin-or-node'`. */
const ADMIN_OR_NODE: Array<Record<string, string[]>> = [{ admin: [] }, { node: [] }];

/** Dependencies of the algorithm centre routes. */
export interface AlgorithmRouteDeps {
  centre: AlgorithmCentre;
}

/** The algorithm centre API: signers, packages, lifecycle, authorisation, node downloads. */
export async function algorithmRoutes(app: FastifyInstance, deps: AlgorithmRouteDeps): Promise<void> {
  const { centre } = deps;
  await app.register(async (scope) => {
    // Algorithm-centre admins run the centre from the console; nodes keep their own routes.
    openToRoles(scope, CENTRE_ROLES);
    signerRoutes(scope, centre);
    await scope.register(async (upload) => uploadRoute(upload, centre));
    catalogueRoutes(scope, centre);
    downloadRoutes(scope, centre);
    authorisationRoutes(scope, centre);
  });
}

/** Who runs the algorithm centre besides the admin token. */
export const CENTRE_ROLES: readonly Role[] = ['algorithm-admin', 'platform-admin'];

function signerRoutes(app: FastifyInstance, centre: AlgorithmCentre): void {
  app.post<{ Body: Static<typeof SignerBody> }>(
    '/v1/algorithm-signers',
    {
      schema: {
        tags: [TAG_ALGORITHMS],
        summary: 'Trust another signing key: packages it signs are accepted for upload',
        body: SignerBody,
        response: { 201: SignerSchema, ...errors },
      },
    },
    async (request, reply) => {
      const { name, algorithm, publicKey } = request.body;
      return reply
        .status(201)
        .send(await centre.signers.add(name, algorithm as SignatureAlgorithm, publicKey));
    },
  );

  app.get(
    '/v1/algorithm-signers',
    {
      schema: {
        tags: [TAG_ALGORITHMS],
        summary: 'Trusted signers with key fingerprints; `centre` is the hub’s own key',
        response: { 200: Type.Array(SignerSchema) },
      },
    },
    async () => centre.signers.list(),
  );

  app.delete<{ Params: { name: string } }>(
    '/v1/algorithm-signers/:name',
    {
      schema: {
        tags: [TAG_ALGORITHMS],
        summary:
          'Stop trusting a signer (packages already stored stay; new uploads signed by it are refused)',
        params: Type.Object({ name: Type.String({ minLength: 1, maxLength: 64 }) }),
        response: { 204: Type.Null(), ...errors },
      },
    },
    async (request, reply) => {
      await centre.signers.remove(request.params.name);
      return reply.status(204).send();
    },
  );

  app.get(
    '/v1/algorithm-signers/centre/key',
    {
      // The private key stays with the admin token and platform admins.
      config: { auth: 'admin' },
      schema: {
        tags: [TAG_ALGORITHMS],
        summary: 'Export the centre signing key (admin only) to pack packages on a workstation',
        description:
          'Returns the key file of the centre, private key included, in the format of `citysense algo keygen`. ' +
          'Save it with mode 0600 and sign with `citysense algo pack <folder> --key centre-key.json`, then ' +
          'upload the package to POST /v1/algorithms/packages. Anyone holding this file can sign packages ' +
          'the centre accepts: keep it off shared machines. Every export is logged.',
        response: {
          200: Type.Object({ algorithm: Type.String(), publicKey: Type.String(), privateKey: Type.String() }),
          401: err,
        },
      },
    },
    async (request, reply) => {
      const key = centre.centreKey;
      request.log.warn({ ip: request.ip }, 'centre signing key exported');
      return reply
        .header('cache-control', 'no-store')
        .send({ algorithm: key.algorithm, publicKey: key.publicKey, privateKey: key.privateKey });
    },
  );
}

async function uploadRoute(scope: FastifyInstance, centre: AlgorithmCentre): Promise<void> {
  // This scope takes the package as a stream: no JSON or text parsing of a 512 MiB body.
  await acceptFileUploads(scope, centre.maxPackageBytes);
  scope.post(
    '/v1/algorithms/packages',
    {
      schema: {
        tags: [TAG_ALGORITHMS],
        summary: 'Upload a signed algorithm package (.csalgo); a new version starts as draft',
        description:
          'Send the file as `application/octet-stream` (curl --data-binary @x.csalgo -H "content-type: ' +
          'application/octet-stream") or as `multipart/form-data` with the file in field `file`. The ' +
          'package must be signed by a trusted signer (GET /v1/algorithm-signers). 201: new version; 200: ' +
          'this exact package was already uploaded.',
        body: FILE_UPLOAD_BODY,
        response: { 200: VersionSummary, 201: VersionSummary, 403: err, 413: err, 415: err, ...errors },
      },
      // The body is a stream; the package opener checks everything in it.
      validatorCompiler: () => () => true,
      onRequest: refuseDeclaredOver(() => centre.maxPackageBytes, packageTooLarge),
    },
    async (request, reply) => {
      const result = await centre.upload(await uploadSource(request, UPLOAD_TEXTS), 'admin');
      return reply.status(result.created ? 201 : 200).send(result.version);
    },
  );
}

const UPLOAD_TEXTS: UploadTexts = {
  noun: 'package',
  hint: 'the package',
  invalidCode: 'CS_ERR_ALGO_UPLOAD_INVALID',
  typeCode: 'CS_ERR_ALGO_UPLOAD_TYPE',
};

function catalogueRoutes(app: FastifyInstance, centre: AlgorithmCentre): void {
  app.get(
    '/v1/algorithms',
    {
      schema: {
        tags: [TAG_ALGORITHMS],
        summary: 'Algorithms at the centre, each with its versions and their states',
        response: { 200: Type.Array(AlgorithmSchema) },
      },
    },
    async () => centre.catalogue.list(),
  );

  app.get<{ Params: Static<typeof IdParam> }>(
    '/v1/algorithms/:id',
    {
      schema: {
        tags: [TAG_ALGORITHMS],
        summary: 'One algorithm with its versions and the agencies it is granted to',
        params: IdParam,
        response: { 200: AlgorithmSchema, ...errors },
      },
    },
    async (request) => centre.catalogue.get(request.params.id),
  );

  app.get<{ Params: Static<typeof VersionParams> }>(
    '/v1/algorithms/:id/versions/:version',
    {
      schema: {
        tags: [TAG_ALGORITHMS],
        summary: 'One version: manifest, latest adaptation report, history of every transition',
        params: VersionParams,
        response: { 200: VersionDetail, ...errors },
      },
    },
    async (request) => centre.catalogue.version(request.params.id, request.params.version),
  );

  app.post<{ Params: Static<typeof VersionParams> }>(
    '/v1/algorithms/:id/versions/:version/validate',
    {
      schema: {
        tags: [TAG_ALGORITHMS],
        summary: 'Run the adaptation test of a draft (one test at a time across the hub)',
        description:
          'Loads the model, checks its inputs and outputs against the manifest and runs the package test ' +
          'images. A passing report moves the version to validated; a failing one is stored and the version ' +
          'stays a draft (still 200: read `report.passed`).',
        params: VersionParams,
        response: {
          200: Type.Object({ ...VersionSummary.properties, report: Report }),
          403: err,
          503: err,
          ...errors,
        },
      },
    },
    async (request) => {
      const { version, report } = await centre.validate(request.params.id, request.params.version, 'admin');
      return { ...version, report };
    },
  );

  const summaries: Record<TransitionAction, string> = {
    file: 'File (备案) a validated version: the centre records it as adapted and approved',
    publish: 'Publish a filed version: granted nodes may download it',
    retire: 'Retire a published or filed version: nodes can no longer download it',
  };
  for (const action of Object.keys(TRANSITIONS) as TransitionAction[]) {
    app.post<{ Params: Static<typeof VersionParams>; Body: Static<typeof Note> }>(
      `/v1/algorithms/:id/versions/:version/${action}`,
      {
        schema: {
          tags: [TAG_ALGORITHMS],
          summary: summaries[action],
          description: `Allowed from: ${TRANSITIONS[action].from.join(', ')}. Otherwise 409 CS_ERR_ALGO_STATE.`,
          params: VersionParams,
          body: Note,
          response: { 200: VersionSummary, ...errors },
        },
        preValidation: emptyBodyAsObject,
      },
      async (request) =>
        centre.catalogue.transition(
          request.params.id,
          request.params.version,
          action,
          'admin',
          request.body.note ?? null,
        ),
    );
  }
}

function downloadRoutes(app: FastifyInstance, centre: AlgorithmCentre): void {
  // GET and HEAD in one route: fastify's own HEAD route would read the whole file to discard it.
  app.route<{ Params: Static<typeof VersionParams> }>({
    method: ['GET', 'HEAD'],
    url: '/v1/algorithms/:id/versions/:version/package',
    config: { auth: 'admin-or-node' },
    schema: {
      tags: [TAG_ALGORITHMS],
      summary: 'Download a package: the admin any version, a node a published version granted to it',
      description:
        'Nodes authenticate with HTTP Basic `<node id>:<MQTT password>`. Supports `Range: bytes=N-` and ' +
        '`bytes=N-M` (206, resume an interrupted download), `If-Range` and `If-None-Match`; the ETag is ' +
        'the SHA-256 of the file.',
      security: ADMIN_OR_NODE,
      params: VersionParams,
      response: {
        200: Type.String({ format: 'binary' }),
        206: Type.String({ format: 'binary' }),
        403: err,
        416: err,
        ...errors,
      },
    },
    handler: async (request, reply) => {
      const { id, version } = request.params;
      const principal = request.principal;
      if (!principal) throw new CitysenseError('CS_ERR_AUTH_REQUIRED', 'authentication required', 401);
      // The auth hook keeps users off admin-or-node routes; this narrows the type.
      if (principal.kind === 'user')
        throw new CitysenseError(
          'CS_ERR_AUTH_FORBIDDEN',
          'packages go to the admin token and nodes only',
          403,
        );
      const summary = await centre.downloadable(principal, id, version);
      const sent = sendRangedFile(request, reply, {
        path: centre.artifacts.pathOf(summary.sha256),
        size: await centre.artifacts.size(summary.sha256),
        sha256: summary.sha256,
        filename: `${id}-${version}${PACKAGE_EXTENSION}`,
        rangeErrorCode: 'CS_ERR_ALGO_RANGE',
        noun: 'package',
      });
      if (sent.span)
        request.log.info(
          {
            algorithm: id,
            version,
            by: principal.kind === 'node' ? principal.nodeId : 'admin',
            from: sent.span.start,
            bytes: sent.span.bytes,
          },
          'algorithm package download',
        );
      return sent.reply;
    },
  });

  app.get<{ Params: { sha256: string } }>(
    '/v1/algorithm-packages/:sha256/status',
    {
      config: { auth: 'admin-or-node' },
      schema: {
        tags: [TAG_ALGORITHMS],
        summary:
          'Whether this exact package is filed at the centre (a gateway runs local imports only if so)',
        description:
          '`filed` is true while the version is filed or published; draft, validated, retired and unknown ' +
          'packages are not.',
        security: ADMIN_OR_NODE,
        params: Type.Object({ sha256: Sha256 }),
        response: {
          200: Type.Object({
            sha256: Type.String(),
            known: Type.Boolean(),
            algorithmId: Nullable(Type.String()),
            version: Nullable(Type.String()),
            state: Nullable(State),
            filed: Type.Boolean(),
          }),
          ...errors,
        },
      },
    },
    async (request) => {
      const found = await centre.catalogue.bySha256(request.params.sha256);
      return {
        sha256: request.params.sha256,
        known: found !== undefined,
        algorithmId: found?.algorithmId ?? null,
        version: found?.version ?? null,
        state: found?.state ?? null,
        filed: found?.state === 'filed' || found?.state === 'published',
      };
    },
  );
}

function authorisationRoutes(app: FastifyInstance, centre: AlgorithmCentre): void {
  const auth = centre.authorisation;

  app.post<{ Body: { id: string; name: string } }>(
    '/v1/agencies',
    {
      schema: {
        tags: [TAG_AUTHORISATION],
        summary: 'Register an agency (委办局) that can be granted algorithms',
        body: Type.Object(
          { id: EntityId, name: Type.String({ minLength: 1, maxLength: 200 }) },
          { additionalProperties: false },
        ),
        response: { 201: AgencySchema, ...errors },
      },
    },
    async (request, reply) =>
      reply.status(201).send(await auth.createAgency(request.body.id, request.body.name)),
  );

  app.get(
    '/v1/agencies',
    {
      schema: {
        tags: [TAG_AUTHORISATION],
        summary: 'Agencies with their nodes, their grants from the centre and their grants to nodes',
        response: { 200: Type.Array(AgencySchema) },
      },
    },
    async () => auth.agencies(),
  );

  app.get<{ Params: Static<typeof AgencyParam> }>(
    '/v1/agencies/:agency',
    {
      schema: {
        tags: [TAG_AUTHORISATION],
        summary: 'One agency',
        params: AgencyParam,
        response: { 200: AgencySchema, ...errors },
      },
    },
    async (request) => auth.agency(request.params.agency),
  );

  app.put<{ Params: Static<typeof AgencyParam>; Body: { nodeIds: string[] } }>(
    '/v1/agencies/:agency/nodes',
    {
      schema: {
        tags: [TAG_AUTHORISATION],
        summary: 'Set the nodes of an agency (a node belongs to at most one agency)',
        description: 'Nodes left out lose the grants the agency gave them.',
        params: AgencyParam,
        body: Type.Object(
          { nodeIds: Type.Array(EntityId, { maxItems: 10_000 }) },
          { additionalProperties: false },
        ),
        response: { 200: AgencySchema, ...errors },
      },
    },
    async (request) => auth.setNodes(request.params.agency, request.body.nodeIds),
  );

  app.post<{ Params: Static<typeof AgencyParam>; Body: Static<typeof AlgorithmRef> }>(
    '/v1/agencies/:agency/grants',
    {
      schema: {
        tags: [TAG_AUTHORISATION],
        summary: 'The centre grants an agency the use of an algorithm (201 new, 200 already granted)',
        params: AgencyParam,
        body: AlgorithmRef,
        response: { 200: AgencySchema, 201: AgencySchema, ...errors },
      },
    },
    async (request, reply) => {
      const created = await auth.grantAgency(request.params.agency, request.body.algorithmId);
      return reply.status(created ? 201 : 200).send(await auth.agency(request.params.agency));
    },
  );

  app.delete<{ Params: { agency: string; algorithmId: string } }>(
    '/v1/agencies/:agency/grants/:algorithmId',
    {
      schema: {
        tags: [TAG_AUTHORISATION],
        summary: 'Revoke an agency grant, and with it the agency’s grants of that algorithm to its nodes',
        params: Type.Object({ agency: EntityId, algorithmId: AlgorithmId }),
        response: { 204: Type.Null(), ...errors },
      },
    },
    async (request, reply) => {
      await auth.revokeAgency(request.params.agency, request.params.algorithmId);
      return reply.status(204).send();
    },
  );

  app.post<{ Params: Static<typeof AgencyParam>; Body: { algorithmId: string; nodeIds: string[] } }>(
    '/v1/agencies/:agency/node-grants',
    {
      schema: {
        tags: [TAG_AUTHORISATION],
        summary: 'The agency grants an algorithm it holds to some of its nodes',
        description:
          '403 CS_ERR_ALGO_NOT_GRANTED when the agency has no grant from the centre; 400 ' +
          'CS_ERR_ALGO_NODE_NOT_MEMBER when a node is not the agency’s.',
        params: AgencyParam,
        body: Type.Object({ algorithmId: AlgorithmId, nodeIds: NodeIds }, { additionalProperties: false }),
        response: { 200: AgencySchema, 403: err, ...errors },
      },
    },
    async (request) => auth.grantNodes(request.params.agency, request.body.algorithmId, request.body.nodeIds),
  );

  app.delete<{ Params: { agency: string; algorithmId: string; nodeId: string } }>(
    '/v1/agencies/:agency/node-grants/:algorithmId/:nodeId',
    {
      schema: {
        tags: [TAG_AUTHORISATION],
        summary: 'The agency withdraws an algorithm from one of its nodes',
        params: Type.Object({ agency: EntityId, algorithmId: AlgorithmId, nodeId: EntityId }),
        response: { 204: Type.Null(), ...errors },
      },
    },
    async (request, reply) => {
      const { agency, algorithmId, nodeId } = request.params;
      await auth.revokeNode(agency, algorithmId, nodeId);
      return reply.status(204).send();
    },
  );

  app.post<{ Params: Static<typeof AgencyParam>; Body: { algorithmId: string; purpose: string } }>(
    '/v1/agencies/:agency/applications',
    {
      schema: {
        tags: [TAG_AUTHORISATION],
        summary: 'An agency applies to use an algorithm (使用申请); an admin approves or rejects',
        params: AgencyParam,
        body: Type.Object(
          { algorithmId: AlgorithmId, purpose: Type.String({ minLength: 1, maxLength: 4000 }) },
          { additionalProperties: false },
        ),
        response: { 201: ApplicationSchema, ...errors },
      },
    },
    async (request, reply) =>
      reply
        .status(201)
        .send(await auth.apply(request.params.agency, request.body.algorithmId, request.body.purpose)),
  );

  app.get<{ Querystring: { state?: ApplicationState } }>(
    '/v1/algorithm-applications',
    {
      schema: {
        tags: [TAG_AUTHORISATION],
        summary: 'Usage applications, newest first',
        querystring: Type.Object({
          state: Type.Optional(Type.Union(ApplicationStates.map((s) => Type.Literal(s)))),
        }),
        response: { 200: Type.Array(ApplicationSchema), ...errors },
      },
    },
    async (request) => auth.applications(request.query.state),
  );

  const decisions = { approve: 'approved', reject: 'rejected' } as const;
  for (const [verb, decision] of Object.entries(decisions) as Array<
    [keyof typeof decisions, (typeof decisions)[keyof typeof decisions]]
  >) {
    app.post<{ Params: Static<typeof ApplicationParam>; Body: { reason?: string } }>(
      `/v1/algorithm-applications/:id/${verb}`,
      {
        schema: {
          tags: [TAG_AUTHORISATION],
          summary:
            verb === 'approve'
              ? 'Approve a pending application: the agency gets the grant'
              : 'Reject a pending application, saying why',
          params: ApplicationParam,
          body: Type.Object(
            {
              reason:
                verb === 'approve'
                  ? Type.Optional(Type.String({ maxLength: 4000 }))
                  : Type.String({ minLength: 1, maxLength: 4000 }),
            },
            { additionalProperties: false },
          ),
          response: { 200: ApplicationSchema, ...errors },
        },
        preValidation: emptyBodyAsObject,
      },
      async (request) => auth.decide(request.params.id, decision, request.body.reason ?? null),
    );
  }
}
