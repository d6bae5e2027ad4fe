import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const CLI = fileURLToPath(new URL('../../bin/citysense.mjs', import.meta.url));
const REFERENCE = fileURLToPath(new URL('../../algorithms/packages/yolox-nano', import.meta.url));

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs the real CLI in a child process. */
function citysense(args: string[], cwd: string): Promise<Run> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [CLI, ...args],
      { cwd, env: { ...process.env, VITEST: '' } },
      (err, stdout, stderr) =>
        resolve({ code: err ? Number((err as { code?: number }).code ?? 1) : 0, stdout, stderr }),
    );
  });
}

describe('citysense algo', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'citysense-algo-cli-'));
  });
  afterAll(() => rm(dir, { recursive: true, force: true }));

  it('makes a key, packs, inspects and verifies the reference package', async () => {
    expect((await citysense(['algo', 'keygen', '--out', 'centre.json'], dir)).code).toBe(0);
    const again = await citysense(['algo', 'keygen', '--out', 'centre.json'], dir);
    expect(again.code).toBe(1);
    expect(again.stderr).toContain('CS_ERR_CLI_OUTPUT');

    const packed = await citysense(['algo', 'pack', REFERENCE, '--key', 'centre.json'], dir);
    expect(packed.code).toBe(0);
    expect(packed.stdout).toMatch(/packed yolox-nano 1\.0\.0 → .*yolox-nano-1\.0\.0\.csalgo/);

    const inspected = await citysense(['algo', 'inspect', 'yolox-nano-1.0.0.csalgo', '--json'], dir);
    expect(inspected.code).toBe(0);
    expect(JSON.parse(inspected.stdout)).toMatchObject({
      id: 'yolox-nano',
      task: 'detection',
      signature: { algorithm: 'ed25519' },
      input: { shape: [1, 3, 416, 416] },
    });

    const verified = await citysense(
      ['algo', 'verify', 'yolox-nano-1.0.0.csalgo', '--trust', 'centre.json'],
      dir,
    );
    expect(verified.code).toBe(0);
    expect(verified.stdout).toMatch(/^OK yolox-nano 1\.0\.0: 5 parts .* valid and trusted/);
  });

  it('refuses another signer and a tampered file with codes and a non-zero exit', async () => {
    await citysense(['algo', 'keygen', '--algorithm', 'sm2-sm3', '--out', 'other.json'], dir);
    const untrusted = await citysense(
      ['algo', 'verify', 'yolox-nano-1.0.0.csalgo', '--trust', 'other.json'],
      dir,
    );
    expect(untrusted.code).toBe(1);
    expect(untrusted.stderr).toContain('CS_ERR_ALGO_UNTRUSTED_KEY');

    const file = await readFile(join(dir, 'yolox-nano-1.0.0.csalgo'));
    file[file.length - 3000] = (file[file.length - 3000] ?? 0) ^ 0xff;
    await writeFile(join(dir, 'bad.csalgo'), file);
    const tampered = await citysense(['algo', 'verify', 'bad.csalgo'], dir);
    expect(tampered.code).toBe(1);
    expect(tampered.stderr).toMatch(/CS_ERR_ALGO_(PART_DIGEST|PACKAGE_CORRUPT)/);

    const missing = await citysense(['algo', 'inspect', 'nope.csalgo'], dir);
    expect(missing.stderr).toContain('CS_ERR_ALGO_PACKAGE_NOT_FOUND');
    const usage = await citysense(['algo', 'frobnicate'], dir);
    expect(usage.code).toBe(2);
  });
});
