/** Catalog and alarm subscriptions between the platform and simulated cameras (GB/T 28181-2016 §9.11). */
import { once } from 'node:events';
import type { AlarmNotify, CatalogItem } from '@citysense/protocol';
import { afterEach, describe, expect, it } from 'vitest';
import { Gb28181Camera } from '../../../../simulators/src/camera/gb28181/gb28181-camera.ts';
import { SipEndpoint } from '../sip/endpoint.ts';
import { header, type SipRequest } from '../sip/message.ts';
import { Gb28181Platform } from './platform.ts';

const SERVER_ID = '34020000002000000001';
const NVR = '34020000001180000001';
const CH1 = '34020000001310000001';
const CH2 = '34020000001310000002';
const CHANNELS = [
  { id: CH1, name: '人民路与解放路交叉口东北角' },
  { id: CH2, name: '长江中路公交站' },
];

describe('GB/T 28181 platform subscriptions with a simulated camera', () => {
  const stops: Array<() => Promise<void>> = [];
  afterEach(async () => {
    for (const stop of stops.splice(0).reverse()) await stop();
  });

  function camera(port: number): Gb28181Camera {
    const cam = new Gb28181Camera({
      deviceId: NVR,
      password: 'secret',
      server: { id: SERVER_ID, host: '127.0.0.1', port },
      keepaliveIntervalMs: 60_000,
      channels: CHANNELS,
      t1Ms: 50,
    });
    stops.push(() => cam.stop());
    return cam;
  }

  /** A platform, a registered camera, and every NOTIFY the platform received. */
  async function setup() {
    const endpoint = new SipEndpoint({ t1Ms: 50 });
    const notifies: SipRequest[] = [];
    endpoint.on('request', (request) => {
      if (request.method === 'NOTIFY') notifies.push(request);
    });
    const platform = new Gb28181Platform({
      endpoint,
      serverId: SERVER_ID,
      passwordOf: () => 'secret',
      keepaliveIntervalMs: 60_000,
      queryTimeoutMs: 5000,
    });
    await platform.start();
    stops.push(() => platform.stop());
    const cam = camera(platform.port);
    await cam.start();
    return { platform, camera: cam, notifies };
  }

  it('gets alarms by NOTIFY in the alarm subscription, only those its priority range lets through', async () => {
    const { platform, camera, notifies } = await setup();
    const subscription = await platform.subscribeAlarm(NVR, {
      expiresS: 600,
      filter: { startPriority: 1, endPriority: 2 },
    });
    expect(subscription).toMatchObject({ deviceId: NVR, kind: 'Alarm' });
    expect(subscription.expiresAt).toBeGreaterThan(Date.now() + 590_000);
    expect(camera.stats().subscriptions).toBe(1);
    const alarms: AlarmNotify[] = [];
    platform.on('alarm', (alarm) => alarms.push(alarm));

    // Raised first and kept out by the range: the next alarm the platform sees is the wanted one.
    await camera.raiseAlarm({ priority: 4, method: 5, description: '镜头遮挡' });
    const arrived = once(platform, 'alarm');
    const sn = await camera.raiseAlarm({
      priority: 1,
      method: 5,
      type: '2',
      description: '区域入侵',
      channelId: CH1,
    });
    const [alarm] = (await arrived) as [AlarmNotify];
    expect(alarm).toMatchObject({ sn, deviceId: CH1, priority: 1, method: 5, description: '区域入侵' });
    expect(alarms.map((a) => a.sn)).toEqual([sn]);

    // It came in the subscription's dialog (§9.11.1), not by the §9.4 MESSAGE.
    expect(notifies).toHaveLength(1);
    expect(header(notifies[0] as SipRequest, 'call-id')).toBe(subscription.callId);
    expect(header(notifies[0] as SipRequest, 'event')).toBe('presence');
    expect(camera.stats()).toMatchObject({ alarmsSent: 0, notifiesSent: 1 });
    expect(platform.stats().alarms).toBe(1);
  });

  it('after unsubscribe gets no more alarm NOTIFYs; alarms come by MESSAGE again', async () => {
    const { platform, camera, notifies } = await setup();
    await platform.subscribeAlarm(NVR, { filter: { methods: [5] } });
    const notified = once(platform, 'alarm');
    await camera.raiseAlarm({ priority: 3, method: 5 });
    await notified;
    expect(notifies).toHaveLength(1);

    await platform.unsubscribe(NVR, 'Alarm');
    expect(platform.subscriptions()).toEqual([]);
    expect(camera.stats().subscriptions).toBe(0);
    const messaged = once(platform, 'alarm');
    // Method 2 would not have passed the filter either: without a subscription everything comes.
    const sn = await camera.raiseAlarm({ priority: 4, method: 2, description: '防区报警' });
    const [alarm] = (await messaged) as [AlarmNotify];
    expect(alarm).toMatchObject({ sn, priority: 4, method: 2 });
    expect(notifies).toHaveLength(1);
    expect(camera.stats()).toMatchObject({ alarmsSent: 1, notifiesSent: 1 });
    // Unsubscribing twice is harmless.
    await platform.unsubscribe(NVR, 'Alarm');
  });

  it('refreshes a catalog subscription inside its dialog and cancels it there', async () => {
    const { platform, camera, notifies } = await setup();
    const first = await platform.subscribeCatalog(NVR, 600);
    const refreshed = await platform.subscribeCatalog(NVR, 1200);
    expect(refreshed.callId).toBe(first.callId);
    expect(refreshed.expiresAt - first.expiresAt).toBeGreaterThan(590_000);
    // A new SUBSCRIBE outside the dialog would have left the camera with two.
    expect(camera.stats().subscriptions).toBe(1);
    expect(platform.subscriptions()).toEqual([refreshed]);

    const change = once(platform, 'catalog');
    await camera.setChannelStatus(CH2, 'OFF');
    const [deviceId, items] = (await change) as [string, CatalogItem[]];
    expect(deviceId).toBe(NVR);
    expect(items).toMatchObject([{ deviceId: CH2, status: 'OFF', event: 'OFF' }]);
    expect(notifies.map((n) => header(n, 'call-id'))).toEqual([first.callId]);

    await platform.unsubscribe(NVR, 'Catalog');
    expect(camera.stats().subscriptions).toBe(0);
    expect(platform.subscriptions()).toEqual([]);
    // setChannelStatus resolves once subscribers answered: there are none left.
    await camera.setChannelStatus(CH2, 'ON');
    expect(notifies).toHaveLength(1);
    expect(camera.stats().notifiesSent).toBe(1);
  });

  it('subscribes anew when the camera restarted and answers the refresh 481', async () => {
    const { platform, camera: before } = await setup();
    const first = await platform.subscribeAlarm(NVR);
    // Power cut, then the camera comes back on another port without the old dialog.
    before.vanish();
    const after = camera(platform.port);
    const registered = once(platform, 'registered');
    await after.start();
    await registered;
    const second = await platform.subscribeAlarm(NVR, { filter: { startPriority: 1, endPriority: 1 } });
    expect(second.callId).not.toBe(first.callId);
    expect(platform.subscriptions()).toEqual([second]);
    expect(after.stats().subscriptions).toBe(1);
    const arrived = once(platform, 'alarm');
    const sn = await after.raiseAlarm({ priority: 1, method: 2 });
    expect(((await arrived) as [AlarmNotify])[0].sn).toBe(sn);
    expect(after.stats()).toMatchObject({ alarmsSent: 0, notifiesSent: 1 });
  });
});
