/**
 * The spool's small state file (`spool.state`, JSON): ack head and ranges, counters, and the id
 * reservation. Replaced atomically (write tmp, fsync, rename, fsync dir) so a crash leaves
 * either the old or the new version, never a mix.
 */
import { open, readFile, rename } from 'node:fs/promises';
import { join } from 'node:path';
import { errorMessage } from '@citysense/protocol';

/** File name of the state file inside the spool directory. */
export const STATE_FILE = 'spool.state';
const TMP_FILE = 'spool.state.tmp';

/** Contents of the state file, version 1. */
export interface SpoolState {
  v: 1;
  /** Every id <= head is acked or gone. */
  head: number;
  /** Acked ranges above the head, lowest first (possibly a prefix of them). */
  ranges: Array<[number, number]>;
  /** Highest id handed out when this was written. */
  lastId: number;
  /** No id above this has been handed out; after a power loss ids restart above it. */
  reservedThrough: number;
  /** Records dropped by the full policy, ever. */
  droppedRecords: number;
  /** Corrupt spots found, ever. */
  corruptions: number;
  /** Kernel boot id when written: tells a process crash (page cache intact) from a reboot. */
  bootId: string | null;
  /** Written by a clean close. */
  clean: boolean;
}

/** Result of loading the state file: the state, or why there is none. */
export type LoadedState = { state: SpoolState } | { state: null; problem: 'missing' | string };

function isCount(v: unknown): v is number {
  return typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
}

/** Validates parsed JSON as a SpoolState; returns the problem or null. */
function problemOf(v: unknown): string | null {
  if (typeof v !== 'object' || v === null) return 'not an object';
  const s = v as Record<string, unknown>;
  if (s.v !== 1) return `unknown version ${String(s.v)}`;
  for (const key of ['head', 'lastId', 'reservedThrough', 'droppedRecords', 'corruptions'] as const) {
    if (!isCount(s[key])) return `${key} is not a count`;
  }
  if (!Array.isArray(s.ranges)) return 'ranges is not an array';
  for (const r of s.ranges as unknown[]) {
    if (!Array.isArray(r) || r.length !== 2 || !isCount(r[0]) || !isCount(r[1]) || r[0] > r[1]) {
      return 'malformed range';
    }
  }
  if (s.bootId !== null && typeof s.bootId !== 'string') return 'bootId is not a string';
  if (typeof s.clean !== 'boolean') return 'clean is not a boolean';
  return null;
}

/** Reads and validates the state file of `dir`. */
export async function loadState(dir: string): Promise<LoadedState> {
  let text: string;
  try {
    text = await readFile(join(dir, STATE_FILE), 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { state: null, problem: 'missing' };
    return { state: null, problem: `unreadable: ${errorMessage(err)}` };
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (err) {
    return { state: null, problem: `not JSON: ${errorMessage(err)}` };
  }
  const problem = problemOf(parsed);
  return problem === null ? { state: parsed as SpoolState } : { state: null, problem };
}

/** Atomically replaces the state file of `dir` with `state`. */
export async function saveState(dir: string, state: SpoolState): Promise<void> {
  const tmp = join(dir, TMP_FILE);
  const fh = await open(tmp, 'w');
  try {
    await fh.writeFile(JSON.stringify(state));
    await fh.sync();
  } finally {
    await fh.close();
  }
  await rename(tmp, join(dir, STATE_FILE));
  await syncDir(dir);
}

/** fsyncs a directory so that file creations, renames and unlinks in it survive a power loss. */
export async function syncDir(dir: string): Promise<void> {
  const fh = await open(dir, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

/** The kernel's boot id (Linux), or null where the platform has none. */
export async function readBootId(): Promise<string | null> {
  try {
    return (await readFile('/proc/sys/kernel/random/boot_id', 'utf8')).trim();
  } catch {
    // Not Linux (or /proc not mounted): the caller then treats every unclean stop as a reboot.
    return null;
  }
}
