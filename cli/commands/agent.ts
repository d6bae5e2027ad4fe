import { Agent, AgentConfig, resolveAgentConfig } from '@citysense/edge-agent';
import { rootLogger } from '@citysense/protocol';
import { optionsOf, readCommandOptions } from '../config-loader.ts';
import type { Command } from '../main.ts';
import { untilSignal } from '../signals.ts';

const agentOptions = optionsOf(
  AgentConfig,
  { hubUrl: ['CITYSENSE_HUB'], token: ['CITYSENSE_TOKEN'] },
  { hubUrl: '--hub' },
);

/** `citysense agent`: runs the edge agent of one gateway until SIGINT/SIGTERM. */
export const agentCommand: Command = {
  name: 'agent',
  summary: 'run the edge agent of a gateway (first start: --hub URL --token T enrols it)',
  async run(argv) {
    const input = readCommandOptions<Record<string, unknown>>(argv, {
      schema: AgentConfig,
      options: agentOptions,
      usage: 'Usage: citysense agent --hub http://HOST:8080 --token T [options]',
      summary: agentCommand.summary,
      extraHelp:
        '\nDrivers are configured in the JSON config file (`drivers: [{type, id, options}]`); the default is the simulated lamp-pole sensor set.\n',
    });
    if (!input) return 0;
    const config = resolveAgentConfig(input);
    const agent = new Agent(config, rootLogger);
    const controller = new AbortController();
    const stopped = untilSignal().then(() => controller.abort());
    await agent.start(controller.signal);
    const s = agent.status();
    console.error(`citysense agent: node ${s.nodeId} running, state in ${config.stateDir}`);
    await stopped;
    await agent.stop();
    return 0;
  },
};
