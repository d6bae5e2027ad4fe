import { hasCode } from '@citysense/protocol';
import mqtt, { type MqttClient } from 'mqtt';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { mqttSensorSimulatorMappings } from '../../../simulators/src/mqtt-sensors/mappings.ts';
import { MqttSensorSimulator, type SimulatedUplink } from '../../../simulators/src/mqtt-sensors/simulator.ts';
import { describeDriverContract } from '../contract.ts';
import type { DriverFault, Reading } from '../driver.ts';
import { nextFault } from '../testing/driver-events.ts';
import { MQTT_SENSOR_ERRORS, MqttSensorDriver } from './mqtt-sensor-driver.ts';
import { TestBroker } from './test-broker.ts';

const IMEI = '866207059412345';
const DEV_EUI = '70b3d57ed0041234';
const SIM = { manholes: [IMEI], waterLevels: [DEV_EUI], meters: ['MTR-0001'], applicationId: '1' };

const broker = new TestBroker();
const drivers: MqttSensorDriver[] = [];
const clients: MqttClient[] = [];
const simulators: MqttSensorSimulator[] = [];

beforeAll(() => broker.start());
afterEach(async () => {
  await Promise.all(drivers.splice(0).map((d) => d.stop()));
  await Promise.all(simulators.splice(0).map((s) => s.stop()));
  await Promise.all(clients.splice(0).map((c) => c.endAsync(true)));
  await broker.start();
});
afterAll(() => broker.stop());

function makeDriver(overrides: Record<string, unknown> = {}): MqttSensorDriver {
  const driver = new MqttSensorDriver({
    id: 'mqtt-test',
    config: {
      url: broker.url,
      reconnectPeriodMs: 100,
      mappings: mqttSensorSimulatorMappings(SIM),
      ...overrides,
    },
  });
  drivers.push(driver);
  return driver;
}

async function publisher(): Promise<MqttClient> {
  const client = await mqtt.connectAsync(broker.url, { reconnectPeriod: 0 });
  clients.push(client);
  return client;
}

async function publish(client: MqttClient, uplinks: SimulatedUplink[]): Promise<void> {
  for (const u of uplinks) await client.publishAsync(u.topic, u.payload, { qos: 1 });
}

/** Collects readings until `done` says enough, or rejects after `timeoutMs`. */
function collect(
  driver: MqttSensorDriver,
  done: (all: Reading[]) => boolean,
  timeoutMs = 5000,
): Promise<Reading[]> {
  const all: Reading[] = [];
  return new Promise((resolve, reject) => {
    const onReadings = (batch: Reading[]) => {
      all.push(...batch);
      if (!done(all)) return;
      cleanup();
      resolve(all);
    };
    const timer = setTimeout(() => {
      cleanup();
      reject(new Error(`readings incomplete after ${timeoutMs} ms: ${JSON.stringify(all)}`));
    }, timeoutMs);
    const cleanup = () => {
      clearTimeout(timer);
      driver.off('readings', onReadings);
    };
    driver.on('readings', onReadings);
  });
}

const value = (readings: Reading[], device: string, metric: string) =>
  readings.find((r) => r.device === device && r.metric === metric);

describe('MqttSensorDriver', () => {
  it("turns the simulator's uplinks into typed readings with the payloads' own times and scaling", async () => {
    const driver = makeDriver();
    await driver.start();
    expect(driver.devices().map((d) => d.id)).toEqual([`manhole-${IMEI}`, `wl-${DEV_EUI}`, 'MTR-0001']);

    // The simulator's own messages, taken at a known instant and published as the platforms would.
    const simulator = new MqttSensorSimulator({ config: SIM });
    const at = Date.UTC(2025, 4, 1, 8, 0, 0, 123);
    const uplinks = simulator.nextUplinks(at);
    const [manhole, water, meter] = uplinks.map((u) => JSON.parse(u.payload));
    const readings = collect(driver, (all) => new Set(all.map((r) => r.device)).size === 3);
    await publish(await publisher(), uplinks);
    const got = await readings;

    // NB-IoT: device from topic level 1, epoch-s time, battery mV scaled to V, 0/1 to bool.
    const tilt = value(got, `manhole-${IMEI}`, 'Manhole/Tilt');
    expect(tilt).toMatchObject({ time: manhole.ts * 1000, value: manhole.data.tilt, quality: 'good' });
    expect(value(got, `manhole-${IMEI}`, 'Manhole/Battery')?.value).toBeCloseTo(
      manhole.data.battery / 1000,
      6,
    );
    expect(value(got, `manhole-${IMEI}`, 'Manhole/Open')?.value).toBe(manhole.data.open === 1);
    expect(value(got, `manhole-${IMEI}`, 'Radio/RSRP')?.value).toBe(manhole.data.rsrp);
    // ChirpStack: device from topic level 3, ISO 8601 time, cm to m, an array index into rxInfo.
    const level = value(got, `wl-${DEV_EUI}`, 'Water/Level');
    expect(level?.time).toBe(at);
    expect(level?.value).toBeCloseTo(water.object.level_cm / 100, 6);
    expect(value(got, `wl-${DEV_EUI}`, 'Radio/RSSI')?.value).toBe(water.rxInfo[0].rssi);
    // Meter: device from the JSON, epoch-ms time, Wh to kWh.
    const energy = value(got, 'MTR-0001', 'Energy/Import');
    expect(energy?.time).toBe(at);
    expect(energy?.value).toBeCloseTo(meter.registers[0].value / 1000, 6);
    expect(value(got, 'MTR-0001', 'Power/Active')?.value).toBe(meter.registers[1].value);
    expect(value(got, 'MTR-0001', 'Voltage/L1')?.value).toBe(meter.voltage[0]);
    expect(driver.stats().rejected).toMatchObject({ notJson: 0, wrongType: 0, missing: 0 });
  });

  it('counts garbage payloads with one coded fault per device while good messages keep flowing', async () => {
    const driver = makeDriver({ maxPayloadBytes: 1024 });
    const faults: DriverFault[] = [];
    driver.on('fault', (f) => faults.push(f));
    await driver.start();
    const client = await publisher();
    const topic = `nbiot/${IMEI}/up`;
    const ts = Math.floor(Date.now() / 1000) - 100;
    const uplink = (t: number, data: Record<string, unknown>) =>
      JSON.stringify({ imei: IMEI, ts: t, data: { tilt: 0.4, battery: 3600, open: 0, ...data } });
    await client.publishAsync(topic, '{"imei": 8662070', { qos: 1 });
    await client.publishAsync(topic, uplink(ts, { tilt: 'stuck' }), { qos: 1 });
    await client.publishAsync(topic, uplink(ts + 1, { pad: 'x'.repeat(2000) }), { qos: 1 });
    await client.publishAsync('nbiot/999999999999999/up', uplink(ts + 2, {}), { qos: 1 });
    await client.publishAsync('metering/uplink', JSON.stringify({ meterId: 'MTR-0001', timestamp: 'soon' }), {
      qos: 1,
    });
    const readings = collect(driver, (all) => all.some((r) => r.time === (ts + 3) * 1000));
    await client.publishAsync(topic, uplink(ts + 3, { tilt: 1.5 }), { qos: 1 });
    const got = await readings;

    expect(value(got, `manhole-${IMEI}`, 'Manhole/Tilt')).toMatchObject({
      value: 1.5,
      time: (ts + 3) * 1000,
    });
    // The mistyped message still gave its good values, but no tilt.
    expect(got.filter((r) => r.metric === 'Manhole/Tilt').map((r) => r.time)).toEqual([(ts + 3) * 1000]);
    expect(value(got, `manhole-${IMEI}`, 'Manhole/Battery')?.time).toBe(ts * 1000);
    expect(got.some((r) => r.device.includes('999999999999999'))).toBe(false);

    const stats = driver.stats();
    expect(stats.rejected).toMatchObject({ notJson: 1, wrongType: 1, oversize: 1, unknownDevice: 1 });
    // Meter without usable time or values: badTime plus the three missing metrics.
    expect(stats.rejected.badTime).toBe(1);
    expect(stats.rejected.missing).toBe(3);

    const payloadFaults = faults.filter((f) => f.code === MQTT_SENSOR_ERRORS.payload);
    expect(payloadFaults.filter((f) => f.device === `manhole-${IMEI}`)).toHaveLength(1);
    expect(payloadFaults.filter((f) => f.device === 'MTR-0001')).toHaveLength(1);
    expect(payloadFaults[0]?.message).toMatch(/not JSON/);
    const unknown = faults.filter((f) => f.code === MQTT_SENSOR_ERRORS.unknownDevice);
    expect(unknown).toHaveLength(1);
    expect(unknown[0]?.device).toBeUndefined();
    expect(unknown[0]?.message).toMatch(/manhole-999999999999999/);
    expect(stats.faultsSuppressed).toBeGreaterThanOrEqual(2 + 3);
  });

  it('reports a lost broker once per outage and resumes readings when it is back', async () => {
    const driver = makeDriver();
    const faults: DriverFault[] = [];
    driver.on('fault', (f) => faults.push(f));
    await driver.start();
    const simulator = new MqttSensorSimulator({ config: { ...SIM, url: broker.url, intervalMs: 50 } });
    simulators.push(simulator);
    await simulator.start();
    await collect(driver, (all) => all.length > 0);

    const lost = nextFault(driver, MQTT_SENSOR_ERRORS.unreachable);
    await broker.stop();
    expect((await lost).message).toMatch(/unreachable/);
    expect(driver.stats().connected).toBe(false);

    const resumed = collect(driver, (all) => all.length > 0, 10_000);
    await broker.start();
    await resumed;
    expect(driver.stats().connected).toBe(true);
    expect(faults.filter((f) => f.code === MQTT_SENSOR_ERRORS.unreachable)).toHaveLength(1);
    expect(driver.stats().outages).toBe(1);
  });

  it('starts against a broker that is down, with a coded fault, and connects when it comes up', async () => {
    await broker.stop();
    const driver = makeDriver();
    const fault = nextFault(driver, MQTT_SENSOR_ERRORS.unreachable);
    await driver.start();
    await fault;
    expect(driver.devices()).toHaveLength(3);
    await broker.start();
    const readings = collect(driver, (all) => all.some((r) => r.device === 'MTR-0001'), 10_000);
    const client = await publisher();
    // Published until the driver's new session has subscribed.
    const simulator = new MqttSensorSimulator({ config: SIM });
    const timer = setInterval(() => {
      for (const u of simulator.nextUplinks()) client.publish(u.topic, u.payload, { qos: 1 });
    }, 50);
    try {
      await readings;
    } finally {
      clearInterval(timer);
    }
  });

  it('refuses a bad mapping at start, listing every problem at once', async () => {
    const driver = makeDriver({
      mappings: [
        {
          topic: 'sensors/#/up',
          device: { id: 'a1', fromTopic: 1 },
          kind: 'air',
          metrics: [{ name: 'PM25', path: 'data.pm25', type: 'double' }],
        },
        {
          topic: 'sensors/+',
          device: { fromTopic: 4 },
          kind: 'air',
          time: { path: '$.ts[x]', format: 'epoch-s' },
          metrics: [
            { name: 'Door', path: '$.door', type: 'bool', scale: 2 },
            { name: 'Door', path: '$.door2', type: 'bool' },
          ],
        },
      ],
    });
    const err = await driver.start().then(
      () => null,
      (e: unknown) => e,
    );
    expect(hasCode(err, 'CS_ERR_CONFIG_INVALID')).toBe(true);
    const details = (err as { details: { path: string; message: string }[] }).details;
    const paths = details.map((p) => p.path);
    expect(paths).toEqual(
      expect.arrayContaining([
        '/mappings/0/topic',
        '/mappings/0/device',
        '/mappings/0/metrics/0/path',
        '/mappings/1/devices',
        '/mappings/1/device/fromTopic',
        '/mappings/1/time/path',
        '/mappings/1/metrics/0',
        '/mappings/1/metrics/1/name',
      ]),
    );
    expect(details.length).toBeGreaterThanOrEqual(8);

    // Schema problems come out together as well.
    const wrong = makeDriver({
      url: 'http://broker',
      qos: 3,
      mappings: [{ topic: 'x', device: {}, metrics: [] }],
    });
    const schemaErr = await wrong.start().catch((e: unknown) => e);
    expect(hasCode(schemaErr, 'CS_ERR_CONFIG_INVALID')).toBe(true);
    const schemaPaths = (schemaErr as { details: { path: string }[] }).details.map((p) => p.path);
    expect(schemaPaths).toEqual(
      expect.arrayContaining(['/url', '/qos', '/mappings/0/kind', '/mappings/0/metrics']),
    );
  });
});

describe('MqttSensorDriver against the simulator', () => {
  // Its own broker, so that the tests above may stop theirs.
  const contractBroker = new TestBroker();
  let simulator: MqttSensorSimulator | undefined;
  beforeAll(async () => {
    await contractBroker.start();
    simulator = new MqttSensorSimulator({ config: { ...SIM, url: contractBroker.url, intervalMs: 20 } });
    await simulator.start();
  });
  afterAll(async () => {
    await simulator?.stop();
    await contractBroker.stop();
  });

  describeDriverContract(
    'mqtt-sensors',
    () =>
      new MqttSensorDriver({
        id: 'mqtt-contract',
        config: { url: contractBroker.url, mappings: mqttSensorSimulatorMappings(SIM) },
      }),
  );
});
