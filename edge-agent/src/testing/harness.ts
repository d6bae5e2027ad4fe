/**
 * Real parts for edge-agent tests: an Aedes broker on port 0, an HTTP enrolment
 * endpoint that follows the hub contract, and a Sparkplug host application that
 * decodes everything the agent publishes and acks spool records like the hub.
 * Test support only; not exported from the package.
 */
import { EventEmitter } from 'node:events';
import {
  createServer as createHttpServer,
  type IncomingMessage,
  type Server,
  type ServerResponse,
} from 'node:http';
import { type AddressInfo, createServer, type Server as NetServer, type Socket } from 'node:net';
import {
  BD_SEQ,
  DataType,
  decodePayload,
  encodePayload,
  encodeSpoolAck,
  parseTopic,
  REBIRTH,
  SPOOL_ACK,
  SPOOL_ID,
  type SparkplugMetric,
  type SparkplugPayload,
  type SpoolRange,
  stateTopic,
  toRanges,
  verifyEd25519,
} from '@citysense/protocol';
import { Aedes, type Client } from 'aedes';
import { connectAsync, type MqttClient } from 'mqtt';

/** Polls `check` until it returns a truthy value or `timeoutMs` passes. */
export async function waitUntil<T>(
  check: () => T | Promise<T>,
  what: string,
  timeoutMs = 10_000,
  intervalMs = 10,
): Promise<NonNullable<T>> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value) return value as NonNullable<T>;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}

/** An in-process MQTT broker that can go away and come back on the same port. */
export class TestBroker {
  readonly aedes: Aedes;
  readonly clients = new Map<string, Client>();
  #server: NetServer | null = null;
  readonly #sockets = new Set<Socket>();
  port = 0;
  /** username → password the broker accepts; empty = accept anyone. */
  readonly credentials = new Map<string, string>();

  private constructor(aedes: Aedes) {
    this.aedes = aedes;
  }

  /** Starts a broker on a free port. */
  static async start(): Promise<TestBroker> {
    const aedes = await Aedes.createBroker();
    const broker = new TestBroker(aedes);
    aedes.authenticate = (_client, username, password, done) => {
      const expected = username === undefined ? undefined : broker.credentials.get(username);
      const ok =
        broker.credentials.size === 0 || (expected !== undefined && password?.toString() === expected);
      done(null, ok);
    };
    aedes.on('clientReady', (c) => broker.clients.set(c.id, c));
    aedes.on('clientDisconnect', (c) => {
      if (broker.clients.get(c.id) === c) broker.clients.delete(c.id);
    });
    await broker.listen();
    return broker;
  }

  /** mqtt:// URL of the broker. */
  get url(): string {
    return `mqtt://127.0.0.1:${this.port}`;
  }

  /** Listens again (on the same port after `goOffline`). */
  async listen(): Promise<void> {
    const server = createServer((socket) => {
      this.#sockets.add(socket);
      socket.on('close', () => this.#sockets.delete(socket));
      this.aedes.handle(socket);
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.port, '127.0.0.1', () => resolve());
    });
    this.port = (server.address() as AddressInfo).port;
    this.#server = server;
  }

  /** Stops accepting connections and drops every open one, as if the uplink went down. */
  async goOffline(): Promise<void> {
    const server = this.#server;
    this.#server = null;
    for (const s of this.#sockets) s.destroy();
    if (server) await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  /** Kills one client's TCP connection without an MQTT DISCONNECT (the broker then publishes its Will). */
  dropClient(clientId: string): void {
    const client = this.clients.get(clientId);
    if (!client) throw new Error(`client ${clientId} is not connected`);
    (client.conn as Socket).destroy();
  }

  /** Closes everything. */
  async close(): Promise<void> {
    await this.goOffline();
    await new Promise<void>((resolve) => this.aedes.close(() => resolve()));
  }
}

/** One enrolment request as the test endpoint saw it. */
export interface SeenEnrollment {
  body: Record<string, unknown>;
  signatureValid: boolean;
}

/** Answer of the test enrolment endpoint to one request. */
export type EnrollAnswer = { status: number; body: unknown };

/** An HTTP server implementing `POST /v1/nodes/enroll` per the hub contract. */
export class TestEnrollServer {
  readonly requests: SeenEnrollment[] = [];
  /** Overrides the answer (e.g. 4xx refusals, 5xx outages); null = enrol. */
  answer: ((n: number) => EnrollAnswer | null) | null = null;
  #server: Server | null = null;
  url = '';

  constructor(
    readonly broker: TestBroker,
    readonly identity = { nodeId: 'gw-test-1', groupId: 'city', hubId: 'hub-1' },
  ) {}

  /** Starts on a free port. */
  async start(): Promise<void> {
    const server = createHttpServer((req, res) => void this.#handle(req, res));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
    this.#server = server;
    this.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  }

  async #handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const send = (status: number, body: unknown) => {
      res.writeHead(status, { 'content-type': 'application/json' });
      res.end(JSON.stringify(body));
    };
    if (req.method !== 'POST' || req.url !== '/v1/nodes/enroll')
      return send(404, { code: 'NOT_FOUND', message: '' });
    const body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as Record<string, unknown>;
    const token = String(body.token);
    const publicKey = String(body.publicKey);
    const signatureValid = verifyEd25519(publicKey, `${token}\n${publicKey}`, String(body.signature));
    this.requests.push({ body, signatureValid });
    const override = this.answer?.(this.requests.length);
    if (override) return send(override.status, override.body);
    const password = `pw-${this.requests.length}`;
    this.broker.credentials.set(this.identity.nodeId, password);
    send(201, {
      ...this.identity,
      mqtt: {
        url: this.broker.url,
        username: this.identity.nodeId,
        password,
        clientId: this.identity.nodeId,
      },
    });
  }

  /** Stops the server. */
  async close(): Promise<void> {
    const server = this.#server;
    if (server) await new Promise<void>((resolve) => server.close(() => resolve()));
  }
}

/** One decoded Sparkplug message the host received. */
export interface SeenMessage {
  type: string;
  device?: string | undefined;
  payload: SparkplugPayload;
  /** Spool id carried by NDATA/DDATA, resolved through the births' aliases. */
  spoolId?: number | undefined;
  /** Metric values by name (aliases resolved), for data messages. */
  values: Map<string, SparkplugMetric>;
  at: number;
}

/**
 * A Sparkplug host application standing in for the hub: subscribes to `spBv1.0/#`,
 * resolves aliases from births, publishes STATE and acks spool records with NCMD.
 */
export class TestHost extends EventEmitter {
  readonly messages: SeenMessage[] = [];
  /** Ack data messages as they arrive (the hub's behaviour after a commit). */
  autoAck = true;
  /** (device or '') → alias → metric name, from the last births. */
  readonly #aliases = new Map<string, Map<number, string>>();
  #client: MqttClient | null = null;

  constructor(
    readonly broker: TestBroker,
    readonly group = 'city',
    readonly node = 'gw-test-1',
    readonly hubId = 'hub-1',
  ) {
    super();
  }

  /** Connects and subscribes. */
  async start(): Promise<void> {
    this.broker.credentials.set('host', 'host-pw');
    const client = await connectAsync(this.broker.url, {
      clientId: 'test-host',
      username: 'host',
      password: 'host-pw',
      reconnectPeriod: 50,
      protocolVersion: 4,
    });
    client.on('message', (topic, payload) => this.#onMessage(topic, payload));
    await client.subscribeAsync('spBv1.0/#', { qos: 1 });
    this.#client = client;
  }

  /** True while the host's own MQTT session is up. */
  get connected(): boolean {
    return this.#client?.connected ?? false;
  }

  #onMessage(topic: string, bytes: Buffer): void {
    if (topic.startsWith('spBv1.0/STATE/')) return;
    const t = parseTopic(topic);
    if (t.type === 'NCMD' || t.type === 'DCMD') return;
    const payload = decodePayload(bytes);
    const scope = t.device ?? '';
    if (t.type === 'NBIRTH') this.#aliases.clear();
    if (t.type === 'NBIRTH' || t.type === 'DBIRTH') {
      const table = new Map<number, string>();
      for (const m of payload.metrics) if (m.alias && m.name) table.set(m.alias, m.name);
      this.#aliases.set(scope, table);
    }
    const values = new Map<string, SparkplugMetric>();
    for (const m of payload.metrics) {
      const name = m.name || (m.alias ? this.#aliases.get(scope)?.get(m.alias) : undefined);
      if (name) values.set(name, m);
    }
    const spoolMetric = values.get(SPOOL_ID);
    const isData = t.type === 'NDATA' || t.type === 'DDATA';
    const spoolId = isData && typeof spoolMetric?.value === 'number' ? spoolMetric.value : undefined;
    const seen: SeenMessage = { type: t.type, device: t.device, payload, spoolId, values, at: Date.now() };
    this.messages.push(seen);
    this.emit('message', seen);
    if (isData && spoolId !== undefined && this.autoAck) void this.ack([spoolId]);
  }

  /** The first message seen so far or arriving within `timeoutMs` that matches `match`. */
  nextMessage(match: (m: SeenMessage) => boolean, timeoutMs = 15_000): Promise<SeenMessage> {
    const seen = this.messages.find(match);
    if (seen) return Promise.resolve(seen);
    return new Promise((resolve, reject) => {
      const onMessage = (m: SeenMessage) => {
        if (!match(m)) return;
        clearTimeout(timer);
        this.off('message', onMessage);
        resolve(m);
      };
      const timer = setTimeout(() => {
        this.off('message', onMessage);
        reject(new Error(`no matching Sparkplug message within ${timeoutMs} ms`));
      }, timeoutMs);
      this.on('message', onMessage);
    });
  }

  /** Messages of one type. */
  ofType(type: string): SeenMessage[] {
    return this.messages.filter((m) => m.type === type);
  }

  /** Spool ids of every data message, in arrival order (resends included). */
  spoolIds(): number[] {
    return this.messages.flatMap((m) => (m.spoolId === undefined ? [] : [m.spoolId]));
  }

  /** Publishes NCMD SPOOL_ACK for `ids`. */
  async ack(ids: number[] | SpoolRange[]): Promise<void> {
    const ranges = typeof ids[0] === 'number' ? toRanges(ids as number[]) : (ids as SpoolRange[]);
    await this.#ncmd({ name: SPOOL_ACK, datatype: DataType.Bytes, value: encodeSpoolAck(ranges) });
  }

  /** Publishes NCMD `Node Control/Rebirth = true`. */
  async rebirth(): Promise<void> {
    await this.#ncmd({ name: REBIRTH, datatype: DataType.Boolean, value: true });
  }

  /** Publishes the retained host STATE. */
  async publishState(online: boolean): Promise<void> {
    await this.#client?.publishAsync(
      stateTopic(this.hubId),
      JSON.stringify({ online, timestamp: Date.now() }),
      {
        qos: 1,
        retain: true,
      },
    );
  }

  async #ncmd(metric: SparkplugMetric): Promise<void> {
    const payload = encodePayload({ timestamp: Date.now(), metrics: [{ ...metric, timestamp: Date.now() }] });
    await this.#client?.publishAsync(`spBv1.0/${this.group}/NCMD/${this.node}`, Buffer.from(payload), {
      qos: 1,
    });
  }

  /** bdSeq metric of a birth or death message. */
  static bdSeqOf(m: SeenMessage): number | undefined {
    const v = m.payload.metrics.find((x) => x.name === BD_SEQ)?.value;
    return typeof v === 'number' ? v : undefined;
  }

  /** Disconnects. */
  async close(): Promise<void> {
    await this.#client?.endAsync(true);
  }
}
