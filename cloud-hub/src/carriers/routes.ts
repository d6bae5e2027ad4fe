/**
 * Carrier routes (001 Art. 46): the carrier service catalogue (GeoJSON, RFC 7946), pole
 * upkeep by their owners, and mount applications the owners decide. Every write is
 * audited with the state before and after.
 */
import { CitysenseError } from '@citysense/protocol';
import { type Static, Type } from '@sinclair/typebox';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { AuditLog } from '../audit/audit-log.ts';
import { can, type PersonPrincipal, requireRole, requireUser } from '../auth/access.ts';
import type { Role } from '../auth/roles.ts';
import {
  type CarrierActor,
  type CarrierPole,
  type CarrierStore,
  type Mounted,
  poleNotFound,
  rowErrorOf,
} from './carrier-store.ts';
import {
  ApplicationInputSchema,
  ApplicationListQuery,
  ApplicationSchema,
  CatalogueQuery,
  checkPoleInput,
  DecisionSchema,
  PoleCollectionSchema,
  PoleFeatureSchema,
  PoleId,
  PoleInputSchema,
  PolePatchSchema,
  ReportSchema,
} from './schemas.ts';

/** Who keeps a pole and decides on it: an operator of the owner agency, or a platform admin. */
const OWNER_ROLES: readonly Role[] = ['agency-operator', 'platform-admin'];
const config = { auth: 'user' } as const;
const tags = ['carriers'];
const err = { $ref: 'Error#' };
const errors = { 400: err, 401: err, 403: err, 404: err, 409: err };
const IdParams = Type.Object({ id: PoleId });
const ApplicationParams = Type.Object({ id: Type.String({ format: 'uuid' }) });
const MountParams = Type.Object({ id: PoleId, mountId: Type.Integer({ minimum: 1 }) });

/** Dependencies of the carrier routes. */
export interface CarrierRouteDeps {
  store: CarrierStore;
  audit: AuditLog;
}

/** A pole as a GeoJSON Feature: coordinates are [longitude, latitude] (RFC 7946 §3.1.1). */
export function poleFeature(pole: CarrierPole, mounted?: Mounted) {
  const { longitude, latitude, ...properties } = pole;
  return {
    type: 'Feature' as const,
    id: pole.id,
    geometry: { type: 'Point' as const, coordinates: [longitude, latitude] as [number, number] },
    properties: mounted ? { ...properties, mounted } : properties,
  };
}

/** `a,b,…` as exactly `n` finite numbers, or a coded 400 naming the parameter. */
function numbers(value: string, n: number, name: string, shape: string): number[] {
  const parts = value.split(',');
  const out = parts.map((p) => (p.trim() === '' ? Number.NaN : Number(p)));
  if (parts.length !== n || out.some((v) => !Number.isFinite(v)))
    throw new CitysenseError('CS_ERR_CARRIER_QUERY', `${name} must be ${shape}, not "${value}"`, 400, {
      name,
    });
  return out;
}

function checkPosition(lon: number, lat: number, name: string): void {
  if (lon < -180 || lon > 180 || lat < -90 || lat > 90)
    throw new CitysenseError(
      'CS_ERR_CARRIER_QUERY',
      `${name}: WGS84 longitude must be within ±180 and latitude within ±90`,
      400,
      { name },
    );
}

/** The catalogue filter of a query string. */
export function catalogueFilter(q: Static<typeof CatalogueQuery>) {
  let bbox: { minLon: number; minLat: number; maxLon: number; maxLat: number } | undefined;
  if (q.bbox !== undefined) {
    const [minLon = 0, minLat = 0, maxLon = 0, maxLat = 0] = numbers(
      q.bbox,
      4,
      'bbox',
      'minLon,minLat,maxLon,maxLat',
    );
    checkPosition(minLon, minLat, 'bbox');
    checkPosition(maxLon, maxLat, 'bbox');
    if (minLat > maxLat)
      throw new CitysenseError('CS_ERR_CARRIER_QUERY', 'bbox: minLat must not exceed maxLat', 400, {
        name: 'bbox',
      });
    bbox = { minLon, minLat, maxLon, maxLat };
  }
  let near: { lon: number; lat: number; radiusM: number } | undefined;
  if (q.near !== undefined || q.radius !== undefined) {
    if (q.near === undefined || q.radius === undefined)
      throw new CitysenseError('CS_ERR_CARRIER_QUERY', 'near=lon,lat and radius=<metres> go together', 400, {
        name: q.near === undefined ? 'near' : 'radius',
      });
    const [lon = 0, lat = 0] = numbers(q.near, 2, 'near', 'lon,lat');
    checkPosition(lon, lat, 'near');
    near = { lon, lat, radiusM: q.radius };
  }
  const atLeast = (a: number | undefined, b: number | undefined) =>
    a === undefined ? b : b === undefined ? a : Math.max(a, b);
  return {
    bbox,
    near,
    minFreeSlots: atLeast(q.minFreeSlots, q['freeSlots>']),
    minFreePowerW: atLeast(q.minFreePowerW, q['freePowerW>']),
    kind: q.kind,
    owner: q.owner,
    limit: q.limit,
  };
}

/** The history's name for a person. */
function actorOf(p: PersonPrincipal): CarrierActor {
  return p.kind === 'user' ? { name: p.username, agencyId: p.agencyId } : { name: 'admin', agencyId: null };
}

/** The carrier catalogue, pole upkeep and mount applications. */
export async function carrierRoutes(app: FastifyInstance, deps: CarrierRouteDeps): Promise<void> {
  const { store, audit } = deps;

  const requireAgency = async (id: string, field: string) => {
    if (!(await store.agencyExists(id)))
      throw new CitysenseError(
        'CS_ERR_CARRIER_AGENCY_UNKNOWN',
        `${field} ${id} is not a known agency; create it first (PUT /v1/agencies/:agency)`,
        400,
        { field },
      );
  };
  const feature = async (id: string) => {
    const pole = await store.requirePole(id);
    return poleFeature(pole, await store.mounted(id));
  };
  /** Runs a decision and records it, also when it fails for a reason the owner should see. */
  const audited = async <T>(
    request: FastifyRequest,
    event: { action: string; targetType: string; targetId: string; before?: unknown },
    run: () => Promise<T>,
    after: (result: T) => Promise<unknown>,
  ): Promise<T> => {
    let result: T;
    try {
      result = await run();
    } catch (e) {
      if (e instanceof CitysenseError && e.statusCode === 409)
        audit.recordRequest(request, { ...event, outcome: 'failure', reason: e.code });
      throw e;
    }
    audit.recordRequest(request, { ...event, after: await after(result) });
    return result;
  };

  app.get<{ Querystring: Static<typeof CatalogueQuery> }>(
    '/v1/carriers',
    {
      config,
      schema: {
        tags,
        summary: 'Carrier service catalogue: poles as GeoJSON, filtered by area and free capacity',
        description:
          'bbox=minLon,minLat,maxLon,maxLat; near=lon,lat&radius=<m> (nearest first, distanceM); ' +
          'minFreeSlots (or freeSlots>=n), minFreePowerW (or freePowerW>=w); kind; owner.',
        querystring: CatalogueQuery,
        response: { 200: PoleCollectionSchema, ...errors },
      },
    },
    async (request, reply) => {
      requireUser(request);
      const poles = await store.list(catalogueFilter(request.query));
      void reply.type('application/geo+json');
      return { type: 'FeatureCollection' as const, features: poles.map((p) => poleFeature(p)) };
    },
  );

  app.get<{ Params: Static<typeof IdParams> }>(
    '/v1/carriers/:id',
    {
      config,
      schema: {
        tags,
        summary: 'One pole as a GeoJSON Feature, with what is mounted on it',
        params: IdParams,
        response: { 200: PoleFeatureSchema, ...errors },
      },
    },
    async (request, reply) => {
      requireUser(request);
      const out = await feature(request.params.id);
      void reply.type('application/geo+json');
      return out;
    },
  );

  app.post<{ Body: Static<typeof PoleInputSchema> }>(
    '/v1/carriers',
    {
      config,
      schema: {
        tags,
        summary: 'Add a pole (agency-operator of the owner agency, or platform-admin)',
        body: PoleInputSchema,
        response: { 201: PoleFeatureSchema, ...errors },
      },
    },
    async (request, reply) => {
      requireRole(request, OWNER_ROLES, { agencyId: request.body.ownerAgency });
      await requireAgency(request.body.ownerAgency, 'ownerAgency');
      const pole = await store.createPole(request.body);
      const after = poleFeature(pole, await store.mounted(pole.id));
      audit.recordRequest(request, {
        action: 'carrier.create',
        targetType: 'carrier-pole',
        targetId: pole.id,
        after,
      });
      return reply.status(201).type('application/geo+json').send(after);
    },
  );

  app.post<{ Body: unknown[] }>(
    '/v1/carriers/bulk',
    {
      config,
      schema: {
        tags,
        summary: 'Add up to 1000 poles from a JSON array; each row is applied or reported on its own',
        body: Type.Array(Type.Unknown(), { maxItems: 1000 }),
        response: { 200: ReportSchema, ...errors },
      },
    },
    async (request) => {
      const who = requireRole(request, OWNER_ROLES);
      const report: Static<typeof ReportSchema> = {
        rows: request.body.length,
        applied: 0,
        failed: 0,
        errors: [],
      };
      for (const [i, raw] of request.body.entries()) {
        const row = i + 1;
        const input = checkPoleInput(raw);
        if (Array.isArray(input)) {
          report.failed++;
          for (const p of input)
            report.errors.push({ row, column: p.column, code: 'CS_ERR_CARRIER_FIELD', message: p.message });
          continue;
        }
        if (!can(who, OWNER_ROLES, { agencyId: input.ownerAgency })) {
          report.failed++;
          report.errors.push({
            row,
            column: 'ownerAgency',
            code: 'CS_ERR_AUTH_FORBIDDEN',
            message: `you may add poles of your own agency only, not of ${input.ownerAgency}`,
          });
          continue;
        }
        try {
          const pole = await store.createPole(input);
          report.applied++;
          audit.recordRequest(request, {
            action: 'carrier.create',
            targetType: 'carrier-pole',
            targetId: pole.id,
            after: poleFeature(pole),
          });
        } catch (e) {
          report.failed++;
          const { code, message } = rowErrorOf(e);
          const column =
            code === 'CS_ERR_CARRIER_AGENCY_UNKNOWN'
              ? 'ownerAgency'
              : code === 'CS_ERR_CARRIER_DUPLICATE'
                ? 'id'
                : '';
          report.errors.push({ row, column, code, message });
        }
      }
      return report;
    },
  );

  app.patch<{ Params: Static<typeof IdParams>; Body: Static<typeof PolePatchSchema> }>(
    '/v1/carriers/:id',
    {
      config,
      schema: {
        tags,
        summary:
          'Change a pole: status, capacity, position, owner (the owner; a new owner must be yours too)',
        params: IdParams,
        body: PolePatchSchema,
        response: { 200: PoleFeatureSchema, ...errors },
      },
    },
    async (request, reply) => {
      const { id } = request.params;
      const before = await store.pole(id);
      requireRole(request, OWNER_ROLES, { agencyId: before?.ownerAgency });
      if (!before) throw poleNotFound(id);
      const owner = request.body.ownerAgency;
      if (owner !== undefined && owner !== before.ownerAgency) {
        requireRole(request, OWNER_ROLES, { agencyId: owner });
        await requireAgency(owner, 'ownerAgency');
      }
      const pole = await audited(
        request,
        { action: 'carrier.update', targetType: 'carrier-pole', targetId: id, before: poleFeature(before) },
        () => store.updatePole(id, request.body),
        async (p) => poleFeature(p),
      );
      void reply.type('application/geo+json');
      return poleFeature(pole, await store.mounted(id));
    },
  );

  app.delete<{ Params: Static<typeof IdParams> }>(
    '/v1/carriers/:id',
    {
      config,
      schema: {
        tags,
        summary: 'Remove a pole nothing hangs on and no application waits for (the owner)',
        params: IdParams,
        response: { 204: Type.Null(), ...errors },
      },
    },
    async (request, reply) => {
      const { id } = request.params;
      const before = await store.pole(id);
      requireRole(request, OWNER_ROLES, { agencyId: before?.ownerAgency });
      if (!before) throw poleNotFound(id);
      await audited(
        request,
        { action: 'carrier.delete', targetType: 'carrier-pole', targetId: id, before: poleFeature(before) },
        () => store.deletePole(id),
        async () => null,
      );
      return reply.status(204).send();
    },
  );

  app.delete<{ Params: Static<typeof MountParams> }>(
    '/v1/carriers/:id/mounts/:mountId',
    {
      config,
      schema: {
        tags,
        summary: 'Release a booked mount and its capacity (the pole owner or the mounting agency)',
        params: MountParams,
        response: { 204: Type.Null(), ...errors },
      },
    },
    async (request, reply) => {
      const { id, mountId } = request.params;
      const pole = await store.pole(id);
      const mountAgency = pole ? await store.mountAgency(id, mountId) : null;
      const who = requireUser(request);
      if (!(mountAgency !== null && can(who, OWNER_ROLES, { agencyId: mountAgency })))
        requireRole(request, OWNER_ROLES, { agencyId: pole?.ownerAgency });
      if (!pole) throw poleNotFound(id);
      const before = poleFeature(pole, await store.mounted(id));
      await store.releaseMount(id, mountId, actorOf(who));
      audit.recordRequest(request, {
        action: 'carrier.mount.release',
        targetType: 'carrier-pole',
        targetId: id,
        before,
        after: await feature(id),
      });
      return reply.status(204).send();
    },
  );

  app.post<{ Body: Static<typeof ApplicationInputSchema> }>(
    '/v1/carriers/applications',
    {
      config,
      schema: {
        tags,
        summary: 'Apply to mount a ledger device on a pole, or ask for a new pole at a position',
        body: ApplicationInputSchema,
        response: { 201: ApplicationSchema, ...errors },
      },
    },
    async (request, reply) => {
      const body = request.body;
      const p = request.principal;
      const applicantAgency = body.applicantAgency ?? (p?.kind === 'user' ? p.agencyId : undefined);
      const who = requireRole(request, OWNER_ROLES, { agencyId: applicantAgency });
      if (applicantAgency === undefined)
        throw new CitysenseError(
          'CS_ERR_CARRIER_APPLICATION',
          'applicantAgency is required with the admin token',
          400,
        );
      await requireAgency(applicantAgency, 'applicantAgency');
      let ownerAgency: string;
      if (body.kind === 'mount') {
        if (body.poleId === undefined)
          throw new CitysenseError('CS_ERR_CARRIER_APPLICATION', 'a mount application names poleId', 400);
        const pole = await store.pole(body.poleId);
        if (!pole) throw poleNotFound(body.poleId);
        ownerAgency = pole.ownerAgency;
      } else {
        if (body.longitude === undefined || body.latitude === undefined || body.ownerAgency === undefined)
          throw new CitysenseError(
            'CS_ERR_CARRIER_APPLICATION',
            'a new-pole application needs longitude, latitude (WGS84) and ownerAgency (who would put it up)',
            400,
          );
        await requireAgency(body.ownerAgency, 'ownerAgency');
        ownerAgency = body.ownerAgency;
      }
      const device = await store.ledgerDevice(body.deviceCode);
      if (!device)
        throw new CitysenseError(
          'CS_ERR_CARRIER_DEVICE_UNKNOWN',
          `device ${body.deviceCode} is not in the ledger; register it first (POST /v1/ledger/devices)`,
          400,
        );
      if (device.ownerAgency !== applicantAgency)
        throw new CitysenseError(
          'CS_ERR_CARRIER_DEVICE_OWNER',
          `device ${body.deviceCode} belongs to ${device.ownerAgency}; only its owner applies to mount it`,
          403,
        );
      if (device.state === 'retired')
        throw new CitysenseError(
          'CS_ERR_CARRIER_DEVICE_RETIRED',
          `device ${body.deviceCode} is retired`,
          409,
        );
      const created = await store.createApplication({ ...body, applicantAgency, ownerAgency }, actorOf(who));
      audit.recordRequest(request, {
        action: 'carrier.application.create',
        targetType: 'carrier-application',
        targetId: created.id,
        after: created,
      });
      return reply.status(201).send(created);
    },
  );

  app.get<{ Querystring: Static<typeof ApplicationListQuery> }>(
    '/v1/carriers/applications',
    {
      config,
      schema: {
        tags,
        summary: "Applications: your agency's, and those addressed to its poles (platform-admin: all)",
        querystring: ApplicationListQuery,
        response: { 200: Type.Array(ApplicationSchema), ...errors },
      },
    },
    async (request) => {
      const who = requireUser(request);
      const agencyId = can(who, 'platform-admin') || who.kind !== 'user' ? undefined : who.agencyId;
      return store.listApplications({ ...request.query, agencyId });
    },
  );

  app.get<{ Params: Static<typeof ApplicationParams> }>(
    '/v1/carriers/applications/:id',
    {
      config,
      schema: {
        tags,
        summary: 'One application with its history',
        params: ApplicationParams,
        response: { 200: ApplicationSchema, ...errors },
      },
    },
    async (request) => {
      const who = requireUser(request);
      const application = await store.requireApplication(request.params.id);
      if (
        !can(who, 'platform-admin') &&
        who.kind === 'user' &&
        who.agencyId !== application.applicantAgency &&
        who.agencyId !== application.ownerAgency
      )
        requireRole(request, 'platform-admin');
      return application;
    },
  );

  app.post<{ Params: Static<typeof ApplicationParams>; Body: Static<typeof DecisionSchema> }>(
    '/v1/carriers/applications/:id/decision',
    {
      config,
      schema: {
        tags,
        summary: 'Approve (books slots and power) or refuse an application (the carrier owner)',
        params: ApplicationParams,
        body: DecisionSchema,
        response: { 200: ApplicationSchema, ...errors },
      },
    },
    async (request) => {
      const { id } = request.params;
      const before = await store.requireApplication(id);
      const who = requireRole(request, OWNER_ROLES, { agencyId: before.ownerAgency });
      const { decision, comment, poleId } = request.body;
      const event = {
        action: decision === 'approve' ? 'carrier.application.approve' : 'carrier.application.refuse',
        targetType: 'carrier-application',
        targetId: id,
        before,
      };
      return audited(
        request,
        event,
        async () => {
          if (decision === 'approve') await store.approve(id, actorOf(who), comment ?? null, poleId);
          else await store.refuse(id, actorOf(who), comment ?? null);
          return store.requireApplication(id);
        },
        async (after) => after,
      );
    },
  );
}
