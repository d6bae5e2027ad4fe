/**
 * The cascade end to end: an upper Gb28181Platform ← Gb28181Cascade ← a lower Gb28181Platform
 * with two simulated cameras (an IPC and an NVR with three channels), all on real sockets.
 */
import type { EventEmitter } from 'node:events';
import { hasCode } from '@citysense/protocol';
import { afterEach, describe, expect, it } from 'vitest';
import { Gb28181Camera } from '../../../../simulators/src/camera/gb28181/gb28181-camera.ts';
import { RtpReceiver } from '../media/rtp-receiver.ts';
import { Gb28181Platform } from '../platform/platform.ts';
import { SipEndpoint } from '../sip/endpoint.ts';
import { Gb28181Cascade, type Gb28181CascadeOptions } from './cascade.ts';

const UPPER_ID = '34010000002000000001';
const LOWER_ID = '34020000002000000001';
const GATEWAY_ID = '34020000002000000002';
const NVR = '34020000001180000001';
const IPC = '34020000001320000001';
const CHANNELS = [
  { id: '34020000001310000001', name: '人民路与解放路交叉口东北角' },
  { id: '34020000001310000002', name: '长江中路公交站' },
  { id: '34020000001310000003', name: '天鹅湖东岸' },
];
const UPPER_PASSWORD = 'upper-secret';

const stops: Array<() => Promise<void>> = [];
afterEach(async () => {});

/** Resolves with the args of the first `event` for which `match` holds; rejects after `timeoutMs`. */
function next<A extends unknown[]>(
  emitter: EventEmitter,
  event: string,
  match: (...args: A) => boolean = () => true,
  timeoutMs = 10_000,
): Promise<A> {
  return new Promise((resolve, reject) => {
    const listener = (...args: unknown[]) => {
      if (!match(...(args as A))) return;
      clearTimeout(timer);
      emitter.off(event, listener);
      resolve(args as A);
    };
    const timer = setTimeout(() => {
      emitter.off(event, listener);
      reject(new Error(`no matching ${event} within ${timeoutMs} ms`));
    }, timeoutMs);
    emitter.on(event, listener);
  });
}

async function platform(serverId: string, passwordOf: (id: string) => string | undefined, port = 0) {
  const p = new Gb28181Platform({
    endpoint: new SipEndpoint({ port, t1Ms: 50 }),
    serverId,
    passwordOf,
    keepaliveIntervalMs: 100,
    keepaliveMissed: 3,
    queryTimeoutMs: 5000,
  });
  await p.start();
  stops.push(() => p.stop());
  return p;
}

function upper(port = 0, password = UPPER_PASSWORD) {
  return platform(UPPER_ID, (id) => (id === GATEWAY_ID ? password : undefined), port);
}

/** The lower platform with the NVR and the IPC registered. */
async function lowerWithCameras() {
  const lower = await platform(LOWER_ID, () => 'secret');
  const cameras = [
    { deviceId: NVR, channels: CHANNELS, name: '合肥东口录像机' },
    { deviceId: IPC, name: '政务区广场球机' },
  ].map((o) => {
    const camera = new Gb28181Camera({
      ...o,
      password: 'secret',
      server: { id: LOWER_ID, host: '127.0.0.1', port: lower.port },
      keepaliveIntervalMs: 100,
      media: { width: 160, height: 120, frameRate: 10 },
      t1Ms: 50,
    });
    stops.push(() => camera.stop());
    return camera;
  });
  await Promise.all(cameras.map((c) => c.start()));
  const [nvr, ipc] = cameras as [Gb28181Camera, Gb28181Camera];
  return { lower, nvr, ipc };
}

function cascade(lower: Gb28181Platform, upperPort: number, o: Partial<Gb28181CascadeOptions> = {}) {
  const c = new Gb28181Cascade({
    platform: lower,
    upstream: {
      serverId: UPPER_ID,
      host: '127.0.0.1',
      port: upperPort,
      transport: 'udp',
      password: UPPER_PASSWORD,
    },
    localId: GATEWAY_ID,
    name: '合肥东区网关',
    keepaliveIntervalMs: 100,
    expires: 3600,
    retryMs: 100,
    maxRetryMs: 400,
    t1Ms: 50,
    ...o,
  });
  stops.push(() => c.stop());
  return c;
}

/** Starts the cascade and waits until it is registered upward and has read both cameras' catalogs. */
async function startCascade(c: Gb28181Cascade, up: Gb28181Platform): Promise<void> {
  const learned = new Set<string>();
  const bothLearned = next<[string, boolean]>(c, 'deviceLearned', (id, subscribed) => {
    if (subscribed) learned.add(id);
    return learned.size === 2;
  });
  const registered = next(up, 'registered', (s: { deviceId: string }) => s.deviceId === GATEWAY_ID);
  await c.start();
  await Promise.all([bothLearned, registered]);
}

describe('Gb28181Cascade', () => {
  it("answers the upper platform's Catalog with the gateway, both cameras and every channel", async () => {
    const { lower } = await lowerWithCameras();
    const up = await upper();
    const c = cascade(lower, up.port);
    await startCascade(c, up);
    await c.start(); // idempotent

    const items = await up.queryCatalog(GATEWAY_ID);
    const byId = new Map(items.map((i) => [i.deviceId, i]));
    expect([...byId.keys()].sort()).toEqual([GATEWAY_ID, NVR, IPC, ...CHANNELS.map((ch) => ch.id)].sort());
    expect(byId.get(GATEWAY_ID)).toMatchObject({ name: '合肥东区网关', parental: '1', status: 'ON' });
    expect(byId.get(NVR)).toMatchObject({ parentId: GATEWAY_ID, parental: '1', status: 'ON' });
    // The IPC's one channel has its own ID: it is the device item, named like the channel.
    expect(byId.get(IPC)).toMatchObject({ parentId: GATEWAY_ID, parental: '0', name: '政务区广场球机' });
    for (const ch of CHANNELS)
      expect(byId.get(ch.id)).toMatchObject({ name: ch.name, parentId: NVR, status: 'ON' });

    const info = await up.queryDeviceInfo(GATEWAY_ID);
    expect(info).toMatchObject({ deviceName: '合肥东区网关', channel: 6, result: 'OK' });
    const status = await up.queryDeviceStatus(GATEWAY_ID);
    expect(status).toMatchObject({ online: true, status: 'OK' });
    expect(c.stats()).toMatchObject({ registered: true, devices: 2, items: 6 });

    // Stopping unregisters the gateway upward.
    const gone = next(up, 'status', (s: { deviceId: string; reason: string }) => s.reason === 'unregistered');
    await c.stop();
    await gone;
    expect(up.session(GATEWAY_ID)).toBeUndefined();
  });

  it('NOTIFYs a subscribed upper platform when a channel switches OFF and when a camera goes offline', async () => {
    const { lower, nvr, ipc } = await lowerWithCameras();
    const up = await upper();
    const c = cascade(lower, up.port);
    await startCascade(c, up);
    await up.subscribeCatalog(GATEWAY_ID);

    type CatalogArgs = [string, Array<{ deviceId: string; status?: string; event?: string }>];
    const channelOff = next<CatalogArgs>(up, 'catalog', (_id, items) =>
      items.some((i) => i.deviceId === CHANNELS[1]?.id && i.event === 'OFF'),
    );
    await nvr.setChannelStatus(CHANNELS[1]?.id as string, 'OFF');
    const [from, items] = await channelOff;
    expect(from).toBe(GATEWAY_ID);
    expect(items).toEqual([
      expect.objectContaining({ deviceId: CHANNELS[1]?.id, parentId: NVR, status: 'OFF' }),
    ]);

    const ipcOff = next<CatalogArgs>(up, 'catalog', (_id, list) =>
      list.some((i) => i.deviceId === IPC && i.event === 'OFF'),
    );
    ipc.setOnline(false);
    await ipcOff;
    expect(c.items().find((i) => i.deviceId === IPC)?.status).toBe('OFF');

    const ipcOn = next<CatalogArgs>(up, 'catalog', (_id, list) =>
      list.some((i) => i.deviceId === IPC && i.event === 'ON'),
    );
    ipc.setOnline(true);
    await ipcOn;
  });

  it('registers again when the upper platform restarts on the same port', async () => {
    const { lower } = await lowerWithCameras();
    const first = await upper();
    const port = first.port;
    const c = cascade(lower, port);
    await startCascade(c, first);

    await first.stop();
    // A new platform on the same port knows nothing of the gateway: keepalives are refused or lost.
    const second = await upper(port);
    await next(second, 'registered', (s: { deviceId: string }) => s.deviceId === GATEWAY_ID);
    const items = await second.queryCatalog(GATEWAY_ID);
    expect(items).toHaveLength(6);
    await c.stop(); // while the second platform still answers the unregister
  });

  it('reports a refused password with a coded error, retries with back-off and registers once it is right', async () => {
    const { lower } = await lowerWithCameras();
    let accepted = 'not-this-one';
    const up = await platform(UPPER_ID, (id) => (id === GATEWAY_ID ? accepted : undefined));
    const c = cascade(lower, up.port);
    const failures: unknown[] = [];
    const twoFailures = next<[Error]>(c, 'registrationFailed', (err) => failures.push(err) >= 2);
    await c.start();
    await twoFailures;
    expect(failures.every((e) => hasCode(e, 'CS_ERR_GB_REGISTER_FORBIDDEN'))).toBe(true);
    expect(c.registered).toBe(false);
    expect(c.stats().registerFailures).toBeGreaterThanOrEqual(2);
    accepted = UPPER_PASSWORD;
    await next(c, 'registered');
    expect(c.registered).toBe(true);
  });

  it('refuses options that do not describe a platform, naming every problem', async () => {
    const lower = await platform(LOWER_ID, () => 'secret');
    const c = cascade(lower, 5060, { localId: NVR, upstream: { ...baseUpstream(), serverId: '123' } });
    const err = await c.start().catch((e: unknown) => e);
    expect(hasCode(err, 'CS_ERR_GB_CASCADE_CONFIG')).toBe(true);
    expect((err as Error).message).toMatch(/localId .*type 200.*upstream.serverId "123"/);
    expect(c.sipPort).toBe(0);
  });

  it('forwards a live INVITE from the upper platform to the camera, and BYE back', async () => {
    const { lower, nvr } = await lowerWithCameras();
    const up = await upper();
    const c = cascade(lower, up.port);
    await startCascade(c, up);
    const receiver = new RtpReceiver({ transport: 'udp', host: '127.0.0.1', idleTimeoutMs: 5000 });
    await receiver.start();
    stops.push(() => receiver.stop());
    const started = next(nvr, 'sessionStarted');
    const dialog = await up.invite({
      deviceId: GATEWAY_ID,
      channelId: CHANNELS[0]?.id as string,
      mediaAddress: '127.0.0.1',
      mediaPort: receiver.port,
      transport: 'udp',
    });
    await started;
    // The camera streams straight to the upper platform's receiver with the upper platform's SSRC.
    expect(nvr.liveSessions()).toMatchObject([
      { channelId: CHANNELS[0]?.id, ssrc: dialog.ssrc, port: receiver.port },
    ]);
    let pictures = 0;
    for await (const au of receiver.accessUnits()) {
      expect(au.codec).toBe('h264');
      if (++pictures >= 5) break;
    }
    expect(receiver.stats.foreignSsrc).toBe(0);
    const ended = next(nvr, 'sessionEnded');
    await up.bye(dialog.id);
    await ended;
    expect(lower.dialogs()).toEqual([]);
  });

  it('answers a live INVITE 488 when forwarding is off', async () => {
    const { lower } = await lowerWithCameras();
    const up = await upper();
    const c = cascade(lower, up.port, { forwardLive: false });
    await startCascade(c, up);
    await expect(
      up.invite({
        deviceId: GATEWAY_ID,
        channelId: CHANNELS[0]?.id as string,
        mediaAddress: '127.0.0.1',
        mediaPort: 9,
        transport: 'udp',
      }),
    ).rejects.toMatchObject({ code: 'CS_ERR_GB_DEVICE_REFUSED', details: { status: 488 } });
  });
});

function baseUpstream(): Gb28181CascadeOptions['upstream'] {
  return { serverId: UPPER_ID, host: '127.0.0.1', port: 5060, transport: 'udp', password: UPPER_PASSWORD };
}
