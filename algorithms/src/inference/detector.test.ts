import { readFileSync } from 'node:fs';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type ManifestSource, parseManifestSource } from '../manifest.ts';
import type { DetectedObject } from './decoders.ts';
import { type Detection, Detector } from './detector.ts';
import { checkExpectations } from './expectations.ts';
import { parseLabels } from './labels.ts';
import { iou } from './nms.ts';

const packageDir = new URL('../../packages/yolox-nano/', import.meta.url).pathname;
const manifest = parseManifestSource(JSON.parse(readFileSync(`${packageDir}manifest.json`, 'utf8')));
const labels = parseLabels(readFileSync(`${packageDir}coco_classes.txt`, 'utf8'));
const model = readFileSync(`${packageDir}yolox_nano.onnx`);
const sample = (name: string) => `${packageDir}samples/${name}`;

/** Stop sign in 000000000724.jpg (375×500) as YOLOX-nano boxes it, checked by eye: the octagon, top centre. */
const STOP_SIGN: [number, number, number, number] = [120.6, 71.2, 254.7, 228.4];

function expectInside(objects: DetectedObject[], d: Detection) {
  for (const { box } of objects) {
    if (!box) throw new Error('detection without a box');
    const [x1, y1, x2, y2] = box;
    expect(x1).toBeGreaterThanOrEqual(0);
    expect(y1).toBeGreaterThanOrEqual(0);
    expect(x2).toBeLessThanOrEqual(d.width);
    expect(y2).toBeLessThanOrEqual(d.height);
    expect(x2).toBeGreaterThan(x1);
    expect(y2).toBeGreaterThan(y1);
  }
}

describe('Detector with YOLOX-nano', () => {
  let detector: Detector;
  beforeAll(async () => {
    detector = await Detector.load(model, manifest, labels);
    await detector.warmUp();
  });
  afterAll(() => detector.release());

  it('reports the graph it loaded', () => {
    expect(detector.inputs).toEqual([
      { name: 'images', isTensor: true, type: 'float32', shape: [1, 3, 416, 416] },
    ]);
    expect(detector.outputs).toEqual([
      { name: 'output', isTensor: true, type: 'float32', shape: [1, 3549, 85] },
    ]);
  });

  it('finds the persons in 000000000139.jpg, boxes inside the image', async () => {
    const d = await detector.detect(sample('000000000139.jpg'));
    expect([d.width, d.height]).toEqual([640, 426]);
    const persons = d.objects.filter((o) => o.label === 'person' && o.score >= 0.3);
    // The model finds two at ≥ 0.3 (the woman at the counter, 0.68, and the one in the window, 0.39).
    expect(persons.length).toBeGreaterThanOrEqual(1);
    expectInside(d.objects, d);
    expect(d.objects.every((o) => o.score >= manifest.thresholds.score && o.score <= 1)).toBe(true);
    expect(d.timings.preprocessMs).toBeGreaterThan(0);
    expect(d.timings.inferMs).toBeGreaterThan(0);
    expect(d.timings.postprocessMs).toBeGreaterThanOrEqual(0);
  });

  it('finds exactly one stop sign in 000000000724.jpg, where it is', async () => {
    const d = await detector.detect(sample('000000000724.jpg'));
    expect([d.width, d.height]).toEqual([375, 500]);
    const signs = d.objects.filter((o) => o.label === 'stop sign');
    expect(signs).toHaveLength(1);
    expect(signs[0]?.score).toBeGreaterThan(0.8);
    expect(iou(signs[0]?.box ?? [0, 0, 0, 0], STOP_SIGN)).toBeGreaterThanOrEqual(0.8);
    expectInside(d.objects, d);
  });

  it('passes the adaptation tests its manifest declares', async () => {
    for (const test of manifest.tests) {
      const d = await detector.detect(sample(test.image.replace(/^samples\//, '')));
      const report = checkExpectations(d.objects, test.expect);
      expect(report.results.filter((r) => !r.passed)).toEqual([]);
    }
  });

  it('gives the same detections for a raw RGB frame as for the JPEG', async () => {
    const jpeg = readFileSync(sample('000000000139.jpg'));
    const { data, info } = await sharp(jpeg).raw().toBuffer({ resolveWithObject: true });
    const fromJpeg = await detector.detect(jpeg);
    const fromFrame = await detector.detect({ rgb: data, width: info.width, height: info.height });
    expect([fromFrame.width, fromFrame.height]).toEqual([fromJpeg.width, fromJpeg.height]);
    expect(fromFrame.objects.map((o) => o.label)).toEqual(fromJpeg.objects.map((o) => o.label));
    fromFrame.objects.forEach((o, i) => {
      const j = fromJpeg.objects[i];
      expect(o.score).toBeCloseTo(j?.score ?? -1, 4);
      expect(iou(o.box ?? [0, 0, 0, 0], j?.box ?? [0, 0, 0, 0])).toBeGreaterThan(0.99);
    });
  });

  it('takes per-call threshold overrides and refuses invalid ones', async () => {
    const d = await detector.detect(sample('000000000139.jpg'), { maxDetections: 1 });
    expect(d.objects).toHaveLength(1);
    await expect(detector.detect(sample('000000000139.jpg'), { score: 2 })).rejects.toMatchObject({
      code: 'CS_ERR_ALGO_THRESHOLDS',
    });
  });

  it('runs frames handed in together one after the other, each with its own result', async () => {
    const [a, b] = await Promise.all([
      detector.detect(sample('000000000139.jpg')),
      detector.detect(sample('000000000724.jpg')),
    ]);
    expect(a.width).toBe(640);
    expect(b.objects.map((o) => o.label)).toContain('stop sign');
  });

  it('releases only after every accepted frame is answered, including frames waiting for a buffer', async () => {
    const own = await Detector.load(model, manifest, labels);
    const frames = [1, 2, 3, 4, 5].map(() => own.detect(sample('000000000724.jpg')));
    const released = own.release();
    const results = await Promise.allSettled(frames);
    await released;
    expect(results.map((r) => r.status)).toEqual([
      'fulfilled',
      'fulfilled',
      'fulfilled',
      'fulfilled',
      'fulfilled',
    ]);
    await expect(own.detect(sample('000000000724.jpg'))).rejects.toMatchObject({
      code: 'CS_ERR_ALGO_RELEASED',
    });
  });

  it('keeps many overlapping frames in call order, with the same results as one at a time', async () => {
    const names = [
      '000000000139.jpg',
      '000000000724.jpg',
      '000000000139.jpg',
      '000000000724.jpg',
      'missing.jpg',
    ];
    const oneByOne = [];
    for (const n of names.slice(0, 4)) oneByOne.push(await detector.detect(sample(n)));
    const overlapped = await Promise.allSettled(names.map((n) => detector.detect(sample(n))));
    expect(overlapped.slice(0, 4).map((r) => (r.status === 'fulfilled' ? r.value.objects : null))).toEqual(
      oneByOne.map((d) => d.objects),
    );
    // A frame that fails (unreadable file) fails alone; the detector keeps working.
    expect(overlapped[4]).toMatchObject({ status: 'rejected', reason: { code: 'CS_ERR_ALGO_IMAGE' } });
    expect((await detector.detect(sample('000000000724.jpg'))).objects).toEqual(oneByOne[1]?.objects);
  });
});

describe('Detector.load', () => {
  const mismatch = async (m: ManifestSource, l: readonly string[] = labels) => {
    const err = await Detector.load(model, m, l).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toMatchObject({ code: 'CS_ERR_ALGO_GRAPH_MISMATCH' });
    return (err as Error).message;
  };

  it('refuses a manifest whose input shape differs from the graph', async () => {
    const m = { ...manifest, input: { ...manifest.input, shape: [1, 3, 320, 320] } };
    expect(await mismatch(m)).toContain(
      'input "images" shape is [1, 3, 416, 416] in the graph but [1, 3, 320, 320] in manifest input.shape (dim 2, 3)',
    );
  });

  it('refuses a manifest naming an output the graph lacks', async () => {
    const m = { ...manifest, output: { ...manifest.output, name: 'detections' } };
    expect(await mismatch(m)).toContain('graph has no output "detections" (its outputs: output)');
  });

  it('refuses a labels file with another class count', async () => {
    expect(await mismatch(manifest, labels.slice(0, 79))).toContain(
      'labels file coco_classes.txt lists 79 classes but output "output" [1, 3549, 85] has 80 (last dim − 5)',
    );
  });

  it('refuses bytes ONNX Runtime cannot load', async () => {
    const corrupt = Uint8Array.from(model.subarray(0, 4096), (b, i) => (i % 7 === 0 ? b ^ 0xff : b));
    await expect(Detector.load(corrupt, manifest, labels)).rejects.toMatchObject({
      code: 'CS_ERR_ALGO_MODEL_LOAD',
    });
  });

  it('releases once, however often asked, and refuses frames afterwards', async () => {
    const detector = await Detector.load(model, manifest, labels);
    await Promise.all([detector.release(), detector.release()]);
    await detector.release();
    await expect(detector.detect(sample('000000000724.jpg'))).rejects.toMatchObject({
      code: 'CS_ERR_ALGO_RELEASED',
    });
  });
});
