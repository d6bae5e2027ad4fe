/**
 * Spool recovery at open: scans every segment (CRC of each record), truncates a torn or
 * corrupt tail of the last one, restores the ack state, and decides where ids continue.
 */
import { mkdir, open, readdir, unlink } from 'node:fs/promises';
import type { Logger } from '@citysense/protocol';
import { AckedIds } from './acked-ids.ts';
import { type ScanOutcome, scanSegment } from './scan.ts';
import { parseSegmentFileName, Segment } from './segment.ts';
import { loadState, readBootId } from './state-file.ts';

/** Everything the spool needs to resume after `recoverSpool`. */
export interface RecoveredSpool {
  /** Segments with unresolved records, oldest first. */
  segments: Segment[];
  acks: AckedIds;
  /** Highest id ever handed out (as far as can be known); the next append gets lastId + 1. */
  lastId: number;
  /** Id reservation from the state file (0 when unknown). */
  reservedThrough: number;
  droppedRecords: number;
  corruptions: number;
  bootId: string | null;
}

/** Recovers the spool in `dir` (created when missing); frames above `maxFrameBytes` count as corrupt. */
export async function recoverSpool(dir: string, maxFrameBytes: number, log: Logger): Promise<RecoveredSpool> {
  await mkdir(dir, { recursive: true });
  const [loaded, bootId, names] = await Promise.all([loadState(dir), readBootId(), readdir(dir)]);
  const state = loaded.state;
  if (state === null && loaded.problem !== 'missing') {
    log.warn(
      { problem: loaded.problem },
      'spool ack state unreadable: replaying every record (the hub deduplicates)',
    );
  }

  const firstIds = names
    .map(parseSegmentFileName)
    .filter((id): id is number => id !== null)
    .sort((a, b) => a - b);
  const segments: Segment[] = [];
  let corruptions = 0;
  let lastOutcome: ScanOutcome = { kind: 'clean' };
  for (const [i, firstId] of firstIds.entries()) {
    const segment = new Segment(dir, firstId);
    const isLast = i === firstIds.length - 1;
    const outcome = await scanFile(segment, maxFrameBytes, isLast);
    if (outcome.kind !== 'clean') {
      corruptions++;
      const at = { segment: segment.path, offset: outcome.offset, validRecords: segment.count };
      if (isLast) log.warn({ ...at, outcome }, 'spool: truncated a torn or corrupt tail');
      else
        log.error({ ...at, outcome }, 'spool: corrupt record mid-segment, the rest of that segment is lost');
    }
    if (isLast) lastOutcome = outcome;
    const nextFirst = firstIds[i + 1];
    if (nextFirst !== undefined && segment.lastId >= nextFirst) {
      log.error(
        { segment: segment.path },
        'spool: segment overlaps the next one, keeping the non-overlapping part',
      );
      segment.truncateTo(nextFirst - segment.firstId);
    }
    segments.push(segment);
  }

  // Where ids continue. After a reboot following an unclean stop, or when valid-looking records
  // were cut from the last segment, ids above the last surviving record may already have reached
  // the hub (they were in the page cache, not on disk); reusing them would make the hub discard
  // new records as duplicates, so continue above the fsynced reservation instead.
  let lastId = Math.max(
    segments[segments.length - 1]?.lastId ?? 0,
    state?.head ?? 0,
    state?.lastId ?? 0,
    state?.ranges[state.ranges.length - 1]?.[1] ?? 0,
  );
  const rebooted = state !== null && !state.clean && (bootId === null || state.bootId !== bootId);
  if (state !== null && (rebooted || lastOutcome.kind === 'corrupt') && state.reservedThrough > lastId) {
    log.warn(
      { from: lastId + 1, to: state.reservedThrough, rebooted },
      'spool: skipping ids that may have been handed out before an unclean stop',
    );
    lastId = state.reservedThrough;
  }

  const acks = new AckedIds(Math.min(state?.head ?? 0, lastId));
  for (const [first, last] of state?.ranges ?? []) acks.add(first, Math.min(last, lastId));
  // Ids that no segment holds any more (acked and deleted, dropped, lost, skipped) are resolved.
  let cursor = acks.head + 1;
  for (const segment of segments) {
    if (segment.firstId > cursor) acks.add(cursor, segment.firstId - 1);
    cursor = Math.max(cursor, segment.lastId + 1);
  }
  if (cursor <= lastId) acks.add(cursor, lastId);

  const live: Segment[] = [];
  for (const segment of segments) {
    segment.unacked = segment.count - acks.countIn(segment.firstId, segment.lastId);
    if (segment.unacked > 0) live.push(segment);
    else await unlink(segment.path); // fully acked per the persisted state, or empty
  }
  return {
    segments: live,
    acks,
    lastId,
    reservedThrough: state?.reservedThrough ?? 0,
    droppedRecords: state?.droppedRecords ?? 0,
    corruptions: (state?.corruptions ?? 0) + corruptions,
    bootId,
  };
}

/** Scans one segment file into `segment`; truncates the file at a bad spot when it is the last one. */
async function scanFile(segment: Segment, maxFrameBytes: number, isLast: boolean): Promise<ScanOutcome> {
  const fh = await open(segment.path, 'r+');
  try {
    const { size } = await fh.stat();
    const outcome = await scanSegment(fh, segment, size, maxFrameBytes);
    segment.size = size;
    if (outcome.kind !== 'clean' && isLast) {
      await fh.truncate(outcome.offset);
      await fh.sync();
      segment.size = outcome.offset;
    }
    return outcome;
  } finally {
    await fh.close();
  }
}
