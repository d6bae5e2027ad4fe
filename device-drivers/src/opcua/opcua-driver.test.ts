import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { hasCode } from '@citysense/protocol';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { OpcUaSimulator } from '../../../simulators/src/opcua/opcua-simulator.ts';
import { describeDriverContract } from '../contract.ts';
import type { Driver, DriverFault } from '../driver.ts';
import { nextFault, nextReading } from '../testing/driver-events.ts';
import { OPCUA_ERRORS, OpcUaDriver } from './opcua-driver.ts';
import { convertValue, statusQuality } from './values.ts';

/** The simulator's clock runs an hour behind, so source timestamps cannot be mistaken for arrival times. */
const SOURCE_OFFSET_MS = -3_600_000;

let dir: string;
let simulator: OpcUaSimulator;
const drivers: Driver[] = [];
const simulators: OpcUaSimulator[] = [];

function newSimulator(): OpcUaSimulator {
  const sim = new OpcUaSimulator({
    config: { updateIntervalMs: 50, timeOffsetMs: SOURCE_OFFSET_MS, pkiFolder: join(dir, 'server') },
  });
  simulators.push(sim);
  return sim;
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'cs-opcua-driver-'));
  simulator = newSimulator();
  await simulator.start();
});

afterEach(async () => {
  await Promise.all(drivers.splice(0).map((d) => d.stop()));
});

afterAll(async () => {
  await Promise.all(simulators.map((s) => s.stop()));
  if (dir) await rm(dir, { recursive: true, force: true });
});

function driverOptions(sim: OpcUaSimulator, extra: Record<string, unknown>): Record<string, unknown> {
  return {
    endpointUrl: sim.endpointUrl,
    pkiFolder: join(dir, 'client'),
    publishingIntervalMs: 50,
    samplingIntervalMs: 0,
    connectTimeoutMs: 5000,
    reconnect: { initialDelayMs: 100, maxDelayMs: 400 },
    ...extra,
  };
}

function poleMap(sim: OpcUaSimulator, extraNodes: Record<string, unknown>[] = []): Record<string, unknown> {
  return {
    devices: [
      {
        id: 'pole-0001.plc',
        kind: 'lamp-pole-plc',
        nodes: [
          { nodeId: sim.nodeId('lampPower'), metric: 'Lamp/Power', type: 'double', unit: 'W' },
          { nodeId: sim.nodeId('lampOn'), metric: 'Lamp/On', type: 'bool' },
          {
            nodeId: sim.nodeId('cabinetTemperature'),
            metric: 'Cabinet/Temperature',
            type: 'double',
            unit: 'Cel',
          },
          { nodeId: sim.nodeId('meterEnergy'), metric: 'Meter/Energy', type: 'double', unit: 'kW.h' },
          ...extraNodes,
        ],
      },
    ],
  };
}

function makeDriver(config: Record<string, unknown>): OpcUaDriver {
  const driver = new OpcUaDriver({ id: 'opcua-test', config });
  drivers.push(driver);
  return driver;
}

describe('OpcUaDriver', () => {
  it('maps explicit nodes to readings with the source timestamps and good quality', async () => {
    const driver = makeDriver(driverOptions(simulator, poleMap(simulator)));
    const power = nextReading(driver, (r) => r.metric === 'Lamp/Power');
    const onOff = nextReading(driver, (r) => r.metric === 'Lamp/On');
    await driver.start();
    expect(driver.devices()).toEqual([
      expect.objectContaining({ id: 'pole-0001.plc', kind: 'lamp-pole-plc' }),
    ]);
    const reading = await power;
    expect(reading).toMatchObject({ device: 'pole-0001.plc', quality: 'good' });
    expect(typeof reading.value).toBe('number');
    // Stamped at the PLC (an hour behind here), not on arrival.
    expect(reading.time).toBeLessThan(Date.now() + SOURCE_OFFSET_MS / 2);
    expect(reading.time).toBeGreaterThan(Date.now() + 2 * SOURCE_OFFSET_MS);
    // Every item's current value comes first, the lamp's on/off state included even if it does not change.
    expect(typeof (await onOff).value).toBe('boolean');
  });

  it('browses the pole and names the metrics by their browse paths', async () => {
    const driver = makeDriver(
      driverOptions(simulator, {
        browse: { root: simulator.rootNodeId, maxDepth: 3, kind: 'lamp-pole-plc' },
      }),
    );
    const energy = nextReading(driver, (r) => r.metric === 'Meter/Energy');
    await driver.start();
    const [device] = driver.devices();
    expect(device?.id).toBe('Pole');
    expect(device?.kind).toBe('lamp-pole-plc');
    expect(device?.metrics).toEqual(
      expect.arrayContaining([
        { name: 'Lamp/Power', type: 'double', unit: 'W' },
        { name: 'Lamp/On', type: 'bool', unit: undefined },
        { name: 'Cabinet/Temperature', type: 'double', unit: 'Cel' },
        { name: 'Cabinet/DoorOpen', type: 'bool', unit: undefined },
        { name: 'Meter/Energy', type: 'double', unit: 'kW.h' },
      ]),
    );
    expect(device?.metrics).toHaveLength(5);
    expect(await energy).toMatchObject({ device: 'Pole', quality: 'good' });
  });

  it('reports a Bad status from the PLC as quality bad, then good again', async () => {
    const driver = makeDriver(driverOptions(simulator, poleMap(simulator)));
    await driver.start();
    await nextReading(driver, (r) => r.metric === 'Cabinet/Temperature' && r.quality === 'good');
    const bad = nextReading(driver, (r) => r.metric === 'Cabinet/Temperature' && r.quality === 'bad');
    simulator.injectFault('cabinetTemperature', 'bad');
    try {
      expect(typeof (await bad).value).toBe('number');
    } finally {
      simulator.clearFault('cabinetTemperature');
    }
    await nextReading(driver, (r) => r.metric === 'Cabinet/Temperature' && r.quality === 'good');
  });

  it('faults a node the server does not have while the other nodes keep going', async () => {
    const driver = makeDriver(
      driverOptions(
        simulator,
        poleMap(simulator, [{ nodeId: 'ns=1;s=Pole/Lamp/Colour', metric: 'Lamp/Colour', type: 'string' }]),
      ),
    );
    const fault = nextFault(driver, OPCUA_ERRORS.node);
    await driver.start();
    expect(await fault).toMatchObject({ device: 'pole-0001.plc', code: 'CS_ERR_OPCUA_NODE' });
    expect((await fault).message).toContain('ns=1;s=Pole/Lamp/Colour');
    await nextReading(driver, (r) => r.metric === 'Lamp/Power');
  });

  it('faults once when the server goes away and resumes when it is back on the same port', async () => {
    const sim = newSimulator();
    await sim.start();
    const endpointUrl = sim.endpointUrl;
    const driver = makeDriver(driverOptions(sim, poleMap(sim)));
    const faults: DriverFault[] = [];
    driver.on('fault', (f) => faults.push(f));
    await driver.start();
    await nextReading(driver, (r) => r.metric === 'Lamp/Power');

    const lost = nextFault(driver, OPCUA_ERRORS.unreachable);
    await sim.stop();
    expect((await lost).message).toContain(endpointUrl);

    const resumed = nextReading(driver, (r) => r.metric === 'Lamp/Power', 20_000);
    await sim.start();
    expect(sim.endpointUrl).toBe(endpointUrl);
    expect((await resumed).quality).toBe('good');
    expect(faults.filter((f) => f.code === OPCUA_ERRORS.unreachable)).toHaveLength(1);
  });

  it('rejects start with CS_ERR_OPCUA_SECURITY when the server does not offer the security mode', async () => {
    const driver = makeDriver(
      driverOptions(simulator, {
        ...poleMap(simulator),
        securityMode: 'SignAndEncrypt',
        securityPolicy: 'Basic256Sha256',
      }),
    );
    const err = await driver.start().catch((e: unknown) => e);
    expect(hasCode(err, 'CS_ERR_OPCUA_SECURITY')).toBe(true);
  });

  it('rejects start with CS_ERR_OPCUA_UNREACHABLE when nothing listens', async () => {
    const closed = newSimulator();
    await closed.start();
    const endpointUrl = closed.endpointUrl;
    await closed.stop();
    const driver = makeDriver({ ...driverOptions(simulator, poleMap(simulator)), endpointUrl });
    const err = await driver.start().catch((e: unknown) => e);
    expect(hasCode(err, 'CS_ERR_OPCUA_UNREACHABLE')).toBe(true);
  });

  it('reports every option problem at once', async () => {
    const driver = makeDriver({
      endpointUrl: 'http://plc:4840',
      securityMode: 'Sign',
      devices: [{ id: 'plc', nodes: [{ nodeId: 'Pole/Lamp/Power', metric: 'Power', type: 'float' }] }],
    });
    const err = await driver.start().catch((e: unknown) => e);
    expect(hasCode(err, 'CS_ERR_CONFIG_INVALID')).toBe(true);
    const paths = ((err as { details: { path: string }[] }).details ?? []).map((p) => p.path);
    expect(paths).toEqual(
      expect.arrayContaining(['/endpointUrl', '/devices/0/nodes/0/nodeId', '/devices/0/nodes/0/type']),
    );
  });
});

describe('OPC UA value mapping', () => {
  it('maps status severity to quality (OPC 10000-4 §7.39)', () => {
    expect(statusQuality(0)).toBe('good');
    expect(statusQuality(0x40000000)).toBe('uncertain');
    expect(statusQuality(0x808c0000)).toBe('bad');
  });

  it('converts variant values to the declared metric type', () => {
    expect(convertValue('int', [1, 2])).toBe(2 ** 32 + 2);
    expect(convertValue('bool', 0)).toBe(false);
    expect(convertValue('string', { text: 'on' })).toBe('on');
    expect(convertValue('double', 'x')).toBeUndefined();
  });
});

describeDriverContract('OpcUaDriver against the OPC UA simulator', () =>
  makeDriver(driverOptions(simulator, poleMap(simulator))),
);
