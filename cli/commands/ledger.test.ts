import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestHub, type TestHub } from '../../cloud-hub/src/testing/test-hub.ts';

const CLI = fileURLToPath(new URL('../../bin/citysense.mjs', import.meta.url));

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs the real CLI in a child process. */
function citysense(args: string[], cwd: string, env: Record<string, string>): Promise<Run> {
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

describe('citysense ledger', () => {
  let t: TestHub;
  let dir: string;
  let env: Record<string, string>;
  beforeAll(async () => {
    t = await startTestHub();
    dir = await mkdtemp(join(tmpdir(), 'citysense-ledger-cli-'));
    env = { CITYSENSE_HUB: t.httpUrl, CITYSENSE_ADMIN_TOKEN: t.adminToken };
  });
  afterAll(async () => {
    await t?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it('imports a CSV in parts with progress, reports refused rows by file line, then verifies and lists', async () => {
    const lines = ['kind,ownerAgency,poleId,longitude,latitude,model'];
    for (let i = 0; i < 600; i++) {
      const lat = (30 + i * 0.001).toFixed(4);
      if (i === 10) lines.push(`noise,eco,pole-${i},116.3,${lat},"two-line\nmodel"`);
      else if (i === 250) lines.push(`noise,eco,pole-${i},200,${lat},N`);
      else if (i === 499) lines.push(`bogus,eco,pole-${i},116.3,${lat},N`);
      else lines.push(`air-quality,eco,pole-${i},116.3,${lat},"AQ, v${i}"`);
    }
    await writeFile(join(dir, 'devices.csv'), `${lines.join('\n')}\n`);
    const imported = await citysense(['ledger', 'import', 'devices.csv', '--chunk', '200'], dir, env);
    expect(imported.code).toBe(1);
    expect(imported.stdout).toMatch(/imported 598\/600 rows .* rows\/s\), 2 refused/);
    expect(imported.stderr).toMatch(/\[#+\] 100% 600 rows \d+ rows\/s 2 refused/);
    expect(imported.stderr.trim().split('\n')).toHaveLength(3);
    const report = await readFile(join(dir, 'devices.csv.errors.csv'), 'utf8');
    const rows = report.trim().split('\n');
    expect(rows[0]).toBe('row,column,code,message');
    // File lines: header 1, row i on line i + 2, plus one for the two-line field before it.
    expect(rows.slice(1).map((r) => r.split(',').slice(0, 3).join(','))).toEqual([
      '253,longitude,CS_ERR_LEDGER_FIELD',
      '502,kind,CS_ERR_LEDGER_FIELD',
    ]);

    const ok = await citysense(['ledger', 'verify'], dir, env);
    expect(ok.code).toBe(0);
    expect(ok.stdout).toMatch(/^OK: 598 entries, 598 devices, head seq 598/);

    const listed = await citysense(['ledger', 'list', '--kind', 'noise', '--json'], dir, env);
    expect(listed.code).toBe(0);
    const noise = JSON.parse(listed.stdout) as Array<{ code: string; model: string }>;
    expect(noise).toHaveLength(1);
    expect(noise[0]?.model).toBe('two-line\nmodel');

    await t.hub.db.query('UPDATE ledger_devices SET latitude = latitude + 0.001 WHERE code = $1', [
      noise[0]?.code,
    ]);
    const broken = await citysense(['ledger', 'verify'], dir, env);
    expect(broken.code).toBe(1);
    expect(broken.stdout).toMatch(/^BROKEN at seq \d+: device-changed \(device \d{20}\)/);
  });
});
