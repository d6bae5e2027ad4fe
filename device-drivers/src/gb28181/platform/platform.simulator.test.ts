/** The platform with simulated GB/T 28181 cameras: offline detection, alarms, GB2312 catalogs and live PS/RTP. */
import { once } from 'node:events';
import { afterEach, describe, expect, it } from 'vitest';
import { Gb28181Camera } from '../../../../simulators/src/camera/gb28181/gb28181-camera.ts';
import { RtpReceiver } from '../media/rtp-receiver.ts';
import { SipEndpoint } from '../sip/endpoint.ts';
import { type DeviceStatusChange, Gb28181Platform } from './platform.ts';

const SERVER_ID = '34020000002000000001';
const NVR = '34020000001180000001';
const CHANNELS = [
  { id: '34020000001310000001', name: '人民路与解放路交叉口东北角', longitude: 117.2272, latitude: 31.8206 },
  { id: '34020000001310000002', name: '长江中路公交站', longitude: 117.2261, latitude: 31.8203 },
  { id: '34020000001310000003', name: '天鹅湖东岸', longitude: 117.2301, latitude: 31.8195 },
];

describe('GB/T 28181 platform with simulated cameras', () => {
  const stops: Array<() => Promise<void>> = [];
  afterEach(async () => {
    for (const stop of stops.splice(0).reverse()) await stop();
  });

  async function setup(transport: 'udp' | 'tcp' = 'udp', keepaliveIntervalMs = 100) {
    const platform = new Gb28181Platform({
      endpoint: new SipEndpoint({ t1Ms: 50 }),
      serverId: SERVER_ID,
      passwordOf: () => 'secret',
      keepaliveIntervalMs,
      keepaliveMissed: 3,
      queryTimeoutMs: 5000,
    });
    await platform.start();
    stops.push(() => platform.stop());
    const camera = new Gb28181Camera({
      deviceId: NVR,
      password: 'secret',
      server: { id: SERVER_ID, host: '127.0.0.1', port: platform.port, transport },
      keepaliveIntervalMs,
      channels: CHANNELS,
      media: { width: 320, height: 240, frameRate: 10 },
      t1Ms: 50,
    });
    stops.push(() => camera.stop());
    return { platform, camera };
  }

  it('marks a camera offline after missed keepalives and online again when they resume', async () => {
    const { platform, camera } = await setup();
    const changes: DeviceStatusChange[] = [];
    platform.on('status', (c) => changes.push(c));
    await camera.start();
    await once(platform, 'keepalive');
    const offline = once(platform, 'status');
    camera.setOnline(false);
    const [down] = (await offline) as [DeviceStatusChange];
    expect(down).toMatchObject({ deviceId: NVR, online: false, reason: 'keepalive-missed' });
    const online = once(platform, 'status');
    camera.setOnline(true);
    const [up] = (await online) as [DeviceStatusChange];
    expect(up).toMatchObject({ deviceId: NVR, online: true, reason: 'keepalive' });
    expect(changes.map((c) => c.reason)).toEqual(['registered', 'keepalive-missed', 'keepalive']);
  });

  for (const transport of ['udp', 'tcp'] as const) {
    it(`reads a GB2312 catalog, device info and an alarm over ${transport}`, async () => {
      const { platform, camera } = await setup(transport, 60_000);
      await camera.start();
      const items = await platform.queryCatalog(NVR);
      expect(items.map((i) => [i.deviceId, i.name, i.longitude])).toEqual(
        CHANNELS.map((c) => [c.id, c.name, c.longitude]),
      );
      const info = await platform.queryDeviceInfo(NVR);
      expect(info).toMatchObject({ deviceId: NVR, channel: 3 });
      const alarm = once(platform, 'alarm');
      await camera.raiseAlarm({
        priority: 2,
        method: 5,
        type: '2',
        description: '区域入侵',
        channelId: CHANNELS[0]?.id,
      });
      const [received] = (await alarm) as [{ deviceId: string; priority: number; description: string }];
      expect(received).toMatchObject({ deviceId: CHANNELS[0]?.id, priority: 2, description: '区域入侵' });
    });

    it(`receives live PS over RTP (${transport}) from an INVITE and ends it with BYE`, async () => {
      const { platform, camera } = await setup('udp', 60_000);
      await camera.start();
      const receiver = new RtpReceiver({ transport, host: '127.0.0.1', idleTimeoutMs: 5000 });
      await receiver.start();
      stops.push(() => receiver.stop());
      const dialog = await platform.invite({
        deviceId: NVR,
        channelId: CHANNELS[1]?.id as string,
        mediaAddress: '127.0.0.1',
        mediaPort: receiver.port,
        transport,
      });
      expect(dialog.ssrc).toMatch(/^0\d{9}$/);
      let pictures = 0;
      let keyframes = 0;
      for await (const au of receiver.accessUnits()) {
        pictures++;
        if (au.keyframe) keyframes++;
        expect(au.codec).toBe('h264');
        if (pictures >= 12) break;
      }
      expect(keyframes).toBeGreaterThanOrEqual(1);
      expect(receiver.stats.foreignSsrc).toBe(0);
      expect(camera.liveSessions()).toHaveLength(1);
      const ended = once(camera, 'sessionEnded');
      await platform.bye(dialog.id);
      await ended;
      expect(camera.liveSessions()).toHaveLength(0);
      expect(platform.dialogs()).toEqual([]);
    });
  }

  it('answers INVITE to an unknown channel with a coded refusal', async () => {
    const { platform, camera } = await setup('udp', 60_000);
    await camera.start();
    await expect(
      platform.invite({
        deviceId: NVR,
        channelId: '34020000001310000099',
        mediaAddress: '127.0.0.1',
        mediaPort: 9,
        transport: 'udp',
      }),
    ).rejects.toMatchObject({ code: 'CS_ERR_GB_DEVICE_REFUSED', details: { status: 404 } });
  });
});
