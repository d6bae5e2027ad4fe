import { statfs } from 'node:fs/promises';
import os from 'node:os';

/** Hardware facts reported at enrolment (the hub's compute catalogue, 001 Art. 49). */
export interface HardwareFacts {
  arch: string;
  platform: string;
  cpuModel: string;
  cpuCores: number;
  memoryBytes: number;
  diskBytes: number;
  /** Inference backends this box can run; only the CPU until accelerators are probed. */
  executionProviders: string[];
}

/** Collects hardware facts; `diskBytes` is the size of the filesystem holding `stateDir`. */
export async function collectHardware(stateDir: string): Promise<HardwareFacts> {
  const cpus = os.cpus();
  const fs = await statfs(stateDir);
  return {
    arch: os.arch(),
    platform: os.platform(),
    cpuModel: cpus[0]?.model.trim() ?? 'unknown',
    cpuCores: cpus.length,
    memoryBytes: os.totalmem(),
    diskBytes: fs.blocks * fs.bsize,
    executionProviders: ['cpu'],
  };
}
