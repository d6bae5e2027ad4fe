/**
 * One ONNX model behind one manifest: checks the graph against the manifest on load, then turns frames into
 * detections (preprocess → ONNX Runtime → decoder + NMS). CPU only; inferences run one at a time.
 */

import { CitysenseError, componentLogger, type Logger } from '@citysense/protocol';
import type { ManifestSource } from '../manifest.ts';
import { type DetectedObject, decodeOutput, impliedClassCount, type Thresholds } from './decoders.ts';
import { type ImageSource, inputSize, type ModelTensor, preprocess } from './preprocess.ts';
import { ONNX_RUNTIME_VERSION, SessionWorker } from './session-worker.ts';

/** Frames in flight at once: one being preprocessed while one is in inference. */
const PIPELINE_DEPTH = 2;

/** How to run the model. */
export interface DetectorOptions {
  /** Threads ONNX Runtime uses inside one operator (default 1: one camera, one core). */
  intraOpNumThreads?: number;
  /** ONNX Runtime execution providers in preference order; default ['cpu']. */
  executionProviders?: string[];
  logger?: Logger;
}

/** A graph input or output as ONNX Runtime reports it; string dims are symbolic (dynamic). */
export interface GraphValue {
  name: string;
  isTensor: boolean;
  type: string;
  shape: (number | string)[];
}

/** Time spent per stage of one frame, in milliseconds. */
export interface DetectionTimings {
  preprocessMs: number;
  inferMs: number;
  postprocessMs: number;
}

/** Result of one frame: source size, objects (boxes in source pixels) and timings. */
export interface Detection {
  width: number;
  height: number;
  objects: DetectedObject[];
  timings: DetectionTimings;
}

/** A loaded model ready to run frames; `release()` frees it. */
export class Detector {
  /** Graph inputs as ONNX Runtime reports them. */
  readonly inputs: GraphValue[];
  /** Graph outputs as ONNX Runtime reports them. */
  readonly outputs: GraphValue[];
  readonly #session: SessionWorker;
  readonly #log: Logger;
  /** Input buffers not in use; at most PIPELINE_DEPTH exist, so memory stays flat. */
  readonly #freeBuffers: Float32Array[] = [];
  readonly #bufferWaiters: Array<(buffer: Float32Array | undefined) => void> = [];
  #buffers = 0;
  /** Stage tails: preprocessing runs frame by frame, inference frame by frame, the two overlap. */
  #prepareTail: Promise<unknown> = Promise.resolve();
  #inferTail: Promise<unknown> = Promise.resolve();
  #released: Promise<void> | undefined;
  /** Frames accepted and not yet answered. */
  readonly #pending = new Set<Promise<Detection>>();

  private constructor(
    session: SessionWorker,
    /** The manifest the model was checked against. */
    readonly manifest: ManifestSource,
    /** Class names, in output index order. */
    readonly labels: readonly string[],
    log: Logger,
  ) {
    this.#session = session;
    this.#log = log;
    this.inputs = session.inputs;
    this.outputs = session.outputs;
  }

  /**
   * Loads `model` (ONNX bytes) and checks it against `manifest` and `labels`. Throws CS_ERR_ALGO_MODEL_LOAD
   * when ONNX Runtime cannot load it, CS_ERR_ALGO_GRAPH_MISMATCH listing every difference from the manifest.
   */
  static async load(
    model: Uint8Array,
    manifest: ManifestSource,
    labels: readonly string[],
    options: DetectorOptions = {},
  ): Promise<Detector> {
    const log = componentLogger('detector', options.logger).child({
      algorithm: manifest.id,
      version: manifest.version,
    });
    const started = performance.now();
    if (manifest.input.shape[0] !== 1)
      throw new CitysenseError(
        'CS_ERR_ALGO_UNSUPPORTED',
        `the runtime feeds one frame at a time; manifest input batch is ${manifest.input.shape[0]}, make it 1`,
        400,
      );
    let session: SessionWorker;
    try {
      session = await SessionWorker.load(model, {
        intraOpNumThreads: options.intraOpNumThreads ?? 1,
        executionProviders: options.executionProviders ?? ['cpu'],
      });
    } catch (err) {
      throw new CitysenseError(
        'CS_ERR_ALGO_MODEL_LOAD',
        `ONNX Runtime ${ONNX_RUNTIME_VERSION} cannot load model ${manifest.model} (${model.length} bytes): ` +
          `${(err as Error).message}`,
        400,
      );
    }
    const detector = new Detector(session, manifest, labels, log);
    const problems = graphProblems(manifest, labels, detector.inputs, detector.outputs);
    if (problems.length > 0) {
      await session.release();
      throw new CitysenseError(
        'CS_ERR_ALGO_GRAPH_MISMATCH',
        `model ${manifest.model} does not match the manifest: ${problems.join('; ')}`,
        400,
        { problems },
      );
    }
    log.info(
      { inputs: detector.inputs, outputs: detector.outputs, loadMs: Math.round(performance.now() - started) },
      'model loaded',
    );
    return detector;
  }

  /**
   * Detects objects in one frame; `thresholds` override the manifest's for this call.
   * Calls may overlap: while one frame is in inference the next one is preprocessed
   * (two stages, each in call order), so a caller that keeps two frames in flight
   * gets close to bare `session.run` throughput. Results come back in call order.
   */
  detect(image: ImageSource, thresholds: Partial<Thresholds> = {}): Promise<Detection> {
    if (this.#released)
      return Promise.reject(
        new CitysenseError('CS_ERR_ALGO_RELEASED', `detector for ${this.manifest.id} has been released`, 409),
      );
    const work = this.#detect(image, thresholds);
    // Tracked from the start, so release() also waits for frames still waiting for a buffer.
    this.#pending.add(work);
    const forget = () => this.#pending.delete(work);
    work.then(forget, forget);
    return work;
  }

  async #detect(image: ImageSource, thresholds: Partial<Thresholds>): Promise<Detection> {
    const resolved = resolveThresholds(this.manifest.thresholds, thresholds);
    const buffer = await this.#takeBuffer();
    const prepared = this.#prepareTail.then(async () => {
      const started = performance.now();
      const tensor = await preprocess(image, this.manifest.input, buffer);
      return { tensor, preprocessMs: performance.now() - started };
    });
    this.#prepareTail = prepared.catch(() => undefined);
    const detected = this.#inferTail.then(async () => {
      const { tensor, preprocessMs } = await prepared;
      let returned: Float32Array | undefined;
      try {
        const result = await this.#infer(tensor, preprocessMs, resolved);
        returned = result.input;
        return result.detection;
      } catch (err) {
        returned = (err as { input?: Float32Array }).input;
        throw err;
      } finally {
        // The input buffer travelled to the worker and back; a lost one is re-allocated later.
        this.#giveBuffer(returned?.length === tensor.data.length ? returned : undefined);
      }
    });
    this.#inferTail = detected.catch(() => undefined);
    // A frame that failed before it had a tensor hands its (possibly absent) buffer back here.
    prepared.catch(() => this.#giveBuffer(buffer));
    return detected;
  }

  /** Runs one inference on a blank frame, so that the first real frame does not pay for lazy initialisation. */
  async warmUp(): Promise<void> {
    const { width, height } = inputSize(this.manifest.input);
    const rgb = new Uint8Array(width * height * 3).fill(this.manifest.input.padValue);
    const { timings } = await this.detect({ rgb, width, height });
    this.#log.debug({ timings }, 'warmed up');
  }

  /** Frees the ONNX Runtime session once pending frames are done; idempotent. */
  release(): Promise<void> {
    this.#released ??= Promise.allSettled([...this.#pending]).then(async () => {
      await this.#session.release();
      this.#freeBuffers.length = 0;
      this.#log.debug('model released');
    });
    return this.#released;
  }

  async #infer(
    tensor: ModelTensor,
    preprocessMs: number,
    thresholds: Thresholds,
  ): Promise<{ detection: Detection; input: Float32Array }> {
    const { input, output } = this.manifest;
    const t1 = performance.now();
    const { input: returned, output: out } = await this.#session.run(
      input.name,
      tensor.data,
      tensor.dims,
      output.name,
    );
    const t2 = performance.now();
    if (out?.type !== 'float32')
      throw new CitysenseError(
        'CS_ERR_ALGO_GRAPH_MISMATCH',
        `output ${output.name} is ${out?.type ?? 'missing'}, the ${output.decoder} decoder reads float32`,
        400,
      );
    const objects = decodeOutput(
      output,
      { data: out.data as Float32Array, dims: out.dims },
      { labels: this.labels, transform: tensor.transform, thresholds },
    );
    const t3 = performance.now();
    return {
      input: returned,
      detection: {
        width: tensor.transform.sourceWidth,
        height: tensor.transform.sourceHeight,
        objects,
        timings: { preprocessMs, inferMs: t2 - t1, postprocessMs: t3 - t2 },
      },
    };
  }

  /** A free input buffer; undefined means "allocate one" (still under the limit). Waits when all are in use. */
  async #takeBuffer(): Promise<Float32Array | undefined> {
    const free = this.#freeBuffers.pop();
    if (free) return free;
    if (this.#buffers < PIPELINE_DEPTH) {
      this.#buffers++;
      return undefined;
    }
    return new Promise((resolve) => this.#bufferWaiters.push(resolve));
  }

  #giveBuffer(buffer: Float32Array | undefined): void {
    const waiter = this.#bufferWaiters.shift();
    if (waiter) waiter(buffer);
    else if (buffer) this.#freeBuffers.push(buffer);
    else this.#buffers--;
  }
}

function resolveThresholds(base: Thresholds, overrides: Partial<Thresholds>): Thresholds {
  const t = {
    score: overrides.score ?? base.score,
    iou: overrides.iou ?? base.iou,
    maxDetections: overrides.maxDetections ?? base.maxDetections,
  };
  if (
    !(t.score >= 0 && t.score <= 1) ||
    !(t.iou >= 0 && t.iou <= 1) ||
    !(Number.isInteger(t.maxDetections) && t.maxDetections >= 1)
  )
    throw new CitysenseError(
      'CS_ERR_ALGO_THRESHOLDS',
      `thresholds must have score and iou in [0, 1] and maxDetections a positive integer, got ${JSON.stringify(t)}`,
      400,
    );
  return t;
}

/** Every way the graph differs from what the manifest and labels declare. */
function graphProblems(
  manifest: ManifestSource,
  labels: readonly string[],
  inputs: readonly GraphValue[],
  outputs: readonly GraphValue[],
): string[] {
  const { input, output } = manifest;
  const problems: string[] = [];
  const graphInput = inputs.find((v) => v.name === input.name);
  if (!graphInput) problems.push(`graph has no input "${input.name}" (its inputs: ${names(inputs)})`);
  else {
    if (inputs.length > 1)
      problems.push(
        `graph has ${inputs.length} inputs (${names(inputs)}); the runtime feeds only "${input.name}"`,
      );
    problems.push(...valueProblems('input', graphInput, input.shape));
  }
  const graphOutput = outputs.find((v) => v.name === output.name);
  if (!graphOutput) {
    problems.push(`graph has no output "${output.name}" (its outputs: ${names(outputs)})`);
    return problems;
  }
  problems.push(...valueProblems('output', graphOutput, output.shape));
  // The graph's own dims win; the manifest's declared shape fills in where the graph's are dynamic.
  const shape = mergeShapes(graphOutput.shape, output.shape);
  const classes = impliedClassCount(output.decoder, shape);
  if (classes !== undefined && classes !== labels.length)
    problems.push(
      `labels file ${manifest.labels} lists ${labels.length} classes but output "${output.name}" ` +
        `${formatShape(shape)} has ${classes} (${classRule[output.decoder]})`,
    );
  const cells = shape[shape.length - 2];
  if (output.decoder === 'yolox' && typeof cells === 'number' && output.strides) {
    const { width, height } = inputSize(input);
    const expected = output.strides.reduce((n, s) => n + Math.floor(width / s) * Math.floor(height / s), 0);
    if (cells !== expected)
      problems.push(
        `output "${output.name}" has ${cells} grid cells but strides [${output.strides.join(', ')}] on a ` +
          `${width}×${height} input make ${expected}`,
      );
  }
  return problems;
}

const classRule = { yolox: 'last dim − 5', yolov8: 'dim 1 − 4', softmax: 'last dim' } as const;

function valueProblems(
  kind: 'input' | 'output',
  value: GraphValue,
  declared: readonly number[] | undefined,
): string[] {
  const problems: string[] = [];
  if (!value.isTensor || value.type !== 'float32')
    problems.push(`${kind} "${value.name}" is ${value.type}, the runtime handles float32 tensors only`);
  if (!declared || value.shape.length === 0) return problems;
  const manifestKey = kind === 'input' ? 'input.shape' : 'output.shape';
  if (value.shape.length !== declared.length) {
    problems.push(
      `${kind} "${value.name}" has rank ${value.shape.length} ${formatShape(value.shape)}, ` +
        `manifest ${manifestKey} has rank ${declared.length} ${formatShape(declared)}`,
    );
    return problems;
  }
  const differing = declared.flatMap((d, i) => (isFixed(value.shape[i]) && value.shape[i] !== d ? [i] : []));
  if (differing.length > 0)
    problems.push(
      `${kind} "${value.name}" shape is ${formatShape(value.shape)} in the graph but ${formatShape(declared)} in ` +
        `manifest ${manifestKey} (dim ${differing.join(', ')})`,
    );
  return problems;
}

/** A number ≥ 1 is a concrete dim; strings (symbolic) and -1/0 (unknown) match anything. */
function isFixed(dim: number | string | undefined): dim is number {
  return typeof dim === 'number' && dim > 0;
}

function mergeShapes(
  graph: readonly (number | string)[],
  declared: readonly number[] | undefined,
): (number | string)[] {
  if (graph.length === 0) return declared ? [...declared] : [];
  return graph.map((d, i) => (isFixed(d) ? d : (declared?.[i] ?? d)));
}

function formatShape(shape: readonly (number | string)[]): string {
  return `[${shape.join(', ')}]`;
}

function names(values: readonly GraphValue[]): string {
  return values.length > 0 ? values.map((v) => v.name).join(', ') : 'none';
}
