// One write-then-rename for every state file of the node (identity, spool, cache, OTA slots).
import { writeFileAtomic as writeAtomic } from '@citysense/firmware-ota';

export { readFileIfExists } from '@citysense/firmware-ota';

/**
 * Writes a node state file atomically (see firmware-ota's `writeFileAtomic`), owner-only
 * by default: the identity and credentials live among these files.
 */
export function writeFileAtomic(path: string, data: string, mode = 0o600): Promise<void> {
  return writeAtomic(path, data, mode);
}
