import { hasCode } from '@citysense/protocol';
import mqtt, { type MqttClient } from 'mqtt';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { TestBroker } from '../../../device-drivers/src/mqtt-sensors/test-broker.ts';
import { MqttSensorSimulator } from './simulator.ts';

const broker = new TestBroker();
const simulators: MqttSensorSimulator[] = [];
let subscriber: MqttClient | undefined;

beforeAll(() => broker.start());
afterEach(async () => {
  await Promise.all(simulators.splice(0).map((s) => s.stop()));
  await subscriber?.endAsync(true);
  subscriber = undefined;
});
afterAll(() => broker.stop());

/** Subscribes, then gives a promise of the first message on each of `count` distinct topics. */
async function firstMessages(count: number): Promise<{ messages: Promise<Map<string, unknown>> }> {
  const client = await mqtt.connectAsync(broker.url, { reconnectPeriod: 0 });
  subscriber = client;
  await client.subscribeAsync(['nbiot/+/up', 'application/+/device/+/event/up', 'metering/uplink'], {
    qos: 1,
  });
  const messages = new Promise<Map<string, unknown>>((resolve) => {
    const got = new Map<string, unknown>();
    client.on('message', (topic, payload) => {
      if (!got.has(topic)) got.set(topic, JSON.parse(payload.toString()));
      if (got.size === count) resolve(got);
    });
  });
  return { messages };
}

describe('MqttSensorSimulator', () => {
  it('publishes NB-IoT, ChirpStack and meter uplinks in the platforms’ own shapes', async () => {
    const { messages } = await firstMessages(3);
    const simulator = new MqttSensorSimulator({ config: { url: broker.url, intervalMs: 60_000 } });
    simulators.push(simulator);
    await simulator.start();
    const before = Date.now();
    await simulator.publishOnce();
    expect(simulator.published).toBe(3);
    const got = await messages;

    const manhole = got.get('nbiot/866207059412345/up') as {
      imei: string;
      ts: number;
      data: { tilt: number; battery: number; open: number };
    };
    expect(manhole.imei).toBe('866207059412345');
    expect(manhole.ts).toBeGreaterThanOrEqual(Math.floor(before / 1000) - 1);
    expect(Number.isInteger(manhole.ts)).toBe(true);
    expect(manhole.data.battery).toBeGreaterThan(3000);
    expect([0, 1]).toContain(manhole.data.open);

    const water = got.get('application/1/device/70b3d57ed0041234/event/up') as {
      time: string;
      deviceInfo: { devEui: string };
      object: { level_cm: number };
      rxInfo: { rssi: number }[];
    };
    expect(Date.parse(water.time)).toBeGreaterThanOrEqual(before);
    expect(water.time).toMatch(/Z$/);
    expect(water.deviceInfo.devEui).toBe('70b3d57ed0041234');
    expect(water.object.level_cm).toBeGreaterThan(50);
    expect(water.rxInfo[0]?.rssi).toBeLessThan(0);

    const meter = got.get('metering/uplink') as { meterId: string; timestamp: number; registers: unknown[] };
    expect(meter.meterId).toBe('MTR-0001');
    expect(meter.timestamp).toBeGreaterThanOrEqual(before);
    expect(meter.registers).toHaveLength(2);
  });

  it('publishes on its own every intervalMs and stops idempotently', async () => {
    const { messages } = await firstMessages(3);
    const simulator = new MqttSensorSimulator({ config: { url: broker.url, intervalMs: 20 } });
    simulators.push(simulator);
    await simulator.start();
    await simulator.start();
    await messages;
    await simulator.stop();
    await simulator.stop();
  });

  it('rejects start with a coded error when the broker is unreachable, and bad options all at once', async () => {
    const down = new MqttSensorSimulator({ config: { url: 'mqtt://127.0.0.1:1' } });
    simulators.push(down);
    const err = await down.start().catch((e: unknown) => e);
    expect(hasCode(err, 'CS_ERR_SIM_MQTT_UNREACHABLE')).toBe(true);

    const bad = new MqttSensorSimulator({ config: { url: 'ftp://x', intervalMs: 0, manholes: ['12'] } });
    const invalid = await bad.start().catch((e: unknown) => e);
    expect(hasCode(invalid, 'CS_ERR_CONFIG_INVALID')).toBe(true);
    expect((invalid as { details: unknown[] }).details.length).toBe(3);
  });
});
