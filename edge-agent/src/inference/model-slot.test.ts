import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Detector, parseLabels, parseManifestSource } from '@citysense/algorithms';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type LoadedModel, ModelSlot } from './model-slot.ts';

const REFERENCE = fileURLToPath(new URL('../../../algorithms/packages/yolox-nano/', import.meta.url));

async function load(version: string): Promise<LoadedModel> {
  const manifest = parseManifestSource(JSON.parse(await readFile(join(REFERENCE, 'manifest.json'), 'utf8')));
  const labels = parseLabels(await readFile(join(REFERENCE, manifest.labels), 'utf8'));
  const detector = await Detector.load(await readFile(join(REFERENCE, manifest.model)), manifest, labels);
  await detector.warmUp();
  return { algorithmId: 'yolox-nano', version, sha256: version.padEnd(64, '0'), detector };
}

describe('model slot', () => {
  let image: Buffer;
  beforeAll(async () => {
    image = await readFile(join(REFERENCE, 'samples/000000000724.jpg'));
  });
  const slot = new ModelSlot();
  afterAll(() => slot.release());

  it('finishes frames given to the old model on it, sends later ones to the new one, then releases the old', async () => {
    const [v1, v2] = await Promise.all([load('1.0.0'), load('1.0.1')]);
    if (!v1 || !v2) throw new Error('models not loaded');
    await slot.swap(v1);
    const frame = { kind: 'encoded' as const, data: image };
    // More frames than the detector has input buffers, so some wait inside detect() when the swap comes.
    const early = Array.from({ length: 5 }, () => slot.detect(frame));
    const swapped = slot.swap(v2);
    const late = Array.from({ length: 3 }, () => slot.detect(frame));
    const results = await Promise.all([...early, ...late]);
    expect(await swapped).toBe(v1);
    expect(results.map((r) => r.model.version)).toEqual([
      ...early.map(() => '1.0.0'),
      ...late.map(() => '1.0.1'),
    ]);
    for (const r of results) expect(r.detection.objects.some((o) => o.label === 'stop sign')).toBe(true);
    await expect(v1.detector.detect(image)).rejects.toMatchObject({ code: 'CS_ERR_ALGO_RELEASED' });
  });
});
