import { Hub, type HubConfig, HubConfigSchema } from '@citysense/cloud-hub';
import { rootLogger } from '@citysense/protocol';
import { loadConfig, optionsOf, parseArgs, renderHelp } from '../config-loader.ts';
import type { Command } from '../main.ts';
import { untilSignal } from '../signals.ts';

/** Flags and env variables of `citysense hub`. */
export const hubOptions = optionsOf(HubConfigSchema, {
  databaseUrl: ['DATABASE_URL'],
  mqttUrl: ['MQTT_URL'],
  adminToken: ['CITYSENSE_ADMIN_TOKEN'],
});

/** Loads and validates the hub configuration from argv and env. */
export function hubConfigFrom(
  argv: string[],
  env: NodeJS.ProcessEnv = process.env,
): { config: HubConfig; help: boolean } {
  const args = parseArgs(argv, hubOptions);
  if (args.help) return { config: {} as HubConfig, help: true };
  return { config: loadConfig<HubConfig>(HubConfigSchema, hubOptions, args, env), help: false };
}

/** `citysense hub`: runs the hub until SIGINT/SIGTERM. */
export const hubCommand: Command = {
  name: 'hub',
  summary: 'run the hub: HTTP API, MQTT broker (embedded or external), storage',
  async run(argv) {
    const { config, help } = hubConfigFrom(argv);
    if (help) {
      console.log(renderHelp('Usage: citysense hub [options]', hubCommand.summary, hubOptions));
      return 0;
    }
    const hub = new Hub(config, rootLogger);
    const endpoints = await hub.start();
    console.log(`citysense hub ready
  API        ${endpoints.httpUrl}/v1   (docs ${endpoints.httpUrl}/docs)
  MQTT       ${endpoints.mqttUrl}${config.mqttUrl ? ' (external)' : ` and ws://localhost:${config.httpPort}/mqtt`}
  database   ${hub.db.features.engine}${hub.db.features.timescale ? '' : ' (no TimescaleDB)'}
  admin token ${endpoints.adminToken.source === 'config' ? '(from configuration)' : `${endpoints.adminToken.token}  (stored in ${endpoints.adminToken.path})`}`);
    await untilSignal();
    console.log('stopping hub...');
    await hub.stop();
    return 0;
  },
};
