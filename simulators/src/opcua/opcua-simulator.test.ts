import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadNodeOpcua } from '@citysense/device-drivers';
import { hasCode, rootLogger } from '@citysense/protocol';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SeededRandom } from '../random.ts';
import { OpcUaSimulator } from './opcua-simulator.ts';
import { LampPolePlc } from './plc.ts';

const HOUR_MS = 3_600_000;
let dir: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'cs-opcua-sim-'));
});

afterAll(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe('LampPolePlc', () => {
  it('lights the lamp at night, meters energy monotonically and keeps the cabinet plausible', () => {
    const plc = new LampPolePlc(new SeededRandom(7), 116.4);
    // 2024-06-01 00:00 local solar time at 116.4°E is 16:14 UTC the day before.
    const start = Date.UTC(2024, 4, 31, 16, 14);
    let energy = Number.NEGATIVE_INFINITY;
    const byHour = new Map<number, { on: boolean; power: number }>();
    for (let t = start; t < start + 24 * HOUR_MS; t += 60_000) {
      const v = plc.step(t);
      expect(v.meterEnergy).toBeGreaterThanOrEqual(energy);
      energy = v.meterEnergy;
      expect(v.cabinetTemperature).toBeGreaterThan(-10);
      expect(v.cabinetTemperature).toBeLessThan(70);
      byHour.set(Math.floor((t - start) / HOUR_MS), { on: v.lampOn, power: v.lampPower });
    }
    expect(byHour.get(12)).toMatchObject({ on: false });
    expect(byHour.get(12)?.power).toBeLessThan(5);
    expect(byHour.get(22)).toMatchObject({ on: true });
    expect(byHour.get(22)?.power).toBeGreaterThan(100);
    // Dimmed to 60 % after 01:00.
    expect(byHour.get(3)?.power).toBeGreaterThan(60);
    expect(byHour.get(3)?.power).toBeLessThan(80);
  });
});

describe('OpcUaSimulator', () => {
  it('serves the pole variables, restarts on the same port, and flags an injected fault Bad', async () => {
    const sim = new OpcUaSimulator({ config: { updateIntervalMs: 20, pkiFolder: join(dir, 'pki') } });
    expect(() => sim.endpointUrl).toThrow(/start the OPC UA simulator/);
    await Promise.all([sim.start(), sim.start()]);
    await sim.start();
    const opcua = await loadNodeOpcua(rootLogger);
    const client = opcua.OPCUAClient.create({
      endpointMustExist: false,
      connectionStrategy: { maxRetry: 0 },
      clientCertificateManager: new opcua.OPCUACertificateManager({ rootFolder: join(dir, 'client') }),
    });
    try {
      await client.connect(sim.endpointUrl);
      const session = await client.createSession();
      const power = await session.read({
        nodeId: sim.nodeId('lampPower'),
        attributeId: opcua.AttributeIds.Value,
      });
      expect(power.statusCode.isGood()).toBe(true);
      expect(typeof power.value.value).toBe('number');
      expect(power.sourceTimestamp?.getTime()).toBeGreaterThan(Date.now() - 60_000);
      const door = await session.read({
        nodeId: sim.nodeId('cabinetDoorOpen'),
        attributeId: opcua.AttributeIds.Value,
      });
      expect(typeof door.value.value).toBe('boolean');

      sim.injectFault('lampPower', 'bad');
      const bad = await session.read({
        nodeId: sim.nodeId('lampPower'),
        attributeId: opcua.AttributeIds.Value,
      });
      expect(bad.statusCode.isBad()).toBe(true);
      sim.clearFault('lampPower');
      await session.close();
    } finally {
      await client.disconnect();
    }
    const url = sim.endpointUrl;
    await Promise.all([sim.stop(), sim.stop()]);
    await sim.start();
    expect(sim.endpointUrl).toBe(url);
    await sim.stop();
    await sim.stop();
  });

  it('rejects start with an aborted signal and bad options with CS_ERR_CONFIG_INVALID', async () => {
    const aborted = new AbortController();
    aborted.abort();
    await expect(new OpcUaSimulator().start(aborted.signal)).rejects.toMatchObject({
      code: 'CS_ERR_ABORTED',
    });
    const err = await new OpcUaSimulator({ config: { port: -1 } }).start().catch((e: unknown) => e);
    expect(hasCode(err, 'CS_ERR_CONFIG_INVALID')).toBe(true);
  });
});
