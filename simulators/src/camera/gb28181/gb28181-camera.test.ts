/** The simulated GB/T 28181 camera against a minimal registrar built from the real SIP endpoint. */
import { createSocket, type Socket as UdpSocket } from 'node:dgram';
import { EventEmitter, once } from 'node:events';
import { type AddressInfo, createServer } from 'node:net';
import {
  DigestAuthenticator,
  header,
  SipEndpoint,
  type SipPeer,
  type SipRequest,
  type SipResponse,
  sipToken,
  tagOf,
  uriOf,
} from '@citysense/device-drivers/sip';
import {
  type CatalogResponse,
  decodeManscdp,
  encodeManscdp,
  hasCode,
  type ManscdpMessage,
  type ManscdpQuery,
} from '@citysense/protocol';
import iconv from 'iconv-lite';
import { afterEach, describe, expect, it } from 'vitest';
import { Gb28181Camera, type Gb28181CameraOptions } from './gb28181-camera.ts';

const SERVER = '34020000002000000001';
const DOMAIN = '3402000000';
const IPC = '34020000001320000001';
const NVR = '34020000001180000001';
const PASSWORD = '12345678';

/** NVR channels with the Chinese names field devices send in GB2312. */
const CHANNELS = [
  { id: '34020000001310000001', name: '人民路与解放路交叉口东北角', longitude: 117.2272, latitude: 31.8206 },
  { id: '34020000001310000002', name: '长江中路东口', address: '长江中路 1 号' },
  { id: '34020000001310000003', name: '北一环高架' },
  { id: '34020000001310000004', name: '政务区广场' },
  { id: '34020000001310000005', name: '天鹅湖西岸', status: 'OFF' as const },
];

interface Received {
  request: SipRequest;
  peer: SipPeer;
  message: ManscdpMessage | undefined;
}

/** Just enough platform: digest registrar, 200 to every MESSAGE/NOTIFY/BYE, and a log of what arrived. */
class TestRegistrar extends EventEmitter<{ changed: [] }> {
  readonly endpoint = new SipEndpoint({ userAgent: 'test-registrar' });
  readonly auth = new DigestAuthenticator(DOMAIN);
  readonly received: Received[] = [];
  /** Failures inside the registrar itself; the tests expect none. */
  readonly failures: unknown[] = [];
  /** Expires granted in the 200 to REGISTER; default what the device asked for. */
  grantExpires: number | undefined;

  constructor() {
    super();
    this.endpoint.on('request', (request, peer) => {
      this.#answer(request, peer).catch((err: unknown) => this.failures.push(err));
    });
  }

  async #answer(request: SipRequest, peer: SipPeer): Promise<void> {
    // Logged before answering, so whoever awaits the answer finds it here.
    const message =
      request.body.length > 0 && /manscdp/i.test(header(request, 'content-type') ?? '')
        ? decodeManscdp(request.body)
        : undefined;
    this.received.push({ request, peer, message });
    this.emit('changed');
    if (request.method === 'REGISTER') {
      const verdict = this.auth.verify(header(request, 'authorization'), 'REGISTER', (user) =>
        user === IPC || user === NVR ? PASSWORD : undefined,
      );
      if (!verdict.ok && (verdict.reason === 'missing' || verdict.reason === 'stale')) {
        await this.endpoint.respond(request, peer, 401, {
          headers: [{ name: 'WWW-Authenticate', value: this.auth.challenge(verdict.reason === 'stale') }],
        });
      } else if (!verdict.ok) {
        await this.endpoint.respond(request, peer, 403);
      } else {
        const expires = this.grantExpires ?? Number(header(request, 'expires'));
        await this.endpoint.respond(request, peer, 200, {
          headers: [
            { name: 'Expires', value: String(expires) },
            { name: 'Date', value: '2026-11-23T10:00:00.000' },
          ],
        });
      }
    } else {
      await this.endpoint.respond(request, peer, 200);
    }
  }

  get server(): Gb28181CameraOptions['server'] {
    return { id: SERVER, host: '127.0.0.1', port: this.endpoint.port };
  }

  /** Resolves with `pick()`'s first defined value, re-checked whenever something arrives. */
  until<T>(pick: () => T | undefined, timeoutMs = 10_000): Promise<T> {
    return new Promise((resolve, reject) => {
      const check = () => {
        const found = pick();
        if (found === undefined) return false;
        clearTimeout(timer);
        this.off('changed', check);
        resolve(found);
        return true;
      };
      const timer = setTimeout(() => {
        this.off('changed', check);
        reject(new Error(`condition not met within ${timeoutMs} ms`));
      }, timeoutMs);
      if (!check()) this.on('changed', check);
    });
  }

  registers(): SipRequest[] {
    return this.received.filter((r) => r.request.method === 'REGISTER').map((r) => r.request);
  }

  messages<K extends ManscdpMessage['kind']>(kind: K): Array<Extract<ManscdpMessage, { kind: K }>> {
    return this.received
      .map((r) => r.message)
      .filter((m): m is Extract<ManscdpMessage, { kind: K }> => m?.kind === kind);
  }

  /** Sends a request to the camera from the platform. */
  send(
    camera: Gb28181Camera,
    o: {
      method: string;
      uri?: string;
      body?: Uint8Array;
      contentType?: string;
      headers?: Array<{ name: string; value: string }>;
      timeoutMs?: number;
      to?: string;
      callId?: string;
      cseq?: number;
      from?: string;
    },
  ): Promise<SipResponse> {
    return this.endpoint.request({
      method: o.method,
      uri: o.uri ?? `sip:${camera.deviceId}@${DOMAIN}`,
      peer: { transport: 'udp', address: '127.0.0.1', port: camera.sipPort },
      from: o.from ?? `<sip:${SERVER}@${DOMAIN}>`,
      to: o.to ?? `<sip:${camera.deviceId}@${DOMAIN}>`,
      callId: o.callId,
      cseq: o.cseq,
      headers: [
        { name: 'Contact', value: `<sip:${SERVER}@127.0.0.1:${this.endpoint.port}>` },
        ...(o.headers ?? []),
      ],
      body: o.body,
      contentType: o.contentType,
      timeoutMs: o.timeoutMs,
    });
  }

  query(camera: Gb28181Camera, cmdType: ManscdpQuery['cmdType'], sn: number, deviceId = camera.deviceId) {
    return this.send(camera, {
      method: 'MESSAGE',
      body: encodeManscdp({ kind: 'query', cmdType, sn, deviceId }),
    });
  }
}

let registrar: TestRegistrar;
const cameras: Gb28181Camera[] = [];
const sockets: UdpSocket[] = [];

async function startRegistrar(): Promise<TestRegistrar> {
  registrar = new TestRegistrar();
  await registrar.endpoint.start();
  return registrar;
}

function camera(o: Partial<Gb28181CameraOptions> = {}): Gb28181Camera {
  const c = new Gb28181Camera({
    deviceId: NVR,
    password: PASSWORD,
    server: registrar.server,
    channels: CHANNELS,
    t1Ms: 100,
    media: { width: 160, height: 120, frameRate: 10 },
    ...o,
  });
  cameras.push(c);
  return c;
}

/** True when UDP `port` on 127.0.0.1 can be bound again (the camera let it go). */
async function udpPortFree(port: number): Promise<boolean> {
  const socket = createSocket('udp4');
  try {
    await new Promise<void>((resolve, reject) => {
      socket.once('error', reject);
      socket.bind(port, '127.0.0.1', () => resolve());
    });
    return true;
  } catch {
    return false;
  } finally {
    socket.close();
  }
}

afterEach(async () => {
  await Promise.all(cameras.splice(0).map((c) => c.stop()));
  for (const s of sockets.splice(0)) s.close();
  await registrar?.endpoint.stop();
  expect(registrar?.failures ?? []).toEqual([]);
});

describe('Gb28181Camera registration', () => {
  it('registers with digest (401 then 200), unregisters with Expires 0 on stop and frees its port', async () => {
    await startRegistrar();
    const ipc = camera({ deviceId: IPC, channels: undefined });
    await ipc.start();
    await ipc.start(); // idempotent
    expect(ipc.registered).toBe(true);
    const [first, second] = registrar.registers();
    expect(first?.uri).toBe(`sip:${SERVER}@${DOMAIN}`);
    expect(uriOf(header(first as SipRequest, 'from') ?? '')).toBe(`sip:${IPC}@${DOMAIN}`);
    expect(uriOf(header(first as SipRequest, 'to') ?? '')).toBe(`sip:${IPC}@${DOMAIN}`);
    expect(header(first as SipRequest, 'contact')).toContain(`sip:${IPC}@127.0.0.1:${ipc.sipPort}`);
    expect(header(first as SipRequest, 'expires')).toBe('3600');
    expect(header(first as SipRequest, 'authorization')).toBeUndefined();
    expect(header(second as SipRequest, 'authorization')).toMatch(/^Digest .*qop=auth/);
    expect(ipc.stats()).toMatchObject({ registered: true, registrations: 1 });

    const port = ipc.sipPort;
    await ipc.stop();
    await ipc.stop(); // idempotent
    const last = registrar.registers().at(-1) as SipRequest;
    expect(header(last, 'expires')).toBe('0');
    expect(header(last, 'authorization')).toMatch(/^Digest /);
    expect(ipc.registered).toBe(false);
    expect(await udpPortFree(port)).toBe(true);
  });

  it('rejects start with CS_ERR_GB_REGISTER_FORBIDDEN when the password is wrong', async () => {
    await startRegistrar();
    const ipc = camera({ deviceId: IPC, password: 'wrong' });
    const err = await ipc.start().catch((e: unknown) => e);
    expect(hasCode(err, 'CS_ERR_GB_REGISTER_FORBIDDEN')).toBe(true);
    expect(ipc.registered).toBe(false);
    expect(ipc.sipPort).toBe(0);
  });

  it('refuses options that are not GB/T 28181 IDs, naming every problem', async () => {
    await startRegistrar();
    const bad = camera({ deviceId: '123', channels: [{ id: 'x', name: 'a' }], catalogPageSize: 0 });
    const err = await bad.start().catch((e: unknown) => e);
    expect(hasCode(err, 'CS_ERR_GB_CAMERA_CONFIG')).toBe(true);
    expect((err as Error).message).toMatch(/deviceId "123".*channel "x".*catalogPageSize 0/);
  });

  it('refreshes its registration before expiry and sends keepalives with increasing SN until set offline', async () => {
    await startRegistrar();
    registrar.grantExpires = 1;
    const nvr = camera({ keepaliveIntervalMs: 100 });
    await nvr.start();
    // Granted 1 s: the refresh comes at half-time, each one answering a new challenge.
    await registrar.until(() => (nvr.stats().registrations >= 2 ? true : undefined));
    const keepalives = await registrar.until(() => {
      const k = registrar.messages('keepalive');
      return k.length >= 3 ? k : undefined;
    });
    expect(keepalives.every((k) => k.deviceId === NVR && k.status === 'OK')).toBe(true);
    const sns = keepalives.map((k) => k.sn);
    expect(sns).toEqual([...sns].sort((a, b) => a - b));
    expect(new Set(sns).size).toBe(sns.length);

    nvr.setOnline(false);
    const sent = nvr.stats().keepalivesSent;
    // Absence can only be shown by waiting: three keepalive periods pass without one.
    await new Promise((resolve) => setTimeout(resolve, 350));
    expect(nvr.stats().keepalivesSent).toBe(sent);
    nvr.setOnline(true);
    await registrar.until(() => (nvr.stats().keepalivesSent > sent ? true : undefined));
  });
  it('registers, keeps alive and answers queries over SIP/TCP when the server says tcp', async () => {
    await startRegistrar();
    const nvr = camera({ server: { ...registrar.server, transport: 'tcp' }, keepaliveIntervalMs: 100 });
    await nvr.start();
    const keepalive = await registrar.until(() =>
      registrar.received.find((r) => r.message?.kind === 'keepalive'),
    );
    expect(keepalive.peer.transport).toBe('tcp');
    expect(header(registrar.registers()[0] as SipRequest, 'contact')).toContain(';transport=tcp');
    // The platform queries on the connection the device opened.
    const ok = await registrar.endpoint.request({
      method: 'MESSAGE',
      uri: `sip:${NVR}@${DOMAIN}`,
      peer: keepalive.peer,
      from: `<sip:${SERVER}@${DOMAIN}>`,
      to: `<sip:${NVR}@${DOMAIN}>`,
      body: encodeManscdp({ kind: 'query', cmdType: 'Catalog', sn: 99, deviceId: NVR }),
    });
    expect(ok.status).toBe(200);
    const pages = await registrar.until(() => {
      const p = registrar.received.filter((r) => r.message?.kind === 'catalog');
      return p.length === 3 ? p : undefined;
    });
    expect(pages.every((p) => p.peer.transport === 'tcp')).toBe(true);
  });
});

describe('Gb28181Camera queries, alarms and subscriptions', () => {
  it('answers a Catalog query with 200, then every page (SumNum, Num ≤ page size) in GB2312', async () => {
    await startRegistrar();
    const nvr = camera();
    await nvr.start();
    const answered = once(nvr, 'query');
    const ok = await registrar.query(nvr, 'Catalog', 17430);
    expect(ok.status).toBe(200);
    const pages = await registrar.until(() => {
      const p = registrar.messages('catalog').filter((m) => m.sn === 17430);
      return p.reduce((n, m) => n + m.items.length, 0) >= CHANNELS.length ? p : undefined;
    });
    expect(pages.map((p) => p.num)).toEqual([2, 2, 1]);
    expect(pages.every((p: CatalogResponse) => p.sumNum === 5 && p.deviceId === NVR)).toBe(true);
    const items = pages.flatMap((p) => p.items);
    expect(items.map((i) => i.name)).toEqual(CHANNELS.map((c) => c.name));
    expect(items[0]).toMatchObject({
      deviceId: CHANNELS[0]?.id,
      status: 'ON',
      longitude: 117.2272,
      latitude: 31.8206,
    });
    expect(items[1]?.address).toBe('长江中路 1 号');
    expect(items[4]?.status).toBe('OFF');
    // The bytes on the wire are GB2312, as declared.
    const raw = registrar.received.find((r) => r.message?.kind === 'catalog')?.request.body as Buffer;
    expect(raw.toString('latin1')).toContain('encoding="GB2312"');
    expect(raw.includes(iconv.encode('人民路与解放路交叉口东北角', 'GB2312'))).toBe(true);
    expect(await answered).toEqual([{ kind: 'query', cmdType: 'Catalog', sn: 17430, deviceId: NVR }]);
    expect(nvr.stats()).toMatchObject({ queriesAnswered: 1, catalogPagesSent: 3 });
  });

  it('answers DeviceInfo and DeviceStatus with the SN of the query', async () => {
    await startRegistrar();
    const nvr = camera({
      manufacturer: 'citysense',
      model: 'NVR-5',
      firmware: 'V2.1',
      name: '合肥东口录像机',
    });
    await nvr.start();
    expect((await registrar.query(nvr, 'DeviceInfo', 7)).status).toBe(200);
    expect((await registrar.query(nvr, 'DeviceStatus', 8)).status).toBe(200);
    const info = await registrar.until(() => registrar.messages('deviceInfo').find((m) => m.sn === 7));
    expect(info).toEqual({
      kind: 'deviceInfo',
      sn: 7,
      deviceId: NVR,
      deviceName: '合肥东口录像机',
      manufacturer: 'citysense',
      model: 'NVR-5',
      firmware: 'V2.1',
      channel: 5,
      result: 'OK',
    });
    const status = await registrar.until(() => registrar.messages('deviceStatus').find((m) => m.sn === 8));
    expect(status).toMatchObject({ deviceId: NVR, online: true, status: 'OK', result: 'OK' });
    expect((await registrar.query(nvr, 'DeviceInfo', 9, '34020000001310000099')).status).toBe(404);
  });

  it('sends an alarm the platform decodes', async () => {
    await startRegistrar();
    const nvr = camera();
    await nvr.start();
    const sn = await nvr.raiseAlarm({
      priority: 1,
      method: 5,
      type: '2',
      description: '区域入侵',
      longitude: 117.2272,
      latitude: 31.8206,
      channelId: CHANNELS[0]?.id,
    });
    const alarm = registrar.messages('alarm').find((a) => a.sn === sn);
    expect(alarm).toMatchObject({
      deviceId: CHANNELS[0]?.id,
      priority: 1,
      method: 5,
      alarmType: '2',
      description: '区域入侵',
      longitude: 117.2272,
      latitude: 31.8206,
    });
    expect(alarm?.time).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d$/);
    expect(nvr.stats().alarmsSent).toBe(1);
  });

  it('accepts a Catalog SUBSCRIBE and NOTIFYs a channel going OFF in that dialog', async () => {
    await startRegistrar();
    const nvr = camera();
    await nvr.start();
    const callId = sipToken(8);
    const subscribed = await registrar.send(nvr, {
      method: 'SUBSCRIBE',
      callId,
      headers: [
        { name: 'Event', value: 'Catalog;id=1' },
        { name: 'Expires', value: '600' },
      ],
      body: encodeManscdp({ kind: 'query', cmdType: 'Catalog', sn: 3, deviceId: NVR }),
    });
    expect(subscribed.status).toBe(200);
    expect(header(subscribed, 'expires')).toBe('600');
    const deviceTag = tagOf(header(subscribed, 'to'));
    expect(deviceTag).toBeDefined();
    expect(nvr.stats().subscriptions).toBe(1);

    await nvr.setChannelStatus(CHANNELS[1]?.id as string, 'OFF');
    const notify = registrar.received.find((r) => r.request.method === 'NOTIFY');
    expect(header(notify?.request as SipRequest, 'call-id')).toBe(callId);
    expect(tagOf(header(notify?.request as SipRequest, 'from'))).toBe(deviceTag);
    expect(header(notify?.request as SipRequest, 'event')).toBe('Catalog;id=1');
    expect(header(notify?.request as SipRequest, 'subscription-state')).toMatch(/^active;expires=\d+$/);
    expect(notify?.message).toMatchObject({
      kind: 'catalog',
      deviceId: NVR,
      sumNum: 1,
      items: [{ deviceId: CHANNELS[1]?.id, name: '长江中路东口', status: 'OFF', event: 'OFF' }],
    });
    expect(nvr.channels()[1]?.status).toBe('OFF');

    const badEvent = await registrar.send(nvr, {
      method: 'SUBSCRIBE',
      headers: [{ name: 'Event', value: 'dialog' }],
    });
    expect(badEvent.status).toBe(489);
  });

  it('accepts an alarm SUBSCRIBE with Event Alarm from another observer, NOTIFYs what its filter lets through and still sends the MESSAGE', async () => {
    await startRegistrar();
    const nvr = camera();
    await nvr.start();
    // An observer other than the registering platform (a client or a second platform).
    const observer = `<sip:34020000002000000002@${DOMAIN}>;tag=${sipToken(4)}`;
    const callId = sipToken(8);
    const subscribed = await registrar.send(nvr, {
      method: 'SUBSCRIBE',
      callId,
      cseq: 1,
      from: observer,
      headers: [
        { name: 'Event', value: 'Alarm;id=7' },
        { name: 'Expires', value: '300' },
      ],
      body: encodeManscdp({
        kind: 'query',
        cmdType: 'Alarm',
        sn: 7,
        deviceId: NVR,
        startPriority: 1,
        endPriority: 3,
        methods: [5],
      }),
    });
    expect(subscribed.status).toBe(200);
    expect(header(subscribed, 'expires')).toBe('300');
    const to = header(subscribed, 'to') as string;

    const wanted = await nvr.raiseAlarm({ priority: 2, method: 5, channelId: CHANNELS[2]?.id });
    const unwanted = await nvr.raiseAlarm({ priority: 2, method: 2 });
    const notifies = registrar.received.filter((r) => r.request.method === 'NOTIFY');
    expect(notifies.map((n) => n.message)).toMatchObject([{ kind: 'alarm', sn: wanted, method: 5 }]);
    expect(header(notifies[0]?.request as SipRequest, 'call-id')).toBe(callId);
    expect(header(notifies[0]?.request as SipRequest, 'event')).toBe('Alarm;id=7');
    expect(tagOf(header(notifies[0]?.request as SipRequest, 'from'))).toBe(tagOf(to));
    // The registering platform holds no alarm subscription: it gets both by MESSAGE (§9.4).
    const messaged = registrar.received.filter(
      (r) => r.request.method === 'MESSAGE' && r.message?.kind === 'alarm',
    );
    expect(messaged.map((r) => r.message?.kind === 'alarm' && r.message.sn)).toEqual([wanted, unwanted]);
    expect(nvr.stats()).toMatchObject({ alarmsSent: 2, notifiesSent: 1, subscriptions: 1 });

    // A refresh in the dialog replaces the filter; a SUBSCRIBE in a dialog the camera never had gets 481.
    const refreshed = await registrar.send(nvr, {
      method: 'SUBSCRIBE',
      callId,
      cseq: 2,
      from: observer,
      to,
      headers: [
        { name: 'Event', value: 'Alarm;id=7' },
        { name: 'Expires', value: '300' },
      ],
      body: encodeManscdp({ kind: 'query', cmdType: 'Alarm', sn: 8, deviceId: NVR, methods: [2] }),
    });
    expect(refreshed.status).toBe(200);
    const method2 = await nvr.raiseAlarm({ priority: 4, method: 2 });
    expect(registrar.received.filter((r) => r.request.method === 'NOTIFY').at(-1)?.message).toMatchObject({
      kind: 'alarm',
      sn: method2,
    });
    const stranger = await registrar.send(nvr, {
      method: 'SUBSCRIBE',
      from: observer,
      to: `<sip:${NVR}@${DOMAIN}>;tag=nosuchdialog`,
      headers: [
        { name: 'Event', value: 'presence' },
        { name: 'Expires', value: '300' },
      ],
    });
    expect(stranger.status).toBe(481);
    expect(nvr.stats().subscriptions).toBe(1);
  });

  it('goes silent when it vanishes: queries time out and keepalives stop', async () => {
    await startRegistrar();
    const nvr = camera({ keepaliveIntervalMs: 100 });
    await nvr.start();
    nvr.vanish();
    const sent = nvr.stats().keepalivesSent;
    const err = await registrar
      .send(nvr, {
        method: 'MESSAGE',
        body: encodeManscdp({ kind: 'query', cmdType: 'Catalog', sn: 1, deviceId: NVR }),
        timeoutMs: 400,
      })
      .catch((e: unknown) => e);
    expect(hasCode(err, 'CS_ERR_SIP_TIMEOUT')).toBe(true);
    expect(nvr.stats().keepalivesSent).toBe(sent);
    const registers = registrar.registers().length;
    await nvr.stop();
    // A vanished camera does not unregister.
    expect(registrar.registers().length).toBe(registers);
  });
});

/** A UDP socket that collects RTP packets like the platform's media receiver. */
async function rtpSink(): Promise<{
  socket: UdpSocket;
  port: number;
  packets: Buffer[];
  changed: EventEmitter;
}> {
  const socket = createSocket('udp4');
  sockets.push(socket);
  const packets: Buffer[] = [];
  const changed = new EventEmitter();
  socket.on('message', (packet) => {
    packets.push(packet);
    changed.emit('packet');
  });
  await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', () => resolve()));
  return { socket, port: socket.address().port, packets, changed };
}

function offer(port: number, ssrc: string): string {
  return [
    'v=0',
    `o=${SERVER} 0 0 IN IP4 127.0.0.1`,
    's=Play',
    'c=IN IP4 127.0.0.1',
    't=0 0',
    `m=video ${port} RTP/AVP 96 98 97`,
    'a=recvonly',
    'a=rtpmap:96 PS/90000',
    'a=rtpmap:98 H264/90000',
    'a=rtpmap:97 MPEG4/90000',
    `y=${ssrc}`,
    '',
  ].join('\r\n');
}

/** INVITE (offer for `port`, over UDP or TCP/passive) and, when answered 200, its ACK: what a platform does. */
async function play(
  nvr: Gb28181Camera,
  channel: string,
  port: number,
  ssrc: string,
  transport: 'udp' | 'tcp' = 'udp',
): Promise<{ ok: SipResponse; from: string; callId: string; dialogTo: string }> {
  const callId = sipToken(8);
  const from = `<sip:${SERVER}@${DOMAIN}>;tag=${sipToken(4)}`;
  let sdp = offer(port, ssrc);
  if (transport === 'tcp')
    sdp = sdp
      .replace(' RTP/AVP', ' TCP/RTP/AVP')
      .replace('a=recvonly', 'a=recvonly\r\na=setup:passive\r\na=connection:new');
  const ok = await registrar.send(nvr, {
    method: 'INVITE',
    uri: `sip:${channel}@${DOMAIN}`,
    from,
    to: `<sip:${channel}@${DOMAIN}>`,
    callId,
    cseq: 20,
    headers: [{ name: 'Subject', value: `${channel}:${ssrc},${SERVER}:0` }],
    body: Buffer.from(sdp),
    contentType: 'application/sdp',
  });
  const dialogTo = header(ok, 'to') as string;
  if (ok.status !== 200) return { ok, from, callId, dialogTo };
  const peer: SipPeer = { transport: 'udp', address: '127.0.0.1', port: nvr.sipPort };
  await registrar.endpoint.sendStateless(
    {
      kind: 'request',
      method: 'ACK',
      uri: uriOf(header(ok, 'contact') as string),
      headers: [
        { name: 'Via', value: registrar.endpoint.via(peer, `z9hG4bK${sipToken(8)}`) },
        { name: 'From', value: from },
        { name: 'To', value: dialogTo },
        { name: 'Call-ID', value: callId },
        { name: 'CSeq', value: '20 ACK' },
        { name: 'Max-Forwards', value: '70' },
      ],
      body: Buffer.alloc(0),
    },
    peer,
  );
  return { ok, from, callId, dialogTo };
}

/** Checks the RTP header (version 2, PT 96, the SSRC) and returns the payload. */
function rtpPayload(packet: Buffer | undefined, ssrc: string): Buffer {
  expect(packet).toBeDefined();
  const p = packet as Buffer;
  expect((p[0] ?? 0) >> 6).toBe(2);
  expect((p[1] ?? 0) & 0x7f).toBe(96);
  expect(p.readUInt32BE(8)).toBe(Number(ssrc));
  return p.subarray(12);
}

describe('Gb28181Camera live video', () => {
  it('answers INVITE over UDP with PS SDP, streams RTP with the offered SSRC after ACK, stops on BYE', async () => {
    await startRegistrar();
    const nvr = camera();
    await nvr.start();
    const sink = await rtpSink();
    const channel = CHANNELS[0]?.id as string;
    const ssrc = '0200000001';
    const started = once(nvr, 'sessionStarted');
    const { ok, from, callId, dialogTo } = await play(nvr, channel, sink.port, ssrc);
    expect(ok.status).toBe(200);
    const answer = ok.body.toString();
    expect(answer).toContain(`y=${ssrc}`);
    expect(answer).toContain('a=sendonly');
    expect(answer).toContain('a=rtpmap:96 PS/90000');
    expect(answer).toMatch(/m=video \d+ RTP\/AVP 96/);
    expect(nvr.liveSessions()).toMatchObject([{ callId, channelId: channel, ssrc, transport: 'udp' }]);

    await started;
    await new Promise<void>((resolve) => {
      const check = () => {
        if (sink.packets.length < 20) return;
        sink.changed.off('packet', check);
        resolve();
      };
      sink.changed.on('packet', check);
      check();
    });
    for (const packet of sink.packets.slice(0, 20)) rtpPayload(packet, ssrc);
    // The stream is MPEG-PS: the first payload starts with a pack header.
    expect(rtpPayload(sink.packets[0], ssrc).subarray(0, 4).toString('hex')).toBe('000001ba');
    expect(nvr.liveSessions()[0]?.state).toBe('streaming');
    expect(nvr.liveSessions()[0]?.packetsSent).toBeGreaterThanOrEqual(20);

    const ended = once(nvr, 'sessionEnded');
    const bye = await registrar.send(nvr, {
      method: 'BYE',
      uri: uriOf(header(ok, 'contact') as string),
      from,
      to: dialogTo,
      callId,
      cseq: 21,
    });
    expect(bye.status).toBe(200);
    const [, reason] = await ended;
    expect(reason).toBe('bye');
    expect(nvr.liveSessions()).toEqual([]);
    const count = sink.packets.length;
    // Absence again needs a wait: a few frame periods pass without a packet.
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(sink.packets.length).toBe(count);
    expect(nvr.stats()).toMatchObject({ invites: 1, sessionsStarted: 1, sessionsEnded: 1 });
  });

  it('connects out for TCP/RTP/AVP with a=setup:passive and sends RFC 4571 framed RTP', async () => {
    await startRegistrar();
    const nvr = camera();
    await nvr.start();
    const ssrc = '0200000004';
    const server = createServer();
    const firstPacket = new Promise<Buffer>((resolve) => {
      server.once('connection', (socket) => {
        let buffered = Buffer.alloc(0);
        socket.on('data', (chunk: Buffer) => {
          buffered = Buffer.concat([buffered, chunk]);
          const length = buffered.length >= 2 ? buffered.readUInt16BE(0) : Number.POSITIVE_INFINITY;
          if (buffered.length >= 2 + length) resolve(buffered.subarray(2, 2 + length));
        });
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
    try {
      const port = (server.address() as AddressInfo).port;
      const { ok } = await play(nvr, CHANNELS[1]?.id as string, port, ssrc, 'tcp');
      expect(ok.status).toBe(200);
      expect(ok.body.toString()).toMatch(/m=video \d+ TCP\/RTP\/AVP 96\r\n[\s\S]*a=setup:active/);
      const payload = rtpPayload(await firstPacket, ssrc);
      expect(payload.subarray(0, 4).toString('hex')).toBe('000001ba');
      await nvr.stop();
      // Stopping hangs up: the platform gets a BYE in the dialog.
      expect(registrar.received.some((r) => r.request.method === 'BYE')).toBe(true);
    } finally {
      server.close();
    }
  });

  it('answers 404 to an INVITE for a channel it does not have and 488 to an offer without PS', async () => {
    await startRegistrar();
    const nvr = camera();
    await nvr.start();
    const unknown = await registrar.send(nvr, {
      method: 'INVITE',
      uri: `sip:34020000001310000099@${DOMAIN}`,
      to: `<sip:34020000001310000099@${DOMAIN}>`,
      body: Buffer.from(offer(30000, '0200000002')),
      contentType: 'application/sdp',
    });
    expect(unknown.status).toBe(404);
    const channel = CHANNELS[0]?.id as string;
    const noPs = await registrar.send(nvr, {
      method: 'INVITE',
      uri: `sip:${channel}@${DOMAIN}`,
      to: `<sip:${channel}@${DOMAIN}>`,
      body: Buffer.from(
        offer(30000, '0200000003')
          .replace(/a=rtpmap:96 PS\/90000\r\n/, '')
          .replace(' 96 98 97', ' 98'),
      ),
      contentType: 'application/sdp',
    });
    expect(noPs.status).toBe(488);
    expect(nvr.liveSessions()).toEqual([]);
  });
});
