/**
 * OPC UA client as a Driver (OPC 10000-4 Part 4 services over opc.tcp): one session, one subscription,
 * monitored items on every mapped variable (grouped by sampling interval). Every publish response
 * becomes one `readings` batch; readings carry the variables' source timestamps and the status code's
 * severity as quality (Good → good, Uncertain → uncertain, Bad → bad).
 *
 * The first connection happens in `start`: an unreachable server (CS_ERR_OPCUA_UNREACHABLE) or a
 * security problem (CS_ERR_OPCUA_SECURITY) rejects it, and the host restarts the driver with backoff.
 * Once running, the driver reconnects by itself rather than through node-opcua's reconnection, so that
 * every outage is seen here: one `fault` per outage (another if its cause changes), a fresh session and
 * subscription with backoff, and readings resume. A mapped node that the server does not have becomes a
 * CS_ERR_OPCUA_NODE fault for that node while the others keep going.
 */
import { CitysenseError, componentLogger, errorMessage, type Logger } from '@citysense/protocol';
import type {
  ClientSession,
  ClientSubscription,
  DataValue,
  OPCUACertificateManager,
  OPCUAClient,
  UserIdentityInfo,
} from 'node-opcua';
import type { DeviceDescriptor, Driver, DriverCapabilities, Quality, Reading } from '../driver.ts';
import { driverAbortedError, throwIfStartAborted } from '../lifecycle.ts';
import { DriverEmitter } from '../typed-emitter.ts';
import { discoverDevice } from './browse.ts';
import { type OpcUaDriverConfig, resolveOpcUaConfig } from './config.ts';
import { loadNodeOpcua, type NodeOpcua } from './runtime.ts';
import { convertValue, type OpcUaMetricType, placeholderValue, statusQuality } from './values.ts';

/** Stable error codes of the OPC UA driver. */
export const OPCUA_ERRORS = {
  /** The server cannot be reached, or the connection to it was lost. */
  unreachable: 'CS_ERR_OPCUA_UNREACHABLE',
  /** Security mode or policy not offered, certificate rejected, or user identity refused. */
  security: 'CS_ERR_OPCUA_SECURITY',
  /** A mapped node does not exist on the server or is not a variable. */
  node: 'CS_ERR_OPCUA_NODE',
} as const;

/** How to build an OPC UA driver. */
export interface OpcUaDriverInit {
  /** Driver instance id; default `opcua`. */
  id?: string;
  /** Options, validated by `start` against OpcUaDriverConfig (CS_ERR_CONFIG_INVALID). */
  config?: unknown;
  /** Parent logger; default the root logger. */
  logger?: Logger;
}

/** One variable mapped to one metric of one device. */
interface MappedNode {
  device: string;
  metric: string;
  type: OpcUaMetricType;
  nodeId: string;
  samplingIntervalMs: number;
  /** Time of the last reading, so that every series strictly increases. */
  lastTime: number;
  lastValue: Reading['value'] | undefined;
  lastQuality: Quality | undefined;
  /** Reported as missing (CS_ERR_OPCUA_NODE) and not found since. */
  missing: boolean;
}

/** One live connection: client, session and subscription. */
interface Connection {
  client: OPCUAClient;
  session: ClientSession | undefined;
  subscription: ClientSubscription | undefined;
  /** Set when node-opcua reports the connection or session gone. */
  lost: boolean;
}

/** Status codes whose name says the problem is security, not reachability (OPC 10000-4 §7.39). */
const SECURITY_FAILURE =
  /Endpoint matching|certificate|BadSecurity|BadIdentityToken|BadUserAccessDenied|BadUserSignatureInvalid|BadNonceInvalid|security policy|securityMode/i;

/** How long a clean disconnect may take before the driver lets the connection go. */
const DISCONNECT_TIMEOUT_MS = 2000;

/** Reads PLC and SCADA variables over OPC UA; devices come from an explicit node map or from browsing. */
export class OpcUaDriver extends DriverEmitter implements Driver {
  /** Driver instance id. */
  readonly id: string;
  /** Telemetry only: writes are not offered yet. */
  readonly capabilities: DriverCapabilities = { telemetry: true, commands: false };
  readonly #input: unknown;
  #config: Readonly<OpcUaDriverConfig> | undefined;
  #opcua: NodeOpcua | undefined;
  #devices: DeviceDescriptor[] = [];
  #nodes: MappedNode[] | undefined;
  #certificates: OPCUACertificateManager | undefined;
  #running = false;
  #starting: Promise<void> | undefined;
  #stopping: Promise<void> | undefined;
  #abort: AbortController | undefined;
  #connection: Connection | undefined;
  #reconnecting: Promise<void> | undefined;
  /** Code of the outage under way; undefined while connected. */
  #outage: string | undefined;
  #pending: Reading[] = [];
  #flush: NodeJS.Immediate | undefined;

  constructor(init: OpcUaDriverInit = {}) {
    const id = init.id ?? 'opcua';
    super(componentLogger('opcua', init.logger).child({ driver: id }));
    this.id = id;
    this.#input = init.config ?? {};
  }

  /** Mapped devices; in browse mode known once the first `start` has browsed. */
  devices(): DeviceDescriptor[] {
    return this.#devices.map((d) => ({ ...d, metrics: d.metrics.map((m) => ({ ...m })) }));
  }

  /** Validates the options, connects, browses if asked to, and subscribes; readings follow. */
  start(signal?: AbortSignal): Promise<void> {
    try {
      throwIfStartAborted(this.id, signal);
    } catch (err) {
      return Promise.reject(err);
    }
    if (this.#running) return Promise.resolve();
    this.#starting ??= this.#start(signal).finally(() => {
      this.#starting = undefined;
    });
    return this.#starting;
  }

  /** Closes the session and connection; no event is emitted once this resolves. Idempotent. */
  stop(): Promise<void> {
    if (this.#stopping) return this.#stopping;
    const starting = this.#starting;
    if (!this.#running && !starting) return Promise.resolve();
    this.#stopping = (async () => {
      this.#running = false;
      this.#abort?.abort(new Error('driver stopping'));
      this.#abort = undefined;
      if (starting) await starting.catch(() => undefined);
      await this.#reconnecting;
      this.#reconnecting = undefined;
      clearImmediate(this.#flush);
      this.#flush = undefined;
      this.#pending = [];
      const connection = this.#connection;
      this.#connection = undefined;
      if (connection) await this.#dispose(connection);
      await this.#certificates?.dispose();
      this.#certificates = undefined;
      this.#outage = undefined;
      this.log.info('OPC UA driver stopped');
    })().finally(() => {
      this.#stopping = undefined;
    });
    return this.#stopping;
  }

  async #start(signal: AbortSignal | undefined): Promise<void> {
    if (this.#stopping) await this.#stopping;
    this.#config ??= resolveOpcUaConfig(this.#input);
    this.#opcua ??= await loadNodeOpcua(this.log);
    const config = this.#config;
    const opcua = this.#opcua;
    throwIfStartAborted(this.id, signal);
    const abort = new AbortController();
    const onAbort = () => abort.abort(signal?.reason);
    signal?.addEventListener('abort', onAbort, { once: true });
    this.#abort = abort;
    this.#certificates = new opcua.OPCUACertificateManager({
      rootFolder: config.pkiFolder,
      automaticallyAcceptUnknownCertificate: config.acceptUnknownServerCertificate,
    });
    let connection: Connection | undefined;
    try {
      connection = await this.#connect(abort.signal);
      if (!this.#nodes) await this.#map(config, connection);
      this.#running = true;
      await this.#monitor(connection, abort.signal);
      if (connection.lost) throw this.#coded(new Error('the connection was lost while subscribing'));
      this.#connection = connection;
      this.log.info(
        { endpointUrl: config.endpointUrl, devices: this.#devices.length },
        'OPC UA driver started',
      );
    } catch (err) {
      this.#running = false;
      if (this.#abort === abort) this.#abort = undefined;
      abort.abort(new Error('start failed'));
      if (connection) await this.#dispose(connection);
      await this.#certificates?.dispose();
      this.#certificates = undefined;
      if (signal?.aborted) throw driverAbortedError(this.id, signal);
      throw err;
    } finally {
      signal?.removeEventListener('abort', onAbort);
    }
  }

  /** Builds the node map and device list, from the options or by browsing. */
  async #map(config: Readonly<OpcUaDriverConfig>, connection: Connection): Promise<void> {
    const node = (
      device: string,
      n: { nodeId: string; metric: string; type: OpcUaMetricType },
      sampling?: number,
    ) =>
      ({
        device,
        metric: n.metric,
        type: n.type,
        nodeId: n.nodeId,
        samplingIntervalMs: sampling ?? config.samplingIntervalMs,
        lastTime: Number.NEGATIVE_INFINITY,
        lastValue: undefined,
        lastQuality: undefined,
        missing: false,
      }) satisfies MappedNode;
    if (config.devices) {
      this.#nodes = config.devices.flatMap((d) => d.nodes.map((n) => node(d.id, n, n.samplingIntervalMs)));
      this.#devices = config.devices.map((d) => ({
        id: d.id,
        kind: d.kind,
        metrics: d.nodes.map((n) => ({ name: n.metric, type: n.type, unit: n.unit })),
      }));
      return;
    }
    if (!config.browse || !connection.session || !this.#opcua) return;
    let found: Awaited<ReturnType<typeof discoverDevice>>;
    try {
      found = await discoverDevice(this.#opcua, connection.session, config.browse, this.log);
    } catch (err) {
      throw new CitysenseError(
        OPCUA_ERRORS.node,
        `browsing ${config.browse.root} on ${config.endpointUrl} failed: ${errorMessage(err)}; check browse.root`,
        502,
      );
    }
    if (found.variables.length === 0) {
      throw new CitysenseError(
        OPCUA_ERRORS.node,
        `no variable of a mappable type under ${config.browse.root} within ${config.browse.maxDepth} levels; check browse.root and browse.maxDepth`,
        502,
      );
    }
    this.#nodes = found.variables.map((v) => node(found.id, v));
    this.#devices = [
      {
        id: found.id,
        kind: found.kind,
        metrics: found.variables.map((v) => ({ name: v.metric, type: v.type, unit: v.unit })),
      },
    ];
    this.log.info({ device: found.id, metrics: found.variables.length }, 'browse mapped the variables');
  }

  /** Opens a connection, a session and a subscription; rejects with a coded error. */
  async #connect(signal: AbortSignal): Promise<Connection> {
    const config = this.#config;
    const opcua = this.#opcua;
    if (!config || !opcua) throw new Error('OPC UA driver used before its options were resolved');
    const client = opcua.OPCUAClient.create({
      applicationName: `citysense-${this.id}`,
      clientCertificateManager: this.#certificates,
      securityMode: opcua.MessageSecurityMode[config.securityMode],
      securityPolicy: opcua.SecurityPolicy[config.securityPolicy],
      endpointMustExist: false,
      keepSessionAlive: true,
      requestedSessionTimeout: 60_000,
      // Reconnection is ours (see the module comment): node-opcua gives up on the first failure.
      connectionStrategy: { maxRetry: 0, initialDelay: 100, maxDelay: 1000 },
    });
    const connection: Connection = { client, session: undefined, subscription: undefined, lost: false };
    const lose = (why: string) => () => this.#lost(connection, why);
    client.on('connection_lost', lose('connection lost'));
    client.on('close', lose('connection closed'));
    const work = (async () => {
      await client.connect(config.endpointUrl);
      const session = await client.createSession(this.#identity(opcua, config));
      connection.session = session;
      session.on('keepalive_failure', lose('session keep-alive failed'));
      session.on('session_closed', lose('session closed by the server'));
      connection.subscription = await session.createSubscription2({
        requestedPublishingInterval: config.publishingIntervalMs,
        requestedLifetimeCount: 100,
        requestedMaxKeepAliveCount: 10,
        maxNotificationsPerPublish: 0,
        publishingEnabled: true,
        priority: 1,
      });
      connection.subscription.on('terminated', lose('subscription terminated'));
    })();
    let timer: NodeJS.Timeout | undefined;
    let onAbort: (() => void) | undefined;
    const limit = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new Error(`no session within ${config.connectTimeoutMs} ms`)),
        config.connectTimeoutMs,
      );
      onAbort = () => reject(new Error('cancelled'));
      signal.addEventListener('abort', onAbort, { once: true });
    });
    try {
      await Promise.race([work, limit]);
      return connection;
    } catch (err) {
      work.catch(() => undefined);
      await this.#dispose(connection);
      throw this.#coded(err);
    } finally {
      clearTimeout(timer);
      if (onAbort) signal.removeEventListener('abort', onAbort);
    }
  }

  #identity(opcua: NodeOpcua, config: Readonly<OpcUaDriverConfig>): UserIdentityInfo {
    const user = config.user;
    if (user.type === 'username') {
      return { type: opcua.UserTokenType.UserName, userName: user.username, password: user.password };
    }
    return { type: opcua.UserTokenType.Anonymous };
  }

  /** A coded error from a node-opcua failure: security problems apart from reachability. */
  #coded(err: unknown): CitysenseError {
    if (err instanceof CitysenseError) return err;
    const url = this.#config?.endpointUrl ?? 'the OPC UA server';
    const message = errorMessage(err);
    if (SECURITY_FAILURE.test(message)) {
      return new CitysenseError(
        OPCUA_ERRORS.security,
        `OPC UA server ${url} refused the secure session: ${message}; check securityMode/securityPolicy against what the server offers, trust its certificate (pkiFolder) and the user credentials`,
        502,
      );
    }
    return new CitysenseError(
      OPCUA_ERRORS.unreachable,
      `OPC UA server ${url} is unreachable: ${message}; check that it runs and that the endpoint URL and network are right`,
      502,
    );
  }

  /** Checks every mapped node exists, then monitors the ones that do. */
  async #monitor(connection: Connection, signal: AbortSignal): Promise<void> {
    const opcua = this.#opcua;
    const nodes = this.#nodes ?? [];
    const { session, subscription } = connection;
    if (!opcua || !session || !subscription) return;
    let classes: DataValue[];
    try {
      classes = await session.read(
        nodes.map((n) => ({ nodeId: n.nodeId, attributeId: opcua.AttributeIds.NodeClass })),
      );
    } catch (err) {
      throw this.#coded(err);
    }
    const present: MappedNode[] = [];
    nodes.forEach((node, i) => {
      const result = classes[i];
      const isVariable = result?.statusCode.isGood() && result.value.value === opcua.NodeClass.Variable;
      if (isVariable) {
        if (node.missing) this.log.info({ nodeId: node.nodeId }, 'OPC UA node found again');
        node.missing = false;
        present.push(node);
        return;
      }
      if (node.missing || signal.aborted) return;
      node.missing = true;
      const why = result?.statusCode.isGood()
        ? 'is not a variable'
        : `does not exist (${result?.statusCode.name ?? 'no result'})`;
      const message = `OPC UA node ${node.nodeId} of ${node.device}/${node.metric} ${why}; fix the node map, the other nodes keep going`;
      this.log.warn({ device: node.device, nodeId: node.nodeId }, message);
      if (this.#running) this.emit('fault', { device: node.device, code: OPCUA_ERRORS.node, message });
    });
    const byInterval = new Map<number, MappedNode[]>();
    for (const node of present) {
      const group = byInterval.get(node.samplingIntervalMs) ?? [];
      group.push(node);
      byInterval.set(node.samplingIntervalMs, group);
    }
    for (const [samplingInterval, group] of byInterval) {
      try {
        const monitored = await subscription.monitorItems(
          group.map((n) => ({ nodeId: n.nodeId, attributeId: opcua.AttributeIds.Value })),
          { samplingInterval, discardOldest: true, queueSize: 10 },
          opcua.TimestampsToReturn.Both,
        );
        monitored.on('changed', (_item, dataValue, index) => {
          const node = group[index];
          if (node) this.#changed(connection, node, dataValue);
        });
      } catch (err) {
        throw this.#coded(err);
      }
    }
  }

  /** Queues one sample as a reading; the batch goes out once the publish response is processed. */
  #changed(connection: Connection, node: MappedNode, dataValue: DataValue): void {
    if (!this.#running || connection.lost) return;
    const quality = statusQuality(dataValue.statusCode.value);
    const source = dataValue.sourceTimestamp ?? dataValue.serverTimestamp;
    const sourceTime = source ? source.getTime() : Date.now();
    const converted = convertValue(node.type, dataValue.value.value);
    if (converted === undefined && quality !== 'bad') {
      this.log.debug(
        { nodeId: node.nodeId, type: node.type },
        'OPC UA value does not convert to the metric type',
      );
      return;
    }
    // A Bad sample usually has no value: keep the last one, flagged bad.
    const value = converted ?? node.lastValue ?? placeholderValue(node.type);
    // After a reconnect the server sends the current sample again: the same time, value and quality.
    if (
      Math.floor(sourceTime) === node.lastTime &&
      value === node.lastValue &&
      quality === node.lastQuality
    ) {
      return;
    }
    const time = Math.max(Math.floor(sourceTime), node.lastTime + 1);
    node.lastTime = time;
    node.lastValue = value;
    node.lastQuality = quality;
    this.#pending.push({ device: node.device, metric: node.metric, time, value, quality });
    this.#flush ??= setImmediate(() => {
      this.#flush = undefined;
      const batch = this.#pending;
      this.#pending = [];
      if (batch.length > 0 && this.#running) this.emit('readings', batch);
    });
  }

  /** node-opcua reported the connection gone: one fault per outage, then reconnect with backoff. */
  #lost(connection: Connection, why: string): void {
    connection.lost = true;
    if (connection !== this.#connection || !this.#running) return;
    this.#connection = undefined;
    const error = this.#coded(new Error(why));
    this.#report(error);
    void this.#dispose(connection);
    const signal = this.#abort?.signal;
    if (signal) this.#reconnecting = this.#reconnect(signal);
  }

  #report(error: CitysenseError): void {
    if (this.#outage === error.code) return;
    this.#outage = error.code;
    this.log.warn({ code: error.code, err: error.message }, 'OPC UA connection down');
    if (this.#running) this.emit('fault', { code: error.code, message: error.message });
  }

  async #reconnect(signal: AbortSignal): Promise<void> {
    let failures = 0;
    while (!signal.aborted) {
      await sleep(this.#backoff(++failures), signal);
      if (signal.aborted) return;
      let connection: Connection | undefined;
      try {
        connection = await this.#connect(signal);
        await this.#monitor(connection, signal);
        if (connection.lost) throw this.#coded(new Error('the connection was lost while subscribing'));
        if (signal.aborted || !this.#running) {
          await this.#dispose(connection);
          return;
        }
        this.#connection = connection;
        this.#outage = undefined;
        this.log.info({ failures }, 'OPC UA connection restored');
        return;
      } catch (err) {
        if (connection) await this.#dispose(connection);
        if (signal.aborted) return;
        this.#report(this.#coded(err));
      }
    }
  }

  /** Closes a connection, waiting a bounded time: a dead server must not hold `stop` up. */
  async #dispose(connection: Connection): Promise<void> {
    connection.lost = true;
    const closing = connection.client.disconnect().catch((err: unknown) => {
      this.log.debug({ err: errorMessage(err) }, 'OPC UA disconnect failed');
    });
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      closing,
      new Promise<void>((resolve) => (timer = setTimeout(resolve, DISCONNECT_TIMEOUT_MS))),
    ]);
    clearTimeout(timer);
  }

  #backoff(failures: number): number {
    const { initialDelayMs, maxDelayMs } = this.#config?.reconnect ?? {
      initialDelayMs: 500,
      maxDelayMs: 30_000,
    };
    return Math.min(maxDelayMs, initialDelayMs * 2 ** Math.min(failures - 1, 30));
  }
}

/** Waits `ms`, or less when `signal` aborts; never rejects. */
function sleep(ms: number, signal: AbortSignal): Promise<void> {
  if (signal.aborted) return Promise.resolve();
  return new Promise((resolve) => {
    const done = (): void => {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal.addEventListener('abort', done, { once: true });
  });
}
