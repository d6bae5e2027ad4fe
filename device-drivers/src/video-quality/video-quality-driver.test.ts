import { mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { decodeEdgeAlert, type EdgeAlert } from '@citysense/protocol';
import sharp from 'sharp';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { MjpegCamera, type MjpegCameraOptions } from '../../../simulators/src/camera/mjpeg-camera.ts';
import { describeDriverContract } from '../contract.ts';
import type { DriverFault, Reading } from '../driver.ts';
import { nextFault, nextReading } from '../testing/driver-events.ts';
import { VIDEO_QUALITY_ERRORS, VIDEO_QUALITY_METRICS, VideoQualityDriver } from './video-quality-driver.ts';

const SAMPLE = fileURLToPath(
  new URL('../../../algorithms/packages/yolox-nano/samples/000000000139.jpg', import.meta.url),
);
/** The sample's own size, so the simulated camera does not letterbox it with black bars. */
const FRAME = { width: 640, height: 426 };

let dir: string;
/** JPEGs of the same scene: sharp, slightly soft (blur warning), defocused (blur critical), no signal. */
const scene = { good: SAMPLE, soft: '', defocused: '', black: '' };
const cameras: MjpegCamera[] = [];
const drivers: VideoQualityDriver[] = [];

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'cs-video-quality-'));
  scene.soft = join(dir, 'soft.jpg');
  scene.defocused = join(dir, 'defocused.jpg');
  scene.black = join(dir, 'black.jpg');
  await sharp(SAMPLE).blur(1.5).jpeg({ quality: 90 }).toFile(scene.soft);
  await sharp(SAMPLE).blur(8).jpeg({ quality: 90 }).toFile(scene.defocused);
  await sharp({ create: { ...FRAME, channels: 3, background: '#000' } })
    .jpeg()
    .toFile(scene.black);
});

afterEach(async () => {
  await Promise.all(drivers.splice(0).map((d) => d.stop()));
  await Promise.all(cameras.splice(0).map((c) => c.stop()));
});

afterAll(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
});

async function startCamera(
  images: string[],
  options: Partial<MjpegCameraOptions> = {},
): Promise<MjpegCamera> {
  const camera = new MjpegCamera({ images, fps: 10, ...FRAME, ...options });
  cameras.push(camera);
  await camera.start();
  return camera;
}

function makeDriver(config: unknown): VideoQualityDriver {
  const driver = new VideoQualityDriver({ id: 'vq-test', config });
  drivers.push(driver);
  return driver;
}

/** Resolves with the next batch of `device` that carries a status reading (one diagnosed frame or an outage). */
async function nextStatusBatch(
  driver: VideoQualityDriver,
  device: string,
): Promise<Map<string, Reading['value']>> {
  const batch = await new Promise<Reading[]>((resolve, reject) => {
    const onReadings = (readings: Reading[]) => {
      if (!readings.some((r) => r.device === device && r.metric === VIDEO_QUALITY_METRICS.status)) return;
      clearTimeout(timer);
      driver.off('readings', onReadings);
      resolve(readings);
    };
    const timer = setTimeout(() => {
      driver.off('readings', onReadings);
      reject(new Error(`no readings of ${device} within 10 s`));
    }, 10_000);
    driver.on('readings', onReadings);
  });
  return new Map(batch.filter((r) => r.device === device).map((r) => [r.metric, r.value]));
}

/** The next alarm of `device`, decoded. */
async function nextAlarm(
  driver: VideoQualityDriver,
  device: string,
  match: (a: EdgeAlert) => boolean = () => true,
): Promise<EdgeAlert> {
  const reading = await nextReading(
    driver,
    (r) =>
      r.device === device &&
      r.metric === VIDEO_QUALITY_METRICS.alarm &&
      r.value instanceof Uint8Array &&
      match(decodeEdgeAlert(r.value)),
  );
  return decodeEdgeAlert(reading.value as Uint8Array);
}

/** Every alarm of `device`, decoded, until `done` holds for the list. */
function collectAlarms(
  driver: VideoQualityDriver,
  device: string,
  done: (alarms: EdgeAlert[]) => boolean,
  timeoutMs = 15_000,
): Promise<EdgeAlert[]> {
  return new Promise((resolve, reject) => {
    const alarms: EdgeAlert[] = [];
    const onReadings = (batch: Reading[]) => {
      for (const r of batch)
        if (r.device === device && r.metric === VIDEO_QUALITY_METRICS.alarm && r.value instanceof Uint8Array)
          alarms.push(decodeEdgeAlert(r.value));
      if (!done(alarms)) return;
      cleanup();
      resolve(alarms);
    };
    const timer = setTimeout(() => {
      cleanup();
      reject(new Error(`alarms within ${timeoutMs} ms: ${alarms.map((a) => a.severity).join(', ')}`));
    }, timeoutMs);
    const cleanup = () => {
      clearTimeout(timer);
      driver.off('readings', onReadings);
    };
    driver.on('readings', onReadings);
  });
}

/** A local port nothing listens on. */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

describe('VideoQualityDriver', () => {
  it('reports luma, sharpness, status, findings and signal for each camera, and alarms only on the bad one', async () => {
    const good = await startCamera([scene.good]);
    const defocused = await startCamera([scene.defocused]);
    const driver = makeDriver({
      cameras: [
        { id: 'cam-good', input: good.url, fps: 4 },
        { id: 'cam-defocused', input: defocused.url, fps: 4 },
        // A still image file (a snapshot saved by another tool) is diagnosed as well.
        { id: 'cam-snapshot', input: scene.black, fps: 4 },
      ],
    });
    const alarmsOfGood: Reading[] = [];
    driver.on('readings', (batch) =>
      alarmsOfGood.push(
        ...batch.filter((r) => r.device === 'cam-good' && r.metric === VIDEO_QUALITY_METRICS.alarm),
      ),
    );
    const goodBatch = nextStatusBatch(driver, 'cam-good');
    const defocusedAlarm = nextAlarm(driver, 'cam-defocused');
    const snapshotBatch = nextStatusBatch(driver, 'cam-snapshot');
    await driver.start();
    expect(driver.devices().map((d) => d.id)).toEqual(['cam-good', 'cam-defocused', 'cam-snapshot']);

    const ok = await goodBatch;
    expect(ok.get(VIDEO_QUALITY_METRICS.status)).toBe(0);
    expect(ok.get(VIDEO_QUALITY_METRICS.findings)).toBe('');
    expect(ok.get(VIDEO_QUALITY_METRICS.signal)).toBe(true);
    expect(ok.get(VIDEO_QUALITY_METRICS.luma)).toBeGreaterThan(60);
    expect(ok.get(VIDEO_QUALITY_METRICS.sharpness)).toBeGreaterThan(100);

    const alarm = await defocusedAlarm;
    expect(alarm).toMatchObject({
      kind: 'quality',
      ruleId: 'quality',
      severity: 'critical',
      source: 'cam-defocused',
      algorithmId: 'video-quality',
      count: 1,
    });
    expect(alarm.message).toMatch(/blur.*focus/);
    const bad = await nextStatusBatch(driver, 'cam-defocused');
    expect(bad.get(VIDEO_QUALITY_METRICS.findings)).toBe('blur');
    expect(bad.get(VIDEO_QUALITY_METRICS.status)).toBe(2);
    expect(bad.get(VIDEO_QUALITY_METRICS.sharpness)).toBeLessThan(10);
    // Raised once when the status changed, not again on every frame.
    expect(bad.has(VIDEO_QUALITY_METRICS.alarm)).toBe(false);

    const snapshot = await snapshotBatch;
    expect(snapshot.get(VIDEO_QUALITY_METRICS.findings)).toBe('signal-loss');
    expect(snapshot.get(VIDEO_QUALITY_METRICS.luma)).toBeLessThan(5);
    expect(alarmsOfGood).toEqual([]);
  });

  it('raises a tiered alarm as the picture degrades and an info clear when it recovers', async () => {
    // Half a second of each picture in turn, looped: the camera goes soft, then loses its signal, then recovers.
    const frames = (image: string) => Array.from({ length: 5 }, () => image);
    const camera = await startCamera([...frames(scene.good), ...frames(scene.soft), ...frames(scene.black)]);
    const driver = makeDriver({ cameras: [{ id: 'cam-1', input: camera.url, fps: 10 }] });
    // Wait for a whole episode: a warning, then critical, then the clear.
    const alarms = collectAlarms(driver, 'cam-1', (list) => {
      const warning = list.findIndex((a) => a.severity === 'warning');
      const critical = list.findIndex((a, i) => i > warning && a.severity === 'critical');
      return warning >= 0 && critical > warning && list.some((a, i) => i > critical && a.severity === 'info');
    });
    await driver.start();

    const list = await alarms;
    // Raised only when the status changes.
    for (let i = 1; i < list.length; i++) expect(list[i]?.severity).not.toBe(list[i - 1]?.severity);
    const warning = list.findIndex((a) => a.severity === 'warning');
    expect(list[warning]?.message).toMatch(/^blur \(warning\)/);
    const critical = list.findIndex((a, i) => i > warning && a.severity === 'critical');
    expect(list[critical]?.message).toMatch(/^signal-loss \(critical\).*uniform/);
    const cleared = list.find((a, i) => i > critical && a.severity === 'info');
    expect(cleared).toMatchObject({ kind: 'quality', source: 'cam-1', count: 0 });
    expect(cleared?.message).toMatch(/back to normal.*signal-loss/);
    expect(cleared?.heldSeconds).toBeGreaterThan(0);
  });

  it('reports an unreachable camera as a coded fault and no signal while the other keeps producing, and recovers it', async () => {
    const good = await startCamera([scene.good]);
    const port = await closedPort();
    const driver = makeDriver({
      cameras: [
        { id: 'cam-up', input: good.url, fps: 4 },
        { id: 'cam-down', input: `http://127.0.0.1:${port}/video.mjpg`, fps: 4 },
      ],
      reconnect: { initialDelayMs: 50, maxDelayMs: 200 },
    });
    const faults: DriverFault[] = [];
    driver.on('fault', (f) => faults.push(f));
    const fault = nextFault(driver);
    const down = nextStatusBatch(driver, 'cam-down');
    await driver.start();

    expect(await fault).toMatchObject({ device: 'cam-down', code: VIDEO_QUALITY_ERRORS.source });
    expect((await fault).message).toMatch(/CS_ERR_SOURCE_UNREACHABLE/);
    const outage = await down;
    expect(outage.get(VIDEO_QUALITY_METRICS.signal)).toBe(false);
    expect(outage.get(VIDEO_QUALITY_METRICS.status)).toBe(2);
    expect(decodeEdgeAlert(outage.get(VIDEO_QUALITY_METRICS.alarm) as Uint8Array)).toMatchObject({
      severity: 'critical',
      source: 'cam-down',
    });
    const up = await nextStatusBatch(driver, 'cam-up');
    expect(up.get(VIDEO_QUALITY_METRICS.signal)).toBe(true);

    // The camera comes up on its address: the driver was retrying all along.
    const cleared = nextAlarm(driver, 'cam-down', (a) => a.severity === 'info');
    await startCamera([scene.good], { port });
    expect(
      await nextReading(driver, (r) => r.device === 'cam-down' && r.metric === 'Video/Signal'),
    ).toMatchObject({ value: true });
    await cleared;
    // One fault for the outage, not one per failed attempt.
    expect(faults.filter((f) => f.device === 'cam-down')).toHaveLength(1);
    expect(faults.filter((f) => f.device === 'cam-up')).toEqual([]);
  });

  it('rejects bad options with every problem listed at once', async () => {
    const driver = makeDriver({
      cameras: [
        { id: 'cam-1', input: 'rtsp://10.0.0.7/ch1', fps: 0 },
        { id: 'cam-1', input: 'rtsp://10.0.0.8/ch1', thresholds: { blur: { warning: 5, critical: 50 } } },
      ],
    });
    const error = await driver.start().then(
      () => undefined,
      (err: unknown) => err,
    );
    expect(error).toMatchObject({ code: 'CS_ERR_CONFIG_INVALID', statusCode: 400 });
    const problems = (error as { details: { path: string }[] }).details.map((p) => p.path);
    expect(problems).toContain('/cameras/0/fps');
    // Cross-field checks run once the schema passes.
    const second = makeDriver({
      cameras: [
        { id: 'cam-1', input: 'rtsp://10.0.0.7/ch1' },
        { id: 'cam-1', input: 'rtsp://10.0.0.8/ch1', thresholds: { blur: { warning: 5, critical: 50 } } },
      ],
    });
    const crossError = await second.start().then(
      () => undefined,
      (err: unknown) => err,
    );
    expect((crossError as { details: { path: string }[] }).details.map((p) => p.path)).toEqual([
      '/cameras/1/id',
      '/cameras/1/thresholds',
    ]);
  });
});

describe('VideoQualityDriver contract', () => {
  let camera: MjpegCamera;
  beforeAll(async () => {
    camera = new MjpegCamera({ images: [SAMPLE], fps: 10, ...FRAME });
    await camera.start();
  });
  afterAll(async () => {
    await camera.stop();
  });

  describeDriverContract(
    'VideoQualityDriver',
    () =>
      new VideoQualityDriver({
        id: 'vq-contract',
        config: { cameras: [{ id: 'cam-1', input: camera.url, fps: 10 }] },
      }),
    { readingsTimeoutMs: 10_000 },
  );
});
