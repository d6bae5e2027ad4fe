import { existsSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { HubClient } from './hub-client.ts';

/** A simulated gateway ready to run: its agent config and, on first start, an enrolment token. */
export interface PreparedGateway {
  id: string;
  stateDir: string;
  configFile: string;
  config: Record<string, unknown>;
  token: string | undefined;
}

/** Simulated poles along Chang'an Avenue, Beijing (WGS84). */
export function poleLocation(i: number): { lon: number; lat: number } {
  return { lon: +(116.3975 + 0.0021 * i).toFixed(6), lat: 39.9087 };
}

/**
 * Prepares simulated gateway number `i` under `rootDir`: writes its agent config
 * (lamp-pole sensor simulator, plus `extraDrivers`) and creates an enrolment token unless the gateway
 * already has an identity from an earlier run.
 */
export async function prepareGateway(
  client: HubClient,
  hubUrl: string,
  rootDir: string,
  i: number,
  intervalMs: number,
  /** More drivers for this gateway (cameras on its pole), after the sensor simulator. */
  extraDrivers: Array<Record<string, unknown>> = [],
): Promise<PreparedGateway> {
  const id = `pole-${String(i).padStart(3, '0')}`;
  const stateDir = join(rootDir, id);
  await mkdir(stateDir, { recursive: true });
  const location = poleLocation(i);
  const config = {
    hubUrl,
    stateDir,
    poleId: id,
    location,
    healthIntervalMs: 10_000,
    drivers: [
      {
        type: 'lamp-pole-sim',
        id: 'sensors',
        options: { poleId: id, seed: i, intervalMs, longitude: location.lon },
      },
      ...extraDrivers,
    ],
  };
  const configFile = join(stateDir, 'agent.json');
  await writeFile(configFile, JSON.stringify(config, null, 2));
  const token = existsSync(join(stateDir, 'identity.json'))
    ? undefined
    : (await client.createToken({ name: id, expires: '1h' })).token;
  return { id, stateDir, configFile, config, token };
}
