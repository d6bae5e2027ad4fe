import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Agent, type DriverRegistry, resolveAgentConfig } from '@citysense/edge-agent';
import { OTA_ERRORS, readSlotsState } from '@citysense/firmware-ota';
import { afterAll, beforeAll, describe, expect, it, onTestFailed } from 'vitest';
import { centreKey, packTestArtifact, uploadArtifact } from '../../cloud-hub/src/ota/test-ota.ts';
import { eventually } from '../../cloud-hub/src/testing/eventually.ts';
import { startTestHub, type TestHub } from '../../cloud-hub/src/testing/test-hub.ts';
import { TestDriver } from '../../edge-agent/src/testing/test-driver.ts';

interface CampaignView {
  id: string;
  state: string;
  nodes: Array<{ nodeId: string; state: string; code: string | null; reason: string | null }>;
}

/**
 * A firmware campaign from the real hub to a real agent (in-process): the agent is nudged
 * by NCMD, downloads with Range, verifies against the hub's centre key, writes slot a and
 * restarts into it; the "new firmware" breaks the sensor bus, so the health check never
 * passes and the agent rolls back on its own; the hub sees `rolled-back` and pauses.
 */
describe('OTA campaign against the real hub', () => {
  let t: TestHub;
  let dir: string;
  const running: Agent[] = [];

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'citysense-ota-e2e-'));
    t = await startTestHub({ otaCheckIntervalMs: 100 }, join(dir, 'hub'));
  }, 60_000);
  afterAll(async () => {
    // The hub first: an agent stopping aborts its poll, and an aborted fetch can leave a
    // connection the hub's HTTP server then waits on until its headers timeout.
    await t?.stop();
    for (const a of running) await a.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  function agent(token: string | undefined, sensorBusWorks: boolean): Agent {
    const registry: DriverRegistry = {
      'lamp-pole-sim': ({ id }) =>
        new TestDriver({ id, intervalMs: 50, failStarts: sensorBusWorks ? 0 : 1000 }),
    };
    const a = new Agent(
      resolveAgentConfig({
        hubUrl: t.httpUrl,
        token,
        stateDir: join(dir, 'gw'),
        healthIntervalMs: 500,
        inference: { enabled: false },
        ota: { pollIntervalMs: 600_000, firmwareVersion: '1.0.0', hardwareModel: 'LPG-3' },
        drivers: [{ type: 'lamp-pole-sim', id: 'air', options: {} }],
      }),
      undefined,
      { driverRegistry: registry },
    );
    running.push(a);
    return a;
  }

  it('rolls a firmware that fails its health check back on its own and the hub sees rolled-back', async () => {
    const { body } = await t.api<{ token: string }>('POST', '/v1/enrollment-tokens', { name: 'gw-ota' });
    const first = agent(body.token, true);
    await first.start();
    await eventually(async () => first.status().lastAckAt !== null, 15_000, 'first acks');
    const nodeId = first.status().nodeId ?? '';

    const path = await packTestArtifact(
      dir,
      { name: 'lamp-gateway-fw', version: '2.0.0', target: 'firmware', hardware: ['LPG-3'] },
      await centreKey(t),
      500_000,
    );
    const uploaded = await uploadArtifact(t, path);
    expect(uploaded.status).toBe(201);
    const created = await t.api<CampaignView>('POST', '/v1/ota/campaigns', {
      artifactId: uploaded.body.id,
      targets: { nodes: [nodeId] },
      canaryShare: 1,
      gate: { minHealthyShare: 1, maxFailed: 0, timeoutMs: 60_000 },
      healthTimeoutSeconds: 10,
    });
    expect(created.status).toBe(201);
    const view = async () => (await t.api<CampaignView>('GET', `/v1/ota/campaigns/${created.body.id}`)).body;
    onTestFailed(async () => {
      process.stderr.write(
        `${JSON.stringify(await view(), null, 1)}\n${JSON.stringify(running.at(-1)?.status().ota, null, 1)}\n`,
      );
    });

    // The hub's NCMD reaches the agent (its own poll is 10 minutes away).
    expect(await first.restartRequested()).toMatch(/activate firmware 2\.0\.0/);
    await first.stop();
    expect((await readSlotsState(join(dir, 'gw'), 'firmware')).trial).toMatchObject({ version: '2.0.0' });

    const second = agent(undefined, false);
    await second.start();
    expect(await second.restartRequested()).toMatch(/rolled back \(CS_ERR_OTA_HEALTH_TIMEOUT\)/);
    await eventually(
      async () => (await view()).nodes.find((n) => n.nodeId === nodeId)?.state === 'rolled-back',
      15_000,
      'the hub to see rolled-back',
    );
    const seen = (await view()).nodes.find((n) => n.nodeId === nodeId);
    expect(seen).toMatchObject({ code: OTA_ERRORS.healthTimeout });
    expect(seen?.reason).toMatch(/air/);
    await second.stop();

    const third = agent(undefined, true);
    await third.start();
    expect(third.status().ota?.targets.firmware).toMatchObject({
      runningVersion: '1.0.0',
      slot: null,
      trial: null,
    });
  });
});
