import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Agent } from '@citysense/edge-agent';
import { afterAll, beforeAll, describe, expect, it, onTestFailed } from 'vitest';
import {
  grantNodes,
  publishReference,
  REFERENCE_ALGORITHM,
} from '../../cloud-hub/src/deployments/test-fleet.ts';
import { eventually } from '../../cloud-hub/src/testing/eventually.ts';
import { startTestHub, type TestHub } from '../../cloud-hub/src/testing/test-hub.ts';
import { startFleetAgent } from './agents.ts';

const SAMPLES = fileURLToPath(new URL('../../algorithms/packages/yolox-nano/samples', import.meta.url));
const FLEET = 20;
/** gw-00 claims a CUDA accelerator whose library is missing: it passes scheduling, its model load fails. */
const BROKEN = 'gw-00';

interface DeploymentView {
  state: string;
  reason: string | null;
  nodes: Array<{ nodeId: string; state: string; activeVersion: string | null; reason: string | null }>;
}

/**
 * A staged rollout of the real YOLOX-nano package over a fleet of real agents
 * (in-process, each with its own identity, spool and model cache) against a real
 * hub: the canary node that cannot load the model is rolled back and the rollout
 * pauses at the gate; after resume the rest of the fleet runs the model and its
 * video analytics land in the hub's detections table.
 */
describe('staged rollout to a fleet of agents', () => {
  let t: TestHub;
  let dir: string;
  const agents: Agent[] = [];

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'citysense-rollout-'));
    t = await startTestHub({}, join(dir, 'hub'));
    await publishReference(t, ['1.0.0']);
    const ids = Array.from({ length: FLEET }, (_, i) => `gw-${String(i).padStart(2, '0')}`);
    await Promise.all(
      ids.map(async (id) => {
        const agent = await startFleetAgent(t, id, dir, {
          pollIntervalMs: 2000,
          statsIntervalMs: 1000,
          executionProviders: id === BROKEN ? ['cuda', 'cpu'] : ['cpu'],
        });
        agents.push(agent);
      }),
    );
    await grantNodes(t, 'district-1', ids, ids);
  }, 120_000);

  afterAll(async () => {
    await Promise.all(agents.map((a) => a.stop()));
    await t?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('rolls back the canary that fails to load, pauses at the gate, then completes after resume', async () => {
    const created = await t.api<{ id: string }>('POST', '/v1/deployments', {
      algorithmId: REFERENCE_ALGORITHM,
      version: '1.0.0',
      targets: { agencies: ['district-1'] },
      sources: [{ id: 'cam-1', url: SAMPLES, fps: 0.5 }],
      rollout: { canaryShare: 0.1, gate: { minActiveShare: 1, maxFailed: 0, timeoutMs: 120_000 } },
    });
    expect(created.status).toBe(201);
    const view = async () => (await t.api<DeploymentView>('GET', `/v1/deployments/${created.body.id}`)).body;
    onTestFailed(async () => {
      const v = await view();
      console.error(
        JSON.stringify({ state: v.state, reason: v.reason, nodes: v.nodes.slice(0, 4) }, null, 1),
      );
      console.error(JSON.stringify(agents[0]?.status(), null, 1).slice(0, 3000));
    });

    // Canary: gw-00 and gw-01 (node-id order). gw-00 cannot load the model on 'cuda'.
    const paused = await eventually(
      async () => ((await view()).state === 'paused' ? view() : undefined),
      60_000,
      'pause',
    );
    const broken = paused.nodes.find((n) => n.nodeId === BROKEN);
    expect(broken?.state).toBe('rolled-back');
    expect(broken?.reason ?? '').toMatch(/CS_ERR_ALGO_MODEL_LOAD|load/i);
    // Nobody outside the canary got the model while the gate was closed.
    const outside = paused.nodes.filter((n) => !['gw-00', 'gw-01'].includes(n.nodeId));
    expect(outside.every((n) => n.state === 'pending' || n.state === 'queued')).toBe(true);

    const resumed = await t.api('POST', `/v1/deployments/${created.body.id}/resume`, {});
    expect(resumed.status).toBe(200);
    const done = await eventually(
      async () => ((await view()).state === 'completed' ? view() : undefined),
      180_000,
      'rollout completed',
    );
    const active = done.nodes.filter((n) => n.state === 'active');
    expect(active).toHaveLength(FLEET - 1);
    expect(active.every((n) => n.activeVersion === '1.0.0')).toBe(true);

    // The hub sees what each node runs, and the detections arrive through the spool.
    const inference = await t.api<unknown>('GET', '/v1/nodes/gw-05/inference');
    expect(JSON.stringify(inference.body)).toContain('1.0.0');
    await eventually(
      async () => {
        const res = await t.api<unknown[]>(
          'GET',
          `/v1/analytics/detections?label=stop%20sign&from=${Date.now() - 600_000}&to=${Date.now() + 60_000}`,
        );
        return res.body.length >= 5;
      },
      60_000,
      'stop signs detected across the fleet',
    );
  }, 300_000);
});
