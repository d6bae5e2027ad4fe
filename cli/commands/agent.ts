import { Agent, AgentConfig, resolveAgentConfig } from '@citysense/edge-agent';
import { rootLogger } from '@citysense/protocol';
import { loadConfig, optionsOf, parseArgs, renderHelp } from '../config-loader.ts';
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
    const args = parseArgs(argv, agentOptions);
    if (args.help) {
      console.log(
        renderHelp(
          'Usage: citysense agent --hub http://HOST:8080 --token T [options]',
          agentCommand.summary,
          agentOptions,
          '\nDrivers are configured in the JSON config file (`drivers: [{type, id, options}]`); the default is the simulated lamp-pole sensor set.\n',
        ),
      );
      return 0;
    }
    const config = resolveAgentConfig(
      loadConfig<Record<string, unknown>>(AgentConfig, agentOptions, args, process.env),
    );
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
