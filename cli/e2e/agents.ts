import { join } from 'node:path';
import { Agent, resolveAgentConfig } from '@citysense/edge-agent';
import type { TestHub } from '../../cloud-hub/src/testing/test-hub.ts';

/**
 * Enrols and starts a real agent in this process for `t` (own identity, spool and
 * model cache under `dir/id`), without drivers: for fleet tests and benchmarks.
 */
export async function startFleetAgent(
  t: TestHub,
  id: string,
  dir: string,
  inference: Record<string, unknown>,
  healthIntervalMs = 60_000,
): Promise<Agent> {
  const { body } = await t.api<{ token: string }>('POST', '/v1/enrollment-tokens', { name: id });
  const agent = new Agent(
    resolveAgentConfig({
      hubUrl: t.httpUrl,
      token: body.token,
      stateDir: join(dir, id),
      drivers: [],
      healthIntervalMs,
      inference,
    }),
  );
  await agent.start();
  return agent;
}
