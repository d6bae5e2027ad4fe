/** How the agent starts its remote-operations part; kept here so that agent.ts only calls two functions. */
import { CitysenseError, errorMessage, type Logger } from '@citysense/protocol';
import { type AgentConfig, type DriverConfig, resolveAgentConfig } from '../config.ts';
import type { DriverHost, DriverRegistry } from '../driver-host.ts';
import type { NodeIdentity } from '../identity-store.ts';
import type { SparkplugUplink } from '../uplink/uplink.ts';
import { RemoteConfigStore } from './config-store.ts';
import type { LogRing } from './log-ring.ts';
import { OperationsClient } from './operations-client.ts';
import { RemoteOperations } from './remote-operations.ts';

/**
 * The configuration to start with: the local one, with the drivers of the remote
 * configuration the hub pushed last (or of the last good one, when the agent died while
 * a new version was on probation). A broken state file is logged and the local
 * configuration runs: the node must come up whatever the file says.
 */
export async function startConfig(
  local: Readonly<AgentConfig>,
  log: Logger,
): Promise<{ config: Readonly<AgentConfig>; version: number | null }> {
  try {
    const pushed = await new RemoteConfigStore(local.stateDir).forStart();
    if (!pushed) return { config: local, version: null };
    const config = resolveAgentConfig({ ...local, drivers: structuredClone(pushed.config.drivers) });
    log.info({ configVersion: pushed.version }, 'running the remote configuration pushed by the hub');
    return { config, version: pushed.version };
  } catch (err) {
    log.error({ err: errorMessage(err) }, 'remote configuration unusable; running the local configuration');
    return { config: local, version: null };
  }
}

/** What the agent hands over to start remote operations. */
export interface RemoteWiring {
  /** The agent's running state: the current config and driver host (both replaced by a config change). */
  run: { config: Readonly<AgentConfig>; drivers: DriverHost | null };
  identity: NodeIdentity;
  uplink: SparkplugUplink;
  registry: DriverRegistry;
  logs: LogRing;
  configVersion: number | null;
  replaceDrivers: (drivers: readonly DriverConfig[]) => Promise<void>;
  /** Poll period without a nudge; default 30 s. */
  pollIntervalMs?: number | undefined;
  logger: Logger;
}

/** Creates and starts the executor; it polls at once, on every NCMD nudge and on every reconnect. */
export async function startRemoteOperations(w: RemoteWiring): Promise<RemoteOperations> {
  const remote = new RemoteOperations({
    client: new OperationsClient({
      hubUrl: w.identity.hubUrl,
      nodeId: w.identity.nodeId,
      password: w.identity.mqtt.password,
    }),
    control: {
      config: () => w.run.config,
      registry: w.registry,
      drivers: () => w.run.drivers?.status() ?? [],
      restartDriver: async (id) => {
        if (!w.run.drivers)
          throw new CitysenseError(
            'CS_ERR_DRIVER_BUSY',
            'drivers are being replaced by a configuration change; try again',
            409,
          );
        await w.run.drivers.restart(id);
      },
      replaceDrivers: w.replaceDrivers,
      connected: () => w.uplink.status().connected,
    },
    logs: w.logs,
    store: new RemoteConfigStore(w.run.config.stateDir),
    pollIntervalMs: w.pollIntervalMs,
    logger: w.logger,
  });
  w.uplink.on('operationsRevision', () => remote.pollNow('ncmd'));
  w.uplink.on('connected', () => remote.pollNow('connected'));
  await remote.start(w.configVersion);
  return remote;
}
