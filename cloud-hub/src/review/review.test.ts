import { generateSigningKey } from '@citysense/protocol';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AuditEntry } from '../audit/audit-log.ts';
import type { DeviceKind } from '../ledger/device-codes.ts';
import { type ImportReport, LedgerService } from '../ledger/ledger-service.ts';
import type { LedgerDevice, NearbyDevice } from '../ledger/ledger-store.ts';
import { startTestHub, type TestHub } from '../testing/test-hub.ts';
import type { ProjectView } from './review-service.ts';
import type { InboxItem } from './review-store.ts';

type ErrorBody = { code: string; message: string; details?: unknown };
type Created = Omit<LedgerDevice, 'duplicates'> & { duplicates: NearbyDevice[] };

const PASSWORD = 'correct horse battery';
/** Metres → degrees of latitude. */
const north = (m: number) => m / 111_195;

describe('joint review (联审) and ledger access by role', () => {
  let t: TestHub;
  /** Session tokens by username. */
  const token: Record<string, string> = {};
  const as =
    (username: string) =>
    <T = unknown>(method: string, path: string, body?: unknown) =>
      t.api<T & ErrorBody>(method, path, body, token[username] ?? null);

  beforeAll(async () => {
    t = await startTestHub();
    for (const [id, name, kind] of [
      ['bdb', 'Big-data bureau', 'platform'],
      ['haidian', 'Haidian district', 'district'],
      ['chaoyang', 'Chaoyang district', 'district'],
      ['police', 'Public security bureau', 'bureau'],
      ['city-mgmt', 'City management bureau', 'bureau'],
    ])
      expect((await t.api('PUT', `/v1/agencies/${id}`, { name, kind })).status).toBe(201);
    const users: Array<[string, string, unknown[]]> = [
      ['coordinator', 'bdb', [{ role: 'platform-admin' }]],
      ['op-a', 'haidian', [{ role: 'agency-operator' }]],
      ['op-b', 'chaoyang', [{ role: 'agency-operator' }]],
      ['officer', 'police', [{ role: 'reviewer', category: 'video' }]],
      ['officer2', 'police', [{ role: 'reviewer', category: 'video' }]],
      ['inspector', 'city-mgmt', [{ role: 'reviewer', category: 'urban-operations' }]],
      ['engineer', 'haidian', [{ role: 'field-engineer' }]],
    ];
    for (const [username, agencyId, roles] of users) {
      const created = await t.api('POST', '/v1/users', {
        username,
        displayName: username,
        agencyId,
        password: PASSWORD,
        roles,
      });
      expect(created.status, JSON.stringify(created.body)).toBe(201);
      const login = await t.api<{ token: string }>(
        'POST',
        '/v1/auth/login',
        { username, password: PASSWORD },
        null,
      );
      token[username] = login.body.token;
    }
  });
  afterAll(async () => t?.stop());

  const device = (
    kind: DeviceKind,
    ownerAgency: string,
    latitude: number,
    extra: Record<string, unknown> = {},
  ) => ({
    kind,
    ownerAgency,
    longitude: 116.3,
    latitude,
    ...extra,
  });
  const project = (id: string) => `/v1/review/projects/${id}`;
  const audit = async (query: string) =>
    (await t.api<{ entries: AuditEntry[] }>('GET', `/v1/audit?${query}`)).body.entries;

  it('takes a camera and an air sensor from registration through routed review to active', async () => {
    const opA = as('op-a');
    // Existing inventory: filed active by a platform admin, not by an operator.
    const standing = await as('coordinator')<Created>(
      'POST',
      '/v1/ledger/devices',
      device('camera', 'haidian', 39.95, { state: 'active', gb35114Level: 'C' }),
    );
    expect(standing.status).toBe(201);
    const inventory = await opA(
      'POST',
      '/v1/ledger/devices',
      device('camera', 'haidian', 39.7, { state: 'active' }),
    );
    expect([inventory.status, inventory.body.code]).toEqual([403, 'CS_ERR_AUTH_FORBIDDEN']);

    const camera = await opA<Created>(
      'POST',
      '/v1/ledger/devices',
      device('camera', 'haidian', 39.95 + north(20), { gb35114Level: 'A' }),
    );
    expect(camera.status).toBe(201);
    expect(camera.body.duplicates.map((d) => d.code)).toEqual([standing.body.code]);
    const air = await opA<Created>('POST', '/v1/ledger/devices', device('air-quality', 'haidian', 39.96));
    expect(air.status).toBe(201);
    const registered = await audit(`action=ledger.device.register&target=${camera.body.code}`);
    expect(registered[0]).toMatchObject({ actor: { username: 'op-a' }, before: null });
    expect(registered[0]?.after).toMatchObject({ state: 'proposed', code: camera.body.code });

    const created = await opA<ProjectView>('POST', '/v1/review/projects', {
      name: 'Zhongguancun east gate',
      purpose: 'crossing safety and air quality',
      devices: [
        { code: air.body.code, purpose: 'PM2.5' },
        { code: camera.body.code, purpose: 'crossing' },
      ],
    });
    expect(created.status, JSON.stringify(created.body)).toBe(201);
    const p = created.body;
    expect(p).toMatchObject({
      agencyId: 'haidian',
      state: 'draft',
      neededCategories: ['video', 'urban-operations'],
    });
    expect(p.flags).toEqual([
      expect.objectContaining({ device: camera.body.code, code: 'GB35114_LEVEL_LOW', level: 'A' }),
    ]);

    // The duplicate flag is unanswered: nothing is submitted, the air sensor moved back.
    const blocked = await opA('POST', `${project(p.id)}/submit`);
    expect([blocked.status, blocked.body.code]).toEqual([409, 'CS_ERR_LEDGER_DUPLICATE']);
    const afterBlocked = await opA<ProjectView>('GET', project(p.id));
    expect(afterBlocked.body.state).toBe('draft');
    expect(afterBlocked.body.devices.map((d) => d.state)).toEqual(['proposed', 'proposed']);
    const justified = await opA('POST', `/v1/ledger/devices/${camera.body.code}/resolution`, {
      justify: 'the standing camera faces away from the crossing',
    });
    expect(justified.status).toBe(200);

    const submitted = await opA<ProjectView>('POST', `${project(p.id)}/submit`);
    expect(submitted.status).toBe(200);
    expect(submitted.body.devices.map((d) => d.state)).toEqual(['in-review', 'in-review']);

    expect((await opA('POST', `${project(p.id)}/route`, {})).status).toBe(403);
    const routed = await as('coordinator')<ProjectView>('POST', `${project(p.id)}/route`, {
      comment: 'camera and air sensor',
    });
    expect(routed.status).toBe(200);
    expect(routed.body.categories.map((c) => [c.category, c.source, c.state])).toEqual([
      ['video', 'devices', 'pending'],
      ['urban-operations', 'devices', 'pending'],
    ]);
    const inbox = await as('inspector')<InboxItem[]>('GET', '/v1/review/inbox');
    expect(inbox.body.filter((i) => i.project.id === p.id).map((i) => i.category)).toEqual([
      'urban-operations',
    ]);
    const listed = await as('officer')<Array<{ id: string }>>('GET', '/v1/review/projects?category=video');
    expect(listed.body.map((x) => x.id)).toContain(p.id);
    expect((await as('op-b')<unknown[]>('GET', '/v1/review/projects')).body).toEqual([]);
    expect((await as('op-b')('GET', project(p.id))).status).toBe(403);

    // City management cannot decide the video part; the refusal is audited.
    const wrong = await as('inspector')('POST', `${project(p.id)}/decisions`, {
      category: 'video',
      decision: 'approve',
    });
    expect([wrong.status, wrong.body.code]).toEqual([403, 'CS_ERR_AUTH_FORBIDDEN']);
    const refused = await audit('action=auth.refused&actor=inspector');
    expect(refused.map((e) => e.targetId)).toContain('POST /v1/review/projects/:id/decisions');

    const video = await as('officer')<ProjectView>('POST', `${project(p.id)}/decisions`, {
      category: 'video',
      decision: 'approve',
      comment: 'level A accepted for this crossing; upgrade at next renewal',
    });
    expect(video.status).toBe(200);
    expect(video.body.state).toBe('in-review');
    expect(video.body.devices.map((d) => d.state)).toEqual(['in-review', 'in-review']);
    const urban = await as('inspector')<ProjectView>('POST', `${project(p.id)}/decisions`, {
      category: 'urban-operations',
      decision: 'approve',
    });
    expect(urban.body.state).toBe('approved');
    expect(urban.body.devices.map((d) => d.state)).toEqual(['approved', 'approved']);
    expect(urban.body.history.map((h) => [h.action, h.actor.username, h.category, h.decision])).toEqual([
      ['created', 'op-a', null, null],
      ['submitted', 'op-a', null, null],
      ['routed', 'coordinator', null, null],
      ['decided', 'officer', 'video', 'approved'],
      ['decided', 'inspector', 'urban-operations', 'approved'],
      ['approved', 'inspector', 'urban-operations', null],
    ]);
    expect(urban.body.history[3]?.comment).toContain('level A accepted');
    const decided = await audit(`action=review.project.decide&target=${p.id}`);
    expect(decided.map((e) => (e.after as { state: string }).state)).toEqual(['in-review', 'approved']);

    // Approved: the operator installs and activates; a field engineer reads but does not move.
    expect((await as('engineer')<LedgerDevice>('GET', `/v1/ledger/devices/${air.body.code}`)).status).toBe(
      200,
    );
    const engineerMove = await as('engineer')('POST', `/v1/ledger/devices/${air.body.code}/transitions`, {
      to: 'installed',
    });
    expect(engineerMove.status).toBe(403);
    for (const code of [camera.body.code, air.body.code])
      for (const to of ['installed', 'active']) {
        const moved = await opA<LedgerDevice>('POST', `/v1/ledger/devices/${code}/transitions`, { to });
        expect([moved.status, moved.body.state]).toEqual([200, to]);
      }
    const moved = await audit(`action=ledger.device.transition&target=${air.body.code}`);
    expect(moved.map((e) => [(e.before as LedgerDevice).state, (e.after as LedgerDevice).state])).toEqual([
      ['approved', 'installed'],
      ['installed', 'active'],
    ]);
    // Every review move is filed in the chain with who made it.
    const feed = await t.api<{
      changes: Array<{ deviceCode: string; actor: { id: string }; detail: { to?: string } }>;
    }>('GET', `/v1/ledger/changes?since=${air.body.changeSeq}`);
    expect(feed.body.changes.filter((c) => c.deviceCode === air.body.code).map((c) => c.detail.to)).toEqual([
      'in-review',
      'proposed',
      'in-review',
      'approved',
      'installed',
      'active',
    ]);
  });

  it('sends the devices of a rejected project back to proposed; they cannot go live', async () => {
    const opA = as('op-a');
    const noise = await opA<Created>('POST', '/v1/ledger/devices', device('noise', 'haidian', 39.5));
    const p = (
      await opA<ProjectView>('POST', '/v1/review/projects', {
        name: 'Night market noise',
        purpose: 'noise complaints',
        devices: [{ code: noise.body.code }],
      })
    ).body;
    expect((await opA('POST', `${project(p.id)}/submit`)).status).toBe(200);
    expect((await as('coordinator')('POST', `${project(p.id)}/route`, {})).status).toBe(200);
    const bare = await as('inspector')('POST', `${project(p.id)}/decisions`, {
      category: 'urban-operations',
      decision: 'reject',
    });
    expect([bare.status, bare.body.code]).toEqual([400, 'CS_ERR_REVIEW_COMMENT']);
    const rejected = await as('inspector')<ProjectView>('POST', `${project(p.id)}/decisions`, {
      category: 'urban-operations',
      decision: 'reject',
      comment: 'reuse the lamp-pole noise sensor 30 m north',
    });
    expect(rejected.body.state).toBe('rejected');
    expect(rejected.body.devices[0]?.state).toBe('proposed');
    expect(rejected.body.categories[0]).toMatchObject({
      state: 'rejected',
      decidedBy: { username: 'inspector' },
      comment: 'reuse the lamp-pole noise sensor 30 m north',
    });
    const again = await as('inspector')('POST', `${project(p.id)}/decisions`, {
      category: 'urban-operations',
      decision: 'approve',
    });
    expect([again.status, again.body.code]).toEqual([409, 'CS_ERR_REVIEW_DECIDED']);
    // The operator cannot approve it by hand; nor can the platform admin without a project.
    const byHand = await opA('POST', `/v1/ledger/devices/${noise.body.code}/transitions`, {
      to: 'in-review',
    });
    expect([byHand.status, byHand.body.code]).toEqual([409, 'CS_ERR_LEDGER_REVIEW_MOVE']);
  });

  it('refuses to approve or activate a device of no approved project, with a code', async () => {
    const pa = as('coordinator');
    const water = await pa<Created>('POST', '/v1/ledger/devices', device('water-level', 'haidian', 39.4));
    expect(
      (await pa('POST', `/v1/ledger/devices/${water.body.code}/transitions`, { to: 'in-review' })).status,
    ).toBe(200);
    const direct = await pa('POST', `/v1/ledger/devices/${water.body.code}/transitions`, { to: 'approved' });
    expect([direct.status, direct.body.code]).toEqual([409, 'CS_ERR_LEDGER_NOT_REVIEWED']);

    // installed → active is gated too: a second ledger writer whose gate we control.
    let reviewed = true;
    const ledger = new LedgerService({
      db: t.hub.db,
      signingKey: (() => {
        const key = generateSigningKey('ed25519');
        return () => key;
      })(),
      centreCode: '34020000',
      duplicateRadiusM: { '*': 0 },
      reviewed: async () => reviewed,
    });
    const actor = { kind: 'system' as const, id: 'test' };
    const { device: tilt } = await ledger.register(device('structural', 'haidian', 39.3), actor);
    for (const to of ['in-review', 'approved', 'installed'] as const)
      await ledger.transition(tilt.code, to, actor);
    reviewed = false;
    await expect(ledger.transition(tilt.code, 'active', actor)).rejects.toMatchObject({
      code: 'CS_ERR_LEDGER_NOT_REVIEWED',
      statusCode: 409,
    });
    // Existing inventory (filed active) goes to maintenance and back without a project.
    const { device: stock } = await ledger.register(
      device('lamp', 'haidian', 39.2, { state: 'active' }),
      actor,
    );
    await ledger.transition(stock.code, 'maintenance', actor);
    expect((await ledger.transition(stock.code, 'active', actor)).state).toBe('active');
  });

  it('resolves concurrent decisions on one category to one outcome', async () => {
    const opA = as('op-a');
    const cam = await opA<Created>(
      'POST',
      '/v1/ledger/devices',
      device('camera', 'haidian', 38.9, { gb35114Level: 'B' }),
    );
    const p = (
      await opA<ProjectView>('POST', '/v1/review/projects', {
        name: 'School gate',
        purpose: 'pupil safety',
        devices: [{ code: cam.body.code }],
      })
    ).body;
    expect(p.flags).toEqual([]);
    await opA('POST', `${project(p.id)}/submit`);
    await as('coordinator')('POST', `${project(p.id)}/route`, {});
    const racers = await Promise.all([
      as('officer')('POST', `${project(p.id)}/decisions`, { category: 'video', decision: 'approve' }),
      as('officer2')('POST', `${project(p.id)}/decisions`, {
        category: 'video',
        decision: 'reject',
        comment: 'too close to the existing one',
      }),
      as('officer')('POST', `${project(p.id)}/decisions`, { category: 'video', decision: 'approve' }),
    ]);
    expect(racers.filter((r) => r.status === 200)).toHaveLength(1);
    expect(racers.filter((r) => r.status === 409).map((r) => r.body.code)).toEqual([
      'CS_ERR_REVIEW_DECIDED',
      'CS_ERR_REVIEW_DECIDED',
    ]);
    const view = (await opA<ProjectView>('GET', project(p.id))).body;
    const outcome = view.categories[0]?.state;
    expect(view.state).toBe(outcome);
    expect(view.devices[0]?.state).toBe(outcome === 'approved' ? 'approved' : 'proposed');
    expect(view.history.filter((h) => h.action === 'decided')).toHaveLength(1);
  });

  it("keeps agency operators to their own agency's devices", async () => {
    const opA = as('op-a');
    const forB = await opA('POST', '/v1/ledger/devices', device('lamp', 'chaoyang', 39.1));
    expect([forB.status, forB.body.code]).toEqual([403, 'CS_ERR_AUTH_FORBIDDEN']);
    const ofB = await as('op-b')<Created>('POST', '/v1/ledger/devices', device('lamp', 'chaoyang', 39.1));
    expect(ofB.status).toBe(201);
    const move = await opA('POST', `/v1/ledger/devices/${ofB.body.code}/transitions`, { to: 'retired' });
    expect([move.status, move.body.code]).toEqual([403, 'CS_ERR_AUTH_FORBIDDEN']);
    expect((await opA('GET', `/v1/ledger/devices/${ofB.body.code}`)).status).toBe(403);
    const inProject = await opA('POST', '/v1/review/projects', {
      name: 'borrowed',
      purpose: 'x',
      agencyId: 'chaoyang',
      devices: [{ code: ofB.body.code }],
    });
    expect(inProject.status).toBe(403);

    const res = await fetch(`${t.httpUrl}/v1/ledger/import`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token['op-a']}`, 'content-type': 'text/csv' },
      body: 'kind,ownerAgency,longitude,latitude\nmanhole,haidian,116.1,39\nmanhole,chaoyang,116.1,39.01\nmanhole,haidian,116.1,39.02\n',
    });
    const report = (await res.json()) as ImportReport;
    expect(report).toMatchObject({ rows: 3, applied: 2, failed: 1 });
    expect(report.errors).toEqual([
      expect.objectContaining({ row: 3, column: 'ownerAgency', code: 'CS_ERR_AUTH_FORBIDDEN' }),
    ]);

    const listA = await opA<LedgerDevice[]>('GET', '/v1/ledger/devices?limit=10000');
    expect(listA.body.length).toBeGreaterThan(0);
    expect(new Set(listA.body.map((d) => d.ownerAgency))).toEqual(new Set(['haidian']));
    const listEngineer = await as('engineer')<LedgerDevice[]>('GET', '/v1/ledger/devices?limit=10000');
    expect(listEngineer.body.map((d) => d.code)).toContain(ofB.body.code);
    const changes = await as('op-b')<{ changes: Array<{ device: LedgerDevice }> }>(
      'GET',
      '/v1/ledger/changes',
    );
    expect(new Set(changes.body.changes.map((c) => c.device.ownerAgency))).toEqual(new Set(['chaoyang']));
  });
});
