import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AuditEntry } from '../audit/audit-log.ts';
import { startTestHub, type TestHub } from '../testing/test-hub.ts';
import { resolveJwtSecret, signJwt } from './jwt.ts';

type ErrorBody = { code: string; message: string; details?: unknown };
type UserView = {
  id: string;
  username: string;
  agencyId: string;
  roles: Array<{ role: string; category?: string }>;
};
type Login = { token: string; tokenType: string; expiresAt: string; user: UserView };
type AuditPage = { entries: AuditEntry[]; next: number | null };

const PASSWORD = 'correct horse battery';

describe('people, agencies, roles and login', () => {
  let t: TestHub;
  let admin: string;
  const login = async (username: string, password = PASSWORD) => {
    const res = await t.api<Login>('POST', '/v1/auth/login', { username, password }, null);
    if (res.status !== 200) throw new Error(`login ${username}: ${res.status} ${JSON.stringify(res.body)}`);
    return res.body.token;
  };
  const createUser = async (username: string, agencyId: string, roles: unknown[] = [], token = admin) => {
    const res = await t.api<UserView>(
      'POST',
      '/v1/users',
      { username, displayName: username.toUpperCase(), agencyId, password: PASSWORD, roles },
      token,
    );
    expect(res.status, JSON.stringify(res.body)).toBe(201);
    return res.body;
  };
  const audit = (query: string, token = admin) =>
    t.api<AuditPage>('GET', `/v1/audit?${query}`, undefined, token);

  beforeAll(async () => {
    t = await startTestHub();
    admin = t.adminToken;
    for (const [id, name, kind] of [
      ['bdb', 'Big-data bureau', 'platform'],
      ['haidian', 'Haidian district', 'district'],
      ['chaoyang', 'Chaoyang district', 'district'],
    ])
      expect((await t.api('PUT', `/v1/agencies/${id}`, { name, kind })).status).toBe(201);
    await createUser('pa', 'bdb', [{ role: 'platform-admin' }]);
  });
  afterAll(async () => t?.stop());

  it('logs in with a password and answers /me from the session token', async () => {
    const res = await t.api<Login>('POST', '/v1/auth/login', { username: 'pa', password: PASSWORD }, null);
    expect(res.status).toBe(200);
    expect(res.body.tokenType).toBe('Bearer');
    const [header, payload] = res.body.token.split('.');
    expect(JSON.parse(Buffer.from(header ?? '', 'base64url').toString())).toEqual({
      alg: 'HS256',
      typ: 'JWT',
    });
    const claims = JSON.parse(Buffer.from(payload ?? '', 'base64url').toString());
    expect(claims).toMatchObject({
      sub: res.body.user.id,
      agency: 'bdb',
      roles: [{ role: 'platform-admin' }],
    });
    expect(claims.exp - claims.iat).toBeCloseTo(12 * 3600, 0);
    const me = await t.api<{ kind: string; user: UserView }>('GET', '/v1/auth/me', undefined, res.body.token);
    expect(me.status).toBe(200);
    expect(me.body).toMatchObject({ kind: 'user', user: { username: 'pa', agencyId: 'bdb' } });
    expect(JSON.stringify(me.body)).not.toContain('scrypt');
  });

  it('refuses a wrong password with a code and locks the username after five failures', async () => {
    await createUser('locky', 'haidian');
    for (let i = 0; i < 5; i++) {
      const wrong = await t.api<ErrorBody>(
        'POST',
        '/v1/auth/login',
        { username: 'locky', password: 'nope' },
        null,
      );
      expect([wrong.status, wrong.body.code]).toEqual([401, 'CS_ERR_AUTH_LOGIN_FAILED']);
      expect(wrong.body.details).toBeUndefined();
    }
    const res = await fetch(`${t.httpUrl}/v1/auth/login`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ username: 'locky', password: PASSWORD }),
    });
    const body = (await res.json()) as ErrorBody;
    expect([res.status, body.code]).toEqual([429, 'CS_ERR_AUTH_LOCKED']);
    expect(Number(res.headers.get('retry-after'))).toBeGreaterThan(0);
    const unknown = await t.api<ErrorBody>(
      'POST',
      '/v1/auth/login',
      { username: 'ghost', password: 'x' },
      null,
    );
    expect([unknown.status, unknown.body.code]).toEqual([401, 'CS_ERR_AUTH_LOGIN_FAILED']);

    const failures = await audit('action=auth.login&outcome=failure&actor=locky');
    expect(failures.body.entries.map((e) => e.reason)).toEqual([
      ...Array(5).fill('CS_ERR_AUTH_LOGIN_FAILED:wrong-password'),
      'CS_ERR_AUTH_LOCKED',
    ]);
    const ghost = await audit('action=auth.login&actor=ghost');
    expect(ghost.body.entries[0]?.reason).toBe('CS_ERR_AUTH_LOGIN_FAILED:unknown-user');
  });

  it('refuses tampered, unsigned, other-algorithm and expired session tokens', async () => {
    const token = await login('pa');
    const [header = '', payload = '', signature = ''] = token.split('.');
    const claims = JSON.parse(Buffer.from(payload, 'base64url').toString());
    const b64 = (v: unknown) => Buffer.from(JSON.stringify(v)).toString('base64url');
    const secret = await resolveJwtSecret(t.dataDir);
    const now = Math.floor(Date.now() / 1000);
    const forged = {
      tampered: `${header}.${b64({ ...claims, agency: 'haidian' })}.${signature}`,
      none: `${b64({ alg: 'none', typ: 'JWT' })}.${payload}.`,
      hs512: `${b64({ alg: 'HS512', typ: 'JWT' })}.${payload}.${signature}`,
      expired: signJwt({ ...claims, iat: now - 13 * 3600, exp: now - 3600 }, secret),
      otherKey: signJwt(claims, Buffer.alloc(32, 7)),
    };
    for (const [what, bad] of Object.entries(forged)) {
      const res = await t.api<ErrorBody>('GET', '/v1/auth/me', undefined, bad);
      expect([what, res.status, res.body.code]).toEqual([what, 401, 'CS_ERR_AUTH_INVALID_TOKEN']);
    }
    const good = signJwt({ ...claims, iat: now, exp: now + 60 }, secret);
    expect((await t.api('GET', '/v1/auth/me', undefined, good)).status).toBe(200);
  });

  it('creates, uses, lists and revokes personal API tokens', async () => {
    const session = await login('pa');
    const created = await t.api<{ id: string; token: string; expiresAt: string }>(
      'POST',
      '/v1/auth/tokens',
      { name: 'ledger import', expires: '30d' },
      session,
    );
    expect(created.status).toBe(201);
    expect(created.body.token).toMatch(/^csu_/);
    const me = await t.api<{ user: UserView }>('GET', '/v1/auth/me', undefined, created.body.token);
    expect([me.status, me.body.user.username]).toEqual([200, 'pa']);
    const listed = await t.api<Array<{ id: string; lastUsedAt: string | null; token?: string }>>(
      'GET',
      '/v1/auth/tokens',
      undefined,
      session,
    );
    expect(listed.body).toHaveLength(1);
    expect(listed.body[0]?.lastUsedAt).not.toBeNull();
    expect(listed.body[0]?.token).toBeUndefined();
    expect((await t.api('DELETE', `/v1/auth/tokens/${created.body.id}`, undefined, session)).status).toBe(
      204,
    );
    const after = await t.api<ErrorBody>('GET', '/v1/auth/me', undefined, created.body.token);
    expect([after.status, after.body.code]).toEqual([401, 'CS_ERR_AUTH_INVALID_TOKEN']);
    const again = await t.api<ErrorBody>('DELETE', `/v1/auth/tokens/${created.body.id}`, undefined, session);
    expect([again.status, again.body.code]).toEqual([404, 'CS_ERR_AUTH_TOKEN_UNKNOWN']);
    const asAdmin = await t.api<ErrorBody>('POST', '/v1/auth/tokens', { name: 'x' });
    expect([asAdmin.status, asAdmin.body.code]).toEqual([400, 'CS_ERR_AUTH_USER_ONLY']);
  });

  it('lets a platform admin create agencies and users and manage their roles', async () => {
    const pa = await login('pa');
    const police = await t.api(
      'PUT',
      '/v1/agencies/police',
      { name: 'Police', kind: 'bureau', parentId: 'bdb' },
      pa,
    );
    expect(police.status).toBe(201);
    const renamed = await t.api('PUT', '/v1/agencies/police', { name: 'Police bureau', kind: 'bureau' }, pa);
    expect(renamed.status).toBe(200);
    const cycle = await t.api<ErrorBody>(
      'PUT',
      '/v1/agencies/bdb',
      { name: 'BDB', kind: 'platform', parentId: 'bdb' },
      pa,
    );
    expect([cycle.status, cycle.body.code]).toEqual([409, 'CS_ERR_AGENCY_CYCLE']);
    const listed = await t.api<Array<{ id: string; kind: string; parentId: string | null }>>(
      'GET',
      '/v1/agencies',
      undefined,
      pa,
    );
    expect(listed.body.find((a) => a.id === 'police')).toMatchObject({ kind: 'bureau', parentId: null });
    expect((await t.api('PUT', '/v1/agencies/empty', { name: 'Empty', kind: 'district' }, pa)).status).toBe(
      201,
    );
    expect((await t.api('DELETE', '/v1/agencies/empty', undefined, pa)).status).toBe(204);
    const inUse = await t.api<ErrorBody>('DELETE', '/v1/agencies/bdb', undefined, pa);
    expect([inUse.status, inUse.body.code]).toEqual([409, 'CS_ERR_AGENCY_IN_USE']);
    const officer = await createUser('officer', 'police', [{ role: 'reviewer', category: 'video' }], pa);
    expect(officer.roles).toEqual([{ role: 'reviewer', category: 'video' }]);

    const noCategory = await t.api<ErrorBody>(
      'POST',
      `/v1/users/${officer.id}/roles`,
      { role: 'reviewer' },
      pa,
    );
    expect([noCategory.status, noCategory.body.code]).toEqual([400, 'CS_ERR_ROLE_CATEGORY']);
    const notPlatform = await t.api<ErrorBody>(
      'POST',
      `/v1/users/${officer.id}/roles`,
      { role: 'platform-admin' },
      pa,
    );
    expect([notPlatform.status, notPlatform.body.code]).toEqual([409, 'CS_ERR_ROLE_SCOPE']);
    const granted = await t.api<UserView>(
      'POST',
      `/v1/users/${officer.id}/roles`,
      { role: 'field-engineer' },
      pa,
    );
    expect(granted.body.roles).toEqual([{ role: 'field-engineer' }, { role: 'reviewer', category: 'video' }]);
    const revoked = await t.api<UserView>(
      'DELETE',
      `/v1/users/${officer.id}/roles/reviewer?category=video`,
      undefined,
      pa,
    );
    expect(revoked.body.roles).toEqual([{ role: 'field-engineer' }]);
    const badBody = await t.api<ErrorBody>('POST', '/v1/users', { username: 'X Y', password: 'short' }, pa);
    expect([badBody.status, badBody.body.code]).toEqual([400, 'CS_ERR_VALIDATION']);

    const trail = await audit(`target=${officer.id}`);
    expect(trail.body.entries.map((e) => e.action)).toEqual([
      'user.create',
      'user.role-grant',
      'user.role-revoke',
    ]);
    const grant = trail.body.entries[1];
    expect(grant?.actor).toMatchObject({ kind: 'user', username: 'pa', agencyId: 'bdb' });
    expect(grant?.before).toMatchObject({ roles: [{ role: 'reviewer', category: 'video' }] });
    expect(grant?.after).toMatchObject({ roles: [{ role: 'field-engineer' }, { role: 'reviewer' }] });
    expect(JSON.stringify(trail.body)).not.toContain(PASSWORD);
  });

  it('keeps an agency operator to their own agency and audits every refusal', async () => {
    await createUser('op-haidian', 'haidian', [{ role: 'agency-operator' }]);
    await createUser('eng-chaoyang', 'chaoyang', [{ role: 'field-engineer' }]);
    const op = await login('op-haidian');
    const mine = await t.api<UserView[]>('GET', '/v1/users', undefined, op);
    expect(mine.status).toBe(200);
    expect(new Set(mine.body.map((u) => u.agencyId))).toEqual(new Set(['haidian']));
    const refusals: Array<[string, string, unknown?]> = [
      ['GET', '/v1/users?agency=chaoyang'],
      [
        'POST',
        '/v1/users',
        { username: 'sneaky', displayName: 'S', agencyId: 'chaoyang', password: PASSWORD },
      ],
      [
        'POST',
        '/v1/users',
        { username: 'sneaky2', displayName: 'S', agencyId: 'haidian', password: PASSWORD },
      ],
      ['POST', '/v1/agencies', { id: 'rogue', name: 'Rogue' }],
      ['PUT', '/v1/agencies/haidian', { name: 'Mine now', kind: 'platform' }],
      ['GET', '/v1/alarm-webhooks'],
      ['GET', '/v1/nodes'],
    ];
    for (const [method, path, body] of refusals) {
      const res = await t.api<ErrorBody>(method, path, body, op);
      expect([method, path, res.status, res.body.code]).toEqual([method, path, 403, 'CS_ERR_AUTH_FORBIDDEN']);
    }
    const other = (await t.api<UserView[]>('GET', '/v1/users?username=eng-chaoyang')).body[0];
    const peek = await t.api<ErrorBody>('GET', `/v1/users/${other?.id}`, undefined, op);
    expect(peek.status).toBe(403);

    const refused = await audit('action=auth.refused&actor=op-haidian');
    expect(refused.body.entries.map((e) => [e.targetId, e.outcome, e.reason])).toEqual([
      ['GET /v1/users', 'refused', 'CS_ERR_AUTH_FORBIDDEN'],
      ['POST /v1/users', 'refused', 'CS_ERR_AUTH_FORBIDDEN'],
      ['POST /v1/users', 'refused', 'CS_ERR_AUTH_FORBIDDEN'],
      ['POST /v1/agencies', 'refused', 'CS_ERR_AUTH_FORBIDDEN'],
      ['PUT /v1/agencies/:agency', 'refused', 'CS_ERR_AUTH_FORBIDDEN'],
      ['GET /v1/alarm-webhooks', 'refused', 'CS_ERR_AUTH_FORBIDDEN'],
      ['GET /v1/nodes', 'refused', 'CS_ERR_AUTH_FORBIDDEN'],
      ['GET /v1/users/:id', 'refused', 'CS_ERR_AUTH_FORBIDDEN'],
    ]);
    expect(refused.body.entries[0]?.actor).toMatchObject({ kind: 'user', agencyId: 'haidian' });
    const anonymous = await t.api<ErrorBody>('GET', '/v1/auth/me', undefined, null);
    expect([anonymous.status, anonymous.body.code]).toEqual([401, 'CS_ERR_AUTH_REQUIRED']);
    const anon = await audit('action=auth.refused&targetType=route&outcome=refused');
    expect(
      anon.body.entries.some((e) => e.actor.kind === 'anonymous' && e.reason === 'CS_ERR_AUTH_REQUIRED'),
    ).toBe(true);
  });

  it('keeps the admin token a super-user and lets platform admins use admin routes', async () => {
    const me = await t.api<{ kind: string; user: null }>('GET', '/v1/auth/me');
    expect(me.body).toEqual({ kind: 'admin', user: null });
    expect((await t.api('GET', '/v1/nodes')).status).toBe(200);
    const pa = await login('pa');
    expect((await t.api('GET', '/v1/nodes', undefined, pa)).status).toBe(200);
    const wrong = await t.api<ErrorBody>('GET', '/v1/nodes', undefined, 'nope-nope-nope-nope');
    expect([wrong.status, wrong.body.code]).toEqual([401, 'CS_ERR_AUTH_INVALID']);
    // Writes through routes that do not audit themselves are still recorded.
    const created = await t.api<{ id: string }>('POST', '/v1/enrollment-tokens', { name: 'pole-9' }, pa);
    expect(created.status).toBe(201);
    const writes = await audit('action=http.write&actor=pa');
    expect(writes.body.entries.map((e) => e.targetId)).toContain('POST /v1/enrollment-tokens');
    expect(JSON.stringify(writes.body)).not.toContain('cst_');
  });

  it('ends sessions on password change and disable', async () => {
    const user = await createUser('changer', 'haidian');
    const session = await login('changer');
    const wrongCurrent = await t.api<ErrorBody>(
      'PUT',
      `/v1/users/${user.id}/password`,
      { password: 'another long password', currentPassword: 'wrong' },
      session,
    );
    expect([wrongCurrent.status, wrongCurrent.body.code]).toEqual([401, 'CS_ERR_AUTH_LOGIN_FAILED']);
    const changed = await t.api(
      'PUT',
      `/v1/users/${user.id}/password`,
      { password: 'another long password', currentPassword: PASSWORD },
      session,
    );
    expect(changed.status).toBe(204);
    const old = await t.api<ErrorBody>('GET', '/v1/auth/me', undefined, session);
    expect([old.status, old.body.code]).toEqual([401, 'CS_ERR_AUTH_INVALID_TOKEN']);
    const fresh = await login('changer', 'another long password');
    expect((await t.api('PATCH', `/v1/users/${user.id}`, { disabled: true })).status).toBe(200);
    expect((await t.api('GET', '/v1/auth/me', undefined, fresh)).status).toBe(401);
    const refused = await t.api<ErrorBody>(
      'POST',
      '/v1/auth/login',
      { username: 'changer', password: 'another long password' },
      null,
    );
    expect([refused.status, refused.body.code]).toEqual([401, 'CS_ERR_AUTH_LOGIN_FAILED']);
  });
});
