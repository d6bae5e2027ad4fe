/**
 * One real edge agent for the console tests (as edge-agent/src/remote/remote-operations.test.ts
 * starts it): enrolled with a token, connected over MQTT, with a simulated lamp-pole
 * driver, answering remote operations (doctor, log-tail, driver-restart) for real and
 * publishing node health every second so that the health charts have data.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestHub } from '../../cloud-hub/src/testing/test-hub.ts';
import { Agent } from '../../edge-agent/src/agent.ts';
import { resolveAgentConfig } from '../../edge-agent/src/config.ts';
import type { DriverRegistry } from '../../edge-agent/src/driver-host.ts';
import { waitUntil } from '../../edge-agent/src/testing/harness.ts';
import { TestDriver } from '../../edge-agent/src/testing/test-driver.ts';

/** A running agent and its node id. */
export interface RealAgent {
  agent: Agent;
  nodeId: string;
  /** Id of its simulated driver. */
  driverId: string;
  stop(): Promise<void>;
}

const registry: DriverRegistry = {
  'lamp-pole-sim': ({ id, options }) => new TestDriver({ id, intervalMs: 500, ...(options as object) }),
};

/**
 * Starts a real agent named `name` at a position, waits until it is connected and,
 * when `agencyId` is given, adds its node to that agency (keeping the agency's other nodes).
 */
export async function startRealAgent(
  t: TestHub,
  opts: { name: string; agencyId?: string; location?: { lon: number; lat: number } },
): Promise<RealAgent> {
  const dir = await mkdtemp(join(tmpdir(), 'citysense-console-agent-'));
  const created = await t.api<{ token: string }>('POST', '/v1/enrollment-tokens', { name: opts.name });
  if (created.status !== 201) throw new Error(`token: ${JSON.stringify(created.body)}`);
  const driverId = 'pole-sim';
  const agent = new Agent(
    resolveAgentConfig({
      hubUrl: t.httpUrl,
      token: created.body.token,
      stateDir: join(dir, 'state'),
      healthIntervalMs: 1000,
      uplink: { backoff: { initialMs: 100, maxMs: 500 } },
      inference: { enabled: false },
      drivers: [{ type: 'lamp-pole-sim', id: driverId, options: {} }],
      ...(opts.location ? { location: opts.location } : {}),
    }),
    undefined,
    { driverRegistry: registry },
  );
  try {
    await agent.start();
    await waitUntil(() => agent.status().connected, 'agent connected', 30_000);
  } catch (e) {
    await agent.stop();
    await rm(dir, { recursive: true, force: true });
    throw e;
  }
  const nodeId = agent.status().nodeId as string;
  if (opts.agencyId) {
    const agency = await t.api<{ nodes: string[] }>('GET', `/v1/agencies/${opts.agencyId}`);
    const nodes = [...new Set([...(agency.body.nodes ?? []), nodeId])];
    const set = await t.api('PUT', `/v1/agencies/${opts.agencyId}/nodes`, { nodeIds: nodes });
    if (set.status !== 200) throw new Error(`agency nodes: ${JSON.stringify(set.body)}`);
  }
  return {
    agent,
    nodeId,
    driverId,
    async stop() {
      await agent.stop();
      await rm(dir, { recursive: true, force: true });
    },
  };
}
