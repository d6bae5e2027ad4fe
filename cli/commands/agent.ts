import { Agent, AgentConfig, formatReport, resolveAgentConfig, runDoctor } from '@citysense/edge-agent';
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
  summary:
    'run the edge agent of a gateway (first start: --hub URL --token T enrols it); `agent doctor` diagnoses it',
  async run(argv) {
    if (argv[0] === 'doctor') return runDoctorCommand(argv.slice(1));
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

/** `citysense agent doctor [--json]`: self-diagnosis of the gateway; exit 1 when a check failed. */
async function runDoctorCommand(argv: string[]): Promise<number> {
  const json = argv.includes('--json');
  const input = readCommandOptions<Record<string, unknown>>(
    argv.filter((a) => a !== '--json'),
    {
      schema: AgentConfig,
      options: agentOptions,
      usage: 'Usage: citysense agent doctor --config agent.json [--json] [options]',
      summary:
        'check hub, broker credentials, clock, disk, spool, drivers, cameras and ONNX Runtime of this gateway; exits 1 when a check failed',
      extraHelp: `  ${'--json'.padEnd(34)} print the report as JSON\n`,
    },
  );
  if (!input) return 0;
  const report = await runDoctor(resolveAgentConfig(input));
  process.stdout.write(json ? `${JSON.stringify(report, null, 2)}\n` : formatReport(report));
  return report.healthy ? 0 : 1;
}
