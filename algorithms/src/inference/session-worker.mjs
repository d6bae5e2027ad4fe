// One ONNX Runtime session in a worker thread. onnxruntime-node's `session.run`
// blocks the calling thread for the whole inference; here it blocks this worker
// instead, so the agent's event loop (MQTT, spool, HTTP, frame decoding) keeps
// running. Plain JavaScript: worker threads do not inherit the TypeScript loader.
//
// Messages in:  { type: 'load', model: ArrayBuffer, options }
//               { type: 'run', id, input: { name, data: Float32Array, dims }, output }
//               { type: 'release' }
// Messages out: { type: 'loaded', inputs, outputs } | { type: 'error', id?, message }
//               { type: 'result', id, input: Float32Array (handed back), output: { type, data, dims } }
//               { type: 'released' }
import { parentPort } from 'node:worker_threads';
import ort from 'onnxruntime-node';

let session;

function metadata(values) {
  return values.map((m) =>
    m.isTensor
      ? { name: m.name, isTensor: true, type: m.type, shape: [...m.shape] }
      : { name: m.name, isTensor: false, type: 'non-tensor', shape: [] },
  );
}

parentPort.on('message', async (msg) => {
  try {
    if (msg.type === 'load') {
      session = await ort.InferenceSession.create(new Uint8Array(msg.model), msg.options);
      parentPort.postMessage({
        type: 'loaded',
        inputs: metadata(session.inputMetadata),
        outputs: metadata(session.outputMetadata),
        runtime: ort.env.versions.common,
      });
    } else if (msg.type === 'run') {
      const { name, data, dims } = msg.input;
      const results = await session.run({ [name]: new ort.Tensor('float32', data, dims) }, [msg.output]);
      const out = results[msg.output];
      // The input buffer goes back for reuse; the output is copied (ORT may own its memory).
      parentPort.postMessage(
        {
          type: 'result',
          id: msg.id,
          input: data,
          output: { type: out.type, data: out.data, dims: out.dims },
        },
        [data.buffer],
      );
    } else if (msg.type === 'release') {
      await session?.release();
      session = undefined;
      parentPort.postMessage({ type: 'released' });
    }
  } catch (err) {
    parentPort.postMessage({
      type: 'error',
      id: msg.id,
      input: msg.type === 'run' ? msg.input.data : undefined,
      message: err instanceof Error ? err.message : String(err),
    });
  }
});
