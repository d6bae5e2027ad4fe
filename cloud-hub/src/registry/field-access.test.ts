import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AuditEntry } from '../audit/audit-log.ts';
import { startTestHub, type TestHub } from '../testing/test-hub.ts';

type ErrorBody = { code: string; message: string };
type NodeView = { id: string; status: string; agencyId: string | null };
type AuditPage = { entries: AuditEntry[]; next: number | null };

const PASSWORD = 'correct horse battery';

describe('field engineers read the fleet of their agency (console fleet page and map)', () => {
  let t: TestHub;
  let engineer: string;
  let operator: string;
  const nodes = { mine: '', other: '', unassigned: '' };

  const login = async (username: string) => {
    const res = await t.api<{ token: string }>(
      'POST',
      '/v1/auth/login',
      { username, password: PASSWORD },
      null,
    );
    if (res.status !== 200) throw new Error(`login ${username}: ${JSON.stringify(res.body)}`);
    return res.body.token;
  };

  beforeAll(async () => {
    t = await startTestHub();
    for (const id of ['dongcheng', 'haidian'])
      expect((await t.api('PUT', `/v1/agencies/${id}`, { name: id, kind: 'district' })).status).toBeLessThan(
        300,
      );
    for (const [username, role] of [
      ['eng-dc', 'field-engineer'],
      ['op-dc', 'agency-operator'],
    ] as const) {
      const res = await t.api('POST', '/v1/users', {
        username,
        displayName: username,
        agencyId: 'dongcheng',
        password: PASSWORD,
        roles: [{ role }],
      });
      expect(res.status, JSON.stringify(res.body)).toBe(201);
    }
    nodes.mine = (await t.enroll('gw-dc')).nodeId;
    nodes.other = (await t.enroll('gw-hd')).nodeId;
    nodes.unassigned = (await t.enroll('gw-new')).nodeId;
    await t.api('PUT', '/v1/agencies/dongcheng/nodes', { nodeIds: [nodes.mine] });
    await t.api('PUT', '/v1/agencies/haidian/nodes', { nodeIds: [nodes.other] });
    [engineer, operator] = await Promise.all([login('eng-dc'), login('op-dc')]);
  }, 60_000);

  afterAll(async () => {
    await t?.stop();
  });

  it('lists the nodes of their agency and nodes of none, with each node’s agency', async () => {
    const mine = await t.api<NodeView[]>('GET', '/v1/nodes', undefined, engineer);
    expect(mine.status).toBe(200);
    expect(mine.body.map((n) => [n.id, n.agencyId]).sort()).toEqual(
      [
        [nodes.mine, 'dongcheng'],
        [nodes.unassigned, null],
      ].sort(),
    );
    const all = await t.api<NodeView[]>('GET', '/v1/nodes');
    expect(all.body.map((n) => n.id).sort()).toEqual(Object.values(nodes).sort());
    const refused = await t.api<ErrorBody>('GET', '/v1/nodes', undefined, operator);
    expect([refused.status, refused.body.code]).toEqual([403, 'CS_ERR_AUTH_FORBIDDEN']);
  });

  it('reads one node, its health and what it runs only for their agency', async () => {
    for (const path of ['', '/health', '/inference']) {
      const ok = await t.api<unknown>('GET', `/v1/nodes/${nodes.mine}${path}`, undefined, engineer);
      expect([path, ok.status]).toEqual([path, 200]);
      const other = await t.api<ErrorBody>('GET', `/v1/nodes/${nodes.other}${path}`, undefined, engineer);
      expect([path, other.status, other.body.code]).toEqual([path, 403, 'CS_ERR_AUTH_FORBIDDEN']);
    }
    const one = await t.api<NodeView>('GET', `/v1/nodes/${nodes.mine}`, undefined, engineer);
    expect(one.body.agencyId).toBe('dongcheng');
  });

  it('lets field engineers, not operators, issue enrolment tokens', async () => {
    const created = await t.api<{ token: string; name: string }>(
      'POST',
      '/v1/enrollment-tokens',
      { name: 'gw-field', expires: '1h' },
      engineer,
    );
    expect(created.status).toBe(201);
    expect(created.body.token.length).toBeGreaterThan(8);
    const refused = await t.api<ErrorBody>('POST', '/v1/enrollment-tokens', {}, operator);
    expect([refused.status, refused.body.code]).toEqual([403, 'CS_ERR_AUTH_FORBIDDEN']);
  });

  it('shows agency people the audit entries of their own agency only', async () => {
    const page = await t.api<AuditPage>('GET', '/v1/audit?action=http.write&limit=1000', undefined, operator);
    expect(page.status).toBe(200);
    expect(page.body.entries.length).toBeGreaterThan(0);
    expect(page.body.entries.every((e) => e.actor.agencyId === 'dongcheng')).toBe(true);
    expect(page.body.entries.map((e) => e.targetId)).toContain('POST /v1/enrollment-tokens');
    const admin = await t.api<AuditPage>('GET', '/v1/audit?action=http.write&limit=1000');
    expect(admin.body.entries.some((e) => e.actor.kind === 'admin')).toBe(true);
  });
});
