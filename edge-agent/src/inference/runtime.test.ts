import { execFile } from 'node:child_process';
import { cp, mkdtemp, readdir, readFile, rm, truncate, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { packAlgorithm, resolveFfmpegPath } from '@citysense/algorithms';
import type { DeviceDescriptor } from '@citysense/device-drivers';
import {
  type AlgorithmAssignment,
  type AssignmentsDocument,
  componentLogger,
  decodeEdgeAlert,
  decodeVideoAnalyticsFrame,
  EDGE_ALERT_METRIC,
  type EdgeAlert,
  generateSigningKey,
  type SigningKey,
  VIDEO_ANALYTICS_METRIC,
  type VideoAnalyticsFrame,
  type VideoSource,
} from '@citysense/protocol';
import { MjpegCamera } from '@citysense/simulators';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { decodeRecord } from '../record.ts';
import { TelemetryRecorder } from '../recorder.ts';
import { waitUntil } from '../testing/harness.ts';
import type { AnalysedFrame } from './deployment-unit.ts';
import { InferenceRuntime, type InferenceRuntimeOptions } from './runtime.ts';
import { type SeenStatus, type ServedPackage, TestAssignmentsHub } from './test-hub.ts';

const REFERENCE = fileURLToPath(new URL('../../../algorithms/packages/yolox-nano/', import.meta.url));
const SAMPLES = join(REFERENCE, 'samples');
const run = promisify(execFile);

/** Packs a copy of the reference package as `version`, after `change` edits the copy. */
async function packCopy(
  work: string,
  version: string,
  key: SigningKey,
  change?: (dir: string) => Promise<void>,
): Promise<Buffer> {
  const dir = await mkdtemp(join(work, `pkg-${version}-`));
  await cp(REFERENCE, dir, { recursive: true });
  const manifest = JSON.parse(await readFile(join(dir, 'manifest.json'), 'utf8')) as { version: string };
  manifest.version = version;
  await writeFile(join(dir, 'manifest.json'), JSON.stringify(manifest, null, 2));
  await change?.(dir);
  return (await packAlgorithm(dir, key)).file;
}

/** A clip of the two sample images, one second each, 640×480 H.264 at 10 fps (as the inference bench makes it). */
async function makeSampleClip(dir: string): Promise<string> {
  const clip = join(dir, 'samples.mp4');
  await run(await resolveFfmpegPath(), [
    ...['-loglevel', 'error', '-y'],
    ...['-loop', '1', '-t', '1', '-i', join(SAMPLES, '000000000139.jpg')],
    ...['-loop', '1', '-t', '1', '-i', join(SAMPLES, '000000000724.jpg')],
    ...[
      '-filter_complex',
      '[0]scale=640:480,setsar=1[a];[1]scale=640:480,setsar=1[b];[a][b]concat=n=2:v=1[v]',
    ],
    ...['-map', '[v]', '-r', '10', '-pix_fmt', 'yuv420p', '-c:v', 'libx264', '-preset', 'ultrafast', clip],
  ]);
  return clip;
}

async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

/** States in report order with repeats (progress, stats) folded. */
function stateSequence(statuses: SeenStatus[]): string[] {
  return statuses.map((s) => s.status.state).filter((s, i, all) => i === 0 || all[i - 1] !== s);
}

describe('inference runtime against a hub stand-in', () => {
  const hub = new TestAssignmentsHub();
  const key = generateSigningKey('ed25519');
  const cleanups: Array<() => Promise<void>> = [];
  let work: string;
  let clip: string;
  /** The signed 1.0.1 package file, as a field engineer would copy it onto a gateway. */
  let v101File: Buffer;
  const pkg: Record<string, ServedPackage> = {};

  beforeAll(async () => {
    await hub.start();
    work = await mkdtemp(join(tmpdir(), 'cs-inference-'));
    const stranger = generateSigningKey('ed25519');
    const v101 = await packCopy(work, '1.0.1', key);
    const model = await readFile(join(REFERENCE, 'yolox_nano.onnx'));
    const tampered = Buffer.from(v101);
    const at = tampered.indexOf(model.subarray(0, 256)) + 100_000;
    tampered[at] = (tampered[at] ?? 0) ^ 0xff;
    const [v100, v103, untrusted, broken] = await Promise.all([
      packCopy(work, '1.0.0', key),
      packCopy(work, '1.0.3', key),
      packCopy(work, '1.0.1', stranger),
      // Signed and intact, but the model is cut short: ONNX Runtime cannot load it.
      packCopy(work, '1.0.2', key, (dir) => truncate(join(dir, 'yolox_nano.onnx'), 4096)),
    ]);
    pkg.v100 = hub.serve('yolox-nano', '1.0.0', v100);
    pkg.v101 = hub.serve('yolox-nano', '1.0.1', v101);
    v101File = v101;
    pkg.v103 = hub.serve('yolox-nano', '1.0.3', v103);
    pkg.tampered = hub.serve('yolox-nano', '1.0.1-tampered', tampered);
    pkg.untrusted = hub.serve('yolox-nano', '1.0.1-untrusted', untrusted);
    pkg.broken = hub.serve('yolox-nano', '1.0.2', broken);
    clip = await makeSampleClip(work);
  });
  afterEach(async () => {
    for (const c of cleanups.splice(0).reverse()) await c();
    hub.reset();
  });
  afterAll(async () => {
    await hub.close();
    await rm(work, { recursive: true, force: true });
  });

  function assignment(
    deploymentId: string,
    version: string,
    served: ServedPackage,
    sources: VideoSource[],
  ): AlgorithmAssignment {
    return {
      deploymentId,
      algorithmId: 'yolox-nano',
      version,
      sha256: served.sha256,
      bytes: served.bytes,
      packagePath: served.path,
      sources,
    };
  }

  function doc(revision: number, assignments: AlgorithmAssignment[]): AssignmentsDocument {
    return { nodeId: hub.nodeId, revision, assignments, trustedKeys: [key.publicKey] };
  }

  const folder = (id = 'cam-1', fps = 10): VideoSource => ({ id, url: SAMPLES, fps });

  interface Started {
    rt: InferenceRuntime;
    dir: string;
    records: Uint8Array[];
    recorder: TelemetryRecorder;
    frames: AnalysedFrame[];
    devices: DeviceDescriptor[][];
  }

  async function start(pollIntervalMs = 100, extra: Partial<InferenceRuntimeOptions> = {}): Promise<Started> {
    const dir = await mkdtemp(join(tmpdir(), 'cs-inference-node-'));
    const records: Uint8Array[] = [];
    const recorder = new TelemetryRecorder({
      sink: {
        appendMany: async (payloads) => {
          records.push(...payloads);
          return payloads.map((_, i) => records.length - payloads.length + i + 1);
        },
      },
      metricType: (device, metric) => rt.metricType(device, metric),
      logger: componentLogger('recorder'),
    });
    const rt: InferenceRuntime = new InferenceRuntime({
      hub: { hubUrl: hub.url, nodeId: hub.nodeId, password: hub.password },
      stateDir: dir,
      pollIntervalMs,
      statsIntervalMs: 200,
      maxParallelDownloads: 1,
      intraOpNumThreads: 1,
      record: (readings) => recorder.recordReadings(readings),
      backoff: { initialMs: 20, maxMs: 200 },
      ...extra,
    });
    const frames: AnalysedFrame[] = [];
    const devices: DeviceDescriptor[][] = [];
    rt.on('frame', (f) => frames.push(f));
    rt.on('devices', (d) => devices.push(d));
    cleanups.push(async () => {
      await rt.stop();
      await rm(dir, { recursive: true, force: true });
    });
    await rt.start();
    return { rt, dir, records, recorder, frames, devices };
  }

  /** Reports of one revision. */
  const ofRevision = (revision: number) => hub.statuses.filter((s) => s.status.revision === revision);
  const activeAt = (version: string, revision: number) => (s: SeenStatus) =>
    s.status.state === 'active' && s.status.activeVersion === version && s.status.revision === revision;
  const framesOf = (frames: AnalysedFrame[], version: string) =>
    frames.filter((f) => f.frame.algorithmVersion === version);

  it('syncs when nudged, downloads, verifies and runs YOLOX-nano on a folder and a clip, recording analytics frames', async () => {
    // An older hub first: 404 on the assignments route is not an error.
    const { rt, dir, records, recorder, frames, devices } = await start(60_000);
    await waitUntil(() => rt.status().sync.hubSupportsAssignments === false, 'the 404 answer');
    expect(rt.status().sync.lastError).toBeNull();

    hub.document = doc(1, [
      assignment('d1', '1.0.0', pkg.v100 as ServedPackage, [
        folder('cam-folder'),
        { id: 'cam-clip', url: clip, fps: 5 },
      ]),
    ]);
    rt.syncNow('test: NCMD ASSIGNMENTS_REVISION');
    const active = await hub.waitForStatus(activeAt('1.0.0', 1), 'd1 active');
    expect(active.deploymentId).toBe('d1');
    expect(stateSequence(hub.statuses)).toEqual(['queued', 'downloading', 'verifying', 'loading', 'active']);
    const progress = hub.statuses.flatMap((s) =>
      s.status.progress === undefined ? [] : [s.status.progress],
    );
    expect(progress.at(-1)).toBe(1);
    expect(progress.every((p, i) => p >= 0 && p <= 1 && (i === 0 || p >= (progress[i - 1] ?? 0)))).toBe(true);

    // Source devices are declared for births, and announced when they appear.
    const expected = (id: string) => ({
      id,
      kind: 'video-analytics',
      metrics: [
        { name: VIDEO_ANALYTICS_METRIC, type: 'bytes' },
        { name: EDGE_ALERT_METRIC, type: 'bytes' },
      ],
    });
    expect(rt.devices()).toEqual([expected('cam-folder'), expected('cam-clip')]);
    expect(devices.at(-1)).toEqual(rt.devices());
    expect(rt.metricType('cam-clip', VIDEO_ANALYTICS_METRIC)).toBe('bytes');

    await waitUntil(
      () => ['cam-folder', 'cam-clip'].every((s) => frames.filter((f) => f.frame.source === s).length >= 4),
      'four frames from each source',
    );
    await recorder.flush();
    const recorded: VideoAnalyticsFrame[] = records.map((bytes) => {
      const record = decodeRecord(bytes);
      const metric = record.metrics[0];
      expect(record.device).toBe(metric && decodeVideoAnalyticsFrame(metric.value as Uint8Array).source);
      expect(metric?.name).toBe(VIDEO_ANALYTICS_METRIC);
      return decodeVideoAnalyticsFrame(metric?.value as Uint8Array);
    });
    expect(recorded.every((f) => f.algorithmId === 'yolox-nano' && f.algorithmVersion === '1.0.0')).toBe(
      true,
    );
    expect(recorded.every((f) => f.inferMs > 0 && f.utcTimeMs > Date.now() - 60_000)).toBe(true);

    // The folder alternates the two COCO samples: the stop sign where it is, and the persons.
    const stopSign = recorded
      .filter((f) => f.source === 'cam-folder' && f.frameWidth === 375)
      .flatMap((f) => f.objects.filter((o) => o.label === 'stop sign'));
    expect(stopSign.length).toBeGreaterThan(0);
    const box = stopSign[0]?.box;
    expect(box?.left).toBeCloseTo(121 / 375, 1);
    expect(box?.top).toBeCloseTo(71 / 500, 1);
    expect(box?.right).toBeCloseTo(255 / 375, 1);
    expect(box?.bottom).toBeCloseTo(228 / 500, 1);
    const persons = recorded.filter(
      (f) => f.source === 'cam-folder' && f.frameWidth === 640 && f.objects.some((o) => o.label === 'person'),
    );
    expect(persons.length).toBeGreaterThan(0);
    // The clip is decoded by ffmpeg to raw RGB at 640×480; it shows the same two scenes.
    const fromClip = recorded.filter((f) => f.source === 'cam-clip');
    expect(fromClip.every((f) => f.frameWidth === 640 && f.frameHeight === 480)).toBe(true);
    expect(fromClip.some((f) => f.objects.some((o) => o.label === 'person' || o.label === 'stop sign'))).toBe(
      true,
    );

    // Periodic reports carry the inference figures.
    const withStats = await hub.waitForStatus(
      (s) =>
        s.status.state === 'active' && (s.status.stats?.frames ?? 0) > 0 && (s.status.stats?.fps ?? 0) > 0,
      'a stats report',
    );
    expect(withStats.status.stats?.inferP95Ms).toBeGreaterThanOrEqual(
      withStats.status.stats?.inferP50Ms ?? 0,
    );
    expect(withStats.status.stats?.inferP50Ms).toBeGreaterThan(0);

    // The package is cached under its SHA-256; nothing half-downloaded is left.
    const files = await readdir(join(dir, 'models'));
    expect(files.sort()).toEqual([`${pkg.v100?.sha256}.csalgo`, 'index.json']);
    expect(rt.status().deployments[0]).toMatchObject({ state: 'active', activeVersion: '1.0.0' });
  });

  it('resumes a download cut off mid-way with a Range request', async () => {
    hub.cutNextDownloadAfter = 1_500_000;
    hub.document = doc(1, [assignment('d1', '1.0.0', pkg.v100 as ServedPackage, [folder()])]);
    const { frames } = await start();
    await hub.waitForStatus(activeAt('1.0.0', 1), 'd1 active');
    expect(hub.downloads.map((d) => d.status)).toEqual([200, 206]);
    const resumedAt = Number(/^bytes=(\d+)-$/.exec(hub.downloads[1]?.range ?? '')?.[1]);
    expect(resumedAt).toBeGreaterThan(0);
    expect(resumedAt).toBeLessThanOrEqual(1_500_000);
    expect(hub.downloads[1]?.sent).toBe((pkg.v100?.bytes ?? 0) - resumedAt);
    // The interruption is not a failure the hub hears about; progress goes on from where it was.
    expect(stateSequence(hub.statuses)).toEqual(['queued', 'downloading', 'verifying', 'loading', 'active']);
    await waitUntil(() => frames.length >= 2, 'frames');
  });

  it('refuses a tampered package and an untrusted signer; the running version carries on', async () => {
    hub.document = doc(1, [assignment('d1', '1.0.0', pkg.v100 as ServedPackage, [folder()])]);
    const { rt, dir, frames } = await start();
    await hub.waitForStatus(activeAt('1.0.0', 1), 'd1 active');

    hub.document = doc(2, [assignment('d1', '1.0.1', pkg.tampered as ServedPackage, [folder()])]);
    const tampered = await hub.waitForStatus(
      (s) => s.status.revision === 2 && s.status.state === 'failed',
      'tampered refused',
    );
    expect(tampered.status).toMatchObject({ code: 'CS_ERR_ALGO_PART_DIGEST', activeVersion: '1.0.0' });
    expect(tampered.status.reason).toMatch(/does not match its SHA-256/);
    expect(stateSequence(ofRevision(2))).toEqual(['queued', 'downloading', 'verifying', 'failed']);
    expect(await readdir(join(dir, 'models'))).not.toContain(`${pkg.tampered?.sha256}.csalgo`);
    const before = frames.length;
    await waitUntil(() => frames.length >= before + 3, 'frames after the refusal');
    expect(frames.slice(before).every((f) => f.frame.algorithmVersion === '1.0.0')).toBe(true);
    // Another revision with the same package and keys: the same bytes would fail the same way.
    const downloads = hub.downloads.length;
    hub.document = { ...hub.document, revision: 20 };
    await hub.waitForStatus(
      (s) => s.status.revision === 20 && s.status.state === 'failed',
      'verdict for rev 20',
    );
    expect(hub.downloads).toHaveLength(downloads);

    hub.document = doc(3, [assignment('d1', '1.0.1', pkg.untrusted as ServedPackage, [folder()])]);
    const untrusted = await hub.waitForStatus(
      (s) => s.status.revision === 3 && s.status.state === 'failed',
      'untrusted refused',
    );
    expect(untrusted.status).toMatchObject({ code: 'CS_ERR_ALGO_UNTRUSTED_KEY', activeVersion: '1.0.0' });
    expect(await readdir(join(dir, 'models'))).not.toContain(`${pkg.untrusted?.sha256}.csalgo`);
    expect(rt.status().deployments[0]).toMatchObject({
      activeVersion: '1.0.0',
      state: 'failed',
      failure: { code: 'CS_ERR_ALGO_UNTRUSTED_KEY', version: '1.0.1' },
    });
    const after = frames.length;
    await waitUntil(() => frames.length >= after + 3, 'frames after the second refusal');
    expect(frames.slice(after).every((f) => f.frame.algorithmVersion === '1.0.0')).toBe(true);
  });

  it('hot-swaps to a new version under a running source without losing a frame, rolls back from cache, keeps two versions', async () => {
    hub.document = doc(1, [assignment('d1', '1.0.0', pkg.v100 as ServedPackage, [folder('cam-1', 20)])]);
    const { rt, dir, frames, devices } = await start();
    await hub.waitForStatus(activeAt('1.0.0', 1), 'd1 active');
    await waitUntil(() => frames.length >= 5, 'frames on 1.0.0');

    hub.document = doc(2, [assignment('d1', '1.0.1', pkg.v101 as ServedPackage, [folder('cam-1', 20)])]);
    await hub.waitForStatus(activeAt('1.0.1', 2), '1.0.1 active');
    await waitUntil(() => framesOf(frames, '1.0.1').length >= 5, 'frames on 1.0.1');
    // While 1.0.1 was prepared, every report said 1.0.0 was still running.
    const preparing = ofRevision(2).filter((s) => s.status.state !== 'active');
    expect(preparing.map((s) => s.status.activeVersion)).toEqual(preparing.map(() => '1.0.0'));
    expect(stateSequence(ofRevision(2))).toEqual(['queued', 'downloading', 'verifying', 'loading', 'active']);
    // One unbroken sequence of frames: the old model until the switch, the new one after.
    expect(frames.map((f) => f.index)).toEqual(frames.map((_, i) => i));
    const versions = frames.map((f) => f.frame.algorithmVersion);
    const switchAt = versions.indexOf('1.0.1');
    expect(versions.slice(0, switchAt).every((v) => v === '1.0.0')).toBe(true);
    expect(versions.slice(switchAt).every((v) => v === '1.0.1')).toBe(true);
    expect(framesOf(frames, '1.0.0').length).toBeGreaterThan(5);
    expect(rt.status().deployments[0]?.sources[0]).toMatchObject({
      id: 'cam-1',
      state: 'running',
      restarts: 0,
    });
    expect(devices).toHaveLength(1); // the source device never went away

    // Rollback: the hub assigns 1.0.0 again; it is cached, so nothing is downloaded.
    const downloads = hub.downloads.length;
    hub.document = doc(3, [assignment('d1', '1.0.0', pkg.v100 as ServedPackage, [folder('cam-1', 20)])]);
    await hub.waitForStatus(activeAt('1.0.0', 3), 'rolled back to 1.0.0');
    expect(hub.downloads).toHaveLength(downloads);
    expect(stateSequence(ofRevision(3))).toEqual(['queued', 'verifying', 'loading', 'active']);

    // A third version: 1.0.3 current, 1.0.0 previous, 1.0.1 deleted.
    hub.document = doc(4, [assignment('d1', '1.0.3', pkg.v103 as ServedPackage, [folder('cam-1', 20)])]);
    await hub.waitForStatus(activeAt('1.0.3', 4), '1.0.3 active');
    const files = await readdir(join(dir, 'models'));
    expect(files.sort()).toEqual(
      [`${pkg.v103?.sha256}.csalgo`, `${pkg.v100?.sha256}.csalgo`, 'index.json'].sort(),
    );
    expect(rt.status().cache['yolox-nano']?.map((v) => v.version)).toEqual(['1.0.3', '1.0.0']);
    await waitUntil(() => framesOf(frames, '1.0.3').length >= 2, 'frames on 1.0.3');
    expect(frames.map((f) => f.index)).toEqual(frames.map((_, i) => i));
  });

  it('keeps the running version when the new one fails to load', async () => {
    hub.document = doc(1, [assignment('d1', '1.0.0', pkg.v100 as ServedPackage, [folder()])]);
    const { rt, dir, frames } = await start();
    await hub.waitForStatus(activeAt('1.0.0', 1), 'd1 active');

    hub.document = doc(2, [assignment('d1', '1.0.2', pkg.broken as ServedPackage, [folder()])]);
    const failed = await hub.waitForStatus(
      (s) => s.status.revision === 2 && s.status.state === 'failed',
      'load failure',
    );
    expect(failed.status).toMatchObject({ code: 'CS_ERR_ALGO_MODEL_LOAD', activeVersion: '1.0.0' });
    expect(failed.status.reason).toMatch(/cannot load model/);
    expect(stateSequence(ofRevision(2))).toEqual(['queued', 'downloading', 'verifying', 'loading', 'failed']);
    expect(await readdir(join(dir, 'models'))).not.toContain(`${pkg.broken?.sha256}.csalgo`);
    const before = frames.length;
    await waitUntil(() => frames.length >= before + 3, 'frames after the failed load');
    expect(frames.slice(before).every((f) => f.frame.algorithmVersion === '1.0.0')).toBe(true);
    expect(rt.status().deployments[0]).toMatchObject({ activeVersion: '1.0.0', version: '1.0.2' });

    // The failure is not retried until the hub sends a new revision; polls go on meanwhile.
    const downloads = hub.downloads.length;
    await hub.nextPolls(3);
    expect(hub.downloads).toHaveLength(downloads);
  });

  it('hands the running model over to a deployment that replaces a withdrawn one of the same algorithm', async () => {
    hub.document = doc(1, [assignment('d1', '1.0.0', pkg.v100 as ServedPackage, [folder()])]);
    const { frames, devices } = await start();
    await hub.waitForStatus(activeAt('1.0.0', 1), 'd1 active');
    await waitUntil(() => frames.length >= 3, 'frames on d1');

    hub.document = doc(2, [assignment('d2', '1.0.1', pkg.v101 as ServedPackage, [folder()])]);
    const active = await hub.waitForStatus(activeAt('1.0.1', 2), 'd2 active');
    expect(active.deploymentId).toBe('d2');
    expect(ofRevision(2).every((s) => s.deploymentId === 'd2')).toBe(true);
    await waitUntil(() => framesOf(frames, '1.0.1').length >= 3, 'frames on d2');
    expect(frames.map((f) => f.index)).toEqual(frames.map((_, i) => i));
    expect(frames.at(-1)?.deploymentId).toBe('d2');
    expect(devices).toHaveLength(1);
  });

  it('raises local alerts from the assignment rules and records them for the hub', async () => {
    hub.document = doc(1, [
      {
        ...assignment('d1', '1.0.0', pkg.v100 as ServedPackage, [folder('cam-1')]),
        rules: [
          { id: 'stop-sign', kind: 'presence', labels: ['stop sign'], cooldownSeconds: 3600 },
          { id: 'bogus-label', kind: 'presence', labels: ['giraffe'] },
        ] as never,
      },
    ]);
    const { rt, records } = await start();
    const alerts: EdgeAlert[] = [];
    rt.on('alert', (a) => alerts.push(a));
    await waitUntil(() => alerts.length >= 1, 'an edge alert');
    expect(alerts[0]).toMatchObject({ ruleId: 'stop-sign', kind: 'presence', source: 'cam-1', count: 1 });
    const spooledAlerts = () =>
      records
        .map(decodeRecord)
        .flatMap((r) => r.metrics)
        .filter((m) => m.name === EDGE_ALERT_METRIC)
        .map((m) => decodeEdgeAlert(m.value as Uint8Array));
    await waitUntil(() => spooledAlerts().length >= 1, 'the alert spooled');
    expect(spooledAlerts().map((a) => a.ruleId)).toEqual(['stop-sign']);
    // The cooldown keeps one alert per hour for the looping folder.
    await waitUntil(() => (rt.status().deployments[0]?.stats.frames ?? 0) >= 6, 'more frames');
    expect(alerts).toHaveLength(1);
  });

  it('runs a package imported on the gateway only once the centre has filed it', async () => {
    const file = join(work, 'usb-stick-yolox-1.0.1.csalgo');
    await writeFile(file, v101File);
    hub.document = doc(1, []);
    const { rt, frames } = await start(100, { localPackages: [{ file, sources: [folder('cam-usb')] }] });
    await waitUntil(() => rt.status().localPackages[0]?.state === 'not-filed', 'the refusal');
    expect(rt.status().localPackages[0]?.reason).toContain('CS_ERR_INFERENCE_LOCAL_NOT_FILED');
    await hub.nextPolls(2);
    expect(frames).toHaveLength(0);

    hub.filed.add(pkg.v101?.sha256 ?? '');
    rt.syncNow('test');
    await waitUntil(
      () => frames.some((f) => f.frame.algorithmVersion === '1.0.1'),
      'frames from the filed local package',
    );
    expect(rt.status().localPackages[0]).toMatchObject({
      state: 'filed',
      algorithmId: 'yolox-nano',
      version: '1.0.1',
    });
    expect(frames[0]?.frame.source).toBe('cam-usb');
  });

  it('stops the sources of a withdrawn assignment', async () => {
    hub.document = doc(1, [
      assignment('d1', '1.0.0', pkg.v100 as ServedPackage, [folder('cam-1'), folder('cam-2')]),
    ]);
    const { rt, frames, devices } = await start();
    await hub.waitForStatus(activeAt('1.0.0', 1), 'd1 active');
    await waitUntil(() => frames.length >= 4, 'frames');

    hub.document = doc(2, []);
    await waitUntil(() => devices.at(-1)?.length === 0, 'the source devices to go');
    expect(rt.devices()).toEqual([]);
    expect(rt.status().deployments).toEqual([]);
    const count = frames.length;
    await hub.nextPolls(3);
    expect(frames).toHaveLength(count);
  });

  it('analyses a live HTTP camera and picks it up again after the camera drops out', async () => {
    const images = [join(SAMPLES, '000000000139.jpg'), join(SAMPLES, '000000000724.jpg')];
    let camera = new MjpegCamera({ images, fps: 10 });
    await camera.start();
    cleanups.push(() => camera.stop());
    const url = camera.url;
    const port = Number(new URL(url).port);
    hub.document = doc(1, [
      assignment('d1', '1.0.0', pkg.v100 as ServedPackage, [{ id: 'cam-live', url, fps: 5 }]),
    ]);
    const { rt, frames } = await start();
    await waitUntil(() => frames.length >= 3, 'frames from the live camera', 30_000);
    expect(frames.every((f) => f.frame.frameWidth === 640 && f.frame.frameHeight === 480)).toBe(true);
    expect(
      frames.some((f) => f.frame.objects.some((o) => o.label === 'person' || o.label === 'stop sign')),
    ).toBe(true);

    await camera.stop();
    const source = () => rt.status().deployments[0]?.sources[0];
    await waitUntil(() => (source()?.errors ?? 0) >= 1, 'the outage to be noticed', 30_000);
    expect(source()?.state).toBe('retrying');
    const before = frames.length;
    camera = new MjpegCamera({ images, fps: 10, port });
    await camera.start();
    await waitUntil(() => frames.length >= before + 3, 'frames after the camera is back', 30_000);
    expect(source()).toMatchObject({ state: 'running' });
    expect(source()?.restarts).toBeGreaterThanOrEqual(1);
  });

  it('retries an unreachable stream with backoff while the other sources of the assignment run', async () => {
    const port = await closedPort();
    const camera = { id: 'cam-down', url: `rtsp://127.0.0.1:${port}/stream`, fps: 5 };
    hub.document = doc(1, [assignment('d1', '1.0.0', pkg.v100 as ServedPackage, [folder('cam-up'), camera])]);
    const { rt, frames } = await start();
    await hub.waitForStatus(activeAt('1.0.0', 1), 'd1 active');
    const down = await waitUntil(() => {
      const s = rt.status().deployments[0]?.sources.find((x) => x.id === 'cam-down');
      return s && s.errors >= 3 ? s : null;
    }, 'three failed attempts');
    expect(down.lastError?.code).toBe('CS_ERR_SOURCE_UNREACHABLE');
    expect(down.frames).toBe(0);
    await waitUntil(() => frames.length >= 4, 'frames from the working source');
    expect(frames.every((f) => f.frame.source === 'cam-up')).toBe(true);
    // Both are devices: the camera is declared even while it is down.
    expect(rt.devices().map((d) => d.id)).toEqual(['cam-up', 'cam-down']);
    const report = await hub.waitForStatus((s) => (s.status.stats?.errors ?? 0) >= 3, 'errors in stats');
    expect(report.status.state).toBe('active');
  });
});
