import { resolve } from 'node:path';
import { Agent, resolveAgentConfig } from '@citysense/edge-agent';
import { rootLogger } from '@citysense/protocol';
import { Type } from '@sinclair/typebox';
import { optionsOf, readCommandOptions } from '../config-loader.ts';
import { prepareGateway } from '../fleet.ts';
import { HubClient } from '../hub-client.ts';
import type { Command } from '../main.ts';
import { untilSignal } from '../signals.ts';
import { adminTokenFrom } from './token.ts';

const SimOptionsSchema = Type.Object({
  hub: Type.String({ default: 'http://localhost:8080', pattern: '^https?://', description: 'hub URL' }),
  adminToken: Type.Optional(
    Type.String({ description: 'admin token, to create enrolment tokens (default: <data-dir>/admin-token)' }),
  ),
  dataDir: Type.String({ default: './data', description: "the hub's data dir, to read its admin token" }),
  stateDir: Type.String({
    default: './data/sim',
    description: 'state (identity, spool) of the simulated gateways',
  }),
  gateways: Type.Integer({
    minimum: 1,
    maximum: 1000,
    default: 10,
    description: 'number of simulated gateways',
  }),
  intervalMs: Type.Integer({ minimum: 100, default: 5000, description: 'sensor sampling interval' }),
});
type SimOptions = {
  hub: string;
  adminToken?: string;
  dataDir: string;
  stateDir: string;
  gateways: number;
  intervalMs: number;
};
const simOptions = optionsOf(SimOptionsSchema, {
  adminToken: ['CITYSENSE_ADMIN_TOKEN'],
  hub: ['CITYSENSE_HUB'],
});

/** `citysense sim`: a fleet of simulated lamp-pole gateways in one process, each a full agent. */
export const simCommand: Command = {
  name: 'sim',
  summary: 'run a fleet of simulated lamp-pole gateways (full agents) in one process against a hub',
  async run(argv) {
    const o = readCommandOptions<SimOptions>(argv, {
      schema: SimOptionsSchema,
      options: simOptions,
      usage: 'Usage: citysense sim --hub URL [--gateways N] [options]',
      summary: simCommand.summary,
    });
    if (!o) return 0;
    const client = new HubClient(o.hub, adminTokenFrom(o));
    const controller = new AbortController();
    const agents: Agent[] = [];
    for (let i = 1; i <= o.gateways; i++) {
      const g = await prepareGateway(client, o.hub, resolve(o.stateDir), i, o.intervalMs);
      const agent = new Agent(resolveAgentConfig({ ...g.config, token: g.token }), rootLogger);
      await agent.start(controller.signal);
      agents.push(agent);
    }
    console.error(`citysense sim: ${agents.length} simulated gateways streaming to ${o.hub}; Ctrl-C stops`);
    await untilSignal();
    controller.abort();
    await Promise.all(agents.map((a) => a.stop()));
    return 0;
  },
};
