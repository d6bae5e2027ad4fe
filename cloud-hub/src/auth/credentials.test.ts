import { describe, expect, it } from 'vitest';
import { signJwt, verifyJwt } from './jwt.ts';
import { LoginThrottle } from './login-throttle.ts';
import { hashPassword, needsRehash, verifyPassword } from './password.ts';
import { holdsRole } from './roles.ts';

const secret = Buffer.alloc(32, 1);
const claims = (exp: number) => ({
  sub: 'usr_1',
  username: 'wang',
  agency: 'haidian',
  roles: [{ role: 'agency-operator' as const }],
  iat: 1_700_000_000,
  exp,
  iss: 'hub-a',
});

describe('session tokens', () => {
  it('round-trips HS256 claims and refuses expiry, another issuer and another key', () => {
    const token = signJwt(claims(1_700_000_100), secret);
    expect(verifyJwt(token, secret, 'hub-a', 1_700_000_050_000)).toMatchObject({
      sub: 'usr_1',
      agency: 'haidian',
    });
    const code = (f: () => unknown) => {
      try {
        f();
        return 'accepted';
      } catch (err) {
        return (err as { code: string; message: string }).message;
      }
    };
    expect(code(() => verifyJwt(token, secret, 'hub-a', 1_700_000_100_000))).toMatch(/expired/);
    expect(code(() => verifyJwt(token, secret, 'hub-b', 1_700_000_050_000))).toMatch(/another hub/);
    expect(code(() => verifyJwt(token, Buffer.alloc(32, 2), 'hub-a', 1_700_000_050_000))).toMatch(
      /signature/,
    );
    const none = `${Buffer.from('{"alg":"none"}').toString('base64url')}.${token.split('.')[1]}.`;
    expect(code(() => verifyJwt(none, secret, 'hub-a', 1_700_000_050_000))).toMatch(/HS256/);
  });
});

describe('passwords', () => {
  it('hashes with scrypt, a per-user salt and stored parameters', async () => {
    const a = await hashPassword('correct horse battery');
    const b = await hashPassword('correct horse battery');
    expect(a).toMatch(/^scrypt\$32768\$8\$1\$[\w-]+\$[\w-]+$/);
    expect(a).not.toBe(b);
    expect(await verifyPassword('correct horse battery', a)).toBe(true);
    expect(await verifyPassword('correct horse batterY', a)).toBe(false);
    expect(await verifyPassword('x', 'garbage')).toBe(false);
    const weak = await hashPassword('pw', { N: 1024, r: 8, p: 1 });
    expect(await verifyPassword('pw', weak)).toBe(true);
    expect([needsRehash(weak), needsRehash(a)]).toEqual([true, false]);
  });
});

describe('login throttle', () => {
  it('locks after five failures, doubles the next lock, and forgets after success', () => {
    let now = 0;
    const t = new LoginThrottle({ now: () => now });
    for (let i = 0; i < 4; i++) expect(t.failure('Wang')).toBe(0);
    expect(t.failure('wang')).toBe(60_000);
    expect(t.lockedFor('WANG')).toBe(60_000);
    now += 60_000;
    expect(t.lockedFor('wang')).toBe(0);
    for (let i = 0; i < 4; i++) t.failure('wang');
    expect(t.failure('wang')).toBe(120_000);
    t.success('wang');
    expect(t.lockedFor('wang')).toBe(0);
  });
});

describe('role checks', () => {
  const op = { agencyId: 'haidian', roles: [{ role: 'agency-operator' as const }] };
  const police = { agencyId: 'police', roles: [{ role: 'reviewer' as const, category: 'video' as const }] };
  const pa = { agencyId: 'bdb', roles: [{ role: 'platform-admin' as const }] };
  it('scopes agency roles to their agency, reviewers to their category, platform admins to none', () => {
    expect(holdsRole(op, 'agency-operator', { agencyId: 'haidian' })).toBe(true);
    expect(holdsRole(op, 'agency-operator', { agencyId: 'chaoyang' })).toBe(false);
    expect(holdsRole(op, 'reviewer')).toBe(false);
    expect(holdsRole(police, 'reviewer', { category: 'video' })).toBe(true);
    expect(holdsRole(police, 'reviewer', { category: 'hazard-monitoring' })).toBe(false);
    expect(holdsRole(pa, ['platform-admin', 'agency-operator'], { agencyId: 'chaoyang' })).toBe(true);
    expect(holdsRole(pa, 'agency-operator')).toBe(false);
  });
});
