import { createRequire } from 'node:module';
import { errorMessage } from '@citysense/protocol';
import { type CheckContext, type CheckResult, result } from './report.ts';

/**
 * ONNX Runtime version and which configured `inference.executionProviders` this build
 * supports. The version is read like @citysense/algorithms' ONNX_RUNTIME_VERSION (not
 * exported from its index); loading the native binding also proves it loads on this box.
 */
export async function checkOnnx(ctx: CheckContext): Promise<CheckResult[]> {
  const wanted = ctx.config.inference.executionProviders;
  if (!ctx.config.inference.enabled) return [result('onnx', 'ok', 'inference disabled in the config')];
  let version: string;
  let supported: string[];
  try {
    const require = createRequire(import.meta.url);
    version = (require('onnxruntime-node/package.json') as { version: string }).version;
    const ort = (await import('onnxruntime-node')) as {
      listSupportedBackends?: () => Array<{ name: string }>;
    };
    supported = ort.listSupportedBackends?.().map((b) => b.name) ?? ['cpu'];
  } catch (err) {
    return [
      result(
        'onnx',
        'fail',
        `ONNX Runtime does not load (${errorMessage(err)}): reinstall onnxruntime-node for this CPU/OS`,
      ),
    ];
  }
  const missing = wanted.filter((p) => !supported.includes(p));
  const text = `onnxruntime-node ${version}, supports ${supported.join(', ')}; configured ${wanted.join(', ')}`;
  if (missing.length === wanted.length)
    return [
      result(
        'onnx',
        'fail',
        `${text}: none of the configured providers is available; set inference.executionProviders to ["cpu"]`,
      ),
    ];
  if (missing.length > 0)
    return [
      result(
        'onnx',
        'warn',
        `${text}: ${missing.join(', ')} unavailable, inference falls back to the next provider`,
      ),
    ];
  return [result('onnx', 'ok', text)];
}
