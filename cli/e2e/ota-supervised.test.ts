import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { OTA_ERRORS, packArtifact, readSlotsState } from '@citysense/firmware-ota';
import { afterAll, beforeAll, describe, expect, it, onTestFailed } from 'vitest';
import { centreKey, uploadArtifact } from '../../cloud-hub/src/ota/test-ota.ts';
import { eventually } from '../../cloud-hub/src/testing/eventually.ts';
import { startTestHub, type TestHub } from '../../cloud-hub/src/testing/test-hub.ts';
import { agentBundle } from '../../firmware-ota/src/testing/fixtures.ts';

const CLI = fileURLToPath(new URL('../../bin/citysense.mjs', import.meta.url));

interface CampaignView {
  nodes: Array<{ nodeId: string; state: string; code: string | null; reason: string | null }>;
}

/**
 * The agent's own software, end to end with real processes: `citysense agent --supervise`
 * runs the real agent (factory install), which takes an agent campaign from the real hub,
 * writes the bundle to slot a and exits 75; the supervisor starts the new bundle, which
 * crashes at once, twice; the supervisor rolls back and starts the factory agent again,
 * which reports `rolled-back` with CS_ERR_OTA_CRASH_LOOP to the hub.
 */
describe('supervised agent update', () => {
  let t: TestHub;
  let dir: string;
  let supervisor: ChildProcess | null = null;
  let output = '';

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'citysense-ota-supervised-'));
    t = await startTestHub({ otaCheckIntervalMs: 100 }, join(dir, 'hub'));
  }, 60_000);
  afterAll(async () => {
    if (supervisor && supervisor.exitCode === null) {
      const exited = new Promise((r) => supervisor?.once('exit', r));
      supervisor.kill('SIGTERM');
      const timer = setTimeout(() => supervisor?.kill('SIGKILL'), 10_000);
      await exited;
      clearTimeout(timer);
    }
    await t?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('rolls a crash-looping agent bundle back to the factory agent, which reports it to the hub', async () => {
    const stateDir = join(dir, 'gw');
    const { body } = await t.api<{ token: string }>('POST', '/v1/enrollment-tokens', { name: 'gw-sup' });
    const args = [
      CLI,
      'agent',
      '--supervise',
      '--hub',
      t.httpUrl,
      '--token',
      body.token,
      '--state-dir',
      stateDir,
      '--inference-enabled',
      'false',
      '--ota-max-boots',
      '2',
    ];
    supervisor = spawn(process.execPath, args, {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, VITEST: '', CITYSENSE_LOG_LEVEL: 'info' },
    });
    supervisor.stdout?.on('data', (d: Buffer) => {
      output += d.toString();
    });
    supervisor.stderr?.on('data', (d: Buffer) => {
      output += d.toString();
    });
    onTestFailed(() => {
      process.stderr.write(output.split('\n').slice(-60).join('\n'));
    });

    const identity = await eventually(
      async () => JSON.parse(await readFile(join(stateDir, 'identity.json'), 'utf8')) as { nodeId: string },
      30_000,
      'the supervised agent to enrol',
    );
    const bundle = await agentBundle(dir, 'broken-agent', 'process.exit(1);\n');
    const artifact = join(dir, 'agent-9.0.0.csota');
    await packArtifact(
      { name: 'citysense-agent', version: '9.0.0', target: 'agent' },
      bundle,
      artifact,
      await centreKey(t),
    );
    const uploaded = await uploadArtifact(t, artifact);
    expect(uploaded.status).toBe(201);
    const created = await t.api<{ id: string }>('POST', '/v1/ota/campaigns', {
      artifactId: uploaded.body.id,
      targets: { nodes: [identity.nodeId] },
      canaryShare: 1,
      gate: { minHealthyShare: 1, maxFailed: 0, timeoutMs: 120_000 },
      healthTimeoutSeconds: 60,
    });
    expect(created.status).toBe(201);

    const node = await eventually(
      async () => {
        const view = (await t.api<CampaignView>('GET', `/v1/ota/campaigns/${created.body.id}`)).body;
        const n = view.nodes.find((x) => x.nodeId === identity.nodeId);
        return n?.state === 'rolled-back' ? n : null;
      },
      60_000,
      'the hub to see rolled-back',
    );
    expect(node).toMatchObject({ code: OTA_ERRORS.crashLoop });
    const state = await readSlotsState(stateDir, 'agent');
    expect(state).toMatchObject({ active: null, trial: null, slots: { a: { version: '9.0.0' } } });
    expect(state.outcomes[0]).toMatchObject({ state: 'rolled-back', code: OTA_ERRORS.crashLoop });
    // The supervisor still runs the factory agent.
    expect(supervisor.exitCode).toBeNull();
  });
});
