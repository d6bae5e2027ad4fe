/**
 * Live GB/T 28181 video end to end: a simulated NVR registers with the hub over SIP, the hub
 * INVITEs a channel, PS over RTP is demuxed and relayed to RTMP / HTTP-FLV, and frames that
 * ffmpeg decodes from the relay reach the YOLOX-nano detector, as an inference source would.
 */
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import {
  Detector,
  FfmpegStreamSource,
  imageSourceOf,
  parseLabels,
  parseManifestSource,
} from '@citysense/algorithms';
import { Gb28181Camera } from '@citysense/simulators';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eventually } from '../testing/eventually.ts';
import { startTestHub, type TestHub } from '../testing/test-hub.ts';
import type { LiveSessionView } from './live-video.ts';

const NVR = '34020000001180000001';
const CHANNEL = '34020000001310000001';
const YOLOX = fileURLToPath(new URL('../../../algorithms/packages/yolox-nano/', import.meta.url));

describe('hub live video from a GB/T 28181 camera', () => {
  let hub: TestHub;
  let camera: Gb28181Camera;
  let detector: Detector;

  beforeAll(async () => {
    hub = await startTestHub({ sip: { queryOnRegister: true } });
    await hub.api('POST', '/v1/video/devices', { deviceId: NVR });
    camera = new Gb28181Camera({
      deviceId: NVR,
      password: '12345678',
      server: { id: '34020000002000000001', host: '127.0.0.1', port: hub.hub.video.platform.port },
      channels: [
        { id: CHANNEL, name: '人民路口', longitude: 117.2272, latitude: 31.8206 },
        { id: '34020000001310000002', name: '长江路口' },
      ],
      media: { width: 320, height: 240, frameRate: 10 },
    });
    await camera.start();
    const manifest = parseManifestSource(JSON.parse(readFileSync(`${YOLOX}manifest.json`, 'utf8')));
    detector = await Detector.load(
      readFileSync(`${YOLOX}yolox_nano.onnx`),
      manifest,
      parseLabels(readFileSync(`${YOLOX}coco_classes.txt`, 'utf8')),
    );
  });
  afterAll(async () => {
    await detector?.release();
    await camera?.stop();
    await hub?.stop();
  });

  it('learns the channels on registration, relays live PS to RTMP and feeds the detector', async () => {
    // queryOnRegister: DeviceInfo and Catalog are asked for as soon as the NVR registers.
    await eventually(async () => {
      const channels = await hub.api<Array<{ channelId: string; name: string }>>(
        'GET',
        `/v1/video/devices/${NVR}/channels`,
      );
      expect(channels.body.map((c) => c.name)).toEqual(['人民路口', '长江路口']);
      return true;
    });
    const live = await hub.api<LiveSessionView>('POST', `/v1/video/channels/${CHANNEL}/live`, {
      transport: 'tcp',
    });
    expect(live.status).toBe(200);
    expect(live.body).toMatchObject({ deviceId: NVR, channelId: CHANNEL, transport: 'tcp' });
    expect(live.body.rtmpUrl).toMatch(/^rtmp:\/\/127\.0\.0\.1:\d+\/live\/34020000001310000001$/);

    const source = new FfmpegStreamSource({ input: live.body.rtmpUrl, live: true, fps: 5 });
    let frames = 0;
    for await (const frame of source.frames()) {
      const d = await detector.detect(imageSourceOf(frame.image));
      expect([d.width, d.height]).toEqual([320, 240]);
      if (++frames === 3) break;
    }
    expect(frames).toBe(3);

    const open = await hub.api<LiveSessionView[]>('GET', '/v1/video/live');
    expect(open.body).toHaveLength(1);
    expect(open.body[0]?.accessUnits).toBeGreaterThan(0);
    expect(open.body[0]?.codec).toBe('h264');
    const again = await hub.api<LiveSessionView>('POST', `/v1/video/channels/${CHANNEL}/live`, {});
    expect(again.body.id).toBe(live.body.id);

    const ended = once(camera, 'sessionEnded');
    expect((await hub.api('DELETE', `/v1/video/channels/${CHANNEL}/live`)).status).toBe(204);
    await ended;
    expect(camera.liveSessions()).toEqual([]);
    expect((await hub.api<LiveSessionView[]>('GET', '/v1/video/live')).body).toEqual([]);
  });

  it('ends the session when the camera hangs up (BYE), and answers unknown channels with a code', async () => {
    await hub.api('POST', `/v1/video/channels/${CHANNEL}/live`, {});
    await eventually(async () => camera.liveSessions().length === 1);
    // The camera going away hangs up its live streams with BYE (then unregisters).
    await camera.stop();
    await eventually(async () => (await hub.api<unknown[]>('GET', '/v1/video/live')).body.length === 0);
    const unknown = await hub.api<{ code: string }>(
      'POST',
      '/v1/video/channels/34020000001310000099/live',
      {},
    );
    expect(unknown).toMatchObject({ status: 404, body: { code: 'CS_ERR_VIDEO_CHANNEL_UNKNOWN' } });
    const bad = await hub.api<{ code: string }>('POST', '/v1/video/channels/12/live', {});
    expect(bad.status).toBe(400);
  });
});
