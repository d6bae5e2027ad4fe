/**
 * The adaptation test (适配纳管) the centre runs before a version can be filed:
 * the graph loads in ONNX Runtime, its inputs and outputs match the manifest,
 * and the package's own test images produce what the manifest expects.
 */
import { errorMessage } from '@citysense/protocol';
import { Detector, type DetectorOptions } from './inference/detector.ts';
import { checkExpectations } from './inference/expectations.ts';
import { ONNX_RUNTIME_VERSION } from './inference/session-worker.ts';
import { type AlgorithmPackage, packageLabels } from './package/algorithm-package.ts';

/** One graph tensor as ONNX Runtime reports it. */
export interface GraphTensor {
  name: string;
  type: string;
  /** Concrete dims as numbers, symbolic dims as their names. */
  shape: Array<number | string>;
}

/** Outcome of one expectation on one test image. */
export interface ExpectationOutcome {
  label: string;
  minCount: number;
  maxCount?: number;
  found: number;
  passed: boolean;
  reason?: string;
  /** Best overlap with the expected box, when one is expected. */
  bestIou?: number;
}

/** Outcome of one test image. */
export interface TestImageOutcome {
  image: string;
  passed: boolean;
  objects: Array<{ label: string; score: number; box?: [number, number, number, number] }>;
  inferMs: number;
  expectations: ExpectationOutcome[];
}

/** The stored report of one adaptation test. */
export interface AdaptationReport {
  passed: boolean;
  /** ISO time the test ran. */
  checkedAt: string;
  /** e.g. `onnxruntime-node 1.30.0`. */
  runtime: string;
  graph: { inputs: GraphTensor[]; outputs: GraphTensor[] } | null;
  tests: TestImageOutcome[];
  /** Why the test could not complete (load failure, graph mismatch), with its code. */
  error?: { code: string; message: string };
  durationMs: number;
}

/** Runs the adaptation test of an opened (digest- and signature-checked) package. */
export type AdaptationTester = (pkg: AlgorithmPackage) => Promise<AdaptationReport>;

/**
 * Runs the adaptation test: loads the graph (CS_ERR_ALGO_MODEL_LOAD and
 * CS_ERR_ALGO_GRAPH_MISMATCH end it early, recorded in `error`), then detects on
 * every test image and checks the manifest's expectations. Never throws for a
 * bad package: the report says what failed.
 */
export async function runAdaptationTest(
  pkg: AlgorithmPackage,
  options: DetectorOptions = {},
): Promise<AdaptationReport> {
  const started = performance.now();
  const m = pkg.manifest;
  const report: AdaptationReport = {
    passed: false,
    checkedAt: new Date().toISOString(),
    runtime: `onnxruntime-node ${ONNX_RUNTIME_VERSION}`,
    graph: null,
    tests: [],
    durationMs: 0,
  };
  let detector: Detector | undefined;
  try {
    const model = pkg.parts.get(m.model);
    if (!model)
      throw Object.assign(new Error(`package lacks its model ${m.model}`), {
        code: 'CS_ERR_ALGO_PART_MISSING',
      });
    detector = await Detector.load(model, m, packageLabels(pkg), options);
    report.graph = {
      inputs: detector.inputs.map((g) => ({ name: g.name, type: g.type, shape: g.shape })),
      outputs: detector.outputs.map((g) => ({ name: g.name, type: g.type, shape: g.shape })),
    };
    for (const test of m.tests) {
      const image = pkg.parts.get(test.image);
      if (!image)
        throw Object.assign(new Error(`package lacks test image ${test.image}`), {
          code: 'CS_ERR_ALGO_PART_MISSING',
        });
      const detection = await detector.detect(image);
      const checked = checkExpectations(detection.objects, test.expect);
      report.tests.push({
        image: test.image,
        passed: checked.passed,
        inferMs: round(detection.timings.inferMs),
        objects: detection.objects.map((o) => ({
          label: o.label,
          score: round(o.score, 3),
          ...(o.box ? { box: o.box.map((v) => round(v)) as [number, number, number, number] } : {}),
        })),
        expectations: checked.results.map((r) => ({
          label: r.expectation.label,
          minCount: r.expectation.minCount ?? 1,
          ...(r.expectation.maxCount === undefined ? {} : { maxCount: r.expectation.maxCount }),
          found: r.found,
          passed: r.passed,
          ...(r.reason === undefined ? {} : { reason: r.reason }),
          ...(r.bestIou === undefined ? {} : { bestIou: round(r.bestIou, 3) }),
        })),
      });
    }
    report.passed = report.tests.length > 0 && report.tests.every((t) => t.passed);
    if (report.tests.length === 0)
      report.error = { code: 'CS_ERR_ALGO_NO_TESTS', message: 'the manifest lists no test images to run' };
  } catch (err) {
    report.passed = false;
    report.error = {
      code: (err as { code?: string }).code ?? 'CS_ERR_ALGO_ADAPTATION',
      message: errorMessage(err),
    };
  } finally {
    await detector?.release();
    report.durationMs = Math.round(performance.now() - started);
  }
  return report;
}

function round(value: number, digits = 1): number {
  const f = 10 ** digits;
  return Math.round(value * f) / f;
}
