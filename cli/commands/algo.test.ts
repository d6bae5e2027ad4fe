import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeClip } from '../../algorithms/src/sources/test-fixtures.ts';
import { centreKeyPath } from '../../cloud-hub/src/algorithms/centre-key.ts';
import { startTestHub } from '../../cloud-hub/src/testing/test-hub.ts';

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
    const made = await citysense(['algo', 'keygen', '--out', 'centre.json'], dir);
    expect(made.stderr).toBe('');
    expect(made.code).toBe(0);
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

  it('runs the package on a folder of images: one JSON line per frame, boxes in source pixels', async () => {
    const run = await citysense(['algo', 'run', 'yolox-nano-1.0.0.csalgo', join(REFERENCE, 'samples')], dir);
    expect(run.code).toBe(0);
    const lines = run.stdout
      .trim()
      .split('\n')
      .map(
        (l) =>
          JSON.parse(l) as {
            file: string;
            width: number;
            height: number;
            objects: Array<{ label: string; box: number[] }>;
          },
      );
    expect(lines.map((l) => l.file.split('/').at(-1))).toEqual(['000000000139.jpg', '000000000724.jpg']);
    expect(lines[0]?.objects.some((o) => o.label === 'person')).toBe(true);
    const stop = lines[1]?.objects.filter((o) => o.label === 'stop sign') ?? [];
    expect(stop).toHaveLength(1);
    const [x1 = 0, y1 = 0, x2 = 0, y2 = 0] = stop[0]?.box ?? [];
    expect(x1).toBeGreaterThan(100);
    expect(x2).toBeLessThan(lines[1]?.width ?? 0);
    expect(y1).toBeGreaterThan(50);
    expect(y2).toBeLessThan(lines[1]?.height ?? 0);
    expect(run.stderr).toContain('2 frame(s)');
  });

  it('runs the package on a video file decoded by ffmpeg at the requested rate', async () => {
    await makeClip(dir, 'clip.mp4', 'testsrc=size=320x240:rate=10', 2);
    const run = await citysense(['algo', 'run', 'yolox-nano-1.0.0.csalgo', 'clip.mp4', '--fps', '5'], dir);
    expect(run.code).toBe(0);
    const lines = run.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { index: number; width: number });
    expect(lines.length).toBeGreaterThanOrEqual(9);
    expect(lines.length).toBeLessThanOrEqual(11);
    expect(lines.every((l) => l.width === 320)).toBe(true);
  });

  it('uploads to the hub with progress and takes the version to published', async () => {
    const hub = await startTestHub({}, join(dir, 'hub'));
    try {
      await writeFile(join(dir, 'hub-centre.json'), await readFile(centreKeyPath(hub.dataDir)));
      const packed = await citysense(
        ['algo', 'pack', REFERENCE, '--key', 'hub-centre.json', '--out', 'centre.csalgo'],
        dir,
      );
      expect(packed.code).toBe(0);
      const args = ['--hub', hub.httpUrl, '--admin-token', hub.adminToken];
      const up = await citysense(['algo', 'upload', 'centre.csalgo', ...args, '--until', 'published'], dir);
      expect(up.stderr).toContain('100%');
      expect(up.stdout).toMatch(/→ validated[\s\S]*→ filed[\s\S]*→ published/);
      expect(up.code).toBe(0);
      const v = await hub.api<{ state: string }>('GET', '/v1/algorithms/yolox-nano/versions/1.0.0');
      expect(v.body.state).toBe('published');
      // A package signed by a key the centre does not trust is refused by the hub.
      const foreign = await citysense(['algo', 'upload', 'yolox-nano-1.0.0.csalgo', ...args], dir);
      expect(foreign.code).toBe(1);
      expect(foreign.stderr).toContain('CS_ERR_ALGO_UNTRUSTED_KEY');
    } finally {
      await hub.stop();
    }
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
