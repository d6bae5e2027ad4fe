import { CitysenseError, errorMessage } from '@citysense/protocol';
import { agencyCommand } from './commands/agency.ts';
import { agentCommand } from './commands/agent.ts';
import { alarmCommand, ruleCommand } from './commands/alarm.ts';
import { algoCommand } from './commands/algo.ts';
import { campaignCommand } from './commands/campaign.ts';
import { demoCommand } from './commands/demo.ts';
import { hubCommand } from './commands/hub.ts';
import { ledgerCommand } from './commands/ledger.ts';
import { nodeCommand } from './commands/node.ts';
import { otaCommand } from './commands/ota.ts';
import { simCommand } from './commands/sim.ts';
import { tokenCommand } from './commands/token.ts';
import { userCommand } from './commands/user.ts';

/** One `citysense` subcommand. */
export interface Command {
  name: string;
  summary: string;
  /** Runs the command; resolves to the process exit code. */
  run(argv: string[]): Promise<number>;
}

const COMMANDS: Command[] = [
  hubCommand,
  agentCommand,
  simCommand,
  demoCommand,
  tokenCommand,
  algoCommand,
  campaignCommand,
  agencyCommand,
  userCommand,
  ledgerCommand,
  nodeCommand,
  otaCommand,
  alarmCommand,
  ruleCommand,
];

function usage(): string {
  const rows = COMMANDS.map((c) => `  ${c.name.padEnd(8)} ${c.summary}`).join('\n');
  return `citysense — IoT and edge sensing runtime for city platforms\n\nUsage: citysense <command> [options]\n\nCommands:\n${rows}\n\nRun 'citysense <command> --help' for the options of one command.`;
}

/** CLI entry: dispatches to a subcommand and turns errors into a message and an exit code. */
export async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (!name || name === '--help' || name === '-h' || name === 'help') {
    console.log(usage());
    return name ? 0 : 2;
  }
  const command = COMMANDS.find((c) => c.name === name);
  if (!command) {
    console.error(`citysense: unknown command "${name}"\n\n${usage()}`);
    return 2;
  }
  try {
    return await command.run(rest);
  } catch (err) {
    if (err instanceof CitysenseError) {
      console.error(`citysense ${name}: ${err.message} [${err.code}]`);
      return err.code === 'CS_ERR_CONFIG_INVALID' ? 2 : 1;
    }
    console.error(`citysense ${name}: ${errorMessage(err)}`);
    return 1;
  }
}
