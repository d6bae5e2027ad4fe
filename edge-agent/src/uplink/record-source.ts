import type { SpoolRange } from '@citysense/protocol';
import type { SpoolRecord, SpoolStats } from '../spool/spool.ts';

/**
 * The part of the spool the uplink uses. The agent passes its `Spool`; keeping the
 * uplink on this structural type keeps it independent of how records are stored.
 */
export interface RecordSource {
  read(fromId: number, maxRecords: number, maxBytes: number): Promise<SpoolRecord[]>;
  ack(ranges: SpoolRange[]): Promise<void>;
  firstUnackedId(): number | null;
  stats(): SpoolStats;
  on(event: 'appended', listener: (lastId: number) => void): unknown;
  off(event: 'appended', listener: (lastId: number) => void): unknown;
}
