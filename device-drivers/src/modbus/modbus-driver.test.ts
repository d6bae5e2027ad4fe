import { createServer, type Socket, connect as tcpConnect } from 'node:net';
import { hasCode } from '@citysense/protocol';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { ModbusSimulator } from '../../../simulators/src/modbus/simulator.ts';
import { describeDriverContract } from '../contract.ts';
import type { DriverFault, Reading } from '../driver.ts';
import { nextBatch, nextFault } from '../testing/driver-events.ts';
import type { ModbusDeviceConfig } from './config.ts';
import { MODBUS_ERRORS } from './errors.ts';
import { ModbusDriver } from './modbus-driver.ts';

const simulator = new ModbusSimulator();
const drivers: ModbusDriver[] = [];

beforeAll(() => simulator.start());
afterAll(() => simulator.stop());
afterEach(async () => {
  await Promise.all(drivers.splice(0).map((d) => d.stop()));
  simulator.clearFaults();
  await simulator.start();
});

function devices(overrides: Partial<ModbusDeviceConfig> = {}): ModbusDeviceConfig[] {
  return simulator.registerMaps({ pollIntervalMs: 20, timeoutMs: 300, ...overrides });
}

function makeDriver(deviceList: unknown[] = devices(), extra: Record<string, unknown> = {}): ModbusDriver {
  const driver = new ModbusDriver({
    id: 'modbus-test',
    config: {
      host: simulator.host,
      port: simulator.port,
      reconnect: { initialDelayMs: 20, maxDelayMs: 200 },
      devices: deviceList,
      ...extra,
    },
  });
  drivers.push(driver);
  return driver;
}

const readingsOf = (driver: ModbusDriver, device: string) => nextBatch(driver, (r) => r.device === device);
const faultOf = (driver: ModbusDriver, code: string) => nextFault(driver, code, 5000);

function values(batch: Reading[], device: string): Record<string, Reading['value']> {
  return Object.fromEntries(batch.filter((r) => r.device === device).map((r) => [r.metric, r.value]));
}

describe('ModbusDriver against the simulator', () => {
  it('decodes every unit per its register map into plausible, typed readings', async () => {
    const driver = makeDriver();
    const meter = readingsOf(driver, 'pole-meter');
    const level = readingsOf(driver, 'drain-level');
    const cabinet = readingsOf(driver, 'cabinet');
    await driver.start();
    const types = new Map(
      driver.devices().flatMap((d) => d.metrics.map((m) => [`${d.id}/${m.name}`, m.type])),
    );
    expect(types.get('pole-meter/Power/Voltage')).toBe('double');
    expect(types.get('drain-level/Sensor/Samples')).toBe('int');
    expect(types.get('cabinet/Cabinet/DoorOpen')).toBe('bool');

    const m = values(await meter, 'pole-meter');
    expect(m['Power/Voltage']).toBeGreaterThan(200); // float32 ABCD, input
    expect(m['Power/Voltage']).toBeLessThan(260);
    expect(m['Power/Current']).toBeGreaterThan(0);
    expect(m['Power/Current']).toBeLessThan(6);
    expect(m['Power/Frequency']).toBeCloseTo(50, 0);
    expect(m['Power/Factor']).toBeGreaterThanOrEqual(0.85); // float32 CDAB, holding
    expect(m['Power/Factor']).toBeLessThanOrEqual(0.99);
    expect(m['Power/Energy']).toBeGreaterThan(1234); // float32 CDAB
    expect(Number(m['Power/EnergyWh']) / 1000).toBeCloseTo(Number(m['Power/Energy']), 0); // float64 DCBA
    expect(m['Config/CurrentLimit']).toBeCloseTo(6, 9); // uint16 scaled

    const w = values(await level, 'drain-level');
    expect(w['Water/Level']).toBeGreaterThanOrEqual(0.05); // int16 * 0.001
    expect(w['Water/Level']).toBeLessThanOrEqual(1.8);
    expect(w['Water/Temperature']).toBeGreaterThan(5); // int16 BADC * 0.1
    expect(w['Water/Temperature']).toBeLessThan(35);
    expect(w['Sensor/Samples']).toBeGreaterThan(0); // uint32 DCBA: unsigned, no sign flip
    expect(w['Sensor/Offset']).toBe(-125); // int32 CDAB

    const c = values(await cabinet, 'cabinet');
    expect(typeof c['Cabinet/DoorOpen']).toBe('boolean'); // discrete
    expect(c['Cabinet/Flooded']).toBe(false);
    expect(typeof c['Cabinet/Fan']).toBe('boolean'); // coil
    expect(c['Cabinet/Temperature']).toBeGreaterThan(15);
  });

  it('reports a wrong register map as CS_ERR_MODBUS_EXCEPTION while the other devices keep polling', async () => {
    const wrong = {
      id: 'wrong-map',
      unitId: 2,
      pollIntervalMs: 20,
      timeoutMs: 300,
      registers: [
        { metric: 'Water/Level', table: 'holding', address: 0, type: 'int16', scale: 0.001 },
        // The sensor has nothing at 4000: a map written for another model.
        { metric: 'Water/Flow', table: 'holding', address: 4000, type: 'float32' },
      ],
    };
    const driver = makeDriver([...devices(), wrong]);
    const faults: DriverFault[] = [];
    driver.on('fault', (f) => faults.push(f));
    const fault = faultOf(driver, MODBUS_ERRORS.exception);
    await driver.start();
    expect(await fault).toMatchObject({
      device: 'wrong-map',
      message: expect.stringMatching(/exception 2 \(illegal data address\)/),
    });
    // The good block of the same unit, and the other units, still report.
    const batch = await nextBatch(driver, (r) => r.device === 'wrong-map');
    expect(values(batch, 'wrong-map')).toHaveProperty('Water/Level');
    expect(values(batch, 'wrong-map')).not.toHaveProperty('Water/Flow');
    await readingsOf(driver, 'pole-meter');
    await readingsOf(driver, 'pole-meter');
    // Once per episode, not once per poll.
    expect(faults.filter((f) => f.code === MODBUS_ERRORS.exception)).toHaveLength(1);
  });

  it('reports an exception range the device returns at run time', async () => {
    const driver = makeDriver();
    await driver.start();
    await readingsOf(driver, 'pole-meter');
    const fault = faultOf(driver, MODBUS_ERRORS.exception);
    simulator.failRange(1, 'holding', 100, 103, 4);
    expect(await fault).toMatchObject({
      device: 'pole-meter',
      message: expect.stringMatching(/exception 4/),
    });
    simulator.clearFaults();
    await nextBatch(driver, (r) => r.metric === 'Power/Energy');
  });

  it('reports a silent unit as CS_ERR_MODBUS_TIMEOUT while the other units keep polling', async () => {
    const driver = makeDriver(devices({ timeoutMs: 150 }));
    await driver.start();
    await readingsOf(driver, 'cabinet');
    const fault = faultOf(driver, MODBUS_ERRORS.timeout);
    simulator.silence(3);
    expect(await fault).toMatchObject({ device: 'cabinet', message: expect.stringMatching(/unit 3/) });
    // The others on the same connection go on.
    await readingsOf(driver, 'pole-meter');
    await readingsOf(driver, 'drain-level');
    simulator.silence(3, false);
    await readingsOf(driver, 'cabinet');
  });

  it('reports CS_ERR_MODBUS_UNREACHABLE once per outage and resumes when the server is back on its port', async () => {
    const driver = makeDriver();
    const faults: DriverFault[] = [];
    driver.on('fault', (f) => faults.push(f));
    await driver.start();
    await readingsOf(driver, 'pole-meter');
    const lost = faultOf(driver, MODBUS_ERRORS.unreachable);
    await simulator.stop();
    expect((await lost).message).toMatch(/connection lost/);
    // Several refused reconnects later, still one fault.
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(faults.filter((f) => f.code === MODBUS_ERRORS.unreachable)).toHaveLength(1);
    await simulator.start();
    await readingsOf(driver, 'pole-meter');
    await readingsOf(driver, 'cabinet');
  });

  it('notices a connection reset by the peer (no clean close) and reconnects', async () => {
    // A TCP proxy in front of the simulator that can reset its client sockets, as a PLC that reboots does.
    const sockets = new Set<Socket>();
    const proxy = createServer((client) => {
      const upstream = tcpConnect(simulator.port, simulator.host);
      sockets.add(client);
      client.pipe(upstream).pipe(client);
      const forget = () => {
        sockets.delete(client);
        upstream.destroy();
        client.destroy();
      };
      client.on('error', forget).on('close', forget);
      upstream.on('error', forget).on('close', forget);
    });
    await new Promise<void>((resolve) => proxy.listen(0, '127.0.0.1', resolve));
    try {
      const address = proxy.address();
      if (!address || typeof address === 'string') throw new Error('proxy has no port');
      const driver = makeDriver(devices(), { host: '127.0.0.1', port: address.port });
      await driver.start();
      await readingsOf(driver, 'pole-meter');
      const lost = faultOf(driver, MODBUS_ERRORS.unreachable);
      for (const socket of sockets) socket.resetAndDestroy();
      expect((await lost).message).toMatch(/connection lost/);
      await readingsOf(driver, 'pole-meter');
    } finally {
      for (const socket of sockets) socket.destroy();
      await new Promise((resolve) => proxy.close(resolve));
    }
  });

  it('reports a server that is not there at start as unreachable, without failing start', async () => {
    const driver = makeDriver(devices(), { port: 1 });
    const fault = faultOf(driver, MODBUS_ERRORS.unreachable);
    await driver.start();
    expect((await fault).message).toMatch(/127\.0\.0\.1:1 is unreachable/);
  });

  it('writes holding registers scaled per the map and coils, and refuses read-only tables', async () => {
    const driver = makeDriver();
    await driver.start();
    await readingsOf(driver, 'pole-meter');
    await driver.write('pole-meter', 'Config/CurrentLimit', 4.25);
    expect(simulator.value(1, 'Config/CurrentLimit')).toBeCloseTo(4.25, 9);
    await driver.write('cabinet', 'Cabinet/Fan', true);
    expect(simulator.value(3, 'Cabinet/Fan')).toBe(true);
    await expect(driver.write('pole-meter', 'Power/Voltage', 1)).rejects.toThrow(/read-only/);
    await expect(driver.write('pole-meter', 'Power/Energy', 1)).rejects.toThrow(/exception 2/);
    await expect(driver.write('pole-meter', 'Config/CurrentLimit', 1e9)).rejects.toSatisfy((e) =>
      hasCode(e, MODBUS_ERRORS.write),
    );
  });

  it('says clearly that Modbus RTU needs a serial port', async () => {
    const driver = makeDriver(devices(), { transport: 'rtu', serialPort: '/dev/ttyNOPE0' });
    await expect(driver.start()).rejects.toSatisfy(
      (e) => hasCode(e, MODBUS_ERRORS.rtuUnavailable) && /needs a serial port/.test(String(e)),
    );
  });
});

describeDriverContract('ModbusDriver + ModbusSimulator', () => makeDriver(devices({ pollIntervalMs: 10 })));
