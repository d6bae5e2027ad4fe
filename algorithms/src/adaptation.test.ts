import { cp, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { generateSigningKey } from '@citysense/protocol';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runAdaptationTest } from './adaptation.ts';
import { openAlgorithmPackage, packAlgorithm } from './package/algorithm-package.ts';

const REFERENCE = fileURLToPath(new URL('../packages/yolox-nano', import.meta.url));
const key = generateSigningKey('ed25519');

describe('the adaptation test (适配纳管)', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'citysense-adapt-'));
  });
  afterAll(() => rm(dir, { recursive: true, force: true }));

  /** Packs a copy of the reference package after `edit` changes its manifest (and files). */
  async function variant(
    name: string,
    edit: (manifest: Record<string, unknown>, folder: string) => Promise<void>,
  ) {
    const folder = join(dir, name);
    await cp(REFERENCE, folder, { recursive: true });
    const manifest = JSON.parse(await readFile(join(folder, 'manifest.json'), 'utf8')) as Record<
      string,
      unknown
    >;
    await edit(manifest, folder);
    await writeFile(join(folder, 'manifest.json'), JSON.stringify(manifest));
    return openAlgorithmPackage((await packAlgorithm(folder, key)).file);
  }

  it('passes the reference YOLOX-nano package on its own sample images', async () => {
    const report = await runAdaptationTest(openAlgorithmPackage((await packAlgorithm(REFERENCE, key)).file));
    expect(report.error).toBeUndefined();
    expect(report.passed).toBe(true);
    expect(report.runtime).toMatch(/^onnxruntime-node \d/);
    expect(report.graph?.inputs).toEqual([{ name: 'images', type: 'float32', shape: [1, 3, 416, 416] }]);
    expect(report.tests.map((t) => t.image)).toEqual([
      'samples/000000000139.jpg',
      'samples/000000000724.jpg',
    ]);
    const stop = report.tests[1];
    expect(stop?.objects.filter((o) => o.label === 'stop sign')).toHaveLength(1);
    expect(stop?.expectations[0]).toMatchObject({ label: 'stop sign', found: 1, passed: true });
  });

  it('fails, with the reason, when the images do not give what the manifest expects', async () => {
    const pkg = await variant('expects-giraffe', async (m) => {
      m.tests = [{ image: 'samples/000000000724.jpg', expect: [{ label: 'giraffe', minCount: 1 }] }];
    });
    const report = await runAdaptationTest(pkg);
    expect(report.passed).toBe(false);
    expect(report.error).toBeUndefined();
    expect(report.tests[0]?.expectations[0]).toMatchObject({ label: 'giraffe', found: 0, passed: false });
    expect(report.tests[0]?.expectations[0]?.reason).toBeTruthy();
  });

  it('reports a manifest that contradicts the graph, and a model that does not load', async () => {
    const wrongShape = await variant('wrong-shape', async (m) => {
      (m.input as { shape: number[] }).shape = [1, 3, 320, 320];
    });
    const mismatch = await runAdaptationTest(wrongShape);
    expect(mismatch.passed).toBe(false);
    expect(mismatch.error?.code).toBe('CS_ERR_ALGO_GRAPH_MISMATCH');
    expect(mismatch.error?.message).toContain('320');

    const broken = await variant('broken-model', async (_m, folder) => {
      await writeFile(join(folder, 'yolox_nano.onnx'), Buffer.from('definitely not an onnx graph'));
    });
    const load = await runAdaptationTest(broken);
    expect(load).toMatchObject({ passed: false, graph: null, error: { code: 'CS_ERR_ALGO_MODEL_LOAD' } });
  });
});
