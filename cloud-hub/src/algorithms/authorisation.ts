import { CitysenseError, randomSecret } from '@citysense/protocol';
import type { Database, Queryable } from '../storage/database.ts';

/** An agency with its nodes and what it may use. */
export interface Agency {
  id: string;
  name: string;
  /** `district`, `bureau` or `platform` (people directory, auth/0070). */
  kind: string;
  parentId: string | null;
  createdAt: Date;
  nodes: string[];
  /** Algorithms the centre granted to the agency. */
  grants: string[];
  /** Algorithms the agency granted on to its nodes. */
  nodeGrants: Array<{ algorithmId: string; nodeIds: string[] }>;
}

/** States of a usage application. */
export type ApplicationState = 'pending' | 'approved' | 'rejected';

/** An agency's application to use an algorithm. */
export interface AlgorithmApplication {
  id: string;
  agencyId: string;
  algorithmId: string;
  purpose: string;
  state: ApplicationState;
  reason: string | null;
  createdAt: Date;
  decidedAt: Date | null;
}

interface ApplicationRow {
  id: string;
  agency_id: string;
  algorithm_id: string;
  purpose: string;
  state: ApplicationState;
  reason: string | null;
  created_at: Date;
  decided_at: Date | null;
}

const APPLICATION_COLUMNS = 'id, agency_id, algorithm_id, purpose, state, reason, created_at, decided_at';

const toApplication = (r: ApplicationRow): AlgorithmApplication => ({
  id: r.id,
  agencyId: r.agency_id,
  algorithmId: r.algorithm_id,
  purpose: r.purpose,
  state: r.state,
  reason: r.reason,
  createdAt: new Date(r.created_at),
  decidedAt: r.decided_at ? new Date(r.decided_at) : null,
});

/** Why a node may not download a version. */
export type AccessRefusal = 'no-agency' | 'no-agency-grant' | 'no-node-grant';

/**
 * Multi-level authorisation of algorithms (001 Art. 49(一) "多级授权"): the centre
 * grants an agency the use of an algorithm, directly or by approving its
 * application; the agency grants it on to nodes of its own. A node may run an
 * algorithm only while both grants hold.
 */
export class AlgorithmAuthorisation {
  readonly #db: Database;

  constructor(db: Database) {
    this.#db = db;
  }

  /** Creates an agency; throws CS_ERR_ALGO_AGENCY_EXISTS. */
  async createAgency(id: string, name: string): Promise<Agency> {
    const { rows } = await this.#db.query(
      'INSERT INTO agencies (id, name) VALUES ($1, $2) ON CONFLICT DO NOTHING RETURNING id',
      [id, name],
    );
    if (rows.length === 0)
      throw new CitysenseError('CS_ERR_ALGO_AGENCY_EXISTS', `agency ${id} already exists`, 409);
    return this.agency(id);
  }

  /** Every agency with nodes and grants. */
  async agencies(): Promise<Agency[]> {
    return this.#load();
  }

  /** One agency; throws CS_ERR_ALGO_AGENCY_UNKNOWN. */
  async agency(id: string): Promise<Agency> {
    const [found] = await this.#load(id);
    if (!found) throw unknownAgency(id);
    return found;
  }

  async #load(only?: string): Promise<Agency[]> {
    const filter = only === undefined ? '' : 'WHERE agency_id = $1';
    const params = only === undefined ? [] : [only];
    const [agencies, nodes, grants, nodeGrants] = await Promise.all([
      this.#db.query<{ id: string; name: string; kind: string; parent_id: string | null; created_at: Date }>(
        `SELECT id, name, kind, parent_id, created_at FROM agencies ${only === undefined ? '' : 'WHERE id = $1'} ORDER BY id`,
        params,
      ),
      this.#db.query<{ agency_id: string; node_id: string }>(
        `SELECT agency_id, node_id FROM agency_nodes ${filter} ORDER BY node_id`,
        params,
      ),
      this.#db.query<{ agency_id: string; algorithm_id: string }>(
        `SELECT agency_id, algorithm_id FROM agency_algorithm_grants ${filter} ORDER BY algorithm_id`,
        params,
      ),
      this.#db.query<{ agency_id: string; algorithm_id: string; node_id: string }>(
        `SELECT agency_id, algorithm_id, node_id FROM node_algorithm_grants ${filter} ORDER BY algorithm_id, node_id`,
        params,
      ),
    ]);
    return agencies.rows.map((a) => {
      const perAlgorithm = new Map<string, string[]>();
      for (const g of nodeGrants.rows.filter((r) => r.agency_id === a.id)) {
        const list = perAlgorithm.get(g.algorithm_id) ?? [];
        list.push(g.node_id);
        perAlgorithm.set(g.algorithm_id, list);
      }
      return {
        id: a.id,
        name: a.name,
        kind: a.kind,
        parentId: a.parent_id,
        createdAt: new Date(a.created_at),
        nodes: nodes.rows.filter((n) => n.agency_id === a.id).map((n) => n.node_id),
        grants: grants.rows.filter((g) => g.agency_id === a.id).map((g) => g.algorithm_id),
        nodeGrants: [...perAlgorithm].map(([algorithmId, nodeIds]) => ({ algorithmId, nodeIds })),
      };
    });
  }

  /**
   * Sets the nodes of an agency to exactly `nodeIds`. Nodes must be enrolled
   * (CS_ERR_ALGO_NODE_UNKNOWN) and not belong to another agency
   * (CS_ERR_ALGO_NODE_AGENCY). A node taken out loses the agency's grants.
   */
  async setNodes(agencyId: string, nodeIds: string[]): Promise<Agency> {
    const wanted = [...new Set(nodeIds)];
    await this.#db.transaction(async (tx) => {
      await assertAgency(tx, agencyId);
      const enrolled = await tx.query<{ id: string }>(
        'SELECT id FROM nodes WHERE id = ANY($1::text[]) AND deregistered_at IS NULL',
        [wanted],
      );
      const known = new Set(enrolled.rows.map((r) => r.id));
      const unknown = wanted.filter((n) => !known.has(n));
      if (unknown.length > 0)
        throw new CitysenseError(
          'CS_ERR_ALGO_NODE_UNKNOWN',
          `not enrolled: ${unknown.join(', ')} (see GET /v1/nodes)`,
          400,
          { nodeIds: unknown },
        );
      const elsewhere = await tx.query<{ node_id: string; agency_id: string }>(
        'SELECT node_id, agency_id FROM agency_nodes WHERE node_id = ANY($1::text[]) AND agency_id <> $2',
        [wanted, agencyId],
      );
      if (elsewhere.rows.length > 0)
        throw new CitysenseError(
          'CS_ERR_ALGO_NODE_AGENCY',
          `nodes belong to another agency: ${elsewhere.rows.map((r) => `${r.node_id} (${r.agency_id})`).join(', ')}; take them out there first`,
          409,
          { nodes: elsewhere.rows.map((r) => ({ nodeId: r.node_id, agencyId: r.agency_id })) },
        );
      await tx.query('DELETE FROM agency_nodes WHERE agency_id = $1 AND NOT (node_id = ANY($2::text[]))', [
        agencyId,
        wanted,
      ]);
      await tx.query(
        `INSERT INTO agency_nodes (node_id, agency_id) SELECT unnest($2::text[]), $1::text ON CONFLICT DO NOTHING`,
        [agencyId, wanted],
      );
    });
    return this.agency(agencyId);
  }

  /** The centre grants an agency the use of an algorithm; returns false when it already had it. */
  async grantAgency(
    agencyId: string,
    algorithmId: string,
    applicationId: string | null = null,
  ): Promise<boolean> {
    return this.#db.transaction(async (tx) => {
      await assertAgency(tx, agencyId);
      await assertAlgorithm(tx, algorithmId);
      return grant(tx, agencyId, algorithmId, applicationId);
    });
  }

  /** Revokes an agency grant, and with it the agency's grants to its nodes. */
  async revokeAgency(agencyId: string, algorithmId: string): Promise<void> {
    await assertAgency(this.#db, agencyId);
    const { rows } = await this.#db.query(
      'DELETE FROM agency_algorithm_grants WHERE agency_id = $1 AND algorithm_id = $2 RETURNING agency_id',
      [agencyId, algorithmId],
    );
    if (rows.length === 0)
      throw new CitysenseError(
        'CS_ERR_ALGO_GRANT_UNKNOWN',
        `agency ${agencyId} holds no grant for ${algorithmId}`,
        404,
      );
  }

  /**
   * The agency grants an algorithm to some of its nodes. Refused when the agency
   * itself lacks the grant (CS_ERR_ALGO_NOT_GRANTED) or a node is not its own
   * (CS_ERR_ALGO_NODE_NOT_MEMBER).
   */
  async grantNodes(agencyId: string, algorithmId: string, nodeIds: string[]): Promise<Agency> {
    const wanted = [...new Set(nodeIds)];
    await this.#db.transaction(async (tx) => {
      await assertAgency(tx, agencyId);
      await assertAlgorithm(tx, algorithmId);
      const held = await tx.query(
        'SELECT 1 FROM agency_algorithm_grants WHERE agency_id = $1 AND algorithm_id = $2',
        [agencyId, algorithmId],
      );
      if (held.rows.length === 0)
        throw new CitysenseError(
          'CS_ERR_ALGO_NOT_GRANTED',
          `agency ${agencyId} has no grant for ${algorithmId} from the centre: apply first (POST /v1/agencies/${agencyId}/applications)`,
          403,
        );
      const members = await tx.query<{ node_id: string }>(
        'SELECT node_id FROM agency_nodes WHERE agency_id = $1 AND node_id = ANY($2::text[])',
        [agencyId, wanted],
      );
      const own = new Set(members.rows.map((r) => r.node_id));
      const foreign = wanted.filter((n) => !own.has(n));
      if (foreign.length > 0)
        throw new CitysenseError(
          'CS_ERR_ALGO_NODE_NOT_MEMBER',
          `not nodes of agency ${agencyId}: ${foreign.join(', ')} (PUT /v1/agencies/${agencyId}/nodes)`,
          400,
          { nodeIds: foreign },
        );
      await tx.query(
        `INSERT INTO node_algorithm_grants (node_id, algorithm_id, agency_id)
         SELECT unnest($3::text[]), $2::text, $1::text ON CONFLICT DO NOTHING`,
        [agencyId, algorithmId, wanted],
      );
    });
    return this.agency(agencyId);
  }

  /** The agency withdraws an algorithm from one of its nodes. */
  async revokeNode(agencyId: string, algorithmId: string, nodeId: string): Promise<void> {
    await assertAgency(this.#db, agencyId);
    const { rows } = await this.#db.query(
      `DELETE FROM node_algorithm_grants WHERE agency_id = $1 AND algorithm_id = $2 AND node_id = $3
       RETURNING node_id`,
      [agencyId, algorithmId, nodeId],
    );
    if (rows.length === 0)
      throw new CitysenseError(
        'CS_ERR_ALGO_GRANT_UNKNOWN',
        `node ${nodeId} holds no grant for ${algorithmId} from agency ${agencyId}`,
        404,
      );
  }

  /** Why `nodeId` may not use `algorithmId`, or null when both grants hold. */
  async nodeRefusal(nodeId: string, algorithmId: string): Promise<AccessRefusal | null> {
    const { rows } = await this.#db.query<{ agency_id: string; agency_grant: boolean; node_grant: boolean }>(
      `SELECT m.agency_id,
              EXISTS (SELECT 1 FROM agency_algorithm_grants g
                       WHERE g.agency_id = m.agency_id AND g.algorithm_id = $2) AS agency_grant,
              EXISTS (SELECT 1 FROM node_algorithm_grants n
                       WHERE n.node_id = m.node_id AND n.agency_id = m.agency_id AND n.algorithm_id = $2) AS node_grant
         FROM agency_nodes m WHERE m.node_id = $1`,
      [nodeId, algorithmId],
    );
    const row = rows[0];
    if (!row) return 'no-agency';
    if (!row.agency_grant) return 'no-agency-grant';
    if (!row.node_grant) return 'no-node-grant';
    return null;
  }

  /** An agency applies to use an algorithm; throws CS_ERR_ALGO_APPLICATION_PENDING / CS_ERR_ALGO_ALREADY_GRANTED. */
  async apply(agencyId: string, algorithmId: string, purpose: string): Promise<AlgorithmApplication> {
    return this.#db.transaction(async (tx) => {
      await assertAgency(tx, agencyId);
      await assertAlgorithm(tx, algorithmId);
      const held = await tx.query(
        'SELECT 1 FROM agency_algorithm_grants WHERE agency_id = $1 AND algorithm_id = $2',
        [agencyId, algorithmId],
      );
      if (held.rows.length > 0)
        throw new CitysenseError(
          'CS_ERR_ALGO_ALREADY_GRANTED',
          `agency ${agencyId} may already use ${algorithmId}`,
          409,
        );
      const { rows } = await tx.query<ApplicationRow>(
        `INSERT INTO algorithm_applications (id, agency_id, algorithm_id, purpose) VALUES ($1, $2, $3, $4)
         ON CONFLICT DO NOTHING RETURNING ${APPLICATION_COLUMNS}`,
        [`apl_${randomSecret(6)}`, agencyId, algorithmId, purpose],
      );
      const row = rows[0];
      if (!row)
        throw new CitysenseError(
          'CS_ERR_ALGO_APPLICATION_PENDING',
          `agency ${agencyId} already has a pending application for ${algorithmId}`,
          409,
        );
      return toApplication(row);
    });
  }

  /** Applications, newest first, optionally in one state. */
  async applications(state?: ApplicationState): Promise<AlgorithmApplication[]> {
    const { rows } = await this.#db.query<ApplicationRow>(
      `SELECT ${APPLICATION_COLUMNS} FROM algorithm_applications
        WHERE $1::text IS NULL OR state = $1 ORDER BY created_at DESC, id LIMIT 1000`,
      [state ?? null],
    );
    return rows.map(toApplication);
  }

  /** Approves or rejects a pending application; approval grants the agency the algorithm. */
  async decide(
    id: string,
    decision: 'approved' | 'rejected',
    reason: string | null,
  ): Promise<AlgorithmApplication> {
    return this.#db.transaction(async (tx) => {
      const { rows } = await tx.query<ApplicationRow>(
        `SELECT ${APPLICATION_COLUMNS} FROM algorithm_applications WHERE id = $1 FOR UPDATE`,
        [id],
      );
      const row = rows[0];
      if (!row) throw new CitysenseError('CS_ERR_ALGO_APPLICATION_UNKNOWN', `no application ${id}`, 404);
      if (row.state !== 'pending')
        throw new CitysenseError(
          'CS_ERR_ALGO_APPLICATION_STATE',
          `application ${id} was already ${row.state}`,
          409,
          { state: row.state },
        );
      const updated = await tx.query<ApplicationRow>(
        `UPDATE algorithm_applications SET state = $2, reason = $3, decided_at = now() WHERE id = $1
         RETURNING ${APPLICATION_COLUMNS}`,
        [id, decision, reason],
      );
      if (decision === 'approved') await grant(tx, row.agency_id, row.algorithm_id, id);
      const done = updated.rows[0];
      if (!done) throw new CitysenseError('CS_ERR_ALGO_APPLICATION_UNKNOWN', `no application ${id}`, 404);
      return toApplication(done);
    });
  }
}

function unknownAgency(id: string): CitysenseError {
  return new CitysenseError(
    'CS_ERR_ALGO_AGENCY_UNKNOWN',
    `no agency ${id} (POST /v1/agencies creates one)`,
    404,
  );
}

async function assertAgency(q: Queryable, id: string): Promise<void> {
  const { rows } = await q.query('SELECT 1 FROM agencies WHERE id = $1', [id]);
  if (rows.length === 0) throw unknownAgency(id);
}

async function assertAlgorithm(q: Queryable, id: string): Promise<void> {
  const { rows } = await q.query('SELECT 1 FROM algorithms WHERE id = $1', [id]);
  if (rows.length === 0)
    throw new CitysenseError('CS_ERR_ALGO_UNKNOWN', `no algorithm ${id} at the centre`, 404);
}

async function grant(q: Queryable, agencyId: string, algorithmId: string, applicationId: string | null) {
  const { rows } = await q.query(
    `INSERT INTO agency_algorithm_grants (agency_id, algorithm_id, application_id) VALUES ($1, $2, $3)
     ON CONFLICT DO NOTHING RETURNING agency_id`,
    [agencyId, algorithmId, applicationId],
  );
  return rows.length > 0;
}
