import type { AdaptationReport, AlgorithmPackage, Manifest } from '@citysense/algorithms';
import { CitysenseError, type SignatureAlgorithm } from '@citysense/protocol';
import type { Database, Queryable } from '../storage/database.ts';

/** Where a version is in its life: uploaded, adaptation-tested, filed (备案), published to nodes, withdrawn. */
export const VERSION_STATES = ['draft', 'validated', 'filed', 'published', 'retired'] as const;
/** One of `VERSION_STATES`. */
export type VersionState = (typeof VERSION_STATES)[number];

/** Admin decisions that move a version on, with the states each starts from. */
export const TRANSITIONS = {
  file: { from: ['validated'], to: 'filed' },
  publish: { from: ['filed'], to: 'published' },
  retire: { from: ['published', 'filed'], to: 'retired' },
} as const satisfies Record<string, { from: readonly VersionState[]; to: VersionState }>;
/** One of the admin transitions. */
export type TransitionAction = keyof typeof TRANSITIONS;

/** One entry of a version's history. */
export interface VersionEvent {
  action: string;
  fromState: VersionState | null;
  toState: VersionState;
  actor: string;
  note: string | null;
  at: Date;
}

/** One version of an algorithm, without its manifest. */
export interface AlgorithmVersionSummary {
  algorithmId: string;
  version: string;
  state: VersionState;
  sha256: string;
  bytes: number;
  signer: { name: string | null; fingerprint: string; algorithm: SignatureAlgorithm };
  uploadedAt: Date;
  updatedAt: Date;
}

/** One version with its manifest, latest adaptation report and history. */
export interface AlgorithmVersion extends AlgorithmVersionSummary {
  manifest: Manifest;
  report: AdaptationReport | null;
  history: VersionEvent[];
}

/** An algorithm and all its versions. */
export interface Algorithm {
  id: string;
  name: string;
  task: string;
  createdAt: Date;
  versions: AlgorithmVersionSummary[];
  /** Agencies the centre granted it to. */
  agencies: string[];
}

interface VersionRow {
  algorithm_id: string;
  version: string;
  state: VersionState;
  sha256: string;
  bytes: number | string;
  signature_algorithm: SignatureAlgorithm;
  signer_fingerprint: string;
  signer_name: string | null;
  uploaded_at: Date;
  updated_at: Date;
}

interface VersionDetailRow extends VersionRow {
  manifest: Manifest | string;
  report: AdaptationReport | string | null;
}

const SUMMARY_COLUMNS = `algorithm_id, version, state, sha256, bytes, signature_algorithm, signer_fingerprint,
  signer_name, uploaded_at, updated_at`;

const json = <T>(v: T | string): T => (typeof v === 'string' ? (JSON.parse(v) as T) : v);

const toSummary = (r: VersionRow): AlgorithmVersionSummary => ({
  algorithmId: r.algorithm_id,
  version: r.version,
  state: r.state,
  sha256: r.sha256,
  bytes: Number(r.bytes),
  signer: { name: r.signer_name, fingerprint: r.signer_fingerprint, algorithm: r.signature_algorithm },
  uploadedAt: new Date(r.uploaded_at),
  updatedAt: new Date(r.updated_at),
});

/** Orders semantic versions: numeric parts, then a pre-release below its release (SemVer 2.0 §11, simplified). */
export function compareVersions(a: string, b: string): number {
  const split = (v: string) => {
    const [core = '', pre] = v.split(/-(.*)/s);
    return { nums: core.split('.').map(Number), pre };
  };
  const x = split(a);
  const y = split(b);
  for (let i = 0; i < 3; i++) {
    const d = (x.nums[i] ?? 0) - (y.nums[i] ?? 0);
    if (d !== 0) return d;
  }
  if (x.pre === y.pre) return 0;
  if (x.pre === undefined) return 1;
  if (y.pre === undefined) return -1;
  return x.pre < y.pre ? -1 : 1;
}

function unknownVersion(id: string, version: string): CitysenseError {
  return new CitysenseError('CS_ERR_ALGO_VERSION_UNKNOWN', `algorithm ${id} has no version ${version}`, 404);
}

/** Algorithms, their versions and the lifecycle of each version, with its history. */
export class AlgorithmCatalogue {
  readonly #db: Database;

  constructor(db: Database) {
    this.#db = db;
  }

  /** Every algorithm with its versions (newest first). */
  async list(): Promise<Algorithm[]> {
    return this.#load();
  }

  /** One algorithm; throws CS_ERR_ALGO_UNKNOWN. */
  async get(id: string): Promise<Algorithm> {
    const [found] = await this.#load(id);
    if (!found) throw new CitysenseError('CS_ERR_ALGO_UNKNOWN', `no algorithm ${id} at the centre`, 404);
    return found;
  }

  async #load(only?: string): Promise<Algorithm[]> {
    const params = only === undefined ? [] : [only];
    const where = (column: string) => (only === undefined ? '' : `WHERE ${column} = $1`);
    const [algorithms, versions, grants] = await Promise.all([
      this.#db.query<{ id: string; name: string; task: string; created_at: Date }>(
        `SELECT id, name, task, created_at FROM algorithms ${where('id')} ORDER BY id`,
        params,
      ),
      this.#db.query<VersionRow>(
        `SELECT ${SUMMARY_COLUMNS} FROM algorithm_versions ${where('algorithm_id')}`,
        params,
      ),
      this.#db.query<{ agency_id: string; algorithm_id: string }>(
        `SELECT agency_id, algorithm_id FROM agency_algorithm_grants ${where('algorithm_id')} ORDER BY agency_id`,
        params,
      ),
    ]);
    return algorithms.rows.map((a) => ({
      id: a.id,
      name: a.name,
      task: a.task,
      createdAt: new Date(a.created_at),
      versions: versions.rows
        .filter((v) => v.algorithm_id === a.id)
        .map(toSummary)
        .sort((x, y) => compareVersions(y.version, x.version)),
      agencies: grants.rows.filter((g) => g.algorithm_id === a.id).map((g) => g.agency_id),
    }));
  }

  /** One version without manifest, if it exists. */
  async find(id: string, version: string): Promise<AlgorithmVersionSummary | undefined> {
    const { rows } = await this.#db.query<VersionRow>(
      `SELECT ${SUMMARY_COLUMNS} FROM algorithm_versions WHERE algorithm_id = $1 AND version = $2`,
      [id, version],
    );
    const row = rows[0];
    return row ? toSummary(row) : undefined;
  }

  /** One version without manifest; throws CS_ERR_ALGO_VERSION_UNKNOWN. */
  async summary(id: string, version: string): Promise<AlgorithmVersionSummary> {
    const found = await this.find(id, version);
    if (!found) throw unknownVersion(id, version);
    return found;
  }

  /** One version with manifest, report and history; throws CS_ERR_ALGO_VERSION_UNKNOWN. */
  async version(id: string, version: string): Promise<AlgorithmVersion> {
    const { rows } = await this.#db.query<VersionDetailRow>(
      `SELECT ${SUMMARY_COLUMNS}, manifest, report FROM algorithm_versions WHERE algorithm_id = $1 AND version = $2`,
      [id, version],
    );
    const row = rows[0];
    if (!row) throw unknownVersion(id, version);
    const history = await this.#db.query<{
      action: string;
      from_state: VersionState | null;
      to_state: VersionState;
      actor: string;
      note: string | null;
      at: Date;
    }>(
      `SELECT action, from_state, to_state, actor, note, at FROM algorithm_version_history
        WHERE algorithm_id = $1 AND version = $2 ORDER BY id`,
      [id, version],
    );
    return {
      ...toSummary(row),
      manifest: json(row.manifest),
      report: row.report === null ? null : json(row.report),
      history: history.rows.map((h) => ({
        action: h.action,
        fromState: h.from_state,
        toState: h.to_state,
        actor: h.actor,
        note: h.note,
        at: new Date(h.at),
      })),
    };
  }

  /** The version stored as the package with `sha256`, if any. */
  async bySha256(sha256: string): Promise<AlgorithmVersionSummary | undefined> {
    const { rows } = await this.#db.query<VersionRow>(
      `SELECT ${SUMMARY_COLUMNS} FROM algorithm_versions WHERE sha256 = $1`,
      [sha256],
    );
    const row = rows[0];
    return row ? toSummary(row) : undefined;
  }

  /**
   * Records an uploaded package as a new `draft` version. Returns undefined when
   * the id and version already exist (the caller decides between idempotent and conflict).
   */
  async insert(
    pkg: AlgorithmPackage,
    signer: { name: string | null; fingerprint: string },
    actor: string,
  ): Promise<AlgorithmVersionSummary | undefined> {
    const m = pkg.manifest;
    return this.#db.transaction(async (tx) => {
      await tx.query(
        `INSERT INTO algorithms (id, name, task) VALUES ($1, $2, $3)
         ON CONFLICT (id) DO UPDATE SET name = $2, task = $3`,
        [m.id, m.name, m.task],
      );
      const { rows } = await tx.query<VersionRow>(
        `INSERT INTO algorithm_versions (algorithm_id, version, sha256, bytes, manifest, signature_algorithm,
                                         signer_fingerprint, signer_name)
         VALUES ($1, $2, $3, $4, $5::jsonb, $6, $7, $8)
         ON CONFLICT DO NOTHING
         RETURNING ${SUMMARY_COLUMNS}`,
        [
          m.id,
          m.version,
          pkg.sha256,
          pkg.bytes,
          JSON.stringify(m),
          pkg.signature.algorithm,
          signer.fingerprint,
          signer.name,
        ],
      );
      const row = rows[0];
      if (!row) return undefined;
      await recordEvent(tx, m.id, m.version, {
        action: 'upload',
        from: null,
        to: 'draft',
        actor,
        note: `signed by ${signer.name ?? signer.fingerprint}`,
      });
      return toSummary(row);
    });
  }

  /** Stores an adaptation report: a passing one moves a draft to `validated`; a failing one leaves it a draft. */
  async recordValidation(
    id: string,
    version: string,
    report: AdaptationReport,
    actor: string,
  ): Promise<AlgorithmVersionSummary> {
    return this.#db.transaction(async (tx) => {
      const { rows } = await tx.query<VersionRow>(
        `UPDATE algorithm_versions
            SET report = $3::jsonb, updated_at = now(),
                state = CASE WHEN $4::boolean THEN 'validated' ELSE state END
          WHERE algorithm_id = $1 AND version = $2 AND state = 'draft'
          RETURNING ${SUMMARY_COLUMNS}`,
        [id, version, JSON.stringify(report), report.passed],
      );
      const row = rows[0];
      if (!row) throw await stateConflict(tx, id, version, 'validate', ['draft']);
      await recordEvent(tx, id, version, {
        action: 'validate',
        from: 'draft',
        to: row.state,
        actor,
        note: report.passed ? 'adaptation test passed' : `adaptation test failed: ${failureSummary(report)}`,
      });
      return toSummary(row);
    });
  }

  /** Applies an admin decision (file, publish, retire); throws CS_ERR_ALGO_STATE from any other state. */
  async transition(
    id: string,
    version: string,
    action: TransitionAction,
    actor: string,
    note: string | null,
  ): Promise<AlgorithmVersionSummary> {
    const rule = TRANSITIONS[action];
    return this.#db.transaction(async (tx) => {
      const current = await tx.query<{ state: VersionState }>(
        'SELECT state FROM algorithm_versions WHERE algorithm_id = $1 AND version = $2 FOR UPDATE',
        [id, version],
      );
      const previous = current.rows[0]?.state;
      if (previous === undefined || !(rule.from as readonly VersionState[]).includes(previous))
        throw await stateConflict(tx, id, version, action, rule.from);
      const { rows } = await tx.query<VersionRow>(
        `UPDATE algorithm_versions SET state = $3, updated_at = now() WHERE algorithm_id = $1 AND version = $2
         RETURNING ${SUMMARY_COLUMNS}`,
        [id, version, rule.to],
      );
      const row = rows[0];
      if (!row) throw unknownVersion(id, version);
      await recordEvent(tx, id, version, { action, from: previous, to: rule.to, actor, note });
      return toSummary(row);
    });
  }
}

async function recordEvent(
  tx: Queryable,
  id: string,
  version: string,
  e: { action: string; from: VersionState | null; to: VersionState; actor: string; note: string | null },
): Promise<void> {
  await tx.query(
    `INSERT INTO algorithm_version_history (algorithm_id, version, action, from_state, to_state, actor, note)
     VALUES ($1, $2, $3, $4, $5, $6, $7)`,
    [id, version, e.action, e.from, e.to, e.actor, e.note],
  );
}

/** CS_ERR_ALGO_STATE naming the current state, or CS_ERR_ALGO_VERSION_UNKNOWN. */
async function stateConflict(
  q: Queryable,
  id: string,
  version: string,
  action: string,
  from: readonly VersionState[],
): Promise<CitysenseError> {
  const { rows } = await q.query<{ state: VersionState }>(
    'SELECT state FROM algorithm_versions WHERE algorithm_id = $1 AND version = $2',
    [id, version],
  );
  const state = rows[0]?.state;
  if (state === undefined) return unknownVersion(id, version);
  return stateError(id, version, action, state, from);
}

/** CS_ERR_ALGO_STATE: `action` does not apply to a version in `state`. */
export function stateError(
  id: string,
  version: string,
  action: string,
  state: VersionState,
  from: readonly VersionState[],
): CitysenseError {
  return new CitysenseError(
    'CS_ERR_ALGO_STATE',
    `cannot ${action} ${id} ${version}: it is ${state}, and ${action} applies only to a ${from.join(' or ')} version`,
    409,
    { state, allowedFrom: from },
  );
}

function failureSummary(report: AdaptationReport): string {
  if (report.error) return `${report.error.code}: ${report.error.message}`;
  const failed = report.tests.filter((t) => !t.passed).map((t) => t.image);
  return failed.length > 0 ? `test images failed: ${failed.join(', ')}` : 'see the report';
}
