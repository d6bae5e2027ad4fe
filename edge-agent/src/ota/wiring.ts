/** How the agent host starts its OTA updater: hub client, health probe, NCMD nudges. */
import { commandBootloaderHook, type HealthSample } from '@citysense/firmware-ota';
import { errorMessage, type Logger } from '@citysense/protocol';
import type { AgentConfig } from '../config.ts';
import type { DriverStatus } from '../driver-host.ts';
import type { NodeIdentity } from '../identity-store.ts';
import type { SparkplugUplink } from '../uplink/uplink.ts';
import { AGENT_VERSION } from '../version.ts';
import { OtaClient } from './ota-client.ts';
import { OtaUpdater } from './updater.ts';

/** What the updater needs from the running agent. */
export interface OtaWiring {
  config: Readonly<AgentConfig>;
  identity: NodeIdentity;
  uplink: SparkplugUplink;
  /** The drivers running now (they can be replaced by a remote configuration). */
  drivers: () => DriverStatus[];
  /** When this agent process started, ms since the epoch: acks before it do not count. */
  bootedAt: number;
  /** Asks the host to stop cleanly and start again. */
  requestRestart: (reason: string) => void;
  logger: Logger;
}

/** Health of the running agent as the trial sees it: broker, drivers, an ack since this boot. */
export function agentHealthSample(
  uplink: Pick<SparkplugUplink, 'status'>,
  drivers: DriverStatus[],
  bootedAt: number,
): HealthSample {
  const u = uplink.status();
  return {
    connected: u.connected,
    driversPending: drivers.filter((d) => d.state === 'starting' || d.state === 'stopped').map((d) => d.id),
    driversFaulted: drivers.filter((d) => d.state === 'faulted').map((d) => d.id),
    uplinkAcked: u.lastAckAt !== null && u.lastAckAt >= bootedAt,
  };
}

/**
 * Starts the updater when `ota.enabled`: it polls the enrolled hub with the node's
 * credentials and polls at once on NCMD OTA_REVISION and on every (re)connect.
 * A failing start is logged and the agent runs on without OTA: telemetry matters more.
 */
export async function startOta(w: OtaWiring): Promise<OtaUpdater | null> {
  const { ota } = w.config;
  if (!ota.enabled) return null;
  const updater = new OtaUpdater({
    stateDir: w.config.stateDir,
    client: new OtaClient({
      hubUrl: w.identity.hubUrl,
      nodeId: w.identity.nodeId,
      password: w.identity.mqtt.password,
    }),
    agentVersion: AGENT_VERSION,
    firmwareVersion: ota.firmwareVersion,
    hardwareModel: ota.hardwareModel,
    supervised: ota.supervised,
    runningSlot: ota.slot,
    maxBoots: ota.maxBoots,
    pollIntervalMs: ota.pollIntervalMs,
    probe: () => agentHealthSample(w.uplink, w.drivers(), w.bootedAt),
    bootloader: ota.bootloaderCommand ? commandBootloaderHook(ota.bootloaderCommand) : undefined,
    requestRestart: w.requestRestart,
    backoff: w.config.uplink.backoff,
    logger: w.logger,
  });
  w.uplink.on('otaRevision', () => updater.syncNow('ncmd'));
  w.uplink.on('connected', () => updater.syncNow('connected'));
  try {
    await updater.start();
    return updater;
  } catch (err) {
    w.logger.error({ err: errorMessage(err) }, 'OTA updater failed to start; running without it');
    await updater.stop().catch(() => undefined);
    return null;
  }
}
