/**
 * Named queries of the joint review. Every decision is one conditional UPDATE of a
 * pending row, and every project outcome one conditional UPDATE of an `in-review`
 * project, so of concurrent writers exactly one changes each row.
 */
import type { AuditActor } from '../audit/audit-log.ts';
import { REVIEW_CATEGORIES, type ReviewCategory } from '../auth/roles.ts';
import type { Database, Queryable } from '../storage/database.ts';

/** Project lifecycle: draft → submitted → in-review (routed) → approved | rejected. */
export const PROJECT_STATES = ['draft', 'submitted', 'in-review', 'approved', 'rejected'] as const;
/** One of `PROJECT_STATES`. */
export type ProjectState = (typeof PROJECT_STATES)[number];

/** A reviewer's answer for one category. */
export type Decision = 'approved' | 'rejected';

/** Why a category is routed. */
export type CategorySource = 'devices' | 'applicant' | 'coordinator';

/** A construction project as stored. */
export interface ReviewProject {
  id: string;
  name: string;
  agencyId: string;
  purpose: string;
  requestedCategories: ReviewCategory[];
  state: ProjectState;
  createdBy: string;
  createdAt: string;
  updatedAt: string;
  decidedAt: string | null;
}

/** One device listed by a project. */
export interface ProjectDevice {
  code: string;
  purpose: string | null;
}

/** The review of one routed category. */
export interface CategoryReview {
  category: ReviewCategory;
  source: CategorySource;
  state: 'pending' | Decision;
  routedAt: string;
  decidedBy: { id: string | null; username: string | null } | null;
  decidedAt: string | null;
  comment: string | null;
}

/** One step of a project's history. */
export interface ReviewHistoryEntry {
  id: number;
  at: string;
  actor: AuditActor;
  action: string;
  category: ReviewCategory | null;
  decision: string | null;
  comment: string | null;
  detail: Record<string, unknown> | null;
}

/** Filter of the project list; `visibleAgencies`/`visibleCategories` apply unless `all`. */
export interface ProjectFilter {
  state?: ProjectState | undefined;
  category?: ReviewCategory | undefined;
  all: boolean;
  visibleAgencies: string[];
  visibleCategories: ReviewCategory[];
  limit: number;
}

/** A category waiting for a reviewer. */
export interface InboxItem {
  project: ReviewProject;
  category: ReviewCategory;
  routedAt: string;
}

const iso = (v: unknown): string => new Date(v as string | Date).toISOString();
const isoOrNull = (v: unknown): string | null => (v === null || v === undefined ? null : iso(v));

const PROJECT_COLUMNS = `p.id, p.name, p.agency_id, p.purpose, p.requested_categories, p.state, p.created_by,
  p.created_at, p.updated_at, p.decided_at`;

interface ProjectRow {
  id: string;
  name: string;
  agency_id: string;
  purpose: string;
  requested_categories: ReviewCategory[];
  state: ProjectState;
  created_by: string;
  created_at: Date;
  updated_at: Date;
  decided_at: Date | null;
}

const toProject = (r: ProjectRow): ReviewProject => ({
  id: r.id,
  name: r.name,
  agencyId: r.agency_id,
  purpose: r.purpose,
  requestedCategories: r.requested_categories,
  state: r.state,
  createdBy: r.created_by,
  createdAt: iso(r.created_at),
  updatedAt: iso(r.updated_at),
  decidedAt: isoOrNull(r.decided_at),
});

/** Whether `code` is listed by an approved project: the ledger's activation gate. */
export async function hasApprovedProject(db: Queryable, code: string): Promise<boolean> {
  const { rows } = await db.query<{ ok: boolean }>(
    `SELECT EXISTS (SELECT 1 FROM review_project_devices d JOIN review_projects p ON p.id = d.project_id
       WHERE d.device_code = $1 AND p.state = 'approved') AS ok`,
    [code],
  );
  return rows[0]?.ok === true;
}

/** The joint review's tables. */
export class ReviewStore {
  readonly #db: Database;

  constructor(db: Database) {
    this.#db = db;
  }

  /** Stores a new draft project with its devices. */
  async insertProject(project: ReviewProject, devices: ProjectDevice[]): Promise<void> {
    await this.#db.transaction(async (tx) => {
      await tx.query(
        `INSERT INTO review_projects (id, name, agency_id, purpose, requested_categories, state, created_by,
           created_at, updated_at) VALUES ($1, $2, $3, $4, $5::text[], $6, $7, $8, $8)`,
        [
          project.id,
          project.name,
          project.agencyId,
          project.purpose,
          project.requestedCategories,
          project.state,
          project.createdBy,
          project.createdAt,
        ],
      );
      await tx.query(
        `INSERT INTO review_project_devices (project_id, device_code, position, purpose)
           SELECT $1, code, pos, purpose FROM unnest($2::text[], $3::text[]) WITH ORDINALITY AS x(code, purpose, pos)`,
        [project.id, devices.map((d) => d.code), devices.map((d) => d.purpose)],
      );
    });
  }

  /** One project. */
  async project(id: string): Promise<ReviewProject | undefined> {
    const { rows } = await this.#db.query<ProjectRow>(
      `SELECT ${PROJECT_COLUMNS} FROM review_projects p WHERE p.id = $1`,
      [id],
    );
    return rows[0] ? toProject(rows[0]) : undefined;
  }

  /** Devices of a project in the order listed. */
  async devices(id: string): Promise<ProjectDevice[]> {
    const { rows } = await this.#db.query<ProjectDevice>(
      `SELECT device_code AS code, purpose FROM review_project_devices WHERE project_id = $1 ORDER BY position`,
      [id],
    );
    return rows;
  }

  /** Routed categories of a project. */
  async categories(id: string): Promise<CategoryReview[]> {
    const { rows } = await this.#db.query<{
      category: ReviewCategory;
      source: CategorySource;
      state: CategoryReview['state'];
      routed_at: Date;
      decided_by: string | null;
      decided_by_username: string | null;
      decided_at: Date | null;
      comment: string | null;
    }>(
      `SELECT category, source, state, routed_at, decided_by, decided_by_username, decided_at, comment
         FROM review_categories WHERE project_id = $1`,
      [id],
    );
    const order = (c: ReviewCategory) => REVIEW_CATEGORIES.indexOf(c);
    rows.sort((a, b) => order(a.category) - order(b.category));
    return rows.map((r) => ({
      category: r.category,
      source: r.source,
      state: r.state,
      routedAt: iso(r.routed_at),
      decidedBy:
        r.decided_by === null && r.decided_by_username === null
          ? null
          : { id: r.decided_by, username: r.decided_by_username },
      decidedAt: isoOrNull(r.decided_at),
      comment: r.comment,
    }));
  }

  /** The history of a project, oldest first. */
  async history(id: string): Promise<ReviewHistoryEntry[]> {
    const { rows } = await this.#db.query<{
      id: string | number;
      at: Date;
      actor_kind: AuditActor['kind'];
      actor_id: string | null;
      actor_username: string | null;
      agency_id: string | null;
      action: string;
      category: ReviewCategory | null;
      decision: string | null;
      comment: string | null;
      detail: Record<string, unknown> | null;
    }>(
      `SELECT id, at, actor_kind, actor_id, actor_username, agency_id, action, category, decision, comment, detail
         FROM review_history WHERE project_id = $1 ORDER BY id`,
      [id],
    );
    return rows.map((r) => ({
      id: Number(r.id),
      at: iso(r.at),
      actor: { kind: r.actor_kind, id: r.actor_id, username: r.actor_username, agencyId: r.agency_id },
      action: r.action,
      category: r.category,
      decision: r.decision,
      comment: r.comment,
      detail: r.detail,
    }));
  }

  /** Appends one step to a project's history. */
  async addHistory(
    projectId: string,
    actor: AuditActor,
    action: string,
    fields: {
      category?: ReviewCategory;
      decision?: string;
      comment?: string | undefined;
      detail?: Record<string, unknown>;
    } = {},
  ): Promise<void> {
    await this.#db.query(
      `INSERT INTO review_history (project_id, actor_kind, actor_id, actor_username, agency_id, action, category,
         decision, comment, detail) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10::jsonb)`,
      [
        projectId,
        actor.kind,
        actor.id,
        actor.username,
        actor.agencyId,
        action,
        fields.category ?? null,
        fields.decision ?? null,
        fields.comment ?? null,
        fields.detail ? JSON.stringify(fields.detail) : null,
      ],
    );
  }

  /** Moves a project `from` → `to` only if it is still `from`; false otherwise. */
  async moveProject(id: string, from: ProjectState, to: ProjectState): Promise<boolean> {
    const { rows } = await this.#db.query(
      `UPDATE review_projects SET state = $3, updated_at = now() WHERE id = $1 AND state = $2 RETURNING id`,
      [id, from, to],
    );
    return rows.length === 1;
  }

  /** Routes a submitted project to `categories` (one transaction); false when it is no longer submitted. */
  async route(
    id: string,
    categories: Array<{ category: ReviewCategory; source: CategorySource }>,
  ): Promise<boolean> {
    return this.#db.transaction(async (tx) => {
      const { rows } = await tx.query(
        `UPDATE review_projects SET state = 'in-review', updated_at = now()
           WHERE id = $1 AND state = 'submitted' RETURNING id`,
        [id],
      );
      if (rows.length !== 1) return false;
      await tx.query(
        `INSERT INTO review_categories (project_id, category, source)
           SELECT $1, c, s FROM unnest($2::text[], $3::text[]) AS x(c, s)`,
        [id, categories.map((c) => c.category), categories.map((c) => c.source)],
      );
      return true;
    });
  }

  /**
   * Records a decision on a pending category of a project under review; false when the
   * category is not pending (someone decided first) or the project is no longer in review.
   */
  async decide(
    id: string,
    category: ReviewCategory,
    decision: Decision,
    by: AuditActor,
    comment: string | undefined,
  ): Promise<boolean> {
    const { rows } = await this.#db.query(
      `UPDATE review_categories SET state = $3, decided_by = $4, decided_by_username = $5, decided_at = now(),
         comment = $6
       WHERE project_id = $1 AND category = $2 AND state = 'pending'
         AND EXISTS (SELECT 1 FROM review_projects p WHERE p.id = $1 AND p.state = 'in-review')
       RETURNING category`,
      [id, category, decision, by.id, by.username, comment ?? null],
    );
    return rows.length === 1;
  }

  /** Approves the project if every routed category is approved and it is still in review. */
  async concludeApproved(id: string): Promise<boolean> {
    const { rows } = await this.#db.query(
      `UPDATE review_projects SET state = 'approved', decided_at = now(), updated_at = now()
         WHERE id = $1 AND state = 'in-review'
           AND NOT EXISTS (SELECT 1 FROM review_categories c WHERE c.project_id = $1 AND c.state <> 'approved')
       RETURNING id`,
      [id],
    );
    return rows.length === 1;
  }

  /** Rejects the project if it is still in review. */
  async concludeRejected(id: string): Promise<boolean> {
    const { rows } = await this.#db.query(
      `UPDATE review_projects SET state = 'rejected', decided_at = now(), updated_at = now()
         WHERE id = $1 AND state = 'in-review' RETURNING id`,
      [id],
    );
    return rows.length === 1;
  }

  /** Projects by filter, newest first. */
  async list(f: ProjectFilter): Promise<ReviewProject[]> {
    const { rows } = await this.#db.query<ProjectRow>(
      `SELECT ${PROJECT_COLUMNS} FROM review_projects p
        WHERE ($1::text IS NULL OR p.state = $1)
          AND ($2::text IS NULL OR $2 = ANY (p.requested_categories)
               OR EXISTS (SELECT 1 FROM review_categories c WHERE c.project_id = p.id AND c.category = $2))
          AND ($3::boolean OR p.agency_id = ANY ($4::text[])
               OR EXISTS (SELECT 1 FROM review_categories c WHERE c.project_id = p.id AND c.category = ANY ($5::text[])))
        ORDER BY p.created_at DESC, p.id LIMIT $6`,
      [f.state ?? null, f.category ?? null, f.all, f.visibleAgencies, f.visibleCategories, f.limit],
    );
    return rows.map(toProject);
  }

  /** Pending categories of projects under review, oldest routing first; `categories` null = all. */
  async inbox(categories: ReviewCategory[] | null, limit: number): Promise<InboxItem[]> {
    const { rows } = await this.#db.query<ProjectRow & { category: ReviewCategory; routed_at: Date }>(
      `SELECT ${PROJECT_COLUMNS}, c.category, c.routed_at FROM review_categories c
         JOIN review_projects p ON p.id = c.project_id
        WHERE c.state = 'pending' AND p.state = 'in-review' AND ($1::boolean OR c.category = ANY ($2::text[]))
        ORDER BY c.routed_at, p.id, c.category LIMIT $3`,
      [categories === null, categories ?? [], limit],
    );
    return rows.map((r) => ({ project: toProject(r), category: r.category, routedAt: iso(r.routed_at) }));
  }
}
