/** The hub's GB/T 28181 access end to end: sipp devices register over real SIP, the API shows them. */
import { afterEach, describe, expect, it } from 'vitest';
import {
  shouldSkipSipp,
  sippSuiteTitle,
  startSipp,
} from '../../../device-drivers/src/gb28181/sipp/sipp-runner.ts';
import { eventually } from '../testing/eventually.ts';
import { startTestHub, type TestHub } from '../testing/test-hub.ts';
import type { VideoChannelRow, VideoDeviceRow, VideoStatusRow } from './video-store.ts';

const DEVICE = '34020000001320000001';
const SERVER = { id: '34020000002000000001', domain: '3402000000' };

describe.skipIf(shouldSkipSipp())(sippSuiteTitle('hub video access'), () => {
  const hubs: TestHub[] = [];
  afterEach(async () => {
    await Promise.all(hubs.splice(0).map((h) => h.stop()));
  });

  async function hub(autoAccept = false): Promise<TestHub> {
    const h = await startTestHub({
      sip: { autoAccept, queryOnRegister: false },
    });
    hubs.push(h);
    return h;
  }

  async function stayingDevice(h: TestHub, deviceId = DEVICE) {
    return startSipp({
      scenario: 'register-and-stay',
      outOfCall: 'catalog-answer',
      server: { host: '127.0.0.1', port: h.hub.video.platform.port, ...SERVER },
      devices: [{ deviceId, password: '12345678' }],
      timeoutS: 40,
    });
  }

  it('refuses an unadmitted device, then takes it once admitted, and stores its catalog', async () => {
    const h = await hub();
    const refused = await stayingDevice(h);
    const result = await refused.done;
    expect(result.exitCode).not.toBe(0);
    expect(h.hub.video.platform.stats().refused).toEqual({ CS_ERR_GB_REGISTER_UNKNOWN_DEVICE: 1 });

    const admitted = await h.api<VideoDeviceRow>('POST', '/v1/video/devices', {
      deviceId: DEVICE,
      name: 'gate camera',
    });
    expect(admitted.status).toBe(201);
    expect(admitted.body).toMatchObject({
      deviceId: DEVICE,
      admitted: true,
      online: false,
      name: 'gate camera',
    });

    const sipp = await stayingDevice(h);
    try {
      const online = await eventually(async () => {
        const r = await h.api<VideoDeviceRow>('GET', `/v1/video/devices/${DEVICE}`);
        expect(r.body.online).toBe(true);
        return r.body;
      });
      expect(online).toMatchObject({ transport: 'udp', address: '127.0.0.1', userAgent: 'sipp' });
      const catalog = await h.api<{ channels: number }>('POST', `/v1/video/devices/${DEVICE}/catalog`);
      expect(catalog).toEqual({ status: 200, body: { channels: 2 } });
      const channels = await h.api<VideoChannelRow[]>('GET', `/v1/video/devices/${DEVICE}/channels`);
      expect(channels.body.map((c) => [c.channelId, c.status, c.longitude, c.latitude])).toEqual([
        ['34020000001320000101', 'ON', 117.2272, 31.8206],
        ['34020000001320000102', 'OFF', 117.2261, 31.8203],
      ]);
    } finally {
      sipp.child.kill('SIGKILL');
      await sipp.done;
    }
    await h.hub.video.settled();
    const history = await h.api<VideoStatusRow[]>('GET', `/v1/video/devices/${DEVICE}/status-history`);
    expect(history.body.map((e) => [e.online, e.reason])).toEqual([[true, 'registered']]);
  });

  it('auto-accepts any valid device when configured', async () => {
    const h = await hub(true);
    const sipp = await stayingDevice(h, '34020000001320000777');
    try {
      const devices = await eventually(async () => {
        const r = await h.api<VideoDeviceRow[]>('GET', '/v1/video/devices');
        expect(r.body.map((d) => [d.deviceId, d.online])).toEqual([['34020000001320000777', true]]);
        return r.body;
      });
      expect(devices[0]?.admitted).toBe(true);
    } finally {
      sipp.child.kill('SIGKILL');
      await sipp.done;
    }
  });

  it('answers bad API input with coded 4xx', async () => {
    const h = await hub();
    const badId = await h.api<{ code: string }>('POST', '/v1/video/devices', { deviceId: '123' });
    expect(badId.status).toBe(400);
    const unknown = await h.api<{ code: string }>('GET', `/v1/video/devices/${DEVICE}`);
    expect(unknown).toMatchObject({ status: 404, body: { code: 'CS_ERR_VIDEO_DEVICE_UNKNOWN' } });
    const offline = await h.api<{ code: string }>('POST', `/v1/video/devices/${DEVICE}/catalog`);
    expect(offline).toMatchObject({ status: 409, body: { code: 'CS_ERR_GB_DEVICE_OFFLINE' } });
  });
});
