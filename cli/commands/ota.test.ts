import { mkdir, mkdtemp, open, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { generateSigningKey, hasCode } from '@citysense/protocol';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { otaCommand } from './ota.ts';

describe('citysense ota', () => {
  let dir: string;
  const cwd = process.cwd();
  let printed: string[] = [];

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'citysense-ota-cli-'));
    await mkdir(join(dir, 'agent', 'bin'), { recursive: true });
    await writeFile(join(dir, 'agent', 'bin', 'citysense.mjs'), 'process.exit(0);\n');
    await writeFile(join(dir, 'fw.img'), Buffer.alloc(100_000, 7));
    // The key file format of `citysense algo keygen`.
    await writeFile(join(dir, 'centre.json'), JSON.stringify(generateSigningKey('ed25519')));
    await writeFile(join(dir, 'other.json'), JSON.stringify(generateSigningKey('sm2-sm3')));
    process.chdir(dir);
    vi.spyOn(console, 'log').mockImplementation((line: unknown) => {
      printed.push(String(line));
    });
  });
  afterEach(() => {
    printed = [];
  });
  afterAll(async () => {
    vi.restoreAllMocks();
    process.chdir(cwd);
    await rm(dir, { recursive: true, force: true });
  });

  const ota = (...argv: string[]) => otaCommand.run(argv);

  it('packs an agent folder and a firmware image, inspects and verifies them, and refuses a corrupt or foreign one', async () => {
    const key = ['--key', 'centre.json'];
    expect(
      await ota(
        'pack',
        'agent',
        '--name',
        'citysense-agent',
        '--version',
        '0.2.0',
        '--target',
        'agent',
        ...key,
      ),
    ).toBe(0);
    expect(printed.join('\n')).toMatch(
      /packed agent citysense-agent 0\.2\.0 → .*citysense-agent-0\.2\.0\.csota/,
    );

    const fw = [
      '--name',
      'lamp-gateway-fw',
      '--version',
      '3.1.0',
      '--target',
      'firmware',
      '--hardware',
      'LPG-3,LPG-4',
    ];
    expect(await ota('pack', 'fw.img', ...fw, ...key, '-o', 'fw.csota')).toBe(0);
    printed = [];
    expect(await ota('inspect', 'fw.csota', '--json')).toBe(0);
    expect(JSON.parse(printed.join('\n'))).toMatchObject({
      name: 'lamp-gateway-fw',
      version: '3.1.0',
      target: 'firmware',
      hardware: ['LPG-3', 'LPG-4'],
      payload: { bytes: 100_000 },
      signature: { algorithm: 'ed25519' },
    });

    printed = [];
    expect(await ota('verify', 'citysense-agent-0.2.0.csota', '--trusted-key', 'centre.json')).toBe(0);
    expect(printed[0]).toMatch(/^OK agent citysense-agent 0\.2\.0: .* valid and trusted/);

    await expect(ota('verify', 'fw.csota', '--trusted-key', 'other.json')).rejects.toSatisfy((e) =>
      hasCode(e, 'CS_ERR_OTA_UNTRUSTED_KEY'),
    );
    const file = await open('fw.csota', 'r+');
    const { size } = await file.stat();
    await file.write(Buffer.from([0]), 0, 1, size - 5);
    await file.close();
    await expect(ota('verify', 'fw.csota')).rejects.toSatisfy((e) => hasCode(e, 'CS_ERR_OTA_DIGEST'));

    // A firmware target takes one image, not a folder; an agent folder needs its entry point.
    await expect(
      ota('pack', 'agent', '--name', 'x', '--version', '1.0.0', '--target', 'firmware', ...key),
    ).rejects.toSatisfy((e) => hasCode(e, 'CS_ERR_CONFIG_INVALID'));
    await mkdir('empty-agent');
    await writeFile(join('empty-agent', 'README'), 'nothing to run');
    await expect(
      ota('pack', 'empty-agent', '--name', 'x', '--version', '1.0.0', '--target', 'agent', ...key),
    ).rejects.toSatisfy((e) => hasCode(e, 'CS_ERR_OTA_BUNDLE_INVALID'));
  });
});
