import { CitysenseError, errorMessage } from './errors.ts';
import { loadProto, lookupType } from './proto-root.ts';

const SpoolAckType = lookupType(loadProto('./citysense.proto'), 'citysense.v1.SpoolAck');

/** An inclusive range of spool record ids. */
export interface SpoolRange {
  first: number;
  last: number;
}

/** Collapses ids (any order, duplicates allowed) into sorted inclusive ranges. */
export function toRanges(ids: Iterable<number>): SpoolRange[] {
  const sorted = [...new Set(ids)].sort((a, b) => a - b);
  const ranges: SpoolRange[] = [];
  for (const id of sorted) {
    const last = ranges[ranges.length - 1];
    if (last && id === last.last + 1) last.last = id;
    else ranges.push({ first: id, last: id });
  }
  return ranges;
}

/** Encodes a hub → node spool acknowledgement. */
export function encodeSpoolAck(ranges: SpoolRange[]): Uint8Array {
  return SpoolAckType.encode({ ranges }).finish();
}

/** Decodes a spool acknowledgement; throws CS_ERR_SPOOL_ACK_DECODE on malformed bytes or ranges. */
export function decodeSpoolAck(bytes: Uint8Array): SpoolRange[] {
  let msg: { ranges?: Array<{ first?: number; last?: number }> };
  try {
    msg = SpoolAckType.decode(bytes) as unknown as typeof msg;
  } catch (err) {
    throw new CitysenseError('CS_ERR_SPOOL_ACK_DECODE', `malformed spool ack: ${errorMessage(err)}`, 400);
  }
  return (msg.ranges ?? []).map((r) => {
    const first = r.first ?? 0;
    const last = r.last ?? 0;
    if (last < first)
      throw new CitysenseError(
        'CS_ERR_SPOOL_ACK_DECODE',
        `spool ack range ${first}-${last} is inverted`,
        400,
      );
    return { first, last };
  });
}
