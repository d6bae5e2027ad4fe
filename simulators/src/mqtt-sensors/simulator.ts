/**
 * Field devices that publish JSON over MQTT the way real platforms forward them, for tests and
 * the demo of the MQTT sensor driver:
 * - NB-IoT manhole-cover sensors, as an NB-IoT platform (CTWing, OneNET) forwards them:
 *   `nbiot/{imei}/up`, `{"imei", "ts": epoch-s, "data": {"tilt", "battery" (mV), "open" (0/1), "rsrp"}}`;
 * - LoRaWAN water-level sensors, as ChirpStack v4 publishes a decoded uplink:
 *   `application/{app}/device/{devEui}/event/up`, `{"time": ISO 8601, "deviceInfo", "fCnt",
 *   "object": {"level_cm", "battery_pct"}, "rxInfo": [{"rssi", "snr"}]}`;
 * - smart electricity meters behind a head-end, all on `metering/uplink` with the meter id in the
 *   payload: `{"meterId", "timestamp": epoch-ms, "registers": [{"obis": "1.8.0", "value" (Wh)},
 *   {"obis": "1.7.0", "value" (W)}], "voltage": [L1, L2, L3]}`.
 * It is a publisher, not a Driver: the Driver it stands behind is MqttSensorDriver.
 */
import { randomUUID } from 'node:crypto';
import { CitysenseError, componentLogger, errorMessage, type Logger } from '@citysense/protocol';
import { connect, type MqttClient } from 'mqtt';
import { SeededRandom } from '../random.ts';
import { type MqttSensorSimulatorConfig, resolveMqttSensorSimulatorConfig } from './config.ts';
import { METERING_TOPIC } from './mappings.ts';

/** One message the simulator publishes. */
export interface SimulatedUplink {
  topic: string;
  payload: string;
}

/** How to build an MQTT sensor simulator. */
export interface MqttSensorSimulatorInit {
  /** Options, validated by `start` against MqttSensorSimulatorConfig (CS_ERR_CONFIG_INVALID). */
  config?: unknown;
  /** Parent logger; default the root logger. */
  logger?: Logger;
}

interface Manhole {
  imei: string;
  batteryMv: number;
  tilt: number;
  openFor: number;
}

interface WaterLevel {
  devEui: string;
  levelCm: number;
  batteryPct: number;
  fCnt: number;
}

interface Meter {
  id: string;
  energyWh: number;
  powerW: number;
}

/** Publishes realistic uplinks of manhole, water-level and meter devices every `intervalMs`. */
export class MqttSensorSimulator {
  readonly #input: unknown;
  readonly #log: Logger;
  #config: Readonly<MqttSensorSimulatorConfig> | undefined;
  #random: SeededRandom | undefined;
  #manholes: Manhole[] = [];
  #waterLevels: WaterLevel[] = [];
  #meters: Meter[] = [];
  #client: MqttClient | undefined;
  #timer: NodeJS.Timeout | undefined;
  #published = 0;
  #lastTick = 0;

  constructor(init: MqttSensorSimulatorInit = {}) {
    this.#input = init.config ?? {};
    this.#log = componentLogger('mqtt-sensor-sim', init.logger);
  }

  /** Resolved options; validated on first use. */
  get config(): Readonly<MqttSensorSimulatorConfig> {
    this.#config ??= resolveMqttSensorSimulatorConfig(this.#input);
    return this.#config;
  }

  /** Messages handed to the broker so far (QoS 1/2: acknowledged). */
  get published(): number {
    return this.#published;
  }

  /** Connects (rejects CS_ERR_SIM_MQTT_UNREACHABLE when the first attempt fails) and starts publishing. Idempotent. */
  async start(signal?: AbortSignal): Promise<void> {
    if (this.#client) return;
    const config = this.config;
    this.#seed(config);
    const client = connect(config.url, {
      clientId: `citysense-sim-${randomUUID().slice(0, 8)}`,
      username: config.username,
      password: config.password,
      reconnectPeriod: 500,
      connectTimeout: 5000,
    });
    this.#client = client;
    client.on('error', (err) => this.#log.debug({ err: err.message }, 'MQTT client error'));
    try {
      await new Promise<void>((resolve, reject) => {
        const fail = (reason: string) => () =>
          reject(
            new CitysenseError('CS_ERR_SIM_MQTT_UNREACHABLE', `cannot reach ${config.url}: ${reason}`, 503),
          );
        client.once('connect', () => resolve());
        client.once('close', fail('connection closed'));
        signal?.addEventListener('abort', fail('start aborted'), { once: true });
        if (signal?.aborted) fail('start aborted')();
      });
    } catch (err) {
      this.#client = undefined;
      await client.endAsync(true);
      throw err;
    }
    this.#timer = setInterval(() => {
      this.publishOnce().catch((err: unknown) =>
        this.#log.warn({ err: errorMessage(err) }, 'publish failed'),
      );
    }, config.intervalMs);
    this.#log.info({ url: config.url, intervalMs: config.intervalMs }, 'MQTT sensor simulator started');
  }

  /** Stops publishing and disconnects. Idempotent. */
  async stop(): Promise<void> {
    clearInterval(this.#timer);
    this.#timer = undefined;
    const client = this.#client;
    this.#client = undefined;
    if (client) await client.endAsync(true);
  }

  /** Publishes one uplink of every device now; resolves when the broker has them (QoS 1/2). */
  async publishOnce(): Promise<void> {
    const client = this.#client;
    if (!client) throw new CitysenseError('CS_ERR_SIM_STOPPED', 'start the simulator before publishing', 409);
    const qos = this.config.qos;
    await Promise.all(
      this.nextUplinks().map(async ({ topic, payload }) => {
        await client.publishAsync(topic, payload, { qos });
        this.#published++;
      }),
    );
  }

  /** Advances every device by one uplink period and returns their messages (used by `publishOnce`). */
  nextUplinks(now = Date.now()): SimulatedUplink[] {
    const config = this.config;
    const random = this.#seed(config);
    // Simulated time never goes backwards, even when called faster than the clock ticks.
    const time = Math.max(now, this.#lastTick + 1);
    this.#lastTick = time;
    const hours = config.intervalMs / 3_600_000;
    const uplinks: SimulatedUplink[] = [];
    for (const m of this.#manholes) {
      m.batteryMv = Math.max(3000, m.batteryMv - (random.chance(0.05) ? 1 : 0));
      m.tilt = Math.max(0, m.tilt + 0.02 * random.gaussian() - 0.01 * (m.tilt - 0.4));
      if (m.openFor > 0) m.openFor--;
      else if (random.chance(0.01)) m.openFor = 3;
      uplinks.push({
        topic: `nbiot/${m.imei}/up`,
        payload: JSON.stringify({
          imei: m.imei,
          ts: Math.floor(time / 1000),
          data: {
            tilt: round(m.openFor > 0 ? 35 + 5 * random.next() : m.tilt, 2),
            battery: m.batteryMv,
            open: m.openFor > 0 ? 1 : 0,
            rsrp: random.int(-110, -85),
          },
        }),
      });
    }
    for (const w of this.#waterLevels) {
      w.levelCm = Math.max(0, w.levelCm + 0.8 * random.gaussian() - 0.05 * (w.levelCm - 120));
      w.fCnt++;
      uplinks.push({
        topic: `application/${config.applicationId}/device/${w.devEui}/event/up`,
        payload: JSON.stringify({
          deduplicationId: randomUUID(),
          time: new Date(time).toISOString(),
          deviceInfo: {
            applicationId: config.applicationId,
            deviceName: `water-level-${w.devEui.slice(-4)}`,
            devEui: w.devEui,
          },
          fCnt: w.fCnt,
          fPort: 2,
          object: { level_cm: round(w.levelCm, 1), battery_pct: w.batteryPct },
          rxInfo: [
            {
              gatewayId: '0016c001f1500812',
              rssi: random.int(-118, -90),
              snr: round(random.uniform(-5, 10), 1),
            },
          ],
        }),
      });
    }
    for (const meter of this.#meters) {
      meter.powerW = Math.min(9000, Math.max(50, meter.powerW + 60 * random.gaussian()));
      meter.energyWh += meter.powerW * hours;
      uplinks.push({
        topic: METERING_TOPIC,
        payload: JSON.stringify({
          meterId: meter.id,
          timestamp: time,
          registers: [
            { obis: '1.8.0', value: Math.round(meter.energyWh), unit: 'Wh' },
            { obis: '1.7.0', value: Math.round(meter.powerW), unit: 'W' },
          ],
          voltage: [0, 1, 2].map(() => round(230 + 2 * random.gaussian(), 1)),
        }),
      });
    }
    return uplinks;
  }

  #seed(config: Readonly<MqttSensorSimulatorConfig>): SeededRandom {
    if (this.#random) return this.#random;
    const random = new SeededRandom(config.seed);
    this.#manholes = config.manholes.map((imei) => ({
      imei,
      batteryMv: random.int(3550, 3650),
      tilt: 0.4,
      openFor: 0,
    }));
    this.#waterLevels = config.waterLevels.map((devEui) => ({
      devEui,
      levelCm: random.uniform(100, 140),
      batteryPct: random.int(80, 100),
      fCnt: 0,
    }));
    this.#meters = config.meters.map((id) => ({
      id,
      energyWh: random.int(1_000_000, 5_000_000),
      powerW: random.uniform(500, 2500),
    }));
    this.#random = random;
    return random;
  }
}

function round(value: number, digits: number): number {
  const f = 10 ** digits;
  return Math.round(value * f) / f;
}
