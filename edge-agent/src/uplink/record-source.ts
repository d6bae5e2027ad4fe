import type { SpoolRange } from '@citysense/protocol';

/** One stored record as the spool returns it. */
export interface SpooledRecord {
  id: number;
  appendedAt: number;
  payload: Uint8Array;
}

/** Spool counters the uplink and health report. */
export interface SpoolStats {
  records: number;
  bytes: number;
  oldestAppendedAt: number | null;
  droppedRecords: number;
  firstId: number | null;
  lastId: number;
}

/**
 * The part of the spool the uplink uses. The agent passes its `Spool`; keeping the
 * uplink on this structural type keeps it independent of how records are stored.
 */
export interface RecordSource {
  read(fromId: number, maxRecords: number, maxBytes: number): Promise<SpooledRecord[]>;
  ack(ranges: SpoolRange[]): Promise<void>;
  firstUnackedId(): number | null;
  stats(): SpoolStats;
  on(event: 'appended', listener: (lastId: number) => void): unknown;
  off(event: 'appended', listener: (lastId: number) => void): unknown;
}
