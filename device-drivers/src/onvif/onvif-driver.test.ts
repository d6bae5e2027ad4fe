import { createServer } from 'node:net';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { OnvifCamera } from '../../../simulators/src/camera/onvif/index.ts';
import { describeDriverContract } from '../contract.ts';
import { nextFault, nextReading } from '../testing/driver-events.ts';
import { probeOnvifCameras } from './discovery.ts';
import { parseOnvifMetadata } from './metadata.ts';
import { ONVIF_METRICS, OnvifDriver, type OnvifDriverOptions } from './onvif-driver.ts';

const USER = 'citysense';
const PASSWORD = 's3cret!';

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

describe('ONVIF driver against the simulated camera', () => {
  const camera = new OnvifCamera({
    username: USER,
    password: PASSWORD,
    discovery: { address: '127.0.0.1', port: 0 },
  });
  const drivers: OnvifDriver[] = [];
  const make = (options: Partial<OnvifDriverOptions> = {}): OnvifDriver => {
    const driver = new OnvifDriver({
      id: 'cam-north',
      hostname: '127.0.0.1',
      port: camera.port,
      username: USER,
      password: PASSWORD,
      onlineIntervalMs: 1000,
      ...options,
    });
    drivers.push(driver);
    return driver;
  };

  beforeAll(() => camera.start());
  afterEach(async () => {
    await Promise.all(drivers.splice(0).map((d) => d.stop()));
  });
  afterAll(() => camera.stop());

  it('discovers the camera by WS-Discovery and connects to the advertised XAddr', async () => {
    const found = await probeOnvifCameras({
      target: { host: '127.0.0.1', port: camera.discoveryPort },
      timeoutMs: 300,
    });
    expect(found).toHaveLength(1); // repeated probes are deduplicated
    const xaddr = new URL(found[0]?.xaddrs[0] ?? '');
    const driver = make({ hostname: xaddr.hostname, port: Number(xaddr.port), path: xaddr.pathname });
    await driver.start();
    expect(driver.describeCamera().xaddr).toBe(camera.deviceServiceUrl);
  });

  it('finds nothing, quietly, when no camera answers', async () => {
    const found = await probeOnvifCameras({
      target: { host: '127.0.0.1', port: await freePort() },
      timeoutMs: 150,
    });
    expect(found).toEqual([]);
  });

  it('reads device information, profiles, stream URI and a JPEG snapshot', async () => {
    const driver = make();
    expect(() => driver.describeCamera()).toThrow(
      expect.objectContaining({ code: 'CS_ERR_ONVIF_NOT_STARTED' }),
    );
    await driver.start();
    const d = driver.describeCamera();
    expect(d.info).toMatchObject({ manufacturer: 'citysense', model: 'SimCam', serialNumber: 'SIM-0001' });
    expect(d.profiles).toEqual([
      { token: 'profile_1', name: 'MainStream', encoding: 'H264', width: 320, height: 240, fps: 10 },
    ]);
    expect(d.streamUri).toBe(camera.streamUrl);
    expect(d.snapshotUri).toBe(camera.snapshotUrl);
    expect(d.events).toBe(true);
    expect(driver.authenticatedStreamUri()).toBe(
      camera.streamUrl.replace('rtsp://', `rtsp://${USER}:s3cret!@`),
    );
    const jpeg = await driver.fetchSnapshot();
    expect([jpeg[0], jpeg[1]]).toEqual([0xff, 0xd8]);
  });

  it('describes a stream URI that the inference frame source (ffmpeg) decodes', async () => {
    const driver = make();
    await driver.start();
    const { FfmpegStreamSource } = await import('@citysense/algorithms');
    const source = new FfmpegStreamSource({ input: driver.describeCamera().streamUri, fps: 10 });
    const sizes: Array<[number, number]> = [];
    for await (const frame of source.frames()) {
      if (frame.image.kind === 'raw') sizes.push([frame.image.width, frame.image.height]);
      if (sizes.length === 3) break;
    }
    expect(sizes).toEqual([
      [320, 240],
      [320, 240],
      [320, 240],
    ]);
  });

  it('rejects a wrong password with CS_ERR_ONVIF_AUTH and an absent camera with CS_ERR_ONVIF_UNREACHABLE', async () => {
    await expect(make({ password: 'nope' }).start()).rejects.toMatchObject({ code: 'CS_ERR_ONVIF_AUTH' });
    await expect(make({ port: await freePort() }).start()).rejects.toMatchObject({
      code: 'CS_ERR_ONVIF_UNREACHABLE',
    });
  });

  it('turns motion and tamper events raised on the camera into readings', async () => {
    const driver = make();
    const initial = nextReading(driver, (r) => r.metric === ONVIF_METRICS.tamper);
    await driver.start();
    // The pull point starts with the current state (PropertyOperation Initialized).
    expect((await initial).value).toBe(false);

    const motion = nextReading(driver, (r) => r.metric === ONVIF_METRICS.motion && r.value === true);
    camera.raiseMotion(true);
    expect(await motion).toMatchObject({ device: 'cam-north', value: true, quality: 'good' });

    const tamper = nextReading(driver, (r) => r.metric === ONVIF_METRICS.tamper && r.value === true);
    camera.raiseTamper(true);
    expect(await tamper).toMatchObject({ device: 'cam-north', value: true });

    const calm = nextReading(driver, (r) => r.metric === ONVIF_METRICS.motion && r.value === false);
    camera.raiseMotion(false);
    camera.raiseTamper(false);
    expect((await calm).value).toBe(false);
  });

  it('reports losing the camera as a fault and reconnects when it is back', async () => {
    const own = new OnvifCamera({ username: USER, password: PASSWORD, discovery: false });
    await own.start();
    const port = own.port;
    const driver = make({ port, cameraId: 'cam-south', reconnect: { initialDelayMs: 20, maxDelayMs: 100 } });
    await driver.start();
    const fault = nextFault(driver);
    const offline = nextReading(driver, (r) => r.metric === ONVIF_METRICS.online && r.value === false);
    await own.stop();
    expect(await fault).toMatchObject({ device: 'cam-south', code: 'CS_ERR_ONVIF_UNREACHABLE' });
    await offline;

    const back = new OnvifCamera({ username: USER, password: PASSWORD, discovery: false, port });
    const online = nextReading(driver, (r) => r.metric === ONVIF_METRICS.online && r.value === true);
    await back.start();
    try {
      await online;
      const motion = nextReading(driver, (r) => r.metric === ONVIF_METRICS.motion && r.value === true);
      back.raiseMotion(true);
      await motion;
    } finally {
      await driver.stop();
      await back.stop();
    }
  });

  it('parses Profile M metadata documents the camera produces', () => {
    for (const normalisation of ['signed', 'unit'] as const) {
      const [frame] = parseOnvifMetadata(camera.metadataDocument({ normalisation }), {
        frameWidth: 640,
        frameHeight: 480,
        normalisation,
      });
      expect(frame?.normalisation).toBe(normalisation);
      expect(frame?.objects[0]).toMatchObject({ label: 'Human', score: 0.87 });
      const p = frame?.objects[0]?.pixelBox;
      expect([p?.left, p?.top, p?.right, p?.bottom].map((v) => Math.round(v ?? -1))).toEqual([
        160, 96, 320, 432,
      ]);
    }
  });

  describeDriverContract('OnvifDriver + simulated camera', () =>
    make({ id: 'cam-contract', onlineIntervalMs: 20 }),
  );
});
