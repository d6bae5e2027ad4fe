/**
 * Wire shapes of the carrier API (001 Art. 46): pole input, the published GeoJSON
 * catalogue (RFC 7946) and mount applications. One TypeBox schema per shape, used for
 * request validation, bulk rows and the OpenAPI document alike.
 */
import { type Static, type TSchema, Type } from '@sinclair/typebox';
import { Value } from '@sinclair/typebox/value';

const Nullable = <T extends TSchema>(t: T) => Type.Union([t, Type.Null()]);
const Literals = <T extends string>(values: readonly T[], description?: string) =>
  Type.Union(
    values.map((v) => Type.Literal(v)),
    description ? { description } : {},
  );
const DateTime = Type.String({ format: 'date-time' });

/** Kinds of carrier pole. */
export const POLE_KINDS = ['lamp', 'traffic', 'other'] as const;
/** Power supply states of a pole. */
export const POWER_STATUSES = ['ok', 'fault', 'unknown'] as const;
/** Backhaul a pole offers to mounted equipment. */
export const NETWORK_KINDS = ['fibre', '4G', '5G', 'none'] as const;
/** Link states of that backhaul. */
export const NETWORK_STATUSES = ['up', 'down', 'unknown'] as const;
/** States of a mount application. */
export const APPLICATION_STATES = ['pending', 'approved', 'refused'] as const;

/** One pole kind. */
export type PoleKind = (typeof POLE_KINDS)[number];

/** Pole id: the owner's asset number, e.g. `HD-L-00123`. */
const ID_PATTERN = '^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$';
// `applications` and `bulk` are sub-routes of /v1/carriers, so no pole may be called that.
const poleId = (description = "the owner's asset number, e.g. HD-L-00123") =>
  Type.String({ pattern: `^(?!(?:applications|bulk)$)${ID_PATTERN.slice(1)}`, description });
const agencyId = (description = 'agency id') => Type.String({ pattern: ID_PATTERN, description });
/** Pole id: the owner's asset number. */
export const PoleId = poleId();
const AgencyId = agencyId();
const DeviceCode = Type.String({ pattern: '^[0-9]{20}$', description: 'unified ledger code (20 digits)' });
const Longitude = Type.Number({ minimum: -180, maximum: 180, description: 'WGS84 longitude, degrees' });
const Latitude = Type.Number({ minimum: -90, maximum: 90, description: 'WGS84 latitude, degrees' });
const Text = (maxLength: number) => Type.String({ minLength: 1, maxLength });
const watts = (description: string) => Type.Number({ minimum: 0, maximum: 1_000_000, description });

const poleFields = {
  kind: Literals(POLE_KINDS, 'lamp pole, traffic pole or other carrier'),
  ownerAgency: AgencyId,
  longitude: Longitude,
  latitude: Latitude,
  road: Type.Optional(Nullable(Text(200))),
  address: Type.Optional(Nullable(Text(400))),
  powerStatus: Type.Optional(Literals(POWER_STATUSES)),
  powerBudgetW: watts('power the owner offers to mounted equipment, watts'),
  networkKind: Type.Optional(Literals(NETWORK_KINDS)),
  networkStatus: Type.Optional(Literals(NETWORK_STATUSES)),
  slots: Type.Integer({ minimum: 0, maximum: 64, description: 'mounting positions offered' }),
};

/** Body of `POST /v1/carriers` and one item of a bulk import. */
export const PoleInputSchema = Type.Object(
  { id: Type.Optional(PoleId), ...poleFields },
  { additionalProperties: false },
);
/** A validated pole input. */
export type PoleInput = Static<typeof PoleInputSchema>;

/** Body of `PATCH /v1/carriers/:id`: the fields to change. */
export const PolePatchSchema = Type.Partial(Type.Object(poleFields), {
  additionalProperties: false,
  minProperties: 1,
});
/** A validated pole change. */
export type PolePatch = Static<typeof PolePatchSchema>;

/** A bulk row problem, named by field like the ledger's import report. */
export interface FieldProblem {
  column: string;
  message: string;
}

/** Validates one bulk item; problems carry the field name. */
export function checkPoleInput(raw: unknown): PoleInput | FieldProblem[] {
  if (Value.Check(PoleInputSchema, raw)) return raw;
  const problems: FieldProblem[] = [];
  const seen = new Set<string>();
  for (const e of Value.Errors(PoleInputSchema, raw)) {
    const column = e.path.split('/')[1] ?? '';
    if (seen.has(column)) continue;
    seen.add(column);
    problems.push({
      column,
      message: e.value === undefined ? `${column} is required` : `${column || 'row'}: ${e.message}`,
    });
  }
  return problems;
}

/** Properties of a pole in the catalogue. */
export const PolePropertiesSchema = Type.Object({
  id: Type.String(),
  kind: Type.String(),
  ownerAgency: Type.String(),
  road: Nullable(Type.String()),
  address: Nullable(Type.String()),
  powerStatus: Type.String(),
  powerBudgetW: Type.Number(),
  powerUsedW: Type.Number({ description: 'booked by approved mounts' }),
  freePowerW: Type.Number(),
  networkKind: Type.String(),
  networkStatus: Type.String(),
  slots: Type.Integer(),
  slotsUsed: Type.Integer({
    description: 'booked by approved mounts, plus ledger devices on it without one',
  }),
  freeSlots: Type.Integer(),
  unbookedDevices: Type.Integer({ description: 'ledger devices naming this pole without an approved mount' }),
  gateways: Type.Integer({ description: 'enrolled edge gateways naming this pole' }),
  distanceM: Type.Optional(Type.Number({ description: 'from the `near` point' })),
  createdAt: DateTime,
  updatedAt: DateTime,
});

/** What is mounted on a pole, read through from the ledger, the registry and bookings. */
export const MountedSchema = Type.Object({
  devices: Type.Array(
    Type.Object({
      code: Type.String(),
      kind: Nullable(Type.String()),
      agencyId: Type.String(),
      state: Nullable(Type.String({ description: 'ledger lifecycle state; null when not in the ledger' })),
      ledgerPoleId: Nullable(Type.String({ description: 'the pole the ledger says the device is on' })),
      mountId: Nullable(
        Type.Integer({ description: 'approved booking; null for an unbooked ledger device' }),
      ),
      slots: Type.Integer(),
      powerW: Nullable(Type.Number()),
    }),
  ),
  gateways: Type.Array(
    Type.Object({
      nodeId: Type.String(),
      name: Nullable(Type.String()),
      online: Type.Boolean(),
      lastSeen: Nullable(DateTime),
    }),
  ),
});

const Point = Type.Object({
  type: Type.Literal('Point'),
  coordinates: Type.Tuple([Type.Number(), Type.Number()], {
    description: '[longitude, latitude] (RFC 7946 §3.1.1)',
  }),
});

/** One pole as a GeoJSON Feature (RFC 7946 §3.2). */
export const PoleFeatureSchema = Type.Object({
  type: Type.Literal('Feature'),
  id: Type.String(),
  geometry: Point,
  properties: Type.Object({ ...PolePropertiesSchema.properties, mounted: Type.Optional(MountedSchema) }),
});

/** The carrier service catalogue: a GeoJSON FeatureCollection (RFC 7946 §3.3). */
export const PoleCollectionSchema = Type.Object({
  type: Type.Literal('FeatureCollection'),
  features: Type.Array(PoleFeatureSchema),
});

/** Query of `GET /v1/carriers`. */
export const CatalogueQuery = Type.Object({
  bbox: Type.Optional(
    Type.String({
      maxLength: 200,
      description: 'minLon,minLat,maxLon,maxLat (RFC 7946 §5; minLon > maxLon crosses the antimeridian)',
    }),
  ),
  near: Type.Optional(Type.String({ maxLength: 100, description: 'lon,lat; needs radius' })),
  radius: Type.Optional(
    Type.Number({ exclusiveMinimum: 0, maximum: 100_000, description: 'metres around near' }),
  ),
  minFreeSlots: Type.Optional(
    Type.Integer({ minimum: 0, maximum: 64, description: 'at least this many free slots' }),
  ),
  minFreePowerW: Type.Optional(
    Type.Number({ minimum: 0, description: 'at least this much free power, watts' }),
  ),
  // `?freeSlots>=2` arrives as the key `freeSlots>`: accept the comparison spelt out.
  'freeSlots>': Type.Optional(Type.Integer({ minimum: 0, maximum: 64, description: 'as `freeSlots>=n`' })),
  'freePowerW>': Type.Optional(Type.Number({ minimum: 0, description: 'as `freePowerW>=w`' })),
  kind: Type.Optional(Literals(POLE_KINDS)),
  owner: Type.Optional(AgencyId),
  limit: Type.Integer({ minimum: 1, maximum: 10_000, default: 1000 }),
});

/** Body of `POST /v1/carriers/applications`. */
export const ApplicationInputSchema = Type.Object(
  {
    kind: Literals(['mount', 'new-pole'] as const, 'mount on an existing pole, or ask for a new one'),
    applicantAgency: Type.Optional(agencyId("the applying agency; default the caller's")),
    poleId: Type.Optional(poleId('mount: the pole to mount on')),
    ownerAgency: Type.Optional(agencyId('new-pole: the agency asked to put it up')),
    longitude: Type.Optional(Longitude),
    latitude: Type.Optional(Latitude),
    poleKind: Type.Optional(Literals(POLE_KINDS)),
    deviceCode: DeviceCode,
    powerW: watts('power the device draws, watts'),
    slots: Type.Integer({ minimum: 1, maximum: 16, default: 1 }),
    purpose: Type.Optional(Text(2000)),
  },
  { additionalProperties: false },
);
/** A validated application. */
export type ApplicationInput = Static<typeof ApplicationInputSchema>;

/** Body of `POST /v1/carriers/applications/:id/decision`. */
export const DecisionSchema = Type.Object(
  {
    decision: Literals(['approve', 'refuse'] as const),
    comment: Type.Optional(Text(2000)),
    poleId: Type.Optional(
      poleId('new-pole approval: the pole put up for it (create it first with POST /v1/carriers)'),
    ),
  },
  { additionalProperties: false },
);

/** A mount application with its history. */
export const ApplicationSchema = Type.Object({
  id: Type.String(),
  kind: Type.String(),
  applicantAgency: Type.String(),
  applicantUser: Nullable(Type.String()),
  ownerAgency: Type.String(),
  poleId: Nullable(Type.String()),
  longitude: Nullable(Type.Number()),
  latitude: Nullable(Type.Number()),
  poleKind: Nullable(Type.String()),
  deviceCode: Type.String(),
  powerW: Type.Number(),
  slots: Type.Integer(),
  purpose: Nullable(Type.String()),
  state: Type.String(),
  decidedBy: Nullable(Type.String()),
  decidedAt: Nullable(DateTime),
  comment: Nullable(Type.String()),
  mountId: Nullable(Type.Integer()),
  createdAt: DateTime,
  history: Type.Array(
    Type.Object({
      at: DateTime,
      action: Type.String(),
      actor: Type.String(),
      actorAgency: Nullable(Type.String()),
      comment: Nullable(Type.String()),
    }),
  ),
});

/** Query of `GET /v1/carriers/applications`. */
export const ApplicationListQuery = Type.Object({
  state: Type.Optional(Literals(APPLICATION_STATES)),
  poleId: Type.Optional(PoleId),
  limit: Type.Integer({ minimum: 1, maximum: 1000, default: 200 }),
});

/** Row report of a bulk import, as the ledger's. */
export const ReportSchema = Type.Object({
  rows: Type.Integer(),
  applied: Type.Integer(),
  failed: Type.Integer(),
  errors: Type.Array(
    Type.Object({ row: Type.Integer(), column: Type.String(), code: Type.String(), message: Type.String() }),
  ),
});
