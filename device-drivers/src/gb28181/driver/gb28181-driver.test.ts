/**
 * The pole driver with simulated GB/T 28181 cameras on real sockets: admission, online state,
 * channel counts, alarms as Edge Alerts, the cascade to a higher platform, and the driver contract.
 */
import { decodeEdgeAlert, EDGE_ALERT_METRIC, hasCode } from '@citysense/protocol';
import { afterEach, describe, expect, it } from 'vitest';
import { Gb28181Camera } from '../../../../simulators/src/camera/gb28181/gb28181-camera.ts';
import { describeDriverContract } from '../../contract.ts';
import type { DriverFault, Reading } from '../../driver.ts';
import { RtpReceiver } from '../media/rtp-receiver.ts';
import { Gb28181Platform } from '../platform/platform.ts';
import { SipEndpoint } from '../sip/endpoint.ts';
import { gbAlarmSeverity } from './alarm.ts';
import { GB28181_METRICS, Gb28181Driver } from './gb28181-driver.ts';

const GATEWAY_SIP_ID = '34020000002000000001';
const GATEWAY_UP_ID = '34020000002000000002';
const HUB_ID = '34010000002000000001';
const NVR = '34020000001180000001';
const STRANGER = '34020000001320000009';
const CHANNELS = [
  { id: '34020000001310000001', name: '人民路与解放路交叉口东北角' },
  { id: '34020000001310000002', name: '长江中路公交站' },
];
const PASSWORD = 'pole-secret';
const HUB_PASSWORD = 'hub-secret';

const stops: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const stop of stops.splice(0).reverse()) await stop();
});

function driverConfig(extra: Record<string, unknown> = {}) {
  return {
    sip: {
      id: GATEWAY_SIP_ID,
      host: '127.0.0.1',
      port: 0,
      password: PASSWORD,
      keepaliveIntervalS: 0.1,
      keepaliveMissed: 3,
    },
    cameras: [{ id: NVR, name: '人民路灯杆 NVR' }],
    statusIntervalMs: 200,
    ...extra,
  };
}

/** Records every event of a driver and waits for the ones a test expects. */
function record(driver: Gb28181Driver) {
  const readings: Reading[] = [];
  const faults: DriverFault[] = [];
  const checks = new Set<() => void>();
  const changed = () => {
    for (const check of [...checks]) check();
  };
  driver.on('readings', (batch) => {
    readings.push(...batch);
    changed();
  });
  driver.on('fault', (fault) => {
    faults.push(fault);
    changed();
  });
  const until = <T>(find: () => T | undefined, what: string, timeoutMs = 10_000): Promise<T> =>
    new Promise((resolve, reject) => {
      const check = (): void => {
        const hit = find();
        if (hit === undefined) return;
        done();
        resolve(hit);
      };
      const timer = setTimeout(() => {
        done();
        reject(new Error(`no ${what} within ${timeoutMs} ms`));
      }, timeoutMs);
      const done = (): void => {
        clearTimeout(timer);
        checks.delete(check);
      };
      checks.add(check);
      check();
    });
  return {
    readings,
    faults,
    /** The first reading of `device`/`metric` from index `from` on that `match` accepts. */
    reading: (device: string, metric: string, match: (r: Reading) => boolean = () => true, from = 0) =>
      until(
        () => readings.slice(from).find((r) => r.device === device && r.metric === metric && match(r)),
        `${device}/${metric} reading`,
      ),
    fault: (match: (f: DriverFault) => boolean) => until(() => faults.find(match), 'matching fault'),
  };
}

async function startDriver(config: unknown) {
  const driver = new Gb28181Driver({ id: 'pole-cams', config });
  const events = record(driver);
  stops.push(() => driver.stop());
  await driver.start();
  return { driver, events };
}

function camera(deviceId: string, port: number, o: { channels?: typeof CHANNELS } = {}) {
  const cam = new Gb28181Camera({
    deviceId,
    password: PASSWORD,
    server: { id: GATEWAY_SIP_ID, host: '127.0.0.1', port },
    keepaliveIntervalMs: 100,
    channels: o.channels,
    media: { width: 160, height: 120, frameRate: 10 },
    t1Ms: 50,
  });
  stops.push(() => cam.stop());
  return cam;
}

describe('Gb28181Driver', () => {
  it('shows the admitted camera online with its channels and refuses any other with a coded fault', async () => {
    const { driver, events } = await startDriver(driverConfig());
    expect(driver.devices().map((d) => [d.id, d.kind])).toEqual([[NVR, 'camera']]);
    // The first batch arrives at once: nobody has registered yet.
    await events.reading(NVR, GB28181_METRICS.online, (r) => r.value === false);
    await events.reading(NVR, GB28181_METRICS.registered, (r) => r.value === false);

    const nvr = camera(NVR, driver.sipPort, { channels: CHANNELS });
    const stranger = camera(STRANGER, driver.sipPort);
    await nvr.start();
    const refused = await stranger.start().catch((err: unknown) => err);
    expect(hasCode(refused, 'CS_ERR_GB_REGISTER_FORBIDDEN')).toBe(true);

    await events.reading(NVR, GB28181_METRICS.online, (r) => r.value === true);
    await events.reading(NVR, GB28181_METRICS.registered, (r) => r.value === true);
    await events.reading(NVR, GB28181_METRICS.channels, (r) => r.value === CHANNELS.length);
    const fault = await events.fault((f) => f.code === 'CS_ERR_GB_REGISTER_UNKNOWN_DEVICE');
    expect(fault.device).toBeUndefined();
    expect(fault.message).toContain(STRANGER);
    expect(events.readings.some((r) => r.device === STRANGER)).toBe(false);

    // Keepalives stop: the camera goes offline but keeps its registration.
    const from = events.readings.length;
    nvr.setOnline(false);
    const offline = await events.reading(NVR, GB28181_METRICS.online, (r) => r.value === false, from);
    expect(
      events.readings.find(
        (r) => r.device === NVR && r.metric === GB28181_METRICS.registered && r.time === offline.time,
      )?.value,
    ).toBe(true);
  });

  it("turns a camera's alarm into an Edge Alert with the severity of its priority", async () => {
    const { driver, events } = await startDriver(driverConfig());
    const nvr = camera(NVR, driver.sipPort, { channels: CHANNELS });
    await nvr.start();
    // The channel is known once the catalog was answered.
    await events.reading(NVR, GB28181_METRICS.channels);
    await nvr.raiseAlarm({
      priority: 3,
      method: 5,
      type: '6',
      description: '区域入侵',
      channelId: CHANNELS[1]?.id,
    });
    const reading = await events.reading(NVR, EDGE_ALERT_METRIC);
    const alert = decodeEdgeAlert(reading.value as Uint8Array);
    expect(alert).toMatchObject({
      kind: 'device-alarm',
      severity: 'warning',
      source: NVR,
      algorithmId: 'gb28181',
      algorithmVersion: '2016',
    });
    expect(alert.message).toContain('intrusion');
    expect(alert.message).toContain(CHANNELS[1]?.id);
    expect(alert.message).toContain('区域入侵');

    await nvr.raiseAlarm({ priority: 1, method: 2, description: '' });
    const critical = await events.reading(
      NVR,
      EDGE_ALERT_METRIC,
      (r) => decodeEdgeAlert(r.value as Uint8Array).severity === 'critical',
    );
    expect(decodeEdgeAlert(critical.value as Uint8Array).message).toMatch(/^device alarm, priority 1/);
    expect([1, 2, 3, 4].map((p) => gbAlarmSeverity(p as 1 | 2 | 3 | 4))).toEqual([
      'critical',
      'critical',
      'warning',
      'info',
    ]);
  });

  it('cascades to a higher platform, which lists the camera and opens its live video through the gateway', async () => {
    const hub = new Gb28181Platform({
      endpoint: new SipEndpoint({ host: '127.0.0.1', t1Ms: 50 }),
      serverId: HUB_ID,
      passwordOf: (id) => (id === GATEWAY_UP_ID ? HUB_PASSWORD : undefined),
      keepaliveIntervalMs: 60_000,
      queryTimeoutMs: 5000,
    });
    await hub.start();
    stops.push(() => hub.stop());
    const gatewayRegistered = new Promise<void>((resolve) =>
      hub.on('registered', (s) => {
        if (s.deviceId === GATEWAY_UP_ID) resolve();
      }),
    );
    const upstream = {
      serverId: HUB_ID,
      localId: GATEWAY_UP_ID,
      host: '127.0.0.1',
      port: hub.port,
      transport: 'udp',
      password: HUB_PASSWORD,
      name: '人民路灯杆网关',
    };
    const { driver, events } = await startDriver(driverConfig({ upstream }));
    await gatewayRegistered;
    const nvr = camera(NVR, driver.sipPort, { channels: CHANNELS });
    await nvr.start();
    await events.reading(NVR, GB28181_METRICS.channels, (r) => r.value === CHANNELS.length);

    const items = await hub.queryCatalog(GATEWAY_UP_ID);
    expect(driver.upstreamRegistered).toBe(true);
    expect(items.find((i) => i.deviceId === GATEWAY_UP_ID)?.name).toBe('人民路灯杆网关');
    expect(items.find((i) => i.deviceId === NVR)).toMatchObject({ parentId: GATEWAY_UP_ID, status: 'ON' });
    expect(items.filter((i) => i.parentId === NVR).map((i) => i.deviceId)).toEqual(CHANNELS.map((c) => c.id));

    const receiver = new RtpReceiver({ transport: 'udp', host: '127.0.0.1', idleTimeoutMs: 5000 });
    await receiver.start();
    stops.push(() => receiver.stop());
    const dialog = await hub.invite({
      deviceId: GATEWAY_UP_ID,
      channelId: CHANNELS[0]?.id as string,
      mediaAddress: '127.0.0.1',
      mediaPort: receiver.port,
      transport: 'udp',
    });
    let pictures = 0;
    for await (const au of receiver.accessUnits()) {
      expect(au.codec).toBe('h264');
      if (++pictures >= 3) break;
    }
    await hub.bye(dialog.id);
  });

  it('rejects start with the coded bind error when the SIP port is taken', async () => {
    const holder = new SipEndpoint({ host: '127.0.0.1' });
    await holder.start();
    stops.push(() => holder.stop());
    const driver = new Gb28181Driver({
      config: driverConfig({ sip: { ...driverConfig().sip, port: holder.port } }),
    });
    stops.push(() => driver.stop());
    await expect(driver.start()).rejects.toMatchObject({ code: 'CS_ERR_SIP_BIND' });
    expect(driver.sipPort).toBe(0);
  });

  it('reports every problem of its options at once', async () => {
    const driver = new Gb28181Driver({
      config: {
        sip: { id: '34020000001320000001', password: '' },
        cameras: [{ id: NVR }, { id: NVR }, { id: '123' }],
        upstream: {
          serverId: HUB_ID,
          localId: GATEWAY_SIP_ID,
          host: 'hub',
          transport: 'sctp',
          password: 'x',
        },
      },
    });
    const err = await driver.start().catch((e: unknown) => e);
    expect(hasCode(err, 'CS_ERR_CONFIG_INVALID')).toBe(true);
    const paths = ((err as { details: Array<{ path: string }> }).details ?? []).map((p) => p.path);
    expect(paths).toEqual(
      expect.arrayContaining(['/sip/id', '/sip/password', '/cameras/2/id', '/upstream/transport']),
    );
  });
});

describeDriverContract(
  'Gb28181Driver',
  () => new Gb28181Driver({ id: 'gb28181-contract', config: driverConfig({ statusIntervalMs: 20 }) }),
  { readingsTimeoutMs: 3000 },
);
