import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestHub, type TestHub } from '../../cloud-hub/src/testing/test-hub.ts';

const CLI = fileURLToPath(new URL('../../bin/citysense.mjs', import.meta.url));
const PASSWORD = 'a long enough secret';

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs the real CLI in a child process. */
function citysense(args: string[], cwd: string, env: Record<string, string> = {}): Promise<Run> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [CLI, ...args],
      { cwd, env: { ...process.env, VITEST: '', ...env } },
      (err, stdout, stderr) =>
        resolve({ code: err ? Number((err as { code?: number }).code ?? 1) : 0, stdout, stderr }),
    );
  });
}

describe('citysense agency / user', () => {
  let dir: string;
  let t: TestHub;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'citysense-people-cli-'));
    t = await startTestHub({}, join(dir, 'hub'));
  });
  afterAll(async () => {
    await t?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it('bootstraps an agency and a user with the admin token from the data dir; the user can log in', async () => {
    const hub = ['--hub', t.httpUrl, '--data-dir', t.dataDir];
    const agency = await citysense(
      ['agency', 'create', 'bdb', '--name', '大数据局', '--kind', 'platform', ...hub],
      dir,
    );
    expect(agency.stderr).toBe('');
    expect([agency.code, agency.stdout.trim()]).toEqual([0, 'agency bdb (platform) saved: 大数据局']);
    const list = await citysense(['agency', 'list', ...hub], dir);
    expect(list.stdout).toContain('bdb  platform  大数据局');

    const noPassword = await citysense(['user', 'create', 'wang', '--agency', 'bdb', ...hub], dir);
    expect(noPassword.code).toBe(2);
    expect(noPassword.stderr).toContain('CITYSENSE_USER_PASSWORD');
    const created = await citysense(
      [
        'user',
        'create',
        'wang',
        '--agency',
        'bdb',
        '--display-name',
        '王工',
        '--role',
        'platform-admin',
        ...hub,
      ],
      dir,
      { CITYSENSE_USER_PASSWORD: PASSWORD },
    );
    expect(created.code).toBe(0);
    expect(created.stdout).toMatch(/^user wang \(usr_[\w-]+\) created in bdb: platform-admin/);
    expect(created.stdout + created.stderr).not.toContain(PASSWORD);

    const granted = await citysense(['user', 'grant', 'wang', 'field-engineer', ...hub], dir);
    expect(granted.stdout.trim()).toBe('wang: field-engineer,platform-admin');
    const badGrant = await citysense(['user', 'grant', 'wang', 'reviewer', ...hub], dir);
    expect([badGrant.code, badGrant.stderr]).toEqual([1, expect.stringContaining('CS_ERR_ROLE_CATEGORY')]);
    const users = await citysense(['user', 'list', '--agency', 'bdb', ...hub], dir);
    expect(users.stdout).toContain('wang  bdb  field-engineer,platform-admin  王工');

    const login = await t.api<{ token: string }>(
      'POST',
      '/v1/auth/login',
      { username: 'wang', password: PASSWORD },
      null,
    );
    expect(login.status).toBe(200);
    const passwd = await citysense(
      ['user', 'passwd', 'wang', '--password', 'another long secret', ...hub],
      dir,
    );
    expect(passwd.code).toBe(0);
    const old = await t.api('POST', '/v1/auth/login', { username: 'wang', password: PASSWORD }, null);
    expect(old.status).toBe(401);
  });
});
