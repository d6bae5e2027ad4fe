import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { hasCode, type OtaManifest } from '@citysense/protocol';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { sha256OfFile } from './artifact.ts';
import { compareSemver } from './compat.ts';
import { OTA_ERRORS } from './errors.ts';
import { BUNDLE_ENTRY, FIRMWARE_IMAGE, SlotStore } from './slots.ts';
import { agentBundle, manifestFor, TSX_LOADER, tarGz, writeTree } from './testing/fixtures.ts';

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'cs-slots-'));
});
afterEach(() => rm(dir, { recursive: true, force: true }));

async function firmwareImage(
  name: string,
  bytes = 200_000,
): Promise<{ path: string; manifest: OtaManifest }> {
  const path = join(dir, `${name}.img`);
  await writeFile(path, randomBytes(bytes));
  const manifest = manifestFor(
    { name: 'lamp-gateway-fw', version: name, target: 'firmware' },
    { bytes, sha256: await sha256OfFile(path) },
  );
  return { path, manifest };
}

async function bundle(version: string, script = 'process.exit(0)\n', extraFiles = 0) {
  const path = await agentBundle(dir, version, script, extraFiles);
  const info = await stat(path);
  const manifest = manifestFor(
    { name: 'citysense-agent', version, target: 'agent' },
    { bytes: info.size, sha256: await sha256OfFile(path) },
  );
  return { path, manifest };
}

const activation = (slot: 'a' | 'b', campaignId = 'c1') => ({
  slot,
  campaignId,
  revision: 1,
  sha256: 'f'.repeat(64),
  healthTimeoutSeconds: 60,
});

describe('A/B slot store', () => {
  it('installs into the inactive slot, confirms, and rolls a failed trial back to the previous slot', async () => {
    const store = new SlotStore({ stateDir: dir, target: 'firmware', factoryVersion: '1.0.0' });
    await store.open();
    expect(store.runningVersion()).toBe('1.0.0');

    const v2 = await firmwareImage('2.0.0');
    expect(await store.install(v2.path, v2.manifest)).toBe('a');
    expect((await readFile(join(store.slotPath('a'), FIRMWARE_IMAGE))).equals(await readFile(v2.path))).toBe(
      true,
    );
    await store.activate(activation('a'));
    expect(store.runningVersion()).toBe('2.0.0');
    expect((await store.bootTrial())?.boots).toBe(1);
    const healthy = await store.confirm();
    expect(healthy).toMatchObject({ state: 'healthy', runningVersion: '2.0.0', slot: 'a', reported: false });
    expect(store.state()).toMatchObject({ active: 'a', lastGood: 'a', trial: null });

    const v3 = await firmwareImage('3.0.0');
    expect(await store.install(v3.path, v3.manifest)).toBe('b');
    await store.activate(activation('b', 'c2'));
    // A second install during the trial is refused.
    await expect(store.install(v3.path, v3.manifest)).rejects.toSatisfy((e) => hasCode(e, OTA_ERRORS.busy));
    const back = await store.rollback({ code: OTA_ERRORS.healthTimeout, reason: 'never healthy' });
    expect(back).toMatchObject({
      state: 'rolled-back',
      version: '3.0.0',
      runningVersion: '2.0.0',
      slot: 'a',
    });

    // A fresh store on the same directory (a restart) sees the same state.
    const again = new SlotStore({ stateDir: dir, target: 'firmware', factoryVersion: '1.0.0' });
    const state = await again.open();
    expect(state).toMatchObject({ active: 'a', lastGood: 'a', trial: null });
    expect(state.outcomes.map((o) => [o.campaignId, o.state])).toEqual([
      ['c1', 'healthy'],
      ['c2', 'rolled-back'],
    ]);
    await again.markReported('c2', 'f'.repeat(64));
    expect(again.outcomeOf('c2', 'f'.repeat(64))?.reported).toBe(true);
  });

  it('extracts an agent bundle into its slot and refuses bundles without an entry, full disks and other targets', async () => {
    const store = new SlotStore({ stateDir: dir, target: 'agent', factoryVersion: '1.0.0' });
    await store.open();
    const good = await bundle('1.1.0', 'console.log("v1.1.0")\n');
    const slot = await store.install(good.path, good.manifest);
    expect(await readFile(join(store.slotPath(slot), BUNDLE_ENTRY), 'utf8')).toContain('v1.1.0');
    expect(store.state().slots.a).toMatchObject({ version: '1.1.0' });

    const before = store.state();
    const noEntry = join(dir, 'no-entry');
    await writeTree(noEntry, { 'README.md': 'no entry point here' });
    const bad = await tarGz(noEntry, join(dir, 'no-entry.tar.gz'));
    await expect(store.install(bad, { ...good.manifest, version: '1.2.0' })).rejects.toSatisfy((e) =>
      hasCode(e, OTA_ERRORS.bundle),
    );
    await writeFile(join(dir, 'junk.tar.gz'), randomBytes(5000));
    await expect(store.install(join(dir, 'junk.tar.gz'), good.manifest)).rejects.toSatisfy((e) =>
      hasCode(e, OTA_ERRORS.bundle),
    );

    const full = new SlotStore({
      stateDir: dir,
      target: 'agent',
      factoryVersion: '1.0.0',
      freeBytes: async () => 1024,
    });
    await full.open();
    await expect(full.install(good.path, good.manifest)).rejects.toSatisfy((e) =>
      hasCode(e, OTA_ERRORS.noSpace),
    );
    const fw = await firmwareImage('9.0.0');
    await expect(store.install(fw.path, fw.manifest)).rejects.toSatisfy((e) =>
      hasCode(e, OTA_ERRORS.incompatible),
    );
    // Refusals change nothing: the installed slot is intact.
    expect(store.state()).toEqual(before);
    expect(await readFile(join(store.slotPath('a'), BUNDLE_ENTRY), 'utf8')).toContain('v1.1.0');
  });

  it('refuses an unreadable slots.json with a code instead of guessing', async () => {
    const store = new SlotStore({ stateDir: dir, target: 'agent', factoryVersion: '1.0.0' });
    await store.open();
    await writeFile(join(store.dir, 'slots.json'), '{"format":1,"target":"agent"}');
    await expect(store.open()).rejects.toSatisfy((e) => hasCode(e, OTA_ERRORS.slotState));
  });

  it('survives kill -9 at any moment of an install: the good slot stays whole, the other is empty or complete', async () => {
    const store = new SlotStore({ stateDir: dir, target: 'agent', factoryVersion: '1.0.0' });
    await store.open();
    const good = await bundle('2.0.0', 'console.log("good")\n');
    await store.install(good.path, good.manifest);
    await store.activate(activation('a'));
    await store.confirm();
    const goodEntry = await readFile(join(store.slotPath('a'), BUNDLE_ENTRY), 'utf8');

    // Many small files make each install take long enough to be killed in every phase.
    const next = await bundle('3.0.0', 'console.log("next")\n', 250);
    const manifestPath = join(dir, 'next.json');
    await writeFile(manifestPath, JSON.stringify(next.manifest));
    const expectedFiles = 250 + 2;
    const child = join(import.meta.dirname, 'testing', 'install-child.ts');
    const seen = new Set<string>();
    for (const delayMs of [0, 40, 150, 400, 800]) {
      const proc: ChildProcess = spawn(
        process.execPath,
        ['--import', TSX_LOADER, child, dir, 'agent', next.path, manifestPath],
        { stdio: ['ignore', 'pipe', 'inherit'] },
      );
      await new Promise<void>((resolve, reject) => {
        proc.stdout?.on('data', (d: Buffer) => {
          if (d.toString().includes('ready')) resolve();
        });
        proc.once('exit', () => reject(new Error('install child exited early')));
      });
      await new Promise((r) => setTimeout(r, delayMs));
      proc.kill('SIGKILL');
      await new Promise((r) => proc.once('exit', r));

      const after = new SlotStore({ stateDir: dir, target: 'agent', factoryVersion: '1.0.0' });
      const state = await after.open();
      expect(state).toMatchObject({ active: 'a', lastGood: 'a', trial: null });
      expect(await readFile(join(after.slotPath('a'), BUNDLE_ENTRY), 'utf8')).toBe(goodEntry);
      const entries = await readdir(after.dir);
      expect(entries.filter((e) => e.startsWith('.'))).toEqual([]);
      if (state.slots.b === null) {
        expect(entries).not.toContain('b');
        seen.add('empty');
      } else {
        expect(state.slots.b.version).toBe('3.0.0');
        expect(await countFiles(after.slotPath('b'))).toBe(expectedFiles);
        seen.add('complete');
      }
    }
    expect(seen.size).toBeGreaterThan(0);

    // The store still works: the interrupted update installs and activates.
    const last = new SlotStore({ stateDir: dir, target: 'agent', factoryVersion: '1.0.0' });
    await last.open();
    expect(await last.install(next.path, next.manifest)).toBe('b');
    await last.activate(activation('b', 'c9'));
    expect(last.runningVersion()).toBe('3.0.0');
  });
});

describe('semver precedence', () => {
  it('orders releases and pre-releases as semver.org §11 does', () => {
    const sorted = [
      '1.0.0-alpha',
      '1.0.0-alpha.1',
      '1.0.0-beta',
      '1.0.0-beta.11',
      '1.0.0-rc.1',
      '1.0.0',
      '1.2.0',
      '1.10.0',
    ];
    for (let i = 1; i < sorted.length; i++)
      expect(compareSemver(sorted[i - 1] ?? '', sorted[i] ?? '')).toBe(-1);
    expect(compareSemver('2.0.0+build.5', '2.0.0')).toBe(0);
  });
});

async function countFiles(root: string): Promise<number> {
  let n = 0;
  for (const e of await readdir(root, { withFileTypes: true, recursive: true })) if (e.isFile()) n++;
  return n;
}
