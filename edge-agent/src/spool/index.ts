/** The edge agent's store-and-forward spool: disk-backed, bounded, ordered, acked by the hub. */
export {
  Spool,
  type SpoolDropReason,
  type SpoolEvents,
  type SpoolFullPolicy,
  type SpoolOptions,
  type SpoolRecord,
  type SpoolStats,
} from './spool.ts';
