/**
 * On-disk framing of one spool record, little-endian:
 *
 *   [u32 payload length][u32 CRC-32][u64 id][u64 appendedAt ms][payload]
 *
 * The CRC covers the whole frame except its own four bytes (length, id, appendedAt, payload),
 * so a torn write, a bit flip or garbage after the last record are all caught on recovery.
 * u64 fields are written as two u32 halves: ids and timestamps stay below 2^53, and this avoids
 * a BigInt allocation per record on the hot path.
 */
import { crc32 } from './crc32.ts';

/** Bytes of the frame header that precedes every payload. */
export const FRAME_HEADER_BYTES = 24;

/** `checkFrame` result: the buffer ends before the frame does (read more, or a torn tail). */
export const FRAME_INCOMPLETE = -1;
/** `checkFrame` result: the frame is complete but its CRC does not match (corruption). */
export const FRAME_CORRUPT = -2;

const TWO_POW_32 = 0x1_0000_0000;

/** Size on disk of a record carrying `payloadBytes`. */
export function frameBytes(payloadBytes: number): number {
  return FRAME_HEADER_BYTES + payloadBytes;
}

/** Writes one frame into `buf` at `offset`; returns the number of bytes written. */
export function encodeFrame(
  buf: Buffer,
  offset: number,
  id: number,
  appendedAt: number,
  payload: Uint8Array,
): number {
  buf.writeUInt32LE(payload.length, offset);
  buf.writeUInt32LE(id >>> 0, offset + 8);
  buf.writeUInt32LE(Math.floor(id / TWO_POW_32), offset + 12);
  buf.writeUInt32LE(appendedAt >>> 0, offset + 16);
  buf.writeUInt32LE(Math.floor(appendedAt / TWO_POW_32), offset + 20);
  buf.set(payload, offset + FRAME_HEADER_BYTES);
  const end = offset + FRAME_HEADER_BYTES + payload.length;
  buf.writeUInt32LE(crc32(buf, crc32(buf, 0, offset, offset + 4), offset + 8, end), offset + 4);
  return end - offset;
}

/**
 * Validates the frame starting at `offset` in `buf[0, end)`. Returns its total length, or
 * FRAME_INCOMPLETE when `end` cuts it (`declaredFrameBytes` tells how much is needed), or
 * FRAME_CORRUPT on a CRC mismatch.
 */
export function checkFrame(buf: Buffer, offset: number, end: number): number {
  if (end - offset < FRAME_HEADER_BYTES) return FRAME_INCOMPLETE;
  const total = FRAME_HEADER_BYTES + buf.readUInt32LE(offset);
  if (end - offset < total) return FRAME_INCOMPLETE;
  const crc = crc32(buf, crc32(buf, 0, offset, offset + 4), offset + 8, offset + total);
  return crc === buf.readUInt32LE(offset + 4) ? total : FRAME_CORRUPT;
}

/** Total frame length the header at `offset` declares (header must be present). */
export function declaredFrameBytes(buf: Buffer, offset: number): number {
  return FRAME_HEADER_BYTES + buf.readUInt32LE(offset);
}

/** Record id stored in the frame at `offset`. */
export function frameId(buf: Buffer, offset: number): number {
  return buf.readUInt32LE(offset + 12) * TWO_POW_32 + buf.readUInt32LE(offset + 8);
}

/** `appendedAt` (ms epoch) stored in the frame at `offset`. */
export function frameAppendedAt(buf: Buffer, offset: number): number {
  return buf.readUInt32LE(offset + 20) * TWO_POW_32 + buf.readUInt32LE(offset + 16);
}
