import { randomBytes } from 'node:crypto';
import { mkdtemp, open, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  type ArtifactDescription,
  FIRMWARE_IMAGE,
  type HealthSample,
  OTA_ERRORS,
  packArtifact,
  readArtifactHead,
  readSlotsState,
} from '@citysense/firmware-ota';
import {
  generateSigningKey,
  type OtaAssignment,
  type OtaStatus,
  rootLogger,
  type SigningKey,
} from '@citysense/protocol';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { waitUntil } from '../testing/harness.ts';
import { OtaClient } from './ota-client.ts';
import { type SeenOtaStatus, TestOtaHub } from './test-ota-hub.ts';
import { OtaUpdater, type OtaUpdaterOptions } from './updater.ts';

const NODE = 'gw-ota-1';
const healthy: HealthSample = { connected: true, driversPending: [], driversFaulted: [], uplinkAcked: true };

describe('OTA updater against a hub on a real HTTP server', () => {
  const hub = new TestOtaHub();
  const key = generateSigningKey('ed25519');
  let dir: string;
  let stateDir: string;
  const running: OtaUpdater[] = [];

  beforeAll(async () => {
    await hub.start();
    hub.credentials.set(NODE, 'node-pw');
  });
  afterAll(() => hub.close());
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'cs-ota-'));
    stateDir = join(dir, 'state');
    hub.statuses.length = 0;
    hub.downloads.length = 0;
    hub.document = null;
  });
  afterEach(async () => {
    for (const u of running.splice(0)) await u.stop();
    await rm(dir, { recursive: true, force: true });
  });

  async function artifact(
    description: Partial<ArtifactDescription> & { version: string },
    signer: SigningKey = key,
    payload: Buffer = randomBytes(700_000),
  ): Promise<string> {
    const payloadPath = join(dir, `payload-${description.version}.img`);
    await writeFile(payloadPath, payload);
    const out = join(dir, `fw-${description.version}-${Math.random().toString(36).slice(2)}.csota`);
    await packArtifact(
      { name: 'lamp-gateway-fw', target: 'firmware', ...description },
      payloadPath,
      out,
      signer,
    );
    return out;
  }

  async function assign(
    path: string,
    campaignId: string,
    over: Partial<OtaAssignment> = {},
  ): Promise<OtaAssignment> {
    const meta = over.version
      ? { name: 'lamp-gateway-fw', target: 'firmware' as const, version: over.version }
      : (await readArtifactHead(path)).manifest;
    const served = await hub.serve(campaignId, path);
    const update: OtaAssignment = {
      campaignId,
      artifactId: served.artifactId,
      name: meta.name,
      version: meta.version,
      target: meta.target,
      sha256: served.sha256,
      bytes: served.bytes,
      filePath: served.filePath,
      healthTimeoutSeconds: 10,
      ...over,
    };
    hub.document = {
      nodeId: NODE,
      revision: (hub.document?.revision ?? 0) + 1,
      updates: [update],
      trustedKeys: [key.publicKey],
    };
    return update;
  }

  /** One "boot" of the agent's updater; `restarts` collects its restart requests. */
  function boot(over: Partial<OtaUpdaterOptions> = {}) {
    const restarts: string[] = [];
    const client = new OtaClient({ hubUrl: hub.url, nodeId: NODE, password: 'node-pw' });
    const updater = new OtaUpdater({
      stateDir,
      client,
      agentVersion: '1.0.0',
      firmwareVersion: '1.0.0',
      hardwareModel: 'LPG-3',
      supervised: false,
      pollIntervalMs: 60_000,
      healthCheckIntervalMs: 20,
      probe: () => healthy,
      requestRestart: (reason) => restarts.push(reason),
      backoff: { initialMs: 20, maxMs: 100 },
      logger: rootLogger,
      ...over,
    });
    running.push(updater);
    return { updater, restarts };
  }

  const final = (campaignId: string) => (s: SeenOtaStatus) =>
    s.campaignId === campaignId && ['healthy', 'failed', 'rolled-back'].includes(s.status.state);

  /** What slots.json says, read without touching it (the updater may be writing). */
  const firmwareState = () => readSlotsState(stateDir, 'firmware');

  it('resumes a dropped download with Range, installs the firmware slot, restarts, and confirms a healthy trial', async () => {
    const path = await artifact({ version: '2.0.0', hardware: ['LPG-3'] });
    const update = await assign(path, 'camp-1');
    hub.cutNextDownloadAfter = 300_000;
    const first = boot();
    await first.updater.start();
    // The first transfer breaks off; the updater retries soon and asks for the rest only.
    await waitUntil(() => first.restarts.length > 0, 'the restart request after activation');
    expect(hub.downloads.map((d) => d.status)).toEqual([200, 206]);
    const resumedFrom = Number(/^bytes=(\d+)-$/.exec(hub.downloads[1]?.range ?? '')?.[1]);
    expect(resumedFrom).toBeGreaterThan(0);
    expect(resumedFrom).toBeLessThanOrEqual(300_000);
    const states = hub.statuses.filter((s) => s.campaignId === 'camp-1').map((s) => s.status.state);
    await waitUntil(() => hub.statuses.some((s) => s.status.state === 'activating'), 'the activating report');
    expect(states[0]).toBe('downloading');
    const progress = hub.statuses.flatMap((s) =>
      s.status.progress === undefined ? [] : [s.status.progress],
    );
    expect(progress.at(-1)).toBe(1);
    let state = await firmwareState();
    expect(state).toMatchObject({
      active: 'a',
      trial: { slot: 'a', version: '2.0.0', campaignId: 'camp-1' },
    });
    const image = await readFile(join(stateDir, 'ota', 'firmware', 'a', FIRMWARE_IMAGE));
    const head = await readArtifactHead(path);
    expect(image.length).toBe(head.manifest.payload.bytes);
    await first.updater.stop();

    // "Reboot": a fresh updater on the same state runs the health check and confirms.
    const second = boot();
    await second.updater.start();
    const done = await hub.waitForStatus(final('camp-1'), 'healthy');
    expect(done.status).toMatchObject({ state: 'healthy', runningVersion: '2.0.0', slot: 'a', revision: 1 });
    state = await firmwareState();
    expect(state).toMatchObject({ active: 'a', lastGood: 'a', trial: null });
    expect(second.restarts).toEqual([]);
    expect(update.sha256).toBe(state.outcomes[0]?.sha256);
    await waitUntil(async () => (await firmwareState()).outcomes[0]?.reported, 'the outcome marked reported');
    // Nothing left in the downloads directory.
    expect(await readdir(join(stateDir, 'ota', 'downloads'))).toEqual([]);
  });

  it('rolls back on its own when the new version never passes its health check, and reports rolled-back', async () => {
    const path = await artifact({ version: '2.0.0' });
    await assign(path, 'camp-good');
    const a = boot();
    await a.updater.start();
    await waitUntil(() => a.restarts.length > 0, 'activation of 2.0.0');
    await a.updater.stop();
    const b = boot();
    await b.updater.start();
    await hub.waitForStatus(final('camp-good'), 'healthy 2.0.0');
    await b.updater.stop();

    const bad = await artifact({ version: '3.0.0' });
    await assign(bad, 'camp-bad');
    const c = boot();
    await c.updater.start();
    await waitUntil(() => c.restarts.length > 0, 'activation of 3.0.0');
    await c.updater.stop();
    expect(await firmwareState()).toMatchObject({ active: 'b', trial: { version: '3.0.0', previous: 'a' } });

    // 3.0.0 boots, but a driver stays faulted and nothing is acked; the clock runs past the deadline.
    const samples: HealthSample[] = [];
    const d = boot({
      probe: () => {
        const s = { connected: true, driversPending: [], driversFaulted: ['air'], uplinkAcked: false };
        samples.push(s);
        return s;
      },
      clock: () => Date.now() + 10_000,
    });
    await d.updater.start();
    const rolled = await hub.waitForStatus(final('camp-bad'), 'rolled-back');
    expect(rolled.status).toMatchObject({
      state: 'rolled-back',
      code: OTA_ERRORS.healthTimeout,
      runningVersion: '2.0.0',
      slot: 'a',
    });
    expect(rolled.status.reason).toMatch(/driver\(s\) faulted: air/);
    await waitUntil(() => d.restarts.length > 0, 'the restart into the previous slot');
    expect(await firmwareState()).toMatchObject({ active: 'a', lastGood: 'a', trial: null });
    await d.updater.stop();

    // After the restart the old version runs and does not install 3.0.0 again.
    const e = boot();
    await e.updater.start();
    const before = hub.downloads.length;
    e.updater.syncNow('test');
    await waitUntil(
      () => hub.documentGets > 0 && e.updater.status().revision === hub.document?.revision,
      'a poll',
    );
    expect(hub.downloads.length).toBe(before);
    expect(e.restarts).toEqual([]);
  });

  it('rolls back a firmware that crash-loops before its health check can pass', async () => {
    const path = await artifact({ version: '2.0.0' });
    await assign(path, 'camp-loop');
    const a = boot({ maxBoots: 2 });
    await a.updater.start();
    await waitUntil(() => a.restarts.length > 0, 'activation');
    await a.updater.stop();
    // Two boots that die before the health check passes (the probe never passes; the agent "crashes").
    for (let i = 0; i < 2; i++) {
      const crash = boot({ maxBoots: 2, probe: () => ({ ...healthy, connected: false }) });
      await crash.updater.start();
      await crash.updater.stop();
    }
    const third = boot({ maxBoots: 2 });
    await third.updater.start();
    const rolled = await hub.waitForStatus(final('camp-loop'), 'rolled-back');
    expect(rolled.status).toMatchObject({
      state: 'rolled-back',
      code: OTA_ERRORS.crashLoop,
      runningVersion: '1.0.0',
    });
    expect(rolled.status.slot).toBeUndefined();
    expect(await firmwareState()).toMatchObject({ active: null, trial: null });
  });

  it('refuses corrupt, unsigned, untrusted and incompatible artifacts with codes and changes nothing', async () => {
    const { updater, restarts } = boot();
    await updater.start();
    const expectFailed = async (campaignId: string, code: string) => {
      updater.syncNow('test');
      const s = await hub.waitForStatus(final(campaignId), `failed ${code}`);
      expect(s.status).toMatchObject({ state: 'failed', code, runningVersion: '1.0.0' });
    };

    // Corrupt: one payload byte flipped after signing (the hub serves the file as it is).
    const corrupt = await artifact({ version: '2.0.1' });
    const { payloadOffset } = await readArtifactHead(corrupt);
    const file = await open(corrupt, 'r+');
    await file.write(Buffer.from([0x5a]), 0, 1, payloadOffset + 10);
    await file.close();
    await assign(corrupt, 'camp-corrupt');
    await expectFailed('camp-corrupt', OTA_ERRORS.digest);

    // Unsigned: the signature section is not a signature.
    const unsigned = join(dir, 'unsigned.csota');
    const good = await readFile(await artifact({ version: '2.0.2' }));
    const text = good.toString('latin1');
    const sigStart = text.indexOf('{"algorithm"');
    const sigEnd = text.indexOf('}', sigStart) + 1;
    const blank = `{${' '.repeat(sigEnd - sigStart - 2)}}`;
    await writeFile(unsigned, Buffer.from(text.slice(0, sigStart) + blank + text.slice(sigEnd), 'latin1'));
    await assign(unsigned, 'camp-unsigned', { version: '2.0.2' });
    await expectFailed('camp-unsigned', OTA_ERRORS.invalid);

    await assign(await artifact({ version: '2.0.3' }, generateSigningKey('sm2-sm3')), 'camp-stranger');
    await expectFailed('camp-stranger', OTA_ERRORS.untrustedKey);

    await assign(await artifact({ version: '2.0.4', hardware: ['LPG-9'] }), 'camp-hw');
    await expectFailed('camp-hw', OTA_ERRORS.incompatible);

    await assign(await artifact({ version: '2.0.5', minAgentVersion: '9.0.0' }), 'camp-old-agent');
    await expectFailed('camp-old-agent', OTA_ERRORS.incompatible);

    // Disk full: refused before the slot is touched.
    await updater.stop();
    const full = boot({ freeBytes: async () => 1000 });
    await full.updater.start();
    await assign(await artifact({ version: '2.0.6' }), 'camp-full');
    full.updater.syncNow('test');
    const s = await hub.waitForStatus(final('camp-full'), 'failed no space');
    expect(s.status).toMatchObject({ state: 'failed', code: OTA_ERRORS.noSpace });

    // An agent update needs the supervisor.
    await assign(
      await artifact({ version: '2.0.7', target: 'agent', name: 'citysense-agent' }),
      'camp-agent',
    );
    full.updater.syncNow('test');
    const u = await hub.waitForStatus(final('camp-agent'), 'failed unsupervised');
    expect(u.status).toMatchObject({ state: 'failed', code: OTA_ERRORS.unsupervised });

    expect(restarts).toEqual([]);
    expect(full.restarts).toEqual([]);
    const state = await firmwareState();
    expect(state).toMatchObject({ active: null, lastGood: null, trial: null, slots: { a: null, b: null } });
    await expect(stat(join(stateDir, 'ota', 'firmware', 'a'))).rejects.toThrow();
    const states = new Set(hub.statuses.map((x) => x.status.state as OtaStatus['state']));
    expect(states.has('activating')).toBe(false);
  });
});
