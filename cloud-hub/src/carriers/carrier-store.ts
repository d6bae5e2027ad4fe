/**
 * Carrier poles, their booked capacity, and mount applications (001 Art. 46), in SQL.
 *
 * Capacity: a pole offers `slots` and `powerBudgetW`; approved mounts book some of both
 * (`slots_booked`, `power_booked_w`). A ledger device that names the pole without an
 * approved mount still hangs there, so it takes one slot (its power is unknown). What is
 * mounted is read through from `ledger_devices.pole_id` and `nodes.pole_id`: the ledger and
 * the registry stay the truth, this store keeps only bookings.
 *
 * An approval books capacity with one conditional UPDATE of the pole row: the row lock
 * orders concurrent approvals and each re-checks free capacity, so a pole is never
 * over-committed (CS_ERR_CARRIER_FULL for the loser).
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { CitysenseError, errorMessage } from '@citysense/protocol';
import type { Database, Queryable } from '../storage/database.ts';
import type { ApplicationInput, PoleInput, PolePatch } from './schemas.ts';

/** A pole as the catalogue shows it. */
export interface CarrierPole {
  id: string;
  kind: string;
  ownerAgency: string;
  longitude: number;
  latitude: number;
  road: string | null;
  address: string | null;
  powerStatus: string;
  powerBudgetW: number;
  powerUsedW: number;
  freePowerW: number;
  networkKind: string;
  networkStatus: string;
  slots: number;
  slotsUsed: number;
  freeSlots: number;
  unbookedDevices: number;
  gateways: number;
  distanceM?: number;
  createdAt: string;
  updatedAt: string;
}

/** One thing hanging on a pole. */
export interface MountedDevice {
  code: string;
  kind: string | null;
  agencyId: string;
  state: string | null;
  ledgerPoleId: string | null;
  mountId: number | null;
  slots: number;
  powerW: number | null;
}

/** An edge gateway enrolled with this pole. */
export interface MountedGateway {
  nodeId: string;
  name: string | null;
  online: boolean;
  lastSeen: string | null;
}

/** What is mounted on a pole. */
export interface Mounted {
  devices: MountedDevice[];
  gateways: MountedGateway[];
}

/** One step of an application. */
export interface ApplicationEvent {
  at: string;
  action: string;
  actor: string;
  actorAgency: string | null;
  comment: string | null;
}

/** A mount application. */
export interface CarrierApplication {
  id: string;
  kind: 'mount' | 'new-pole';
  applicantAgency: string;
  applicantUser: string | null;
  ownerAgency: string;
  poleId: string | null;
  longitude: number | null;
  latitude: number | null;
  poleKind: string | null;
  deviceCode: string;
  powerW: number;
  slots: number;
  purpose: string | null;
  state: 'pending' | 'approved' | 'refused';
  decidedBy: string | null;
  decidedAt: string | null;
  comment: string | null;
  mountId: number | null;
  createdAt: string;
  history: ApplicationEvent[];
}

/** Who does something, as the history records it. */
export interface CarrierActor {
  name: string;
  agencyId: string | null;
}

/** Filter of the catalogue. */
export interface PoleFilter {
  bbox?: { minLon: number; minLat: number; maxLon: number; maxLat: number } | undefined;
  near?: { lon: number; lat: number; radiusM: number } | undefined;
  minFreeSlots?: number | undefined;
  minFreePowerW?: number | undefined;
  kind?: string | undefined;
  owner?: string | undefined;
  limit: number;
}

/** Filter of the application list; `agencyId` limits to those it applied for or decides. */
export interface ApplicationFilter {
  agencyId?: string | undefined;
  state?: string | undefined;
  poleId?: string | undefined;
  limit: number;
}

interface PoleRow {
  id: string;
  kind: string;
  owner_agency: string;
  longitude: number;
  latitude: number;
  road: string | null;
  address: string | null;
  power_status: string;
  power_budget_w: number;
  power_booked_w: number;
  network_kind: string;
  network_status: string;
  slots: number;
  slots_booked: number;
  unbooked: number;
  gateways: number;
  distance_m?: number | null;
  created_at: Date | string;
  updated_at: Date | string;
}

interface ApplicationRow {
  id: string;
  kind: 'mount' | 'new-pole';
  applicant_agency: string;
  applicant_user: string | null;
  owner_agency: string;
  pole_id: string | null;
  longitude: number | null;
  latitude: number | null;
  pole_kind: string | null;
  device_code: string;
  power_w: number;
  slots: number;
  purpose: string | null;
  state: 'pending' | 'approved' | 'refused';
  decided_by: string | null;
  decided_at: Date | string | null;
  comment: string | null;
  mount_id: number | null;
  created_at: Date | string;
}

const EARTH_RADIUS_M = 6_371_008.8;
const METRES_PER_DEGREE = (Math.PI / 180) * EARTH_RADIUS_M;

/**
 * Ledger devices naming pole `p` that no current booking on `p` covers (retired ones are
 * off the street). `$exclude` leaves out the device being approved: its booking replaces it.
 */
const unbookedSql = (exclude = "''") => `(SELECT count(*) FROM ledger_devices d
    WHERE d.pole_id = p.id AND d.state <> 'retired' AND d.code <> ${exclude}
      AND NOT EXISTS (SELECT 1 FROM carrier_mounts m
        WHERE m.device_code = d.code AND m.pole_id = p.id AND m.removed_at IS NULL))::int`;

const POLE_SELECT = `SELECT p.id, p.kind, p.owner_agency, p.longitude, p.latitude, p.road, p.address,
    p.power_status, p.power_budget_w, p.power_booked_w, p.network_kind, p.network_status,
    p.slots, p.slots_booked, p.created_at, p.updated_at, ${unbookedSql()} AS unbooked,
    (SELECT count(*) FROM nodes n WHERE n.pole_id = p.id AND n.deregistered_at IS NULL)::int AS gateways`;

const APPLICATION_COLUMNS = `id, kind, applicant_agency, applicant_user, owner_agency, pole_id, longitude, latitude,
  pole_kind, device_code, power_w, slots, purpose, state, decided_by, decided_at, comment,
  mount_id::float8 AS mount_id, created_at`;

const iso = (d: Date | string): string => new Date(d).toISOString();

function toPole(r: PoleRow): CarrierPole {
  const slotsUsed = Number(r.slots_booked) + Number(r.unbooked);
  const pole: CarrierPole = {
    id: r.id,
    kind: r.kind,
    ownerAgency: r.owner_agency,
    longitude: Number(r.longitude),
    latitude: Number(r.latitude),
    road: r.road,
    address: r.address,
    powerStatus: r.power_status,
    powerBudgetW: Number(r.power_budget_w),
    powerUsedW: Number(r.power_booked_w),
    freePowerW: Math.max(0, Number(r.power_budget_w) - Number(r.power_booked_w)),
    networkKind: r.network_kind,
    networkStatus: r.network_status,
    slots: Number(r.slots),
    slotsUsed,
    freeSlots: Math.max(0, Number(r.slots) - slotsUsed),
    unbookedDevices: Number(r.unbooked),
    gateways: Number(r.gateways),
    createdAt: iso(r.created_at),
    updatedAt: iso(r.updated_at),
  };
  if (r.distance_m !== undefined && r.distance_m !== null)
    pole.distanceM = Math.round(Number(r.distance_m) * 10) / 10;
  return pole;
}

function toApplication(r: ApplicationRow, history: ApplicationEvent[]): CarrierApplication {
  return {
    id: r.id,
    kind: r.kind,
    applicantAgency: r.applicant_agency,
    applicantUser: r.applicant_user,
    ownerAgency: r.owner_agency,
    poleId: r.pole_id,
    longitude: r.longitude === null ? null : Number(r.longitude),
    latitude: r.latitude === null ? null : Number(r.latitude),
    poleKind: r.pole_kind,
    deviceCode: r.device_code,
    powerW: Number(r.power_w),
    slots: Number(r.slots),
    purpose: r.purpose,
    state: r.state,
    decidedBy: r.decided_by,
    decidedAt: r.decided_at === null ? null : iso(r.decided_at),
    comment: r.comment,
    mountId: r.mount_id === null ? null : Number(r.mount_id),
    createdAt: iso(r.created_at),
    history,
  };
}

/** SQLSTATE of a database error from either engine. */
function sqlState(err: unknown): string | undefined {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : undefined;
}

/** Refusal for a pole that is not in the catalogue. */
export function poleNotFound(id: string): CitysenseError {
  return new CitysenseError(
    'CS_ERR_CARRIER_NOT_FOUND',
    `no carrier pole ${id}; GET /v1/carriers lists them`,
    404,
  );
}

function applicationNotFound(id: string): CitysenseError {
  return new CitysenseError('CS_ERR_CARRIER_APPLICATION_NOT_FOUND', `no carrier application ${id}`, 404);
}

/** Maps a refused pole write to a coded error; rethrows anything else. */
function poleWriteError(err: unknown, id: string): never {
  switch (sqlState(err)) {
    case '23505':
      throw new CitysenseError('CS_ERR_CARRIER_DUPLICATE', `carrier pole ${id} already exists`, 409);
    case '23503':
      throw new CitysenseError(
        'CS_ERR_CARRIER_AGENCY_UNKNOWN',
        'ownerAgency is not a known agency; create it first (PUT /v1/agencies/:agency)',
        400,
      );
    case '23514':
      throw new CitysenseError(
        'CS_ERR_CARRIER_CAPACITY',
        `pole ${id} would offer less than approved mounts booked; release mounts first`,
        409,
      );
    default:
      throw err;
  }
}

/** SQL of carrier poles, mounts and applications. */
export class CarrierStore {
  readonly #db: Database;

  constructor(db: Database) {
    this.#db = db;
  }

  /** Whether an agency exists. */
  async agencyExists(id: string): Promise<boolean> {
    const { rows } = await this.#db.query('SELECT 1 FROM agencies WHERE id = $1', [id]);
    return rows.length > 0;
  }

  /** One pole, or null. */
  async pole(id: string, q: Queryable = this.#db): Promise<CarrierPole | null> {
    const { rows } = await q.query<PoleRow>(`${POLE_SELECT} FROM carrier_poles p WHERE p.id = $1`, [id]);
    return rows[0] ? toPole(rows[0]) : null;
  }

  /** One pole; CS_ERR_CARRIER_NOT_FOUND otherwise. */
  async requirePole(id: string): Promise<CarrierPole> {
    const pole = await this.pole(id);
    if (!pole) throw poleNotFound(id);
    return pole;
  }

  /** Poles matching `f`: by id, or nearest first with `near`. */
  async list(f: PoleFilter): Promise<CarrierPole[]> {
    const params: unknown[] = [];
    const p = (v: unknown) => {
      params.push(v);
      return `$${params.length}`;
    };
    const where: string[] = [];
    const outer: string[] = [];
    let distance = 'NULL::float8';
    if (f.kind) where.push(`p.kind = ${p(f.kind)}`);
    if (f.owner) where.push(`p.owner_agency = ${p(f.owner)}`);
    if (f.bbox) {
      const b = f.bbox;
      where.push(`p.latitude BETWEEN ${p(b.minLat)} AND ${p(b.maxLat)}`);
      // RFC 7946 §5.2: a box whose west edge is east of its east edge crosses the antimeridian.
      where.push(
        b.minLon <= b.maxLon
          ? `p.longitude BETWEEN ${p(b.minLon)} AND ${p(b.maxLon)}`
          : `(p.longitude >= ${p(b.minLon)} OR p.longitude <= ${p(b.maxLon)})`,
      );
    }
    if (f.near) {
      const { lon, lat, radiusM } = f.near;
      const dLat = radiusM / METRES_PER_DEGREE;
      const cosLat = Math.cos((lat * Math.PI) / 180);
      const dLon = cosLat < 1e-6 ? 180 : Math.min(180, dLat / cosLat);
      where.push(`p.latitude BETWEEN ${p(lat - dLat)} AND ${p(lat + dLat)}`);
      if (dLon < 180 && lon - dLon >= -180 && lon + dLon <= 180)
        where.push(`p.longitude BETWEEN ${p(lon - dLon)} AND ${p(lon + dLon)}`);
      const la = p(lat);
      const lo = p(lon);
      distance = `2 * ${EARTH_RADIUS_M} * asin(sqrt(power(sin(radians(p.latitude - ${la}) / 2), 2)
        + cos(radians(${la})) * cos(radians(p.latitude)) * power(sin(radians(p.longitude - ${lo}) / 2), 2)))`;
      outer.push(`distance_m <= ${p(radiusM)}`);
    }
    if (f.minFreeSlots !== undefined) outer.push(`slots - slots_booked - unbooked >= ${p(f.minFreeSlots)}`);
    if (f.minFreePowerW !== undefined) outer.push(`power_budget_w - power_booked_w >= ${p(f.minFreePowerW)}`);
    const sql = `SELECT * FROM (
        ${POLE_SELECT}, ${distance} AS distance_m FROM carrier_poles p
        ${where.length ? `WHERE ${where.join(' AND ')}` : ''}
      ) c ${outer.length ? `WHERE ${outer.join(' AND ')}` : ''}
      ORDER BY ${f.near ? 'distance_m, id' : 'id'} LIMIT ${p(f.limit)}`;
    const { rows } = await this.#db.query<PoleRow>(sql, params);
    return rows.map(toPole);
  }

  /** What hangs on a pole: ledger devices naming it, booked devices, enrolled gateways. */
  async mounted(id: string): Promise<Mounted> {
    const devices = await this.#db.query<{
      code: string;
      kind: string | null;
      agency_id: string;
      state: string | null;
      ledger_pole_id: string | null;
      mount_id: number | null;
      slots: number | null;
      power_w: number | null;
    }>(
      `SELECT d.code, d.kind, d.owner_agency AS agency_id, d.state, d.pole_id AS ledger_pole_id,
              m.id::float8 AS mount_id, m.slots, m.power_w
         FROM ledger_devices d
         LEFT JOIN carrier_mounts m ON m.device_code = d.code AND m.pole_id = $1 AND m.removed_at IS NULL
        WHERE d.pole_id = $1 AND d.state <> 'retired'
       UNION ALL
       SELECT m.device_code, d.kind, COALESCE(d.owner_agency, m.agency_id), d.state, d.pole_id,
              m.id::float8, m.slots, m.power_w
         FROM carrier_mounts m
         LEFT JOIN ledger_devices d ON d.code = m.device_code
        WHERE m.pole_id = $1 AND m.removed_at IS NULL
          AND (d.code IS NULL OR d.pole_id IS DISTINCT FROM $1 OR d.state = 'retired')
       ORDER BY 1`,
      [id],
    );
    const gateways = await this.#db.query<{
      id: string;
      name: string | null;
      online: boolean;
      last_seen: Date | string | null;
    }>(
      `SELECT id, name, online, last_seen FROM nodes
        WHERE pole_id = $1 AND deregistered_at IS NULL ORDER BY id`,
      [id],
    );
    return {
      devices: devices.rows.map((r) => ({
        code: r.code,
        kind: r.kind,
        agencyId: r.agency_id,
        state: r.state,
        ledgerPoleId: r.ledger_pole_id,
        mountId: r.mount_id === null ? null : Number(r.mount_id),
        slots: r.slots === null ? 1 : Number(r.slots),
        powerW: r.power_w === null ? null : Number(r.power_w),
      })),
      gateways: gateways.rows.map((r) => ({
        nodeId: r.id,
        name: r.name,
        online: r.online,
        lastSeen: r.last_seen === null ? null : iso(r.last_seen),
      })),
    };
  }

  /** Adds a pole; CS_ERR_CARRIER_DUPLICATE when the id is taken. */
  async createPole(input: PoleInput): Promise<CarrierPole> {
    const id = input.id ?? `pole-${randomBytes(6).toString('hex')}`;
    try {
      await this.#db.query(
        `INSERT INTO carrier_poles (id, kind, owner_agency, longitude, latitude, road, address, power_status,
            power_budget_w, network_kind, network_status, slots)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)`,
        [
          id,
          input.kind,
          input.ownerAgency,
          input.longitude,
          input.latitude,
          input.road ?? null,
          input.address ?? null,
          input.powerStatus ?? 'unknown',
          input.powerBudgetW,
          input.networkKind ?? 'none',
          input.networkStatus ?? 'unknown',
          input.slots,
        ],
      );
    } catch (err) {
      poleWriteError(err, id);
    }
    return this.requirePole(id);
  }

  /** Changes a pole's fields; a new owner also takes over its pending applications. */
  async updatePole(id: string, patch: PolePatch): Promise<CarrierPole> {
    const columns: Record<keyof PolePatch, string> = {
      kind: 'kind',
      ownerAgency: 'owner_agency',
      longitude: 'longitude',
      latitude: 'latitude',
      road: 'road',
      address: 'address',
      powerStatus: 'power_status',
      powerBudgetW: 'power_budget_w',
      networkKind: 'network_kind',
      networkStatus: 'network_status',
      slots: 'slots',
    };
    const params: unknown[] = [id];
    const sets: string[] = [];
    for (const [key, column] of Object.entries(columns) as Array<[keyof PolePatch, string]>) {
      if (patch[key] === undefined) continue;
      params.push(patch[key]);
      sets.push(`${column} = $${params.length}`);
    }
    try {
      await this.#db.transaction(async (tx) => {
        const { affectedRows } = await tx.query(
          `UPDATE carrier_poles SET ${sets.join(', ')}, updated_at = now() WHERE id = $1`,
          params,
        );
        if (affectedRows === 0) throw poleNotFound(id);
        if (patch.ownerAgency !== undefined)
          await tx.query(
            `UPDATE carrier_applications SET owner_agency = $2 WHERE pole_id = $1 AND state = 'pending'`,
            [id, patch.ownerAgency],
          );
      });
    } catch (err) {
      if (err instanceof CitysenseError) throw err;
      poleWriteError(err, id);
    }
    return this.requirePole(id);
  }

  /** Removes a pole nothing hangs on or waits for; CS_ERR_CARRIER_IN_USE otherwise. */
  async deletePole(id: string): Promise<void> {
    await this.#db.transaction(async (tx) => {
      const { rows } = await tx.query<{ mounts: number; pending: number; devices: number; nodes: number }>(
        `SELECT (SELECT count(*) FROM carrier_mounts WHERE pole_id = $1 AND removed_at IS NULL)::int AS mounts,
                (SELECT count(*) FROM carrier_applications WHERE pole_id = $1 AND state = 'pending')::int AS pending,
                (SELECT count(*) FROM ledger_devices WHERE pole_id = $1 AND state <> 'retired')::int AS devices,
                (SELECT count(*) FROM nodes WHERE pole_id = $1 AND deregistered_at IS NULL)::int AS nodes`,
        [id],
      );
      const use = rows[0];
      if (use && (use.mounts > 0 || use.pending > 0 || use.devices > 0 || use.nodes > 0))
        throw new CitysenseError(
          'CS_ERR_CARRIER_IN_USE',
          `pole ${id} still carries equipment or has pending applications; release mounts and decide applications first`,
          409,
          use,
        );
      const { affectedRows } = await tx.query('DELETE FROM carrier_poles WHERE id = $1', [id]);
      if (affectedRows === 0) throw poleNotFound(id);
    });
  }

  /** Releases a booking; answers the released mount's pole id, slots and power. */
  async releaseMount(poleId: string, mountId: number, by: CarrierActor): Promise<{ agencyId: string }> {
    return this.#db.transaction(async (tx) => {
      const { rows } = await tx.query<{ slots: number; power_w: number; agency_id: string }>(
        `UPDATE carrier_mounts SET removed_at = now(), removed_by = $3
          WHERE id = $1 AND pole_id = $2 AND removed_at IS NULL RETURNING slots, power_w, agency_id`,
        [mountId, poleId, by.name],
      );
      const m = rows[0];
      if (!m)
        throw new CitysenseError(
          'CS_ERR_CARRIER_MOUNT_NOT_FOUND',
          `pole ${poleId} has no current mount ${mountId}`,
          404,
        );
      await tx.query(
        `UPDATE carrier_poles SET slots_booked = GREATEST(0, slots_booked - $2),
            power_booked_w = GREATEST(0, power_booked_w - $3), updated_at = now() WHERE id = $1`,
        [poleId, m.slots, m.power_w],
      );
      return { agencyId: m.agency_id };
    });
  }

  /** The agency of a current mount, or null. */
  async mountAgency(poleId: string, mountId: number): Promise<string | null> {
    const { rows } = await this.#db.query<{ agency_id: string }>(
      'SELECT agency_id FROM carrier_mounts WHERE id = $1 AND pole_id = $2 AND removed_at IS NULL',
      [mountId, poleId],
    );
    return rows[0]?.agency_id ?? null;
  }

  /** The ledger's view of a device, or null when it is not filed. */
  async ledgerDevice(code: string): Promise<{ ownerAgency: string; state: string } | null> {
    const { rows } = await this.#db.query<{ owner_agency: string; state: string }>(
      'SELECT owner_agency, state FROM ledger_devices WHERE code = $1',
      [code],
    );
    const r = rows[0];
    return r ? { ownerAgency: r.owner_agency, state: r.state } : null;
  }

  /** Files an application (checked by the caller) with its first history step. */
  async createApplication(
    input: ApplicationInput & { applicantAgency: string; ownerAgency: string },
    by: CarrierActor,
  ): Promise<CarrierApplication> {
    const id = randomUUID();
    await this.#db.transaction(async (tx) => {
      await tx.query(
        `INSERT INTO carrier_applications (id, kind, applicant_agency, applicant_user, owner_agency, pole_id,
            longitude, latitude, pole_kind, device_code, power_w, slots, purpose, state)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, 'pending')`,
        [
          id,
          input.kind,
          input.applicantAgency,
          by.name,
          input.ownerAgency,
          input.kind === 'mount' ? (input.poleId ?? null) : null,
          input.longitude ?? null,
          input.latitude ?? null,
          input.poleKind ?? null,
          input.deviceCode,
          input.powerW,
          input.slots,
          input.purpose ?? null,
        ],
      );
      await this.#event(tx, id, 'submitted', by, input.purpose ?? null);
    });
    return this.requireApplication(id);
  }

  /** One application with its history; CS_ERR_CARRIER_APPLICATION_NOT_FOUND otherwise. */
  async requireApplication(id: string): Promise<CarrierApplication> {
    const { rows } = await this.#db.query<ApplicationRow>(
      `SELECT ${APPLICATION_COLUMNS} FROM carrier_applications WHERE id = $1`,
      [id],
    );
    const row = rows[0];
    if (!row) throw applicationNotFound(id);
    const history = await this.#db.query<{
      at: Date | string;
      action: string;
      actor: string;
      actor_agency: string | null;
      comment: string | null;
    }>(
      'SELECT at, action, actor, actor_agency, comment FROM carrier_application_events WHERE application_id = $1 ORDER BY id',
      [id],
    );
    return toApplication(
      row,
      history.rows.map((e) => ({
        at: iso(e.at),
        action: e.action,
        actor: e.actor,
        actorAgency: e.actor_agency,
        comment: e.comment,
      })),
    );
  }

  /** Applications, newest first; with `agencyId`, those it applied for or must decide. */
  async listApplications(f: ApplicationFilter): Promise<CarrierApplication[]> {
    const { rows } = await this.#db.query<{ id: string }>(
      `SELECT id FROM carrier_applications
        WHERE ($1::text IS NULL OR applicant_agency = $1 OR owner_agency = $1)
          AND ($2::text IS NULL OR state = $2) AND ($3::text IS NULL OR pole_id = $3)
        ORDER BY created_at DESC, id LIMIT $4`,
      [f.agencyId ?? null, f.state ?? null, f.poleId ?? null, f.limit],
    );
    const out: CarrierApplication[] = [];
    for (const r of rows) out.push(await this.requireApplication(r.id));
    return out;
  }

  /**
   * Approves a pending application: books its slots and power on the pole and records the
   * mount, all in one transaction. CS_ERR_CARRIER_FULL (409) when the pole cannot take it,
   * CS_ERR_CARRIER_DECIDED (409) when someone decided first.
   */
  async approve(id: string, by: CarrierActor, comment: string | null, newPoleId?: string): Promise<void> {
    await this.#db.transaction(async (tx) => {
      const app = await this.#lockPending(tx, id);
      const poleId = app.pole_id ?? newPoleId;
      if (!poleId)
        throw new CitysenseError(
          'CS_ERR_CARRIER_POLE_REQUIRED',
          'approving a new-pole application needs poleId: put the pole up (POST /v1/carriers), then name it',
          400,
        );
      const owner = await tx.query<{ owner_agency: string }>(
        'SELECT owner_agency FROM carrier_poles WHERE id = $1',
        [poleId],
      );
      const ownerAgency = owner.rows[0]?.owner_agency;
      if (ownerAgency === undefined) throw poleNotFound(poleId);
      if (ownerAgency !== app.owner_agency)
        throw new CitysenseError(
          'CS_ERR_CARRIER_OWNER_MISMATCH',
          `pole ${poleId} belongs to ${ownerAgency}, not to ${app.owner_agency} who decides this application`,
          409,
        );
      const mounted = await tx.query<{ pole_id: string }>(
        'SELECT pole_id FROM carrier_mounts WHERE device_code = $1 AND removed_at IS NULL',
        [app.device_code],
      );
      if (mounted.rows[0])
        throw new CitysenseError(
          'CS_ERR_CARRIER_ALREADY_MOUNTED',
          `device ${app.device_code} is already booked on pole ${mounted.rows[0].pole_id}; release that mount first`,
          409,
        );
      const booked = await tx.query(
        `UPDATE carrier_poles p
            SET slots_booked = slots_booked + $2, power_booked_w = power_booked_w + $3, updated_at = now()
          WHERE p.id = $1
            AND p.slots - p.slots_booked - ${unbookedSql('$4')} >= $2
            AND p.power_budget_w - p.power_booked_w >= $3
          RETURNING p.id`,
        [poleId, app.slots, app.power_w, app.device_code],
      );
      if (booked.rows.length === 0) {
        const now = await this.pole(poleId, tx);
        throw new CitysenseError(
          'CS_ERR_CARRIER_FULL',
          `pole ${poleId} has ${now?.freeSlots ?? 0} free slot(s) and ${now?.freePowerW ?? 0} W free; the application needs ${app.slots} slot(s) and ${app.power_w} W — refuse it or offer another pole`,
          409,
          {
            freeSlots: now?.freeSlots ?? 0,
            freePowerW: now?.freePowerW ?? 0,
            slots: app.slots,
            powerW: app.power_w,
          },
        );
      }
      const mount = await tx.query<{ id: number }>(
        `INSERT INTO carrier_mounts (pole_id, application_id, device_code, agency_id, power_w, slots)
         VALUES ($1, $2, $3, $4, $5, $6) RETURNING id::float8 AS id`,
        [poleId, id, app.device_code, app.applicant_agency, app.power_w, app.slots],
      );
      await tx.query(
        `UPDATE carrier_applications SET state = 'approved', decided_by = $2, decided_at = now(), comment = $3,
            mount_id = $4, pole_id = $5 WHERE id = $1`,
        [id, by.name, comment, mount.rows[0]?.id ?? null, poleId],
      );
      await this.#event(tx, id, 'approved', by, comment);
    });
  }

  /** Refuses a pending application; CS_ERR_CARRIER_DECIDED (409) when someone decided first. */
  async refuse(id: string, by: CarrierActor, comment: string | null): Promise<void> {
    await this.#db.transaction(async (tx) => {
      await this.#lockPending(tx, id);
      await tx.query(
        `UPDATE carrier_applications SET state = 'refused', decided_by = $2, decided_at = now(), comment = $3
          WHERE id = $1`,
        [id, by.name, comment],
      );
      await this.#event(tx, id, 'refused', by, comment);
    });
  }

  async #lockPending(tx: Queryable, id: string): Promise<ApplicationRow> {
    const { rows } = await tx.query<ApplicationRow>(
      `SELECT ${APPLICATION_COLUMNS} FROM carrier_applications WHERE id = $1 FOR UPDATE`,
      [id],
    );
    const app = rows[0];
    if (!app) throw applicationNotFound(id);
    if (app.state !== 'pending')
      throw new CitysenseError(
        'CS_ERR_CARRIER_DECIDED',
        `application ${id} was already ${app.state} by ${app.decided_by ?? 'someone'}`,
        409,
      );
    return app;
  }

  async #event(
    tx: Queryable,
    id: string,
    action: string,
    by: CarrierActor,
    comment: string | null,
  ): Promise<void> {
    await tx.query(
      `INSERT INTO carrier_application_events (application_id, action, actor, actor_agency, comment)
       VALUES ($1, $2, $3, $4, $5)`,
      [id, action, by.name, by.agencyId, comment],
    );
  }
}

/** Message of a failed bulk row, for the report. */
export function rowErrorOf(err: unknown): { code: string; message: string } {
  if (err instanceof CitysenseError) return { code: err.code, message: err.message };
  return { code: 'CS_ERR_CARRIER_ROW', message: errorMessage(err) };
}
