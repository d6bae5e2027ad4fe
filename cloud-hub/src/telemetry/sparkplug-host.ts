import {
  applyDatatype,
  BD_SEQ,
  CitysenseError,
  componentLogger,
  DataType,
  decodeEdgeAlert,
  decodePayload,
  decodeVideoAnalyticsFrame,
  encodePayload,
  encodeSpoolAck,
  errorMessage,
  formatTopic,
  type Logger,
  parseTopic,
  REBIRTH,
  SPARKPLUG_NAMESPACE,
  SPOOL_ACK,
  type SparkplugMetric,
  type SparkplugPayload,
  type SparkplugTopic,
  stateTopic,
  toRanges,
} from '@citysense/protocol';
import type { TelemetryObserver } from '../alarms/evaluator.ts';
import type { MessageBus } from '../broker/message-bus.ts';
import type { HubMetrics } from '../http/metrics.ts';
import type { NodeRegistry } from '../registry/node-registry.ts';
import type { BatchWriter, HealthSample } from './batch-writer.ts';
import {
  agentVersionOf,
  classifyMetric,
  type DeclaredMetric,
  NodeSession,
  qualityOf,
} from './node-session.ts';
import type { ReadingStore } from './reading-store.ts';

/** The sensor ledger's say on Sparkplug devices (admission/ledger-admission.ts). */
export interface SensorLedgerAdmission {
  /** Whether values of Sparkplug device `device` are dropped now (its id is a ledger code the ledger refuses). */
  sensorRefuses(device: string): boolean;
  /** Counts `values` dropped values of `device` sent by `nodeId`. */
  sensorDropped(device: string, nodeId: string, values: number): void;
}

/** Options of the Sparkplug host application. */
export interface SparkplugHostOptions {
  hostId: string;
  groupId: string;
  bus: MessageBus;
  registry: NodeRegistry;
  store: ReadingStore;
  writer: BatchWriter;
  metrics: HubMetrics;
  /**
   * Check Sparkplug seq continuity (Rebirth on a gap). Off when data is shared
   * between hub replicas, since each replica then sees only part of the stream.
   */
  checkSeq: boolean;
  /** Minimum time between two Rebirth requests to one node. */
  rebirthIntervalMs?: number;
  /**
   * The ledger's word on device-level data: values of a refused device are dropped, its
   * births still declare aliases and series (so nothing needs a Rebirth once it is
   * admitted), and its spool records are still acknowledged so the gateway stops resending.
   */
  admission?: SensorLedgerAdmission | undefined;
  /** Sees every value as it is buffered and every node session change (the rules engine); must not block. */
  observer?: TelemetryObserver | undefined;
  logger?: Logger;
}

/** Latest health a node reported, for /metrics and the registry. */
export type LatestHealth = HealthSample;

/**
 * The hub as Sparkplug B primary host application (Sparkplug 3.0 §7): tracks each
 * node's session from its births, decodes data by alias into readings, asks for a
 * Rebirth on a seq gap or an unknown alias, marks nodes offline on NDEATH, and
 * acknowledges spool records once the database has committed them.
 */
export class SparkplugHost {
  readonly #o: SparkplugHostOptions;
  readonly #log: Logger;
  readonly #sessions = new Map<string, NodeSession>();
  readonly #lastSeen = new Map<string, number>();
  readonly #latestHealth = new Map<string, LatestHealth>();
  #queue: Promise<void> = Promise.resolve();
  #touchTimer: NodeJS.Timeout | undefined;
  #started = false;

  constructor(options: SparkplugHostOptions) {
    this.#o = options;
    this.#log = componentLogger('sparkplug-host', options.logger);
  }

  /** Subscribes to the group's edge traffic and announces the host STATE online. */
  async start(): Promise<void> {
    if (this.#started) return;
    this.#started = true;
    // Births and deaths go to every hub replica, so each one holds every node's alias
    // table; data is shared out between replicas (Sparkplug 3.0 §7 with MQTT 5 §4.8.2).
    const handler = (topic: string, payload: Buffer, done: () => void) => {
      this.#queue = this.#queue
        .then(() => this.#handle(topic, payload))
        .then(done, (err: unknown) => {
          this.#log.error({ err: errorMessage(err), topic }, 'unexpected error handling a message');
          done();
        });
    };
    const base = `${SPARKPLUG_NAMESPACE}/${this.#o.groupId}`;
    for (const type of ['NBIRTH', 'NDEATH', 'DBIRTH', 'DDEATH']) {
      await this.#o.bus.subscribe(`${base}/${type}/#`, handler);
    }
    for (const type of ['NDATA', 'DDATA']) {
      await this.#o.bus.subscribe(`${base}/${type}/#`, handler, { shared: true });
    }
    await this.publishState(true);
    this.#touchTimer = setInterval(() => void this.#flushLastSeen(), 5000);
    this.#touchTimer.unref();
  }

  /** Publishes the retained host STATE (Sparkplug 3.0 §7.3: JSON `{online, timestamp}`). */
  async publishState(online: boolean): Promise<void> {
    const body = JSON.stringify({ online, timestamp: Date.now() });
    await this.#o.bus.publish(stateTopic(this.#o.hostId), body, { qos: 1, retain: true });
  }

  /** Announces offline and stops. */
  async stop(): Promise<void> {
    if (!this.#started) return;
    this.#started = false;
    if (this.#touchTimer) clearInterval(this.#touchTimer);
    await this.#queue;
    await this.#flushLastSeen();
    await this.publishState(false).catch((err: unknown) =>
      this.#log.warn({ err: errorMessage(err) }, 'could not publish STATE offline'),
    );
  }

  /** Latest health per node. */
  latestHealth(): ReadonlyMap<string, LatestHealth> {
    return this.#latestHealth;
  }

  /** Nodes with a live Sparkplug session. */
  onlineNodes(): number {
    return this.#sessions.size;
  }

  /** Devices a node declared, with their online state. */
  devicesOf(nodeId: string): Array<{ id: string; online: boolean }> {
    const s = this.#sessions.get(nodeId);
    return s ? [...s.devices].map(([id, d]) => ({ id, online: d.online })) : [];
  }

  /** Sends spool acknowledgements for committed records. */
  acknowledge(committed: Map<string, number[]>): void {
    for (const [nodeId, ids] of committed) {
      const payload = encodePayload({
        timestamp: Date.now(),
        metrics: [{ name: SPOOL_ACK, datatype: DataType.Bytes, value: encodeSpoolAck(toRanges(ids)) }],
      });
      const topic = formatTopic({ group: this.#o.groupId, type: 'NCMD', node: nodeId });
      this.#o.bus
        .publish(topic, payload)
        .catch((err: unknown) =>
          this.#log.warn({ node: nodeId, err: errorMessage(err) }, 'ack publish failed'),
        );
    }
  }

  /**
   * Sends one NCMD carrying `metrics` to a node (Sparkplug 3.0 §6.4.7), QoS 1. Resolves once the
   * broker took it; whether an offline node gets it later depends on its MQTT session, so treat it as a nudge.
   */
  async sendNodeCommand(nodeId: string, metrics: SparkplugMetric[]): Promise<void> {
    const payload = encodePayload({ timestamp: Date.now(), metrics });
    const topic = formatTopic({ group: this.#o.groupId, type: 'NCMD', node: nodeId });
    await this.#o.bus.publish(topic, payload, { qos: 1 });
  }

  /** Forgets a node's session (deregistration). */
  forget(nodeId: string): void {
    this.#sessions.delete(nodeId);
    this.#latestHealth.delete(nodeId);
  }

  async #handle(topicText: string, bytes: Buffer): Promise<void> {
    let topic: SparkplugTopic;
    let payload: SparkplugPayload;
    try {
      topic = parseTopic(topicText);
      if (topic.group !== this.#o.groupId)
        throw new CitysenseError(
          'CS_ERR_TOPIC_INVALID',
          `group ${topic.group} is not served by this hub`,
          400,
        );
    } catch (err) {
      return this.#reject('topic', topicText, err);
    }
    this.#o.metrics.messages.inc({ type: topic.type });
    if (!(await this.#o.registry.isActive(topic.node)))
      return this.#reject('unknown-node', topicText, 'node is not enrolled');
    try {
      payload = decodePayload(bytes);
    } catch (err) {
      return this.#reject('decode', topicText, err);
    }
    this.#lastSeen.set(topic.node, Date.now());
    switch (topic.type) {
      case 'NBIRTH':
        return this.#onNodeBirth(topic.node, payload);
      case 'NDEATH':
        return this.#onNodeDeath(topic.node, payload);
      case 'DBIRTH':
        return this.#onDeviceBirth(topic.node, topic.device ?? '', payload);
      case 'DDEATH':
        return this.#onDeviceDeath(topic.node, topic.device ?? '', payload);
      case 'NDATA':
      case 'DDATA':
        return this.#onData(topic.node, topic.device ?? '', payload);
    }
  }

  async #onNodeBirth(nodeId: string, payload: SparkplugPayload): Promise<void> {
    const bdSeqMetric = payload.metrics.find((m) => m.name === BD_SEQ);
    const bdSeq = typeof bdSeqMetric?.value === 'number' ? bdSeqMetric.value : null;
    const session = new NodeSession(nodeId, bdSeq, payload.seq ?? 0, this.#o.checkSeq);
    this.#sessions.set(nodeId, session);
    await this.#declare(session, '', payload);
    await this.#o.registry.markBirth(nodeId, bdSeq, agentVersionOf(payload.metrics));
    this.#o.observer?.nodeState(nodeId, true);
    this.#log.info({ node: nodeId, bdSeq }, 'node online (NBIRTH)');
  }

  async #onNodeDeath(nodeId: string, payload: SparkplugPayload): Promise<void> {
    const bdSeqMetric = payload.metrics.find((m) => m.name === BD_SEQ);
    const session = this.#sessions.get(nodeId);
    // Sparkplug 3.0 §7.4: an NDEATH whose bdSeq does not match the current session's is stale.
    if (session && bdSeqMetric && session.bdSeq !== null && bdSeqMetric.value !== session.bdSeq) {
      this.#log.debug({ node: nodeId }, 'stale NDEATH ignored');
      return;
    }
    this.#sessions.delete(nodeId);
    await this.#o.registry.markDeath(nodeId);
    this.#o.observer?.nodeState(nodeId, false);
    this.#log.info({ node: nodeId }, 'node offline (NDEATH)');
  }

  async #onDeviceBirth(nodeId: string, device: string, payload: SparkplugPayload): Promise<void> {
    const session = this.#sessions.get(nodeId);
    if (!session || session.awaitingRebirth)
      return this.#requestRebirth(nodeId, 'DBIRTH without a node session');
    if (!session.advanceSeq(payload.seq)) return this.#requestRebirth(nodeId, 'seq gap');
    session.devices.set(device, { online: true });
    await this.#declare(session, device, payload);
  }

  #onDeviceDeath(nodeId: string, device: string, payload: SparkplugPayload): void {
    const session = this.#sessions.get(nodeId);
    if (!session) return;
    if (!session.advanceSeq(payload.seq)) {
      this.#requestRebirth(nodeId, 'seq gap');
      return;
    }
    session.devices.set(device, { online: false });
  }

  /** Registers a birth's metrics (resolving series ids) and stores the values it carries. */
  async #declare(session: NodeSession, device: string, payload: SparkplugPayload): Promise<void> {
    const readings = payload.metrics.filter(
      (m) => m.name !== undefined && classifyMetric(device, m.name) === 'reading',
    );
    const ids = await this.#o.store.resolveSeries(
      readings.map((m) => ({
        node: session.nodeId,
        device,
        metric: m.name ?? '',
        datatype: m.datatype ?? DataType.Unknown,
        unit: typeof m.properties?.engUnit === 'string' ? m.properties.engUnit : undefined,
      })),
    );
    const seriesIds = new Map(readings.map((m, i) => [m.name, ids[i] ?? 0]));
    for (const m of payload.metrics) {
      if (m.name === undefined) continue;
      const role = classifyMetric(device, m.name);
      const declared: DeclaredMetric = {
        device,
        name: m.name,
        datatype: m.datatype ?? DataType.Unknown,
        role: role === 'reading' ? { kind: 'reading', seriesId: seriesIds.get(m.name) ?? 0 } : role,
      };
      session.declare(m.alias, declared);
    }
    this.#store(session, device, payload, false);
  }

  async #onData(nodeId: string, device: string, payload: SparkplugPayload): Promise<void> {
    const session = this.#sessions.get(nodeId);
    if (!session) return this.#requestRebirth(nodeId, 'data without a node session');
    if (session.awaitingRebirth) {
      this.#o.metrics.rejected.inc({ reason: 'awaiting-rebirth' });
      return;
    }
    if (!session.advanceSeq(payload.seq)) return this.#requestRebirth(nodeId, 'seq gap');
    await this.#o.writer.reserve();
    this.#store(session, device, payload, true);
  }

  /** Turns a payload's metrics into buffered rows; `strict` drops the message on an undeclared metric. */
  #store(session: NodeSession, device: string, payload: SparkplugPayload, strict: boolean): void {
    const declared: Array<[SparkplugMetric, DeclaredMetric]> = [];
    for (const m of payload.metrics) {
      const d = session.lookup(device, m);
      if (!d) {
        if (!strict) continue;
        this.#o.metrics.rejected.inc({ reason: 'alias' });
        this.#requestRebirth(session.nodeId, `undeclared metric ${m.name ?? `alias ${m.alias}`}`);
        return;
      }
      declared.push([m, d]);
    }
    const fallbackTime = payload.timestamp ?? Date.now();
    let spoolId: number | undefined;
    let health: HealthSample | undefined;
    const refused = device !== '' && this.#o.admission?.sensorRefuses(device) === true;
    let dropped = 0;
    const observer = this.#o.observer;
    for (const [m, d] of declared) {
      const time = m.timestamp ?? fallbackTime;
      const value = m.datatype === undefined ? applyDatatype(d.datatype, m.value) : m.value;
      const data =
        d.role.kind === 'reading' || d.role.kind === 'video-analytics' || d.role.kind === 'edge-alert';
      if (refused && data) {
        if (value != null && !(value instanceof Uint8Array && value.length === 0)) dropped++;
        continue;
      }
      switch (d.role.kind) {
        case 'spool-id':
          if (typeof value === 'number') spoolId = value;
          break;
        case 'health':
          if (typeof value === 'number') {
            health ??= { nodeId: session.nodeId, time };
            health[d.role.column] = value;
            observer?.value(session.nodeId, device, d.name, time, value);
          }
          break;
        case 'reading':
          if (value === null && !strict) {
            // A birth may declare a metric before it has a value; nothing to store yet.
          } else if (value === undefined || value instanceof Uint8Array) {
            this.#o.metrics.rejected.inc({ reason: 'unsupported-type' });
          } else if (typeof value === 'string') {
            this.#o.writer.addReading(time, d.role.seriesId, null, value, qualityOf(m));
            observer?.value(session.nodeId, device, d.name, time, null);
          } else if (typeof value === 'boolean') {
            this.#o.writer.addReading(time, d.role.seriesId, value ? 1 : 0, null, qualityOf(m));
            observer?.value(session.nodeId, device, d.name, time, value ? 1 : 0);
          } else {
            this.#o.writer.addReading(time, d.role.seriesId, value, null, qualityOf(m));
            observer?.value(session.nodeId, device, d.name, time, value);
          }
          break;
        case 'video-analytics':
        case 'edge-alert':
          // A birth declares the metric, usually without a value.
          if (strict || (value instanceof Uint8Array && value.length > 0))
            this.#addAnalytics(d.role.kind, session.nodeId, value);
          break;
        case 'ignored':
          break;
      }
    }
    if (health) {
      this.#o.writer.addHealth(health);
      this.#latestHealth.set(session.nodeId, health);
    }
    if (dropped > 0) this.#o.admission?.sensorDropped(device, session.nodeId, dropped);
    // A record whose values were refused is complete too: acked after the rows before it commit.
    if (spoolId !== undefined && strict) this.#o.writer.completeRecord(session.nodeId, spoolId);
  }

  /** Buffers one video analytics frame or edge alert; a malformed one is counted and logged, the rest of the message stands. */
  #addAnalytics(kind: 'video-analytics' | 'edge-alert', nodeId: string, value: unknown): void {
    try {
      if (!(value instanceof Uint8Array)) throw new Error(`${kind} metric without bytes`);
      if (kind === 'video-analytics')
        this.#o.writer.addFrame({ nodeId, frame: decodeVideoAnalyticsFrame(value) });
      else this.#o.writer.addAlert({ nodeId, alert: decodeEdgeAlert(value) });
    } catch (err) {
      this.#o.metrics.rejected.inc({ reason: kind });
      this.#log.warn({ node: nodeId, err: errorMessage(err) }, `${kind} rejected`);
    }
  }

  #requestRebirth(nodeId: string, reason: string): void {
    const session = this.#sessions.get(nodeId);
    if (session) session.awaitingRebirth = true;
    this.#o.metrics.rejected.inc({ reason: reason === 'seq gap' ? 'seq' : 'rebirth-needed' });
    const now = Date.now();
    const last = session?.lastRebirthRequestAt ?? this.#rebirthWithoutSession.get(nodeId) ?? 0;
    if (now - last < (this.#o.rebirthIntervalMs ?? 2000)) return;
    if (session) session.lastRebirthRequestAt = now;
    else this.#rebirthWithoutSession.set(nodeId, now);
    this.#o.metrics.rebirths.inc();
    this.#log.info({ node: nodeId, reason }, 'requesting Rebirth');
    const payload = encodePayload({
      timestamp: now,
      metrics: [{ name: REBIRTH, datatype: DataType.Boolean, value: true }],
    });
    const topic = formatTopic({ group: this.#o.groupId, type: 'NCMD', node: nodeId });
    this.#o.bus
      .publish(topic, payload, { qos: 1 })
      .catch((err: unknown) =>
        this.#log.warn({ node: nodeId, err: errorMessage(err) }, 'rebirth publish failed'),
      );
  }

  readonly #rebirthWithoutSession = new Map<string, number>();

  #reject(reason: string, topic: string, err: unknown): void {
    this.#o.metrics.rejected.inc({ reason });
    this.#log.warn({ reason, topic: topic.slice(0, 200), err: errorMessage(err) }, 'message rejected');
  }

  async #flushLastSeen(): Promise<void> {
    if (this.#lastSeen.size === 0) return;
    const seen = new Map(this.#lastSeen);
    this.#lastSeen.clear();
    await this.#o.registry
      .touch(seen)
      .catch((err: unknown) => this.#log.warn({ err: errorMessage(err) }, 'last-seen update failed'));
  }
}
