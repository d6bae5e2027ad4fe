import { fileURLToPath } from 'node:url';
import {
  AGENT_VERSION,
  Agent,
  AgentConfig,
  formatReport,
  resolveAgentConfig,
  runDoctor,
} from '@citysense/edge-agent';
import { AgentSupervisor, OTA_RESTART_EXIT_CODE } from '@citysense/firmware-ota';
import { componentLogger, rootLogger } from '@citysense/protocol';
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
    if (argv.includes('--supervise')) return runSupervisedCommand(argv.filter((a) => a !== '--supervise'));
    const input = readCommandOptions<Record<string, unknown>>(argv, {
      schema: AgentConfig,
      options: agentOptions,
      usage: 'Usage: citysense agent --hub http://HOST:8080 --token T [options]',
      summary: agentCommand.summary,
      extraHelp:
        `  ${'--supervise'.padEnd(34)} run the agent as a child from its active OTA slot, restart it into new slots and roll back failed ones\n` +
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
    // An OTA activation or rollback needs a restart: stop cleanly (spool flushed), then tell the supervisor.
    const why = await Promise.race([stopped.then(() => null), agent.restartRequested()]);
    await agent.stop();
    if (why === null) return 0;
    console.error(`citysense agent: restarting (${why})`);
    return OTA_RESTART_EXIT_CODE;
  },
};

/** This tree's entry point: what the supervisor runs while no OTA slot has been installed (factory install). */
const FACTORY_ENTRY = fileURLToPath(new URL('../../bin/citysense.mjs', import.meta.url));

/**
 * `citysense agent --supervise [agent options]`: runs the agent as a child process from its
 * active OTA slot and plays bootloader for it (firmware-ota/src/supervisor.ts).
 */
async function runSupervisedCommand(argv: string[]): Promise<number> {
  const input = readCommandOptions<Record<string, unknown>>(argv, {
    schema: AgentConfig,
    options: agentOptions,
    usage: 'Usage: citysense agent --supervise --hub http://HOST:8080 --token T [options]',
    summary:
      'run the agent under its OTA supervisor: start it from the active slot, restart it into a new slot, roll back a slot that crash-loops',
  });
  if (!input) return 0;
  const config = resolveAgentConfig(input);
  const supervisor = new AgentSupervisor({
    stateDir: config.stateDir,
    factoryEntry: FACTORY_ENTRY,
    factoryVersion: AGENT_VERSION,
    args: ['agent', ...argv],
    maxBoots: config.ota.maxBoots,
    logger: componentLogger('supervisor', rootLogger),
  });
  await supervisor.start();
  console.error(`citysense agent: supervising the agent, OTA slots in ${config.stateDir}/ota/agent`);
  return Promise.race([supervisor.exited, untilSignal().then(() => supervisor.stop())]);
}

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
