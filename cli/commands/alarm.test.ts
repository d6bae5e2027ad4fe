import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { startTestHub, type TestHub } from '../../cloud-hub/src/testing/test-hub.ts';
import { main } from '../main.ts';

const CLI = fileURLToPath(new URL('../../bin/citysense.mjs', import.meta.url));

/** Runs the real CLI in a child process (slow: once, to prove the commands are registered). */
function spawnCli(args: string[], env: Record<string, string>) {
  return new Promise<{ code: number; stdout: string; stderr: string }>((resolve) => {
    execFile(
      process.execPath,
      [CLI, ...args],
      { env: { ...process.env, VITEST: '', ...env } },
      (err, stdout, stderr) =>
        resolve({ code: err ? Number((err as { code?: number }).code ?? 1) : 0, stdout, stderr }),
    );
  });
}

/** Runs `citysense …` in this process, capturing what it prints. */
async function citysense(args: string[]) {
  const out: string[] = [];
  const err: string[] = [];
  const log = vi.spyOn(console, 'log').mockImplementation((...a: unknown[]) => void out.push(a.join(' ')));
  const error = vi
    .spyOn(console, 'error')
    .mockImplementation((...a: unknown[]) => void err.push(a.join(' ')));
  try {
    const code = await main(args);
    return { code, stdout: out.join('\n'), stderr: err.join('\n') };
  } finally {
    log.mockRestore();
    error.mockRestore();
  }
}

describe('citysense rule / alarm', () => {
  let t: TestHub;
  let dir: string;
  let env: Record<string, string>;
  const saved = { hub: process.env.CITYSENSE_HUB, token: process.env.CITYSENSE_ADMIN_TOKEN };
  beforeAll(async () => {
    t = await startTestHub();
    dir = await mkdtemp(join(tmpdir(), 'citysense-alarm-cli-'));
    env = { CITYSENSE_HUB: t.httpUrl, CITYSENSE_ADMIN_TOKEN: t.adminToken };
    Object.assign(process.env, env);
  });
  afterAll(async () => {
    for (const [name, value] of [
      ['CITYSENSE_HUB', saved.hub],
      ['CITYSENSE_ADMIN_TOKEN', saved.token],
    ] as const) {
      if (value === undefined) delete process.env[name];
      else process.env[name] = value;
    }
    await t?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it('creates rules from flags and from a file, lists and deletes them, and reports refusals with their code', async () => {
    const fromFlags = await citysense([
      'rule',
      'create',
      '--id',
      'pm-high',
      '--name',
      'PM2.5 high',
      '--metric',
      'PM2.5',
      '--device',
      'air',
      '--op',
      '>',
      '--value',
      '75',
      '--clear-value',
      '50',
    ]);
    expect(fromFlags.code, fromFlags.stderr).toBe(0);
    expect(fromFlags.stdout).toMatch(/created pm-high\s+major\s+on\s+threshold/);
    const file = join(dir, 'silent.json');
    await writeFile(
      file,
      JSON.stringify({
        id: 'silent',
        name: 'Silent',
        severity: 'critical',
        scope: { metric: 'PM2.5', device: 'air', nodes: ['pole-001'] },
        condition: { kind: 'absence', forS: 300 },
      }),
    );
    expect((await citysense(['rule', 'create', file])).code).toBe(0);
    const list = await citysense(['rule', 'list']);
    expect(list.stdout).toMatch(/pm-high .*"clearValue":50/);
    expect(list.stdout).toMatch(/silent\s+critical\s+on\s+absence/);
    const bad = await citysense([
      'rule',
      'create',
      '--name',
      'x',
      '--metric',
      'PM2.5',
      '--op',
      '=>',
      '--value',
      '1',
    ]);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(/CS_ERR_RULE_INVALID/);
    expect((await citysense(['rule', 'delete', 'silent'])).stdout).toMatch(/deleted rule silent/);
    expect((await citysense(['rule', 'list', '--json'])).stdout).not.toMatch(/"silent"/);
  });

  it('lists alarms and refuses to acknowledge an unknown one', async () => {
    const ack = await citysense(['alarm', 'ack', '3f1e1a4e-0000-4000-8000-000000000000', '--comment', 'x']);
    expect(ack.code).toBe(1);
    expect(ack.stderr).toMatch(/CS_ERR_ALARM_NOT_FOUND/);
    const list = await spawnCli(['alarm', 'list', '--state', 'open', '--json'], env);
    expect(list.code, list.stderr).toBe(0);
    expect(JSON.parse(list.stdout)).toEqual([]);
  });
});
