/**
 * Named queries of the sensor ledger. Every write is one statement that moves the chain
 * head only if it is still where the writer read it (a conditional UPDATE on the single
 * head row), changes the device and files its entry: the change and its filing commit
 * together or not at all, and of two concurrent writers exactly one wins.
 */
import type { SignatureAlgorithm } from '@citysense/protocol';
import type { Queryable } from '../storage/database.ts';
import type { LedgerEntry } from './chain.ts';
import type { DeviceKind } from './device-codes.ts';

/** Lifecycle states of a ledger device. */
export const DEVICE_STATES = [
  'proposed',
  'in-review',
  'approved',
  'installed',
  'active',
  'maintenance',
  'retired',
] as const;
/** One of `DEVICE_STATES`. */
export type DeviceState = (typeof DEVICE_STATES)[number];

/** A device exactly as filed: the chain content carries this object, the table holds it. */
export interface DeviceSnapshot {
  code: string;
  kind: DeviceKind;
  model: string | null;
  vendor: string | null;
  ownerAgency: string;
  poleId: string | null;
  longitude: number;
  latitude: number;
  /** `YYYY-MM-DD`. */
  installedOn: string | null;
  gb35114Level: 'A' | 'B' | 'C' | 'none' | null;
  network: string | null;
  dataItems: string[];
  state: DeviceState;
  /** Latest time (ISO 8601) each state was reached. */
  stateTimes: Partial<Record<DeviceState, string>>;
  duplicates: string[];
  resolution: 'reuse' | 'justify' | null;
  reuseOf: string | null;
  justification: string | null;
}

/** A device as the API shows it: the snapshot and the seq of the entry that filed it. */
export interface LedgerDevice extends DeviceSnapshot {
  changeSeq: number;
}

/** A standing device near a proposed one. */
export interface NearbyDevice {
  code: string;
  kind: DeviceKind;
  ownerAgency: string;
  poleId: string | null;
  state: DeviceState;
  longitude: number;
  latitude: number;
  distanceM: number;
}

/** Filter of the device list. */
export interface DeviceFilter {
  kind?: string | undefined;
  state?: string | undefined;
  ownerAgency?: string | undefined;
  /** Keyset pagination: codes after this one. */
  after?: string | undefined;
  /** Text: a part of the code, model, vendor or pole id (case-insensitive). */
  text?: string | undefined;
  limit: number;
}

const DEVICE_COLUMNS = `code, kind, model, vendor, owner_agency AS "ownerAgency", pole_id AS "poleId",
  longitude, latitude, installed_on::text AS "installedOn", gb35114_level AS "gb35114Level", network,
  data_items AS "dataItems", state, state_times AS "stateTimes", duplicates, resolution,
  reuse_of AS "reuseOf", justification, change_seq::float8 AS "changeSeq"`;

const ENTRY_COLUMNS = `seq::float8 AS seq, time, action, device_code AS "deviceCode", content,
  prev_hash AS "prevHash", hash, signature, signature_algorithm AS "signatureAlgorithm",
  key_fingerprint AS "keyFingerprint"`;

interface EntryRow {
  seq: number;
  time: Date;
  action: string;
  deviceCode: string;
  content: string;
  prevHash: string;
  hash: string;
  signature: string;
  signatureAlgorithm: SignatureAlgorithm;
  keyFingerprint: string;
}

const toEntry = (r: EntryRow): LedgerEntry => ({
  seq: r.seq,
  time: new Date(r.time).toISOString(),
  action: r.action,
  deviceCode: r.deviceCode,
  content: r.content,
  prevHash: r.prevHash,
  hash: r.hash,
  signature: { algorithm: r.signatureAlgorithm, keyFingerprint: r.keyFingerprint, value: r.signature },
});

/** Mean Earth radius (IUGG), metres. */
const EARTH_RADIUS_M = 6_371_008.8;
const METRES_PER_DEGREE = (Math.PI / 180) * EARTH_RADIUS_M;

/** Half-sides in degrees of the box around a point that holds a circle of `radiusM`. */
function box(latitude: number, radiusM: number): { dLat: number; dLon: number } {
  const dLat = radiusM / METRES_PER_DEGREE;
  const cosLat = Math.cos((latitude * Math.PI) / 180);
  return { dLat, dLon: cosLat < 1e-6 ? 180 : Math.min(180, dLat / cosLat) };
}

/** Great-circle distance in metres from the row's latitude/longitude to a point (haversine). */
function haversine(lat: string, lon: string): string {
  return `2 * ${EARTH_RADIUS_M} * asin(sqrt(power(sin(radians(latitude - ${lat}) / 2), 2)
    + cos(radians(${lat})) * cos(radians(latitude)) * power(sin(radians(longitude - ${lon}) / 2), 2)))`;
}

/** Columns written from a snapshot: parameters $1..$18. */
function snapshotParams(d: DeviceSnapshot): unknown[] {
  return [
    d.code,
    d.kind,
    d.model,
    d.vendor,
    d.ownerAgency,
    d.poleId,
    d.longitude,
    d.latitude,
    d.installedOn,
    d.gb35114Level,
    d.network,
    d.dataItems,
    d.state,
    JSON.stringify(d.stateTimes),
    d.duplicates,
    d.resolution,
    d.reuseOf,
    d.justification,
  ];
}

/** Files the entry (parameters $19..$28) when the CTE `h` moved the head. */
const APPEND_FROM_H = `c AS (
         INSERT INTO ledger_chain (seq, time, action, device_code, content, prev_hash, hash, signature,
           signature_algorithm, key_fingerprint)
         SELECT $19::bigint, $20::timestamptz, $21::text, $22::text, $23::text, $24::text, $25::text, $26::text,
           $27::text, $28::text FROM h)`;

/** The chain entry: parameters $19..$28 (its seq is also the device's change_seq). */
function entryParams(e: LedgerEntry): unknown[] {
  return [
    e.seq,
    new Date(e.time),
    e.action,
    e.deviceCode,
    e.content,
    e.prevHash,
    e.hash,
    e.signature.value,
    e.signature.algorithm,
    e.signature.keyFingerprint,
  ];
}

/** Named queries of the ledger. */
export class LedgerStore {
  readonly #db: Queryable;

  constructor(db: Queryable) {
    this.#db = db;
  }

  /** The chain head. */
  async head(): Promise<{ seq: number; hash: string }> {
    const { rows } = await this.#db.query<{ seq: number; hash: string }>(
      'SELECT seq::float8 AS seq, hash FROM ledger_chain_head WHERE id',
    );
    const head = rows[0];
    if (!head) throw new Error('ledger_chain_head has no row: the 0080 migration did not run');
    return head;
  }

  /** Last serial allocated under a 14-digit prefix (0 when none). */
  async lastSerial(prefix: string): Promise<number> {
    const { rows } = await this.#db.query<{ last_serial: number }>(
      'SELECT last_serial FROM ledger_code_serials WHERE prefix = $1',
      [prefix],
    );
    return rows[0]?.last_serial ?? 0;
  }

  /**
   * Inserts devices, records their serials and files their entries (consecutive seqs
   * after `head`) in one statement, only if the chain head is still `head`; false when
   * it moved (nothing written). Throws the engine's unique violation when a code exists.
   */
  async insertFiled(
    devices: DeviceSnapshot[],
    entries: LedgerEntry[],
    head: { seq: number; hash: string },
    serials: ReadonlyMap<string, number>,
  ): Promise<boolean> {
    const last = entries.at(-1);
    if (!last) return true;
    const { rows } = await this.#db.query<{ moved: number }>(
      `WITH h AS (
         UPDATE ledger_chain_head SET seq = $1::bigint, hash = $2::text
         WHERE id AND seq = $3::bigint AND hash = $4::text RETURNING 1),
       s AS (
         INSERT INTO ledger_code_serials (prefix, last_serial)
         SELECT prefix, serial FROM unnest($5::text[], $6::int[]) AS x(prefix, serial) WHERE EXISTS (SELECT 1 FROM h)
         ON CONFLICT (prefix) DO UPDATE SET last_serial = GREATEST(ledger_code_serials.last_serial, EXCLUDED.last_serial)),
       d AS (
         INSERT INTO ledger_devices (code, kind, model, vendor, owner_agency, pole_id, longitude, latitude,
           installed_on, gb35114_level, network, data_items, state, state_times, duplicates, resolution,
           reuse_of, justification, change_seq)
         SELECT r.code, r.kind, r.model, r.vendor, r."ownerAgency", r."poleId", r.longitude, r.latitude,
           r."installedOn"::date, r."gb35114Level", r.network,
           ARRAY(SELECT jsonb_array_elements_text(r."dataItems")), r.state, r."stateTimes",
           ARRAY(SELECT jsonb_array_elements_text(r.duplicates)), r.resolution, r."reuseOf", r.justification,
           r."changeSeq"
         FROM jsonb_to_recordset($7::jsonb) AS r(code text, kind text, model text, vendor text, "ownerAgency" text,
           "poleId" text, longitude float8, latitude float8, "installedOn" text, "gb35114Level" text, network text,
           "dataItems" jsonb, state text, "stateTimes" jsonb, duplicates jsonb, resolution text, "reuseOf" text,
           justification text, "changeSeq" bigint)
         WHERE EXISTS (SELECT 1 FROM h)),
       c AS (
         INSERT INTO ledger_chain (seq, time, action, device_code, content, prev_hash, hash, signature,
           signature_algorithm, key_fingerprint)
         SELECT e.seq, e.time, e.action, e."deviceCode", e.content, e."prevHash", e.hash, e.signature,
           e."signatureAlgorithm", e."keyFingerprint"
         FROM jsonb_to_recordset($8::jsonb) AS e(seq bigint, time timestamptz, action text, "deviceCode" text,
           content text, "prevHash" text, hash text, signature text, "signatureAlgorithm" text, "keyFingerprint" text)
         WHERE EXISTS (SELECT 1 FROM h))
       SELECT count(*)::int AS moved FROM h`,
      [
        last.seq,
        last.hash,
        head.seq,
        head.hash,
        [...serials.keys()],
        [...serials.values()],
        JSON.stringify(devices.map((d, i) => ({ ...d, changeSeq: entries[i]?.seq }))),
        JSON.stringify(
          entries.map((e) => ({
            ...e,
            signature: e.signature.value,
            signatureAlgorithm: e.signature.algorithm,
            keyFingerprint: e.signature.keyFingerprint,
          })),
        ),
      ],
    );
    return (rows[0]?.moved ?? 0) > 0;
  }

  /**
   * Standing devices near many points at once (an import's proposed rows), up to 20 per
   * point, nearest first; `index` says which point a device is near.
   */
  async nearbyMany(
    points: Array<{ index: number; kind: string; longitude: number; latitude: number; radiusM: number }>,
  ): Promise<Array<{ index: number; device: NearbyDevice }>> {
    const boxes = points.map((p) => ({ ...p, ...box(p.latitude, p.radiusM) }));
    const { rows } = await this.#db.query<NearbyDevice & { index: number }>(
      `SELECT p.index, n.* FROM jsonb_to_recordset($1::jsonb)
         AS p(index int, kind text, longitude float8, latitude float8, "radiusM" float8, "dLat" float8, "dLon" float8)
       CROSS JOIN LATERAL (
         SELECT * FROM (
           SELECT code, kind, owner_agency AS "ownerAgency", pole_id AS "poleId", state, d.longitude, d.latitude,
             ${haversine('p.latitude', 'p.longitude')} AS "distanceM"
           FROM ledger_devices d
           WHERE d.kind = p.kind AND d.state IN ('active', 'maintenance')
             AND d.latitude BETWEEN p.latitude - p."dLat" AND p.latitude + p."dLat"
             AND d.longitude BETWEEN p.longitude - p."dLon" AND p.longitude + p."dLon"
         ) m WHERE "distanceM" <= p."radiusM" ORDER BY "distanceM" LIMIT 20
       ) n ORDER BY p.index, n."distanceM"`,
      [JSON.stringify(boxes)],
    );
    return rows.map(({ index, ...device }) => ({ index, device }));
  }

  /**
   * Writes a device's new snapshot and files its entry in one statement, only if the
   * chain head is still `head`; `written` is false when the device was not in
   * `expectedState` (then nothing is written).
   */
  async updateFiled(
    device: DeviceSnapshot,
    expectedState: DeviceState,
    entry: LedgerEntry,
    head: { seq: number; hash: string },
  ): Promise<{ headMoved: boolean; written: boolean }> {
    const { rows } = await this.#db.query<{ moved: number; written: number }>(
      `WITH cur AS (
         SELECT 1 FROM ledger_chain_head WHERE id AND seq = $29::bigint AND hash = $30::text FOR UPDATE),
       d AS (
         UPDATE ledger_devices SET kind = $2, model = $3, vendor = $4, owner_agency = $5, pole_id = $6,
           longitude = $7, latitude = $8, installed_on = $9::date, gb35114_level = $10, network = $11,
           data_items = $12::text[], state = $13, state_times = $14::jsonb, duplicates = $15::text[],
           resolution = $16, reuse_of = $17, justification = $18, change_seq = $19::bigint, updated_at = now()
         WHERE code = $1 AND state = $31 AND EXISTS (SELECT 1 FROM cur) RETURNING code),
       h AS (
         UPDATE ledger_chain_head SET seq = $19::bigint, hash = $25::text
         WHERE id AND seq = $29::bigint AND hash = $30::text AND EXISTS (SELECT 1 FROM d) RETURNING 1),
       ${APPEND_FROM_H}
       SELECT (SELECT count(*) FROM cur)::int AS moved, (SELECT count(*) FROM h)::int AS written`,
      [...snapshotParams(device), ...entryParams(entry), head.seq, head.hash, expectedState],
    );
    const r = rows[0];
    return { headMoved: (r?.moved ?? 0) === 0, written: (r?.written ?? 0) > 0 };
  }

  /** One device. */
  async device(code: string): Promise<LedgerDevice | undefined> {
    const { rows } = await this.#db.query<LedgerDevice>(
      `SELECT ${DEVICE_COLUMNS} FROM ledger_devices WHERE code = $1`,
      [code],
    );
    return rows[0];
  }

  /** Devices by filter, in code order. */
  async list(f: DeviceFilter): Promise<LedgerDevice[]> {
    const { rows } = await this.#db.query<LedgerDevice>(
      `SELECT ${DEVICE_COLUMNS} FROM ledger_devices
       WHERE ($1::text IS NULL OR kind = $1) AND ($2::text IS NULL OR state = $2)
         AND ($3::text IS NULL OR owner_agency = $3) AND ($4::text IS NULL OR code > $4)
         AND ($6::text IS NULL OR strpos(lower(concat_ws(' ', code, model, vendor, pole_id)), lower($6)) > 0)
       ORDER BY code LIMIT $5`,
      [f.kind ?? null, f.state ?? null, f.ownerAgency ?? null, f.after ?? null, f.limit, f.text ?? null],
    );
    return rows;
  }

  /**
   * Standing (active or in maintenance) devices of `kind` within `radiusM` of a point,
   * nearest first: a bounding box on the (kind, latitude, longitude) btree narrows the
   * rows, the haversine distance decides.
   */
  async nearby(o: {
    kind: string;
    longitude: number;
    latitude: number;
    radiusM: number;
    exclude?: string;
    limit?: number;
  }): Promise<NearbyDevice[]> {
    const { dLat, dLon } = box(o.latitude, o.radiusM);
    const { rows } = await this.#db.query<NearbyDevice>(
      `SELECT * FROM (
         SELECT code, kind, owner_agency AS "ownerAgency", pole_id AS "poleId", state, longitude, latitude,
           2 * ${EARTH_RADIUS_M} * asin(sqrt(power(sin(radians(latitude - $2) / 2), 2)
             + cos(radians($2)) * cos(radians(latitude)) * power(sin(radians(longitude - $3) / 2), 2))) AS "distanceM"
         FROM ledger_devices
         WHERE kind = $1 AND state IN ('active', 'maintenance')
           AND latitude BETWEEN $4 AND $5 AND longitude BETWEEN $6 AND $7 AND code <> $8
       ) n WHERE "distanceM" <= $9 ORDER BY "distanceM" LIMIT $10`,
      [
        o.kind,
        o.latitude,
        o.longitude,
        o.latitude - dLat,
        o.latitude + dLat,
        o.longitude - dLon,
        o.longitude + dLon,
        o.exclude ?? '',
        o.radiusM,
        o.limit ?? 20,
      ],
    );
    return rows;
  }

  /** Chain entries after `since`, in seq order. */
  async entries(since: number, limit: number): Promise<LedgerEntry[]> {
    const { rows } = await this.#db.query<EntryRow>(
      `SELECT ${ENTRY_COLUMNS} FROM ledger_chain WHERE seq > $1 ORDER BY seq LIMIT $2`,
      [since, limit],
    );
    return rows.map(toEntry);
  }

  /** Chain entries of one device, oldest first (its lifecycle history). */
  async entriesOf(deviceCode: string, limit: number): Promise<LedgerEntry[]> {
    const { rows } = await this.#db.query<EntryRow>(
      `SELECT ${ENTRY_COLUMNS} FROM ledger_chain WHERE device_code = $1 ORDER BY seq LIMIT $2`,
      [deviceCode, limit],
    );
    return rows.map(toEntry);
  }

  /** Devices after `afterCode` in code order, as raw snapshots plus code (verification). */
  async devicePage(afterCode: string, limit: number): Promise<LedgerDevice[]> {
    const { rows } = await this.#db.query<LedgerDevice>(
      `SELECT ${DEVICE_COLUMNS} FROM ledger_devices WHERE code > $1 ORDER BY code LIMIT $2`,
      [afterCode, limit],
    );
    return rows;
  }
}
