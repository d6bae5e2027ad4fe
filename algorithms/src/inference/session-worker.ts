/**
 * An ONNX Runtime session in its own worker thread. `session.run` in
 * onnxruntime-node holds its thread for the whole inference (measured: a 1 ms
 * timer fires once per 15 ms run); in a worker it leaves the agent's event loop
 * free, and JavaScript preprocessing of the next frame overlaps the inference.
 */
import { createRequire } from 'node:module';
import { Worker } from 'node:worker_threads';
import type { GraphValue } from './detector.ts';

/** Version of the onnxruntime-node package the workers load (for reports and errors). */
export const ONNX_RUNTIME_VERSION = (
  createRequire(import.meta.url)('onnxruntime-node/package.json') as { version: string }
).version;

/** ONNX Runtime session options passed through to the worker. */
export interface WorkerSessionOptions {
  intraOpNumThreads: number;
  executionProviders: string[];
}

/** A float32 output tensor. */
export interface WorkerOutput {
  type: string;
  data: Float32Array;
  dims: readonly number[];
}

type Reply =
  | { type: 'loaded'; inputs: GraphValue[]; outputs: GraphValue[]; runtime: string }
  | { type: 'result'; id: number; input: Float32Array; output: WorkerOutput }
  | { type: 'error'; id?: number; input?: Float32Array; message: string }
  | { type: 'released' };

interface Pending {
  resolve: (r: { input: Float32Array; output: WorkerOutput }) => void;
  reject: (err: Error & { input?: Float32Array }) => void;
}

/** One loaded model in a worker thread; runs are answered in order. */
export class SessionWorker {
  readonly inputs: GraphValue[];
  readonly outputs: GraphValue[];
  readonly #worker: Worker;
  readonly #pending = new Map<number, Pending>();
  #nextId = 1;
  #released: Promise<void> | undefined;

  private constructor(worker: Worker, loaded: Extract<Reply, { type: 'loaded' }>) {
    this.#worker = worker;
    this.inputs = loaded.inputs;
    this.outputs = loaded.outputs;
    worker.on('message', (msg: Reply) => this.#onReply(msg));
    worker.on('error', (err) => this.#failAll(err));
    worker.on('exit', (code) => this.#failAll(new Error(`inference worker exited (${code})`)));
  }

  /** Starts a worker and loads `model`; rejects with ONNX Runtime's own error when it refuses it. */
  static async load(model: Uint8Array, options: WorkerSessionOptions): Promise<SessionWorker> {
    const worker = new Worker(new URL('./session-worker.mjs', import.meta.url));
    // A copy the worker can own (a Buffer may be a view into a pooled or shared ArrayBuffer).
    const copy = new Uint8Array(model).buffer;
    const loaded = await new Promise<Extract<Reply, { type: 'loaded' }>>((resolve, reject) => {
      const onMessage = (msg: Reply) => {
        worker.off('error', reject);
        if (msg.type === 'loaded') resolve(msg);
        else reject(new Error(msg.type === 'error' ? msg.message : `unexpected ${msg.type}`));
      };
      worker.once('message', onMessage);
      worker.once('error', reject);
      worker.postMessage(
        {
          type: 'load',
          model: copy,
          options: {
            executionProviders: options.executionProviders,
            intraOpNumThreads: options.intraOpNumThreads,
            interOpNumThreads: 1,
            graphOptimizationLevel: 'all',
            executionMode: 'sequential',
            logSeverityLevel: 3,
          },
        },
        [copy],
      );
    }).catch(async (err: unknown) => {
      await worker.terminate();
      throw err;
    });
    return new SessionWorker(worker, loaded);
  }

  /**
   * Runs one inference. `data` is transferred to the worker (detached here) and
   * handed back in the result, so the caller can reuse it for the next frame.
   */
  run(
    inputName: string,
    data: Float32Array,
    dims: readonly number[],
    outputName: string,
  ): Promise<{ input: Float32Array; output: WorkerOutput }> {
    if (this.#released) return Promise.reject(new Error('inference worker released'));
    const id = this.#nextId++;
    return new Promise((resolve, reject) => {
      this.#pending.set(id, { resolve, reject });
      this.#worker.postMessage(
        { type: 'run', id, input: { name: inputName, data, dims }, output: outputName },
        [data.buffer as ArrayBuffer],
      );
    });
  }

  /** Releases the session and ends the worker; idempotent. */
  release(): Promise<void> {
    this.#released ??= new Promise<void>((resolve) => {
      const done = () => resolve();
      this.#worker.once('exit', done);
      this.#worker.once('message', (msg: Reply) => {
        if (msg.type === 'released') void this.#worker.terminate();
      });
      this.#worker.postMessage({ type: 'release' });
    });
    return this.#released;
  }

  #onReply(msg: Reply): void {
    if (msg.type !== 'result' && msg.type !== 'error') return;
    if (msg.id === undefined) return;
    const pending = this.#pending.get(msg.id);
    if (!pending) return;
    this.#pending.delete(msg.id);
    if (msg.type === 'result') pending.resolve({ input: msg.input, output: msg.output });
    else pending.reject(Object.assign(new Error(msg.message), { input: msg.input }));
  }

  #failAll(err: Error): void {
    for (const p of this.#pending.values()) p.reject(err);
    this.#pending.clear();
  }
}
