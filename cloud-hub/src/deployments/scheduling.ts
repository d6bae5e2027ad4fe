import type { Manifest } from '@citysense/algorithms';
import type { NodeHardware } from '@citysense/protocol';

const MIB = 1024 * 1024;

/** Why scheduling refuses a node. */
export type Refusal = { code: 'not-granted' | 'insufficient-hardware'; reason: string };

/**
 * Why a node's hardware cannot run a package (manifest `requirements`), or null
 * when it can. A fact the node did not report is not held against it: the agent
 * reports its own failure if the model then does not load. Execution providers
 * are alternatives: the node needs one of them.
 */
export function hardwareShortfall(
  requirements: Manifest['requirements'],
  hardware: Partial<NodeHardware>,
): string | null {
  const short: string[] = [];
  if (hardware.memoryBytes !== undefined && hardware.memoryBytes < requirements.minMemoryMiB * MIB)
    short.push(
      `needs ${requirements.minMemoryMiB} MiB memory, has ${Math.floor(hardware.memoryBytes / MIB)} MiB`,
    );
  if (hardware.cpuCores !== undefined && hardware.cpuCores < requirements.minCpuCores)
    short.push(`needs ${requirements.minCpuCores} CPU core(s), has ${hardware.cpuCores}`);
  const wanted = requirements.executionProviders;
  const has = hardware.executionProviders;
  if (has !== undefined && wanted.length > 0 && !wanted.some((p) => has.includes(p)))
    short.push(
      `needs execution provider ${wanted.join(' or ')}, has ${has.length > 0 ? has.join(', ') : 'none'}`,
    );
  return short.length > 0 ? short.join('; ') : null;
}
