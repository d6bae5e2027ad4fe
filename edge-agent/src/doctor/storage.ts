import { readdir, stat, statfs } from 'node:fs/promises';
import { join } from 'node:path';
import { errorMessage } from '@citysense/protocol';
import { type CheckContext, type CheckResult, result } from './report.ts';

const MiB = 1024 * 1024;
/** Spool segments older than this mean the uplink has not drained for a long time. */
const SPOOL_AGE_WARN_MS = 60 * 60 * 1000;

/** Free space of the state dir's file system, against the configured spool bound. */
export async function checkDisk(ctx: CheckContext): Promise<CheckResult[]> {
  const dir = ctx.config.stateDir;
  try {
    const fs = await statfs(dir);
    const free = fs.bavail * fs.bsize;
    const total = fs.blocks * fs.bsize;
    const text = `${(free / MiB).toFixed(0)} MiB free of ${(total / MiB).toFixed(0)} MiB on ${dir}`;
    if (free < ctx.config.spool.maxBytes / 4)
      return [
        result(
          'disk',
          'fail',
          `${text}, under a quarter of spool.maxBytes: free space or lower spool.maxBytes`,
        ),
      ];
    if (free < ctx.config.spool.maxBytes)
      return [
        result(
          'disk',
          'warn',
          `${text}, less than spool.maxBytes: the spool may fill the disk before its bound`,
        ),
      ];
    return [result('disk', 'ok', text)];
  } catch (err) {
    return [
      result(
        'disk',
        'fail',
        `cannot stat ${dir} (${errorMessage(err)}): check that stateDir exists and is readable`,
      ),
    ];
  }
}

/**
 * Spool depth and age from the segment files, read-only: the Spool class has no
 * read-only stats and opening it would run recovery on a running agent's files.
 * Age is the oldest segment's mtime, an upper bound on the oldest record's age.
 */
export async function checkSpool(ctx: CheckContext): Promise<CheckResult[]> {
  const dir = join(ctx.config.stateDir, 'spool');
  let names: string[];
  try {
    names = (await readdir(dir)).filter((n) => n.endsWith('.seg'));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT')
      return [result('spool', 'ok', `no spool yet (${dir}): nothing buffered`)];
    return [
      result('spool', 'fail', `cannot read ${dir} (${errorMessage(err)}): check permissions of stateDir`),
    ];
  }
  let bytes = 0;
  let oldest = Number.POSITIVE_INFINITY;
  for (const name of names) {
    const s = await stat(join(dir, name));
    bytes += s.size;
    oldest = Math.min(oldest, s.mtimeMs);
  }
  if (names.length === 0) return [result('spool', 'ok', 'spool empty')];
  const ageMs = Date.now() - oldest;
  const fill = bytes / ctx.config.spool.maxBytes;
  const text = `${names.length} segment(s), ${(bytes / MiB).toFixed(1)} MiB (${(fill * 100).toFixed(0)}% of spool.maxBytes), oldest written ${(ageMs / 60_000).toFixed(0)} min ago`;
  if (fill >= 0.9)
    return [
      result(
        'spool',
        'fail',
        `${text}: the uplink is not draining; check hub and broker, records will be dropped by policy ${ctx.config.spool.policy}`,
      ),
    ];
  if (ageMs >= SPOOL_AGE_WARN_MS && bytes > 0)
    return [
      result('spool', 'warn', `${text}: records may be waiting for acks; check the broker check above`),
    ];
  return [result('spool', 'ok', text)];
}
