import { EventEmitter } from 'node:events';
import type { DeviceDescriptor } from '@citysense/device-drivers';
import {
  ASSIGNMENTS_REVISION,
  BD_SEQ,
  CitysenseError,
  componentLogger,
  DataType,
  decodePayload,
  decodeSpoolAck,
  encodePayload,
  errorMessage,
  formatTopic,
  type Logger,
  OPERATIONS_REVISION,
  OTA_REVISION,
  REBIRTH,
  SPOOL_ACK,
  SPOOL_ID,
  type SparkplugMetric,
  type SparkplugPayload,
  type SpoolRange,
  stateTopic,
} from '@citysense/protocol';
import { Type } from '@sinclair/typebox';
import { Value } from '@sinclair/typebox/value';
import { connect, type IClientOptions, type MqttClient } from 'mqtt';
import { type BackoffOptions, backoffDelay } from '../backoff.ts';
import { decodeRecord, type TelemetryRecord } from '../record.ts';
import type { SpoolRecord } from '../spool/spool.ts';
import { BirthCatalog } from './birth-catalog.ts';
import type { RecordSource } from './record-source.ts';
import { SendScheduler } from './send-scheduler.ts';
import { BdSeqStore, MessageSequence } from './sequence.ts';
import { Wakeup } from './wakeup.ts';

/** The enrolled identity the uplink connects as. */
export interface UplinkIdentity {
  nodeId: string;
  groupId: string;
  hubId: string;
  mqtt: { url: string; username: string; password: string; clientId: string };
}

/** Options of the Sparkplug uplink. */
export interface UplinkOptions {
  identity: UplinkIdentity;
  source: RecordSource;
  /** Where bdSeq is persisted. */
  stateDir: string;
  window: number;
  ackTimeoutMs: number;
  backoff: BackoffOptions;
  agentVersion: string;
  /** Devices the drivers currently declare, for DBIRTHs. */
  devices: () => DeviceDescriptor[];
  /** MQTT CONNECT → CONNACK limit. */
  connectTimeoutMs?: number | undefined;
  logger?: Logger | undefined;
}

/** Why the uplink resent records. */
export type RewindReason = 'rebirth' | 'ack-timeout';

/** What the uplink reports in the agent status. */
export interface UplinkStatus {
  connected: boolean;
  /** The hub's last STATE, null before one arrives. */
  hubOnline: boolean | null;
  /** bdSeq of the current or last session. */
  bdSeq: number | null;
  inFlight: number;
  /** True while records from before the last (re)connect remain to be sent. */
  draining: boolean;
  /** Last spool id at the last (re)connect; later records are live. Null before the first connect. */
  liveBoundary: number | null;
  lastAckAt: number | null;
  /** Moving median of publish→ack time, ms. */
  rttMs: number | null;
  connects: number;
  published: number;
  rewinds: number;
  ackTimeouts: number;
  unreadableRecords: number;
}

/** Events the uplink emits (for the agent and for tests). */
export interface UplinkEvents {
  connected: [bdSeq: number];
  disconnected: [reason: string];
  births: [bdSeq: number];
  rewind: [reason: RewindReason];
  hubState: [online: boolean];
  /** NCMD ASSIGNMENTS_REVISION: the hub changed this node's algorithm assignments (null: no usable revision). */
  assignmentsRevision: [revision: number | null];
  /** NCMD OPERATIONS_REVISION: the hub has new remote operations for this node. */
  operationsRevision: [revision: number | null];
  /** NCMD OTA_REVISION: the hub changed this node's OTA document. */
  otaRevision: [revision: number | null];
}

/** MQTT keepalive, seconds: the broker fires the Will after 1.5× this without traffic. */
const KEEPALIVE_S = 30;
/** Longest idle wait of the send loop; bounds how late an ack timeout is noticed. */
const IDLE_WAIT_MS = 1000;
/** How long a graceful stop waits for the broker to take the NDEATH. */
const STOP_NDEATH_TIMEOUT_MS = 2000;

const HubState = Type.Object({ online: Type.Boolean(), timestamp: Type.Number() });

/**
 * The Sparkplug B edge node (Sparkplug 3.0 §5, §6.4): connects with an NDEATH Will,
 * publishes NBIRTH and DBIRTHs, then sends every spool record as one NDATA/DDATA
 * carrying its spool id, keeps at most `window` unacked, and resends from the
 * oldest unacked record on rebirth, ack timeout or reconnect. Reconnects with
 * exponential backoff and full jitter, a fresh bdSeq and a fresh Will each attempt.
 */
export class SparkplugUplink extends EventEmitter<UplinkEvents> {
  readonly #o: UplinkOptions;
  readonly #log: Logger;
  readonly #catalog = new BirthCatalog();
  readonly #seq = new MessageSequence();
  readonly #wakeup = new Wakeup();
  readonly #scheduler: SendScheduler;
  readonly #bdSeqStore: BdSeqStore;
  #controller: AbortController | null = null;
  #loop: Promise<void> | null = null;
  #connected = false;
  #hubOnline: boolean | null = null;
  #bdSeq: number | null = null;
  #rebirthRequested = false;
  #ackChain: Promise<void> = Promise.resolve();
  /** Resolves when the current MQTT session's socket closes. */
  #sessionClosed: Promise<'closed'> = Promise.resolve('closed');
  #counters = { connects: 0, published: 0, rewinds: 0, ackTimeouts: 0, unreadableRecords: 0 };
  readonly #onAppended = () => this.#wakeup.notify();

  constructor(o: UplinkOptions) {
    super();
    this.#o = o;
    this.#log = o.logger ?? componentLogger('uplink');
    this.#scheduler = new SendScheduler({ source: o.source, window: o.window, ackTimeoutMs: o.ackTimeoutMs });
    this.#bdSeqStore = new BdSeqStore(o.stateDir, this.#log);
  }

  /**
   * Starts the connection loop in the background and resolves at once: records
   * keep spooling while the hub is unreachable. Idempotent. The signal only
   * cancels starting; `stop()` ends the loop.
   */
  async start(signal?: AbortSignal): Promise<void> {
    if (this.#loop) return;
    signal?.throwIfAborted();
    const controller = new AbortController();
    this.#controller = controller;
    this.#o.source.on('appended', this.#onAppended);
    this.#loop = this.#run(controller.signal);
  }

  /** Publishes NDEATH (Sparkplug 3.0 §5.6: intentional disconnect), disconnects and ends the loop. Idempotent. */
  async stop(): Promise<void> {
    const controller = this.#controller;
    const loop = this.#loop;
    if (!controller || !loop) return;
    controller.abort(new CitysenseError('CS_ERR_STOPPED', 'uplink stopped', 499));
    this.#wakeup.notify();
    await loop;
    this.#o.source.off('appended', this.#onAppended);
    await this.#ackChain;
    this.#controller = null;
    this.#loop = null;
  }

  /** Asks for births and a resend from the oldest unacked record, as an NCMD Rebirth would. */
  requestRebirth(): void {
    this.#rebirthRequested = true;
    this.#wakeup.notify();
  }

  /** Connection, flow-control and link-quality figures. */
  status(): UplinkStatus {
    return {
      connected: this.#connected,
      hubOnline: this.#hubOnline,
      bdSeq: this.#bdSeq,
      inFlight: this.#scheduler.inFlight,
      draining: this.#connected && this.#scheduler.hasBacklog,
      liveBoundary: this.#counters.connects > 0 ? this.#scheduler.liveBoundary : null,
      lastAckAt: this.#scheduler.lastAckAt,
      rttMs: this.#scheduler.rttMs,
      ...this.#counters,
    };
  }

  // ---- connection loop -------------------------------------------------------

  async #run(signal: AbortSignal): Promise<void> {
    let attempt = 0;
    while (!signal.aborted) {
      let client: MqttClient | null = null;
      try {
        const bdSeq = await this.#bdSeqStore.next();
        this.#bdSeq = bdSeq;
        client = this.#createClient(bdSeq);
        await this.#awaitConnack(client, signal);
        attempt = 0;
        await this.#session(client, bdSeq, signal);
      } catch (err) {
        if (!signal.aborted) this.#logSessionError(err, attempt);
      } finally {
        if (client) await this.#closeClient(client, signal.aborted);
      }
      if (signal.aborted) break;
      const delayMs = backoffDelay(attempt++, this.#o.backoff);
      this.#log.info({ delayMs, attempt }, 'reconnecting to hub broker');
      await this.#pause(delayMs, signal);
    }
  }

  #logSessionError(err: unknown, attempt: number): void {
    // MQTT 3.1.1 §3.2.2.3: CONNACK 4 = bad user name or password, 5 = not authorized.
    const code = (err as { code?: unknown }).code;
    if (code === 4 || code === 5) {
      this.#log.error(
        { err: errorMessage(err), attempt },
        "hub broker rejected this node's credentials: if the node was deregistered or replaced, delete identity.json from the state dir and enrol again with a new token",
      );
    } else this.#log.warn({ err: errorMessage(err), attempt }, 'MQTT session ended');
  }

  #createClient(bdSeq: number): MqttClient {
    const { identity } = this.#o;
    const options: IClientOptions = {
      clientId: identity.mqtt.clientId,
      username: identity.mqtt.username,
      password: identity.mqtt.password,
      protocolVersion: 4,
      clean: true,
      keepalive: KEEPALIVE_S,
      // The uplink owns reconnection: each attempt needs a new bdSeq and Will.
      reconnectPeriod: 0,
      connectTimeout: this.#o.connectTimeoutMs ?? 10_000,
      queueQoSZero: false,
      will: {
        topic: this.#topic('NDEATH'),
        payload: Buffer.from(this.#deathPayload(bdSeq)),
        qos: 1,
        retain: false,
      },
    };
    const client = connect(identity.mqtt.url, options);
    client.on('error', (err) => this.#log.debug({ err: err.message }, 'MQTT client error'));
    return client;
  }

  #awaitConnack(client: MqttClient, signal: AbortSignal): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const done = (err?: Error) => {
        client.off('connect', onConnect);
        client.off('error', onError);
        client.off('close', onClose);
        signal.removeEventListener('abort', onAbort);
        if (err) reject(err);
        else resolve();
      };
      const onConnect = () => done();
      const onError = (err: Error) => done(err);
      const onClose = () =>
        done(new CitysenseError('CS_ERR_MQTT_CLOSED', 'connection closed before CONNACK', 503));
      const onAbort = () =>
        done(new CitysenseError('CS_ERR_STOPPED', 'uplink stopped while connecting', 499));
      client.on('connect', onConnect);
      client.on('error', onError);
      client.on('close', onClose);
      signal.addEventListener('abort', onAbort, { once: true });
    });
  }

  async #closeClient(client: MqttClient, graceful: boolean): Promise<void> {
    const wasConnected = client.connected;
    if (this.#connected) {
      this.#connected = false;
      this.emit('disconnected', graceful ? 'stopped' : 'lost');
    }
    if (graceful && wasConnected && this.#bdSeq !== null) {
      try {
        const ndeath = client.publishAsync(
          this.#topic('NDEATH'),
          Buffer.from(this.#deathPayload(this.#bdSeq)),
          {
            qos: 1,
          },
        );
        await withTimeout(ndeath, STOP_NDEATH_TIMEOUT_MS);
        await withTimeout(client.endAsync(), STOP_NDEATH_TIMEOUT_MS);
        return;
      } catch (err) {
        this.#log.warn({ err: errorMessage(err) }, 'NDEATH on stop not confirmed');
      }
    }
    await client.endAsync(true);
  }

  #pause(ms: number, signal: AbortSignal): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(done, ms);
      function done() {
        clearTimeout(timer);
        signal.removeEventListener('abort', done);
        resolve();
      }
      signal.addEventListener('abort', done, { once: true });
    });
  }

  // ---- one MQTT session ------------------------------------------------------

  async #session(client: MqttClient, bdSeq: number, signal: AbortSignal): Promise<void> {
    let open = true;
    let markClosed: (value: 'closed') => void = () => undefined;
    this.#sessionClosed = new Promise((resolve) => {
      markClosed = resolve;
    });
    const onClose = () => {
      open = false;
      markClosed('closed');
      this.#wakeup.notify();
    };
    const onMessage = (topic: string, payload: Buffer) => this.#onMessage(topic, payload);
    client.on('close', onClose);
    client.on('message', onMessage);
    try {
      const { groupId, nodeId, hubId } = this.#o.identity;
      await client.subscribeAsync(
        [
          formatTopic({ group: groupId, type: 'NCMD', node: nodeId }),
          `${formatTopic({ group: groupId, type: 'DCMD', node: nodeId })}/+`,
          stateTopic(hubId),
        ],
        { qos: 1 },
      );
      this.#connected = true;
      this.#counters.connects++;
      this.#rebirthRequested = false;
      this.#log.info({ bdSeq, url: this.#o.identity.mqtt.url }, 'connected to hub broker');
      this.emit('connected', bdSeq);
      this.#scheduler.beginSession();
      await this.#publishBirths(client, bdSeq);
      while (open && !signal.aborted) {
        if (this.#rebirthRequested) {
          this.#rebirthRequested = false;
          await this.#publishBirths(client, bdSeq);
          this.#rewind('rebirth');
          continue;
        }
        const untilTimeout = this.#scheduler.msUntilAckTimeout(Date.now());
        if (untilTimeout !== null && untilTimeout <= 0) {
          this.#counters.ackTimeouts++;
          this.#log.warn(
            { inFlight: this.#scheduler.inFlight, ackTimeoutMs: this.#o.ackTimeoutMs },
            'no ack progress, resending',
          );
          this.#rewind('ack-timeout');
          continue;
        }
        const next = await this.#scheduler.next();
        if (!next) {
          await this.#wakeup.wait(Math.min(untilTimeout ?? IDLE_WAIT_MS, IDLE_WAIT_MS));
          continue;
        }
        await this.#publishRecord(client, bdSeq, next.record);
      }
      if (!open && !signal.aborted)
        this.#log.warn({ bdSeq }, 'connection to hub broker lost; spooling until it is back');
    } catch (err) {
      // A publish on a socket that just closed fails; that is the close, not a new problem.
      if (open && !signal.aborted) throw err;
      this.#log.warn({ bdSeq }, 'connection to hub broker lost; spooling until it is back');
    } finally {
      client.off('close', onClose);
      client.off('message', onMessage);
    }
  }

  #rewind(reason: RewindReason): void {
    this.#counters.rewinds++;
    this.#scheduler.rewind();
    this.emit('rewind', reason);
  }

  async #publishBirths(client: MqttClient, bdSeq: number): Promise<void> {
    for (const device of this.#o.devices()) this.#catalog.declareDevice(device);
    this.#seq.reset();
    const now = Date.now();
    const nbirth = this.#catalog.nodeBirth(bdSeq, this.#o.agentVersion, now);
    this.#seq.take(); // NBIRTH is seq 0, Sparkplug 3.0 §6.4.18
    await this.#publish(client, this.#topic('NBIRTH'), nbirth);
    for (const device of this.#catalog.devices()) await this.#publishDeviceBirth(client, device, now);
    this.emit('births', bdSeq);
  }

  async #publishDeviceBirth(client: MqttClient, device: string, now: number): Promise<void> {
    await this.#publish(
      client,
      this.#topic('DBIRTH', device),
      this.#catalog.deviceBirth(device, this.#seq.take(), now),
    );
  }

  async #publishRecord(client: MqttClient, bdSeq: number, spooled: SpoolRecord): Promise<void> {
    let record: TelemetryRecord;
    try {
      record = decodeRecord(spooled.payload);
    } catch (err) {
      // It can never be sent; settle it so it does not block the window forever.
      this.#counters.unreadableRecords++;
      this.#log.error({ id: spooled.id, err: errorMessage(err) }, 'skipping unreadable spool record');
      this.#scheduler.settleLocally(spooled.id);
      this.#queueSpoolAck([{ first: spooled.id, last: spooled.id }]);
      return;
    }
    await this.#ensureBorn(client, bdSeq, record);
    const { device } = record;
    const now = Date.now();
    const metrics: SparkplugMetric[] = [];
    for (const m of record.metrics) {
      const born = m.name ? this.#catalog.lookup(device, m.name) : undefined;
      if (!born) continue;
      metrics.push({
        alias: born.alias,
        datatype: born.datatype,
        timestamp: m.timestamp,
        value: m.value,
        properties: m.properties,
      });
    }
    const spoolId = this.#catalog.lookup(device, SPOOL_ID);
    metrics.push({ alias: spoolId?.alias, datatype: DataType.UInt64, timestamp: now, value: spooled.id });
    const payload: SparkplugPayload = { timestamp: now, seq: this.#seq.take(), metrics };
    const topic = device === null ? this.#topic('NDATA') : this.#topic('DDATA', device);
    this.#scheduler.markSent(spooled.id, now);
    await this.#publish(client, topic, payload);
    this.#counters.published++;
  }

  /** Publishes births first when a record carries a device or metric the current births lack. */
  async #ensureBorn(client: MqttClient, bdSeq: number, record: TelemetryRecord): Promise<void> {
    const { device } = record;
    let changed = device !== null && !this.#catalog.hasDevice(device);
    if (device !== null && changed) {
      const descriptor = this.#o.devices().find((d) => d.id === device);
      if (descriptor) this.#catalog.declareDevice(descriptor);
    }
    for (const m of record.metrics) {
      if (!m.name || !m.datatype) continue;
      if (device !== null && !this.#catalog.lookup(device, m.name)) {
        const unit = this.#o
          .devices()
          .find((d) => d.id === device)
          ?.metrics.find((x) => x.name === m.name)?.unit;
        changed = this.#catalog.declare(device, m.name, m.datatype, unit) || changed;
      } else changed = this.#catalog.declare(device, m.name, m.datatype) || changed;
    }
    if (!changed) return;
    if (device === null) await this.#publishBirths(client, bdSeq);
    else await this.#publishDeviceBirth(client, device, Date.now());
  }

  async #publish(client: MqttClient, topic: string, payload: SparkplugPayload): Promise<void> {
    // QoS 0 for births and data, Sparkplug 3.0 §6.4.18 / §6.4.19 / §6.4.20. mqtt.js
    // calls back a QoS 0 publish on socket 'drain', which never comes if the socket
    // dies under backpressure, so the session's close ends the wait too.
    const sent = client.publishAsync(topic, Buffer.from(encodePayload(payload)), { qos: 0, retain: false });
    const outcome = await Promise.race([sent.then(() => 'sent' as const), this.#sessionClosed]);
    if (outcome === 'closed')
      throw new CitysenseError('CS_ERR_MQTT_CLOSED', 'connection closed while publishing', 503);
  }

  // ---- inbound ---------------------------------------------------------------

  #onMessage(topic: string, payload: Buffer): void {
    const { groupId, nodeId, hubId } = this.#o.identity;
    if (topic === stateTopic(hubId)) this.#onHubState(payload);
    else if (topic === formatTopic({ group: groupId, type: 'NCMD', node: nodeId }))
      this.#onNodeCommand(payload);
    else this.#log.debug({ topic }, 'device commands are not supported by these drivers; ignored');
  }

  #onHubState(payload: Buffer): void {
    let state: unknown;
    try {
      state = JSON.parse(payload.toString('utf8'));
    } catch {
      state = undefined;
    }
    if (!Value.Check(HubState, state)) {
      this.#log.warn('ignoring malformed hub STATE message');
      return;
    }
    if (state.online !== this.#hubOnline) this.#log.info({ online: state.online }, 'hub state changed');
    this.#hubOnline = state.online;
    this.emit('hubState', state.online);
  }

  #onNodeCommand(bytes: Buffer): void {
    let payload: SparkplugPayload;
    try {
      payload = decodePayload(bytes);
    } catch (err) {
      this.#log.warn({ err: errorMessage(err) }, 'ignoring malformed NCMD');
      return;
    }
    for (const m of payload.metrics) {
      // decodePayload yields '' for an absent name (proto2 default), so test for emptiness.
      const name = m.name || this.#catalog.nameOfNodeAlias(m.alias);
      if (name === REBIRTH) {
        if (m.value === true) {
          this.#log.info('hub asked for rebirth');
          this.requestRebirth();
        }
      } else if (name === SPOOL_ACK) {
        if (!(m.value instanceof Uint8Array)) {
          this.#log.warn('ignoring spool ack without bytes');
          continue;
        }
        try {
          this.#onAck(decodeSpoolAck(m.value));
        } catch (err) {
          this.#log.warn({ err: errorMessage(err) }, 'ignoring malformed spool ack');
        }
      } else if (name === ASSIGNMENTS_REVISION) {
        const revision = typeof m.value === 'number' && Number.isFinite(m.value) ? m.value : null;
        this.#log.info({ revision }, 'hub changed the assignments');
        this.emit('assignmentsRevision', revision);
      } else if (name === OPERATIONS_REVISION) {
        const revision = typeof m.value === 'number' && Number.isFinite(m.value) ? m.value : null;
        this.#log.info({ revision }, 'hub has new operations');
        this.emit('operationsRevision', revision);
      } else if (name === OTA_REVISION) {
        const revision = typeof m.value === 'number' && Number.isFinite(m.value) ? m.value : null;
        this.#log.info({ revision }, 'hub changed the OTA document');
        this.emit('otaRevision', revision);
      } else if (name === BD_SEQ) {
        this.#log.debug('ignoring bdSeq in NCMD');
      } else this.#log.debug({ metric: name }, 'ignoring unsupported NCMD metric');
    }
  }

  #onAck(ranges: SpoolRange[]): void {
    if (ranges.length === 0) return;
    this.#scheduler.onAck(ranges, Date.now());
    this.#queueSpoolAck(ranges);
    this.#wakeup.notify();
  }

  /** Spool acks are applied one after another, in arrival order. */
  #queueSpoolAck(ranges: SpoolRange[]): void {
    this.#ackChain = this.#ackChain
      .then(() => this.#o.source.ack(ranges))
      .catch((err: unknown) => this.#log.error({ err: errorMessage(err) }, 'spool ack failed'));
  }

  // ---- helpers ---------------------------------------------------------------

  #topic(type: 'NBIRTH' | 'NDEATH' | 'NDATA' | 'DBIRTH' | 'DDATA', device?: string): string {
    return formatTopic({ group: this.#o.identity.groupId, type, node: this.#o.identity.nodeId, device });
  }

  /** NDEATH payload, Sparkplug 3.0 §6.4.19: only the bdSeq of the session it ends. */
  #deathPayload(bdSeq: number): Uint8Array {
    return encodePayload({
      timestamp: Date.now(),
      metrics: [{ name: BD_SEQ, datatype: DataType.UInt64, value: bdSeq }],
    });
  }
}

function withTimeout<T>(p: Promise<T>, ms: number): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new CitysenseError('CS_ERR_TIMEOUT', `no answer within ${ms} ms`, 504)),
      ms,
    );
    p.then(
      (v) => {
        clearTimeout(timer);
        resolve(v);
      },
      (err: unknown) => {
        clearTimeout(timer);
        reject(err);
      },
    );
  });
}
