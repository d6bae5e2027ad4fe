import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  postgresSuiteTitle,
  shouldSkipPostgres,
  startTestPostgres,
  type TestPostgres,
} from '../storage/test-postgres.ts';
import { startTestHub, type TestHub } from '../testing/test-hub.ts';
import type { DeploymentView } from './deployment-service.ts';
import {
  assignmentsOf,
  enrollNode,
  type FleetNode,
  grantNodes,
  publishReference,
  REFERENCE_ALGORITHM,
  reportStatus,
} from './test-fleet.ts';

type Detail = DeploymentView & Required<Pick<DeploymentView, 'nodes' | 'history'>>;

// On a server, reports run in parallel transactions: the row locks must keep the rollout exact.
describe.skipIf(shouldSkipPostgres())(postgresSuiteTitle('deployments on a PostgreSQL server'), () => {
  let server: TestPostgres;
  let t: TestHub;
  let fleet: FleetNode[];

  beforeAll(async () => {
    server = await startTestPostgres();
    t = await startTestHub({ databaseUrl: server.url });
    await publishReference(t, ['1.0.0', '1.1.0']);
    fleet = [];
    for (let i = 0; i < 25; i++) fleet.push(await enrollNode(t, `srv-${String(i).padStart(2, '0')}`));
    const ids = fleet.map((n) => n.nodeId);
    await grantNodes(t, 'transport', ids, ids);
  });
  afterAll(async () => {
    await t?.stop();
    await server?.stop();
  });

  const rollOut = async (version: string): Promise<string> => {
    const created = await t.api<Detail>('POST', '/v1/deployments', {
      algorithmId: REFERENCE_ALGORITHM,
      version,
      targets: { agencies: ['transport'] },
      sources: [{ id: 'cam1', url: 'rtsp://10.1.0.1/s', fps: 2 }],
      rollout: { canaryShare: 0.2, gate: { minActiveShare: 0.6 } },
    });
    expect(created.status).toBe(201);
    const id = created.body.id;
    const canary = fleet.filter((n) => created.body.nodes.find((x) => x.nodeId === n.nodeId)?.canary);
    expect(canary).toHaveLength(5);
    await Promise.all(canary.map((n) => reportStatus(t, n, id, { state: 'active' })));
    const rest = fleet.filter((n) => !canary.includes(n));
    await Promise.all(rest.map((n) => reportStatus(t, n, id, { state: 'active' })));
    return id;
  };

  it('opens the gate once under parallel reports, and upgrades all 25 nodes exactly once', async () => {
    const first = await rollOut('1.0.0');
    const done = (await t.api<Detail>('GET', `/v1/deployments/${first}`)).body;
    expect(done).toMatchObject({ state: 'completed', reason: '25 node(s) active' });
    expect(done.history.map((h) => h.toState)).toEqual(['canary', 'rolling', 'completed']);
    const upgrade = await rollOut('1.1.0');
    expect((await t.api<Detail>('GET', `/v1/deployments/${upgrade}`)).body.state).toBe('completed');
    expect((await t.api<Detail>('GET', `/v1/deployments/${first}`)).body.state).toBe('superseded');
    const docs = await Promise.all(fleet.map((n) => assignmentsOf(t, n)));
    expect(docs.every((d) => d.revision === 2 && d.assignments.length === 1)).toBe(true);
    expect(new Set(docs.map((d) => d.assignments[0]?.version))).toEqual(new Set(['1.1.0']));
  });

  it('rolls 25 nodes back in parallel with their reports', async () => {
    const [latest] = (await t.api<Detail[]>('GET', '/v1/deployments?state=completed')).body;
    const id = latest?.id ?? '';
    const [rolledBack] = await Promise.all([
      t.api<Detail>('POST', `/v1/deployments/${id}/rollback`, {}),
      ...fleet.map((n) => reportStatus(t, n, id, { state: 'active', revision: 2 })),
    ]);
    expect(rolledBack.body.state).toBe('rolled-back');
    const docs = await Promise.all(fleet.map((n) => assignmentsOf(t, n)));
    expect(docs.every((d) => d.revision === 3 && d.assignments[0]?.version === '1.0.0')).toBe(true);
  });
});
