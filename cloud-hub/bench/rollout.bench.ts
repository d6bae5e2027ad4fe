/**
 * Rollout benchmark (`npm run bench:rollout`): a hub and N real agents (in-process,
 * each with its own identity, spool, model cache and ONNX Runtime worker). The
 * reference YOLOX-nano package (3.6 MB model) is published and rolled out with a
 * canary; the clock runs from the deployment's creation to every node reporting
 * `active` (downloaded, SHA-256 and signature verified, loaded, warmed up).
 * Baseline in the same run: the same rollout to a single node.
 *
 *   BENCH_AGENTS=200 npm run bench:rollout
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Agent } from '@citysense/edge-agent';
import { startFleetAgent } from '../../cli/e2e/agents.ts';
import { grantNodes, publishReference, REFERENCE_ALGORITHM } from '../src/deployments/test-fleet.ts';
import { startTestHub, type TestHub } from '../src/testing/test-hub.ts';

const AGENTS = Number(process.env.BENCH_AGENTS ?? 200);
const SAMPLES = fileURLToPath(new URL('../../algorithms/packages/yolox-nano/samples', import.meta.url));

const dir = await mkdtemp(join(tmpdir(), 'citysense-bench-rollout-'));
const agents: Agent[] = [];
let hub: TestHub | undefined;
try {
  hub = await startTestHub({ deploymentCheckIntervalMs: 500 }, join(dir, 'hub'));
  const t = hub;
  await publishReference(t, ['1.0.0']);

  const startAgents = async (ids: string[]) => {
    // Enrol in waves: enrolment signs and writes identities, the hub serialises database writes.
    for (let i = 0; i < ids.length; i += 20) {
      await Promise.all(
        ids.slice(i, i + 20).map(async (id) => {
          agents.push(
            await startFleetAgent(t, id, dir, { pollIntervalMs: 60_000, statsIntervalMs: 60_000 }, 600_000),
          );
        }),
      );
    }
  };

  const rollout = async (agency: string, nodes: string[], canaryShare: number) => {
    await grantNodes(t, agency, nodes, nodes);
    const started = performance.now();
    const created = await t.api<{ id: string }>('POST', '/v1/deployments', {
      algorithmId: REFERENCE_ALGORITHM,
      version: '1.0.0',
      targets: { agencies: [agency] },
      // One frame every 10 s: the bench measures the rollout, not inference.
      sources: [{ id: 'cam-1', url: SAMPLES, fps: 0.1 }],
      rollout: { canaryShare, gate: { minActiveShare: 1, maxFailed: 0, timeoutMs: 600_000 } },
    });
    if (created.status !== 201) throw new Error(`deployment refused: ${JSON.stringify(created.body)}`);
    let canaryAt = 0;
    for (;;) {
      const { body } = await t.api<{ state: string; counts: Record<string, number> }>(
        'GET',
        `/v1/deployments/${created.body.id}`,
      );
      if (!canaryAt && body.state !== 'canary') canaryAt = performance.now();
      if (body.state === 'completed') break;
      if (body.state === 'paused') throw new Error(`rollout paused: ${JSON.stringify(body.counts)}`);
      await new Promise((r) => setTimeout(r, 100));
    }
    const ended = performance.now();
    return { seconds: (ended - started) / 1000, canarySeconds: (canaryAt - started) / 1000 };
  };

  await startAgents(['solo-000']);
  const single = await rollout('bench-solo', ['solo-000'], 1);

  const ids = Array.from({ length: AGENTS }, (_, i) => `node-${String(i).padStart(3, '0')}`);
  const enrolStarted = performance.now();
  await startAgents(ids);
  const enrolSeconds = (performance.now() - enrolStarted) / 1000;
  const fleet = await rollout('bench-fleet', ids, 0.05);

  console.log(
    JSON.stringify(
      {
        bench: 'rollout',
        package: 'yolox-nano 1.0.0 (3.97 MB .csalgo, 3.66 MB model)',
        agents: AGENTS,
        enrolSeconds: +enrolSeconds.toFixed(1),
        singleNodeSeconds: +single.seconds.toFixed(2),
        fleetCanarySeconds: +fleet.canarySeconds.toFixed(2),
        fleetSeconds: +fleet.seconds.toFixed(2),
        nodesActivePerSecond: +(AGENTS / fleet.seconds).toFixed(1),
        fleetVsSingle: +(fleet.seconds / single.seconds).toFixed(1),
        rssMiB: Math.round(process.memoryUsage().rss / 1048576),
      },
      null,
      2,
    ),
  );
  console.log(
    `rollout to ${AGENTS} agents: 100 % active and verified in ${fleet.seconds.toFixed(1)} s (canary gate after ${fleet.canarySeconds.toFixed(1)} s); one node alone: ${single.seconds.toFixed(2)} s`,
  );
} finally {
  await Promise.all(agents.map((a) => a.stop()));
  await hub?.stop();
  await rm(dir, { recursive: true, force: true });
}
