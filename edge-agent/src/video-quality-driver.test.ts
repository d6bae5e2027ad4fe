import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { DataType, decodeEdgeAlert, EDGE_ALERT_METRIC } from '@citysense/protocol';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MjpegCamera } from '../../simulators/src/camera/mjpeg-camera.ts';
import { Agent } from './agent.ts';
import { resolveAgentConfig } from './config.ts';
import { builtinDrivers } from './drivers.ts';
import { TestBroker, TestEnrollServer, TestHost } from './testing/harness.ts';

const SAMPLE = fileURLToPath(
  new URL('../../algorithms/packages/yolox-nano/samples/000000000139.jpg', import.meta.url),
);

describe('agent with a video-quality driver', () => {
  let dir: string;
  let broker: TestBroker;
  let hub: TestEnrollServer;
  let host: TestHost;
  let camera: MjpegCamera;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'cs-agent-vq-'));
    const defocused = join(dir, 'defocused.jpg');
    await sharp(SAMPLE).blur(8).jpeg().toFile(defocused);
    camera = new MjpegCamera({ images: [defocused], fps: 10, width: 640, height: 426 });
    await camera.start();
    broker = await TestBroker.start();
    hub = new TestEnrollServer(broker);
    await hub.start();
    host = new TestHost(broker);
    await host.start();
    await host.publishState(true);
  });

  afterAll(async () => {
    await host?.close();
    await hub?.close();
    await broker?.close();
    await camera?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('publishes the camera as a device whose quality alarm reaches the host as an Edge Alert', async () => {
    const config = resolveAgentConfig({
      hubUrl: hub.url,
      token: 'tok',
      stateDir: join(dir, 'state'),
      healthIntervalMs: 60_000,
      drivers: [
        {
          type: 'video-quality',
          id: 'vq',
          options: { cameras: [{ id: 'cam-7', input: camera.url, fps: 4 }] },
        },
      ],
    });
    const agent = new Agent(config, undefined, { driverRegistry: builtinDrivers });
    try {
      await agent.start();
      const birth = await host.nextMessage((m) => m.type === 'DBIRTH' && m.device === 'cam-7');
      expect(birth.payload.metrics.find((m) => m.name === EDGE_ALERT_METRIC)?.datatype).toBe(DataType.Bytes);
      expect(birth.payload.metrics.map((m) => m.name)).toEqual(
        expect.arrayContaining(['Quality/Luma', 'Quality/Sharpness', 'Quality/Status', 'Video/Signal']),
      );
      const data = await host.nextMessage(
        (m) => m.type === 'DDATA' && m.device === 'cam-7' && m.values.has(EDGE_ALERT_METRIC),
      );
      const alert = decodeEdgeAlert(data.values.get(EDGE_ALERT_METRIC)?.value as Uint8Array);
      expect(alert).toMatchObject({ kind: 'quality', severity: 'critical', source: 'cam-7' });
      expect(alert.message).toMatch(/^blur/);
      expect(agent.status().drivers).toMatchObject([{ id: 'vq', state: 'running' }]);
    } finally {
      await agent.stop();
    }
  });
});
