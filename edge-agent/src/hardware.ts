import { statfs } from 'node:fs/promises';
import os from 'node:os';
import type { NodeHardware } from '@citysense/protocol';

/** Collects hardware facts; `diskBytes` is the size of the filesystem holding `stateDir`; `model` as configured. */
export async function collectHardware(
  stateDir: string,
  executionProviders = ['cpu'],
  model?: string | undefined,
): Promise<NodeHardware> {
  const cpus = os.cpus();
  const fs = await statfs(stateDir);
  return {
    arch: os.arch(),
    platform: os.platform(),
    cpuModel: cpus[0]?.model.trim() ?? 'unknown',
    cpuCores: cpus.length,
    memoryBytes: os.totalmem(),
    diskBytes: fs.blocks * fs.bsize,
    // As configured: the agent cannot probe accelerators without loading a model on them.
    executionProviders,
    ...(model ? { model } : {}),
  };
}
