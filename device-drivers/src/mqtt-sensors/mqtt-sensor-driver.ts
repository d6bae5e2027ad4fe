/**
 * MQTT sensors as a Driver: NB-IoT and LoRaWAN platforms, meters and gateways that publish JSON
 * on their own topics. The driver subscribes to each mapping's topic filter and turns every
 * message into readings by the declarative mapping (config.ts): device id literal, from a topic
 * level or from the payload; the payload's own timestamp; typed values with scale and offset.
 *
 * Every payload is outside input (STYLE.md): oversize, not JSON, a missing or mistyped value, an
 * implausible time, an unlisted device are counted per kind (`stats()`) and reported as coded
 * faults at most once per device per `faultIntervalMs`, and the good messages keep flowing. A lost
 * broker is one CS_ERR_MQTT_SENSOR_UNREACHABLE fault per outage; MQTT.js reconnects every
 * `reconnectPeriodMs` and the driver subscribes again on every new session.
 */
import { randomBytes } from 'node:crypto';
import { componentLogger, errorMessage, type Logger } from '@citysense/protocol';
import { connect, type IClientOptions, type ISubscriptionGrant, type MqttClient } from 'mqtt';
import type { DeviceDescriptor, Driver, DriverCapabilities, MetricDescriptor, Reading } from '../driver.ts';
import { driverAbortedError, throwIfStartAborted } from '../lifecycle.ts';
import { DriverEmitter } from '../typed-emitter.ts';
import { type MqttSensorDriverConfig, resolveMqttSensorConfig } from './config.ts';
import {
  applyMapping,
  type CompiledMapping,
  compileMappings,
  deviceBeforeParse,
  mappingMetrics,
  type PayloadProblem,
  type PayloadProblemKind,
} from './mapping.ts';
import { topicMatches } from './topic-filter.ts';

/** Stable error codes of the MQTT sensor driver. */
export const MQTT_SENSOR_ERRORS = {
  /** A message could not be (fully) turned into readings: oversize, not JSON, missing or mistyped value, bad time. */
  payload: 'CS_ERR_MQTT_SENSOR_PAYLOAD',
  /** A message names a device id that its mapping does not list in `devices`. */
  unknownDevice: 'CS_ERR_MQTT_SENSOR_UNKNOWN_DEVICE',
  /** The broker cannot be reached or refused the connection; MQTT.js keeps retrying. */
  unreachable: 'CS_ERR_MQTT_SENSOR_UNREACHABLE',
  /** The broker refused a subscription (ACL): that mapping receives nothing. */
  subscribe: 'CS_ERR_MQTT_SENSOR_SUBSCRIBE',
} as const;

/** What the driver has seen since it was built; counts survive stop/start. */
export interface MqttSensorStats {
  /** Messages received on a mapped topic. */
  messages: number;
  /** Readings emitted. */
  readings: number;
  /** Messages or values refused, per reason. */
  rejected: Record<PayloadProblemKind, number>;
  /** Values dropped because their source time does not follow the last one (QoS 1 redelivery, replays). */
  stale: number;
  /** Faults not emitted because of the once-per-interval limit. */
  faultsSuppressed: number;
  /** Times the broker was lost (or never reached). */
  outages: number;
  /** True while a session with the broker is up. */
  connected: boolean;
}

/** How to build an MQTT sensor driver. */
export interface MqttSensorDriverInit {
  /** Driver instance id; default `mqtt-sensors`. */
  id?: string;
  /** Options, validated by `start` against MqttSensorDriverConfig (CS_ERR_CONFIG_INVALID). */
  config?: unknown;
  /** Parent logger; default the root logger. */
  logger?: Logger;
}

interface DeviceState {
  kind: string;
  metrics: Map<string, MetricDescriptor>;
}

/** Turns JSON published by sensors and their platforms into readings by a declarative mapping. */
export class MqttSensorDriver extends DriverEmitter implements Driver {
  /** Driver instance id. */
  readonly id: string;
  /** Telemetry only: the sensors' own topics carry no command semantics the driver could rely on. */
  readonly capabilities: DriverCapabilities = { telemetry: true, commands: false };
  readonly #input: unknown;
  #config: Readonly<MqttSensorDriverConfig> | undefined;
  #mappings: CompiledMapping[] = [];
  #devices = new Map<string, DeviceState>();
  #clientId = '';
  #client: MqttClient | undefined;
  #running = false;
  #starting: Promise<void> | undefined;
  #stopping: Promise<void> | undefined;
  /** Aborts a start under way when `stop` is called. */
  #startAbort: AbortController | undefined;
  /** Resolves the wait of a start under way. */
  #firstAttempt: (() => void) | undefined;
  #outage = false;
  #lastError: string | undefined;
  /** Last reading time per device and metric, so every series strictly increases. */
  readonly #lastTime = new Map<string, number>();
  /** Last fault time per rate-limit key. */
  readonly #lastFault = new Map<string, number>();
  readonly #stats: Omit<MqttSensorStats, 'connected'> = {
    messages: 0,
    readings: 0,
    rejected: {
      oversize: 0,
      notJson: 0,
      noDevice: 0,
      unknownDevice: 0,
      badTime: 0,
      missing: 0,
      wrongType: 0,
    },
    stale: 0,
    faultsSuppressed: 0,
    outages: 0,
  };

  constructor(init: MqttSensorDriverInit = {}) {
    const id = init.id ?? 'mqtt-sensors';
    super(componentLogger('mqtt-sensors', init.logger).child({ driver: id }));
    this.id = id;
    this.#input = init.config ?? {};
  }

  /** Every device the mappings declare (literal ids and `devices` lists); empty before the first `start`. */
  devices(): DeviceDescriptor[] {
    return [...this.#devices].map(([id, d]) => ({
      id,
      kind: d.kind,
      metrics: [...d.metrics.values()].map((m) => ({ ...m })),
    }));
  }

  /** Counters of messages, readings and refusals, for diagnosis (`agent doctor`) and tests. */
  stats(): MqttSensorStats {
    return {
      ...this.#stats,
      rejected: { ...this.#stats.rejected },
      connected: this.#client?.connected ?? false,
    };
  }

  /**
   * Validates the options (CS_ERR_CONFIG_INVALID, every problem at once), connects and subscribes.
   * Resolves once subscribed, or once the first attempt failed: then a CS_ERR_MQTT_SENSOR_UNREACHABLE
   * fault is out and MQTT.js keeps retrying, so a broker that is down at boot does not fail the agent.
   */
  async start(signal?: AbortSignal): Promise<void> {
    throwIfStartAborted(this.id, signal);
    if (this.#running) return;
    this.#starting ??= this.#start(signal).finally(() => {
      this.#starting = undefined;
    });
    await this.#starting;
  }

  async #start(signal: AbortSignal | undefined): Promise<void> {
    if (this.#stopping) await this.#stopping;
    throwIfStartAborted(this.id, signal);
    const config = this.#resolve();
    const abort = new AbortController();
    this.#startAbort = abort;
    const options: IClientOptions = {
      clientId: config.clientId ?? this.#clientId,
      username: config.username,
      password: config.password,
      clean: true,
      keepalive: config.keepaliveSeconds,
      connectTimeout: config.connectTimeoutMs,
      reconnectPeriod: config.reconnectPeriodMs,
      // Subscriptions are made on every 'connect' below, so a restarted broker gets them again.
      resubscribe: false,
      rejectUnauthorized: config.rejectUnauthorized,
    };
    const client = connect(config.url, options);
    this.#client = client;
    this.#running = true;
    this.#outage = false;
    // Settles on the first SUBACK, the first failed attempt, or an abort (stop() or `signal`).
    const ready = new Promise<void>((resolve) => {
      this.#firstAttempt = resolve;
      const onAbort = () => resolve();
      abort.signal.addEventListener('abort', onAbort, { once: true });
      signal?.addEventListener('abort', onAbort, { once: true });
      client.once('close', onAbort);
    });
    client.on('connect', () => this.#connected(client, config));
    client.on('close', () => this.#closed(client));
    client.on('error', (err) => {
      this.#lastError = err.message;
      this.log.debug({ err: err.message }, 'MQTT client error');
    });
    client.on('message', (topic, payload) => this.#message(topic, payload));
    await ready;
    this.#firstAttempt = undefined;
    this.#startAbort = undefined;
    if (signal?.aborted && this.#client === client) {
      await this.stop();
      throw driverAbortedError(this.id, signal);
    }
    if (this.#client === client) {
      this.log.info({ url: redact(config.url), devices: this.#devices.size }, 'MQTT sensor driver started');
    }
  }

  /** Unsubscribes by disconnecting; no event is emitted once this resolves. Idempotent. */
  stop(): Promise<void> {
    const client = this.#client;
    if (!client) return this.#stopping ?? Promise.resolve();
    this.#running = false;
    this.#client = undefined;
    this.#startAbort?.abort();
    this.#stopping = client
      .endAsync(true)
      .catch((err: unknown) => this.log.warn({ err: errorMessage(err) }, 'MQTT client did not end cleanly'))
      .then(() => {
        this.#stopping = undefined;
        this.log.info('MQTT sensor driver stopped');
      });
    return this.#stopping;
  }

  /** Resolves and compiles the options once; later starts reuse them. */
  #resolve(): Readonly<MqttSensorDriverConfig> {
    if (this.#config) return this.#config;
    const config = resolveMqttSensorConfig(this.#input);
    this.#mappings = compileMappings(config);
    for (const mapping of this.#mappings) {
      for (const id of mapping.devices) {
        let device = this.#devices.get(id);
        if (!device) {
          device = { kind: mapping.kind, metrics: new Map() };
          this.#devices.set(id, device);
        }
        for (const m of mappingMetrics(mapping))
          if (!device.metrics.has(m.name)) device.metrics.set(m.name, m);
      }
    }
    this.#clientId = `citysense-${this.id}-${randomBytes(3).toString('hex')}`.slice(0, 128);
    this.#config = config;
    return config;
  }

  #connected(client: MqttClient, config: Readonly<MqttSensorDriverConfig>): void {
    if (client !== this.#client) return;
    if (this.#outage) this.log.info('broker reachable again, readings resume');
    this.#outage = false;
    this.#lastError = undefined;
    const filters = [...new Set(this.#mappings.map((m) => m.topic))];
    const request = Object.fromEntries(filters.map((f) => [f, { qos: config.qos }]));
    client.subscribe(request, (err, granted) => {
      if (client !== this.#client) return;
      if (err) {
        this.log.warn({ err: err.message }, 'subscribe failed');
      } else {
        this.#refused(granted ?? []);
      }
      this.#firstAttempt?.();
    });
  }

  /** Reports filters the broker refused (SUBACK 0x80, MQTT 3.1.1 §3.9.3). */
  #refused(granted: ISubscriptionGrant[]): void {
    for (const g of granted) {
      if (g.qos !== 128 || !this.#running) continue;
      this.emit('fault', {
        code: MQTT_SENSOR_ERRORS.subscribe,
        message: `the broker refused the subscription to "${g.topic}"; grant this client read access to it`,
      });
    }
  }

  #closed(client: MqttClient): void {
    if (client !== this.#client || !this.#running || this.#outage) return;
    this.#outage = true;
    this.#stats.outages++;
    const url = redact(this.#config?.url ?? '');
    const cause = this.#lastError ? ` (${this.#lastError})` : '';
    this.log.warn({ url, err: this.#lastError }, 'MQTT sensor broker lost');
    this.emit('fault', {
      code: MQTT_SENSOR_ERRORS.unreachable,
      message: `MQTT broker ${url} is unreachable${cause}; check the URL, credentials and network; retrying every ${this.#config?.reconnectPeriodMs} ms`,
    });
  }

  #message(topic: string, payload: Buffer): void {
    if (!this.#running || !this.#config) return;
    const mappings = this.#mappings.filter((m) => topicMatches(m.topic, topic));
    if (mappings.length === 0) return;
    this.#stats.messages++;
    const arrival = Date.now();
    const first = mappings[0] as CompiledMapping;
    if (payload.length > this.#config.maxPayloadBytes) {
      this.#problem(deviceBeforeParse(first, topic), first, topic, {
        kind: 'oversize',
        message: `payload of ${payload.length} bytes exceeds maxPayloadBytes ${this.#config.maxPayloadBytes}`,
      });
      return;
    }
    let json: unknown;
    try {
      json = JSON.parse(payload.toString('utf8'));
    } catch (err) {
      this.#problem(deviceBeforeParse(first, topic), first, topic, {
        kind: 'notJson',
        message: `payload is not JSON: ${errorMessage(err)}`,
      });
      return;
    }
    const batch: Reading[] = [];
    for (const mapping of mappings) {
      const outcome = applyMapping(mapping, topic, json, arrival);
      if (!outcome.ok) {
        this.#problem(outcome.device, mapping, topic, outcome.problem);
        continue;
      }
      const { device, time, sourceTime, quality, values, problems } = outcome.message;
      for (const problem of problems) this.#problem(device, mapping, topic, problem);
      for (const { metric, value } of values) {
        const stamped = this.#stamp(device, metric, time, sourceTime);
        if (stamped === undefined) continue;
        batch.push({ device, metric, time: stamped, value, quality });
      }
    }
    if (batch.length === 0) return;
    this.#stats.readings += batch.length;
    this.emit('readings', batch);
  }

  /**
   * The time to give a reading, or undefined to drop it: a source time that does not follow the
   * series' last one is a duplicate or a replay (storage keys readings on device, metric, time);
   * an arrival time is nudged forward instead, because the value itself is new.
   */
  #stamp(device: string, metric: string, time: number, sourceTime: boolean): number | undefined {
    const key = `${device}\u0000${metric}`;
    const last = this.#lastTime.get(key) ?? Number.NEGATIVE_INFINITY;
    if (time <= last) {
      if (sourceTime) {
        this.#stats.stale++;
        return undefined;
      }
      time = last + 1;
    }
    this.#lastTime.set(key, time);
    return time;
  }

  /** Counts a problem and reports it as a fault, at most once per device (or mapping) per interval. */
  #problem(
    device: string | undefined,
    mapping: CompiledMapping,
    topic: string,
    problem: PayloadProblem,
  ): void {
    this.#stats.rejected[problem.kind]++;
    const declared = device !== undefined && this.#devices.has(device) ? device : undefined;
    const unknown = problem.kind === 'unknownDevice';
    const key = unknown ? `unknown\u0000${device}` : (declared ?? `mapping\u0000${mapping.index}`);
    const now = Date.now();
    const last = this.#lastFault.get(key);
    const interval = this.#config?.faultIntervalMs ?? 60_000;
    if (last !== undefined && now - last < interval) {
      this.#stats.faultsSuppressed++;
      this.log.debug({ device, topic, problem: problem.kind }, problem.message);
      return;
    }
    this.#lastFault.set(key, now);
    this.log.warn({ device, topic, problem: problem.kind }, problem.message);
    const who = declared ? `device "${declared}"` : `mapping ${mapping.index} ("${mapping.topic}")`;
    this.emit('fault', {
      device: declared,
      code: unknown ? MQTT_SENSOR_ERRORS.unknownDevice : MQTT_SENSOR_ERRORS.payload,
      message: unknown
        ? problem.message
        : `${who} sent an unusable message on "${topic}": ${problem.message}; fix the sender or the mapping (further problems are counted, reported again in ${interval} ms)`,
    });
  }
}

/** The URL without a password, for logs and faults. */
function redact(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    return u.toString();
  } catch {
    return url;
  }
}
