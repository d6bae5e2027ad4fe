/**
 * Edge inference benchmark (`npm run bench:inference`): the whole edge pipeline —
 * ffmpeg decode → letterbox preprocessing → YOLOX-nano → decode + NMS → video
 * analytics frame → disk spool — against bare `session.run` on the same frames,
 * same model and same ONNX Runtime options, measured in the same run.
 *
 *   BENCH_FRAMES=200 npm run bench:inference
 */
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import {
  Detector,
  FfmpegStreamSource,
  type Frame,
  inputSize,
  parseManifestSource,
  preprocess,
  resolveFfmpegPath,
} from '@citysense/algorithms';
import { encodeVideoAnalyticsFrame } from '@citysense/protocol';
import ort from 'onnxruntime-node';
import { toAnalyticsFrame } from '../src/inference/analytics-frame.ts';
import { Spool } from '../src/spool/spool.ts';

const FRAMES = Number(process.env.BENCH_FRAMES ?? 200);
const REFERENCE = fileURLToPath(new URL('../../algorithms/packages/yolox-nano/', import.meta.url));
const run = promisify(execFile);

const dir = await mkdtemp(join(tmpdir(), 'citysense-bench-inference-'));
try {
  const manifest = parseManifestSource(JSON.parse(await readFile(join(REFERENCE, 'manifest.json'), 'utf8')));
  const model = await readFile(join(REFERENCE, manifest.model));
  const labels = (await readFile(join(REFERENCE, manifest.labels), 'utf8')).split('\n').filter(Boolean);

  // A real street-like scene as H.264: the two COCO samples alternating, 640 px wide.
  const clip = join(dir, 'clip.mp4');
  const ffmpeg = await resolveFfmpegPath();
  const seconds = FRAMES / 10;
  await run(ffmpeg, [
    ...['-loglevel', 'error', '-y'],
    ...['-loop', '1', '-t', String(seconds / 2), '-i', join(REFERENCE, 'samples/000000000139.jpg')],
    ...['-loop', '1', '-t', String(seconds / 2), '-i', join(REFERENCE, 'samples/000000000724.jpg')],
    ...[
      '-filter_complex',
      '[0]scale=640:480,setsar=1[a];[1]scale=640:480,setsar=1[b];[a][b]concat=n=2:v=1[v]',
    ],
    ...['-map', '[v]', '-r', '10', '-pix_fmt', 'yuv420p', '-c:v', 'libx264', clip],
  ]);
  // The agent decodes at the model's input width (ffmpeg scales on decode): BENCH_DECODE_WIDTH=0 keeps 640 px.
  const decodeWidth = Number(process.env.BENCH_DECODE_WIDTH ?? inputSize(manifest.input).width);
  const source = () =>
    new FfmpegStreamSource({
      input: clip,
      fps: 10,
      live: false,
      backpressure: 'pause',
      ...(decodeWidth > 0 ? { maxWidth: decodeWidth } : {}),
    });

  // Baseline: the same frames, preprocessed before the clock starts, through a bare session.
  const frames: Frame[] = [];
  for await (const f of source().frames()) frames.push(f);
  const tensors = await Promise.all(
    frames.map(async (f) =>
      f.image.kind === 'raw' ? (await preprocess(f.image, manifest.input)).data : null,
    ),
  );
  const session = await ort.InferenceSession.create(model, {
    executionProviders: ['cpu'],
    intraOpNumThreads: 1,
    interOpNumThreads: 1,
    graphOptimizationLevel: 'all',
    executionMode: 'sequential',
  });
  const feed = (data: Float32Array) => ({
    [manifest.input.name]: new ort.Tensor('float32', data, manifest.input.shape),
  });
  for (const t of tensors.slice(0, 5)) if (t) await session.run(feed(t)); // warm-up
  let started = performance.now();
  for (const t of tensors) if (t) await session.run(feed(t));
  const bareFps = tensors.length / ((performance.now() - started) / 1000);
  await session.release();

  // The edge pipeline: decode, preprocess, infer, postprocess, encode, spool — two frames in flight.
  const detector = await Detector.load(model, manifest, labels);
  await detector.warmUp();
  const spool = new Spool({ dir: join(dir, 'spool') });
  await spool.open();
  let published = 0;
  let objects = 0;
  // Steady state: the clock starts at the first decoded frame (ffmpeg's start-up is not per-frame cost).
  let first = true;
  const inflight: Promise<void>[] = [];
  for await (const frame of source().frames()) {
    if (frame.image.kind !== 'raw') continue;
    if (first) {
      started = performance.now();
      first = false;
    }
    const time = frame.time;
    inflight.push(
      detector.detect(frame.image).then(async (d) => {
        objects += d.objects.length;
        // The agent's own conversion: normalised boxes, clamped likelihoods.
        const frame = toAnalyticsFrame(d, {
          source: 'bench-cam',
          time,
          algorithmId: manifest.id,
          algorithmVersion: manifest.version,
        });
        const bytes = encodeVideoAnalyticsFrame(frame);
        await spool.append(bytes);
        published++;
      }),
    );
    // Two frames in flight: the detector preprocesses one while the other is in inference.
    if (inflight.length >= 2) await inflight.shift();
  }
  await Promise.all(inflight);
  const pipelineFps = published / ((performance.now() - started) / 1000);
  await detector.release();
  await spool.close();

  const ratio = pipelineFps / bareFps;
  console.log(
    JSON.stringify(
      {
        bench: 'inference',
        model: `${manifest.id} ${manifest.version}`,
        frames: published,
        objectsPerFrame: +(objects / Math.max(1, published)).toFixed(2),
        bareSessionRunFps: +bareFps.toFixed(1),
        edgePipelineFps: +pipelineFps.toFixed(1),
        ratio: +ratio.toFixed(2),
      },
      null,
      2,
    ),
  );
  console.log(
    `edge pipeline ${pipelineFps.toFixed(1)} frames/s vs bare session.run ${bareFps.toFixed(1)} frames/s: ratio ${ratio.toFixed(2)} (target ≥ 0.9)`,
  );
} finally {
  await rm(dir, { recursive: true, force: true });
}
