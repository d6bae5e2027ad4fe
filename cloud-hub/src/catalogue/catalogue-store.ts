/**
 * Named queries of the data catalogue: device shares, data resources, access
 * applications and the pseudonym key. A decision is one conditional UPDATE that
 * moves a row only from the state the decider expects, so of concurrent deciders
 * exactly one changes it.
 */
import { randomBytes } from 'node:crypto';
import type { Queryable } from '../storage/database.ts';
import type { DataCategory, DataForm, DesensitisationRule } from './desensitise.ts';

/** Where a device share stands. */
export type ShareStatus = 'pending' | 'approved' | 'refused' | 'revoked';

/** Agency B's request to read agency A's ledger device, and A's answer. */
export interface DeviceShare {
  id: string;
  deviceCode: string;
  ownerAgency: string;
  applicantAgency: string;
  purpose: string;
  status: ShareStatus;
  appliedBy: string;
  appliedAt: string;
  decidedBy: string | null;
  decidedAt: string | null;
  comment: string | null;
}

/** What a data resource holds: readings of a metric, or detections of a label. */
export type ResourceDataType = 'reading' | 'detection';

/** One entry of the sensing data catalogue. */
export interface DataResource {
  id: string;
  title: string;
  deviceKind: string;
  dataType: ResourceDataType;
  /** Metric name (readings) or object label (detections). */
  item: string;
  /** Only this agency's devices (and it decides applications); null: every agency's, the platform decides. */
  ownerAgency: string | null;
  grade: 1 | 2 | 3 | 4;
  category: DataCategory;
  forms: DataForm[];
  rule: DesensitisationRule;
  description: string | null;
  createdAt: string;
  updatedAt: string;
}

/** Where an access application stands. */
export type ApplicationStatus = 'pending' | 'granted' | 'refused' | 'revoked';

/** An agency's request for a resource in one form, and the decision. */
export interface AccessApplication {
  id: string;
  resourceId: string;
  applicantAgency: string;
  form: DataForm;
  purpose: string;
  status: ApplicationStatus;
  appliedBy: string;
  appliedAt: string;
  decidedBy: string | null;
  decidedAt: string | null;
  comment: string | null;
}

/** A decision: the row moves from `from` to `to` only if it is still in `from`. */
export interface DecisionWrite<S extends string> {
  id: string;
  from: S;
  to: S;
  decidedBy: string;
  comment: string | null;
}

const SHARE_COLUMNS = `id, device_code AS "deviceCode", owner_agency AS "ownerAgency",
  applicant_agency AS "applicantAgency", purpose, status, applied_by AS "appliedBy", applied_at AS "appliedAt",
  decided_by AS "decidedBy", decided_at AS "decidedAt", comment`;

const RESOURCE_COLUMNS = `id, title, device_kind AS "deviceKind", data_type AS "dataType", item,
  owner_agency AS "ownerAgency", grade, category, forms, rule, description, created_at AS "createdAt",
  updated_at AS "updatedAt"`;

const applicationColumns = (t = '') => `${t}id, ${t}resource_id AS "resourceId",
  ${t}applicant_agency AS "applicantAgency", ${t}form, ${t}purpose, ${t}status, ${t}applied_by AS "appliedBy",
  ${t}applied_at AS "appliedAt", ${t}decided_by AS "decidedBy", ${t}decided_at AS "decidedAt", ${t}comment`;
const APPLICATION_COLUMNS = applicationColumns();

type Timed<T, K extends keyof T> = Omit<T, K> & { [P in K]: Date | string | null };

const iso = (t: Date | string | null): string | null => (t === null ? null : new Date(t).toISOString());

const toShare = (r: Timed<DeviceShare, 'appliedAt' | 'decidedAt'>): DeviceShare => ({
  ...r,
  appliedAt: iso(r.appliedAt) ?? '',
  decidedAt: iso(r.decidedAt),
});

const toApplication = (r: Timed<AccessApplication, 'appliedAt' | 'decidedAt'>): AccessApplication => ({
  ...r,
  appliedAt: iso(r.appliedAt) ?? '',
  decidedAt: iso(r.decidedAt),
});

const toResource = (
  r: Timed<Omit<DataResource, 'rule'>, 'createdAt' | 'updatedAt'> & { rule: DesensitisationRule | string },
): DataResource => ({
  ...r,
  grade: Number(r.grade) as DataResource['grade'],
  rule: typeof r.rule === 'string' ? (JSON.parse(r.rule) as DesensitisationRule) : r.rule,
  createdAt: iso(r.createdAt) ?? '',
  updatedAt: iso(r.updatedAt) ?? '',
});

/** Named queries of the catalogue. */
export class CatalogueStore {
  readonly #db: Queryable;

  constructor(db: Queryable) {
    this.#db = db;
  }

  /** Files a pending share; throws the engine's unique violation when an open one exists. */
  async insertShare(s: Omit<DeviceShare, 'status' | 'appliedAt' | 'decidedBy' | 'decidedAt' | 'comment'>) {
    const { rows } = await this.#db.query<Timed<DeviceShare, 'appliedAt' | 'decidedAt'>>(
      `INSERT INTO catalogue_shares (id, device_code, owner_agency, applicant_agency, purpose, status, applied_by)
       VALUES ($1, $2, $3, $4, $5, 'pending', $6) RETURNING ${SHARE_COLUMNS}`,
      [s.id, s.deviceCode, s.ownerAgency, s.applicantAgency, s.purpose, s.appliedBy],
    );
    return toShare(rows[0] as Timed<DeviceShare, 'appliedAt' | 'decidedAt'>);
  }

  /** One share. */
  async share(id: string): Promise<DeviceShare | undefined> {
    const { rows } = await this.#db.query<Timed<DeviceShare, 'appliedAt' | 'decidedAt'>>(
      `SELECT ${SHARE_COLUMNS} FROM catalogue_shares WHERE id = $1`,
      [id],
    );
    return rows[0] && toShare(rows[0]);
  }

  /** Shares an agency owns or applied for (every share when `agency` is null), newest first. */
  async shares(
    agency: string | null,
    status: ShareStatus | undefined,
    limit: number,
  ): Promise<DeviceShare[]> {
    const { rows } = await this.#db.query<Timed<DeviceShare, 'appliedAt' | 'decidedAt'>>(
      `SELECT ${SHARE_COLUMNS} FROM catalogue_shares
       WHERE ($1::text IS NULL OR owner_agency = $1 OR applicant_agency = $1) AND ($2::text IS NULL OR status = $2)
       ORDER BY applied_at DESC, id LIMIT $3`,
      [agency, status ?? null, limit],
    );
    return rows.map(toShare);
  }

  /** Moves a share from `from` to `to`; undefined when it was not in `from` (someone else decided). */
  async decideShare(d: DecisionWrite<ShareStatus>): Promise<DeviceShare | undefined> {
    const { rows } = await this.#db.query<Timed<DeviceShare, 'appliedAt' | 'decidedAt'>>(
      `UPDATE catalogue_shares SET status = $3, decided_by = $4, decided_at = now(), comment = $5
       WHERE id = $1 AND status = $2 RETURNING ${SHARE_COLUMNS}`,
      [d.id, d.from, d.to, d.decidedBy, d.comment],
    );
    return rows[0] && toShare(rows[0]);
  }

  /** Whether `agency` holds an approved share of the device. */
  async hasApprovedShare(deviceCode: string, agency: string): Promise<boolean> {
    const { rows } = await this.#db.query(
      `SELECT 1 FROM catalogue_shares WHERE device_code = $1 AND applicant_agency = $2 AND status = 'approved'`,
      [deviceCode, agency],
    );
    return rows.length > 0;
  }

  /** Adds a resource; throws the engine's unique violation when the id exists. */
  async insertResource(r: Omit<DataResource, 'createdAt' | 'updatedAt'>): Promise<DataResource> {
    const { rows } = await this.#db.query<Parameters<typeof toResource>[0]>(
      `INSERT INTO catalogue_resources (id, title, device_kind, data_type, item, owner_agency, grade, category, forms,
         rule, description)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9::text[], $10::jsonb, $11) RETURNING ${RESOURCE_COLUMNS}`,
      resourceParams(r),
    );
    return toResource(rows[0] as Parameters<typeof toResource>[0]);
  }

  /** Replaces a resource's fields; undefined when it does not exist. */
  async updateResource(r: Omit<DataResource, 'createdAt' | 'updatedAt'>): Promise<DataResource | undefined> {
    const { rows } = await this.#db.query<Parameters<typeof toResource>[0]>(
      `UPDATE catalogue_resources SET title = $2, device_kind = $3, data_type = $4, item = $5, owner_agency = $6,
         grade = $7, category = $8, forms = $9::text[], rule = $10::jsonb, description = $11, updated_at = now()
       WHERE id = $1 RETURNING ${RESOURCE_COLUMNS}`,
      resourceParams(r),
    );
    return rows[0] && toResource(rows[0]);
  }

  /** One resource. */
  async resource(id: string): Promise<DataResource | undefined> {
    const { rows } = await this.#db.query<Parameters<typeof toResource>[0]>(
      `SELECT ${RESOURCE_COLUMNS} FROM catalogue_resources WHERE id = $1`,
      [id],
    );
    return rows[0] && toResource(rows[0]);
  }

  /** Resources by filter, in id order. */
  async resources(f: {
    deviceKind?: string | undefined;
    category?: string | undefined;
  }): Promise<DataResource[]> {
    const { rows } = await this.#db.query<Parameters<typeof toResource>[0]>(
      `SELECT ${RESOURCE_COLUMNS} FROM catalogue_resources
       WHERE ($1::text IS NULL OR device_kind = $1) AND ($2::text IS NULL OR category = $2) ORDER BY id`,
      [f.deviceKind ?? null, f.category ?? null],
    );
    return rows.map(toResource);
  }

  /** Files a pending application; throws the engine's unique violation when an open one exists. */
  async insertApplication(
    a: Pick<AccessApplication, 'id' | 'resourceId' | 'applicantAgency' | 'form' | 'purpose' | 'appliedBy'>,
  ): Promise<AccessApplication> {
    const { rows } = await this.#db.query<Timed<AccessApplication, 'appliedAt' | 'decidedAt'>>(
      `INSERT INTO catalogue_applications (id, resource_id, applicant_agency, form, purpose, status, applied_by)
       VALUES ($1, $2, $3, $4, $5, 'pending', $6) RETURNING ${APPLICATION_COLUMNS}`,
      [a.id, a.resourceId, a.applicantAgency, a.form, a.purpose, a.appliedBy],
    );
    return toApplication(rows[0] as Timed<AccessApplication, 'appliedAt' | 'decidedAt'>);
  }

  /** One application. */
  async application(id: string): Promise<AccessApplication | undefined> {
    const { rows } = await this.#db.query<Timed<AccessApplication, 'appliedAt' | 'decidedAt'>>(
      `SELECT ${APPLICATION_COLUMNS} FROM catalogue_applications WHERE id = $1`,
      [id],
    );
    return rows[0] && toApplication(rows[0]);
  }

  /**
   * Applications an agency filed or decides (resources it owns); every application when
   * `agency` is null. Newest first.
   */
  async applications(
    agency: string | null,
    status: ApplicationStatus | undefined,
    limit: number,
  ): Promise<AccessApplication[]> {
    const { rows } = await this.#db.query<Timed<AccessApplication, 'appliedAt' | 'decidedAt'>>(
      `SELECT ${applicationColumns('a.')} FROM catalogue_applications a
       JOIN catalogue_resources r ON r.id = a.resource_id
       WHERE ($1::text IS NULL OR a.applicant_agency = $1 OR r.owner_agency = $1) AND ($2::text IS NULL OR a.status = $2)
       ORDER BY a.applied_at DESC, a.id LIMIT $3`,
      [agency, status ?? null, limit],
    );
    return rows.map(toApplication);
  }

  /** Moves an application from `from` to `to`; undefined when it was not in `from`. */
  async decideApplication(d: DecisionWrite<ApplicationStatus>): Promise<AccessApplication | undefined> {
    const { rows } = await this.#db.query<Timed<AccessApplication, 'appliedAt' | 'decidedAt'>>(
      `UPDATE catalogue_applications SET status = $3, decided_by = $4, decided_at = now(), comment = $5
       WHERE id = $1 AND status = $2 RETURNING ${APPLICATION_COLUMNS}`,
      [d.id, d.from, d.to, d.decidedBy, d.comment],
    );
    return rows[0] && toApplication(rows[0]);
  }

  /** Forms of a resource granted to an agency. */
  async grantedForms(resourceId: string, agency: string): Promise<DataForm[]> {
    const { rows } = await this.#db.query<{ form: DataForm }>(
      `SELECT DISTINCT form FROM catalogue_applications
       WHERE resource_id = $1 AND applicant_agency = $2 AND status = 'granted'`,
      [resourceId, agency],
    );
    return rows.map((r) => r.form);
  }

  /** The pseudonym key: created by the first hub that asks, then the same for every hub on the database. */
  async pseudonymKey(): Promise<Buffer> {
    await this.#db.query(
      'INSERT INTO catalogue_pseudonym_key (id, key) VALUES (true, $1) ON CONFLICT (id) DO NOTHING',
      [randomBytes(32).toString('base64url')],
    );
    const { rows } = await this.#db.query<{ key: string }>(
      'SELECT key FROM catalogue_pseudonym_key WHERE id',
    );
    const key = rows[0]?.key;
    if (!key) throw new Error('catalogue_pseudonym_key has no row after insert');
    return Buffer.from(key, 'base64url');
  }

  /**
   * Where the readings of ledger devices are: telemetry series whose Sparkplug device id
   * is a device's unified code (the runtime names devices by their ledger code).
   */
  async readingStreams(
    codes: readonly string[],
    metric?: string,
  ): Promise<Array<{ node: string; device: string }>> {
    if (codes.length === 0) return [];
    const { rows } = await this.#db.query<{ node: string; device: string }>(
      `SELECT DISTINCT node_id AS node, device_id AS device FROM series
       WHERE device_id = ANY($1::text[]) AND ($2::text IS NULL OR metric = $2) ORDER BY 2, 1`,
      [codes, metric ?? null],
    );
    return rows;
  }

  /** Ledger devices among `codes` with video analytics: streams whose source is a device's unified code. */
  async detectionSources(codes: readonly string[]): Promise<string[]> {
    if (codes.length === 0) return [];
    const { rows } = await this.#db.query<{ source: string }>(
      'SELECT DISTINCT source FROM analytics_streams WHERE source = ANY($1::text[]) ORDER BY 1',
      [codes],
    );
    return rows.map((r) => r.source);
  }
}

function resourceParams(r: Omit<DataResource, 'createdAt' | 'updatedAt'>): unknown[] {
  return [
    r.id,
    r.title,
    r.deviceKind,
    r.dataType,
    r.item,
    r.ownerAgency,
    r.grade,
    r.category,
    r.forms,
    JSON.stringify(r.rule),
    r.description,
  ];
}
