/**
 * Recovery scan of one segment file: walks the frames from the start, verifying length, CRC
 * and id sequence, and indexes every valid record until the first bad one.
 */
import type { FileHandle } from 'node:fs/promises';
import {
  checkFrame,
  declaredFrameBytes,
  FRAME_CORRUPT,
  FRAME_HEADER_BYTES,
  FRAME_INCOMPLETE,
  frameAppendedAt,
  frameId,
} from './frame.ts';
import type { Segment } from './segment.ts';

/** How a segment scan ended. */
export type ScanOutcome =
  /** Every byte of the file is a valid record. */
  | { kind: 'clean' }
  /** The file ends inside a record (a write cut by a crash or power loss). */
  | { kind: 'torn'; offset: number }
  /** A complete-looking record fails its CRC or breaks the id sequence. */
  | { kind: 'corrupt'; offset: number; reason: string };

const SCAN_CHUNK_BYTES = 1 << 20;

/**
 * Indexes the valid records of `segment` from its file (size `fileSize`); frames longer than
 * `maxFrameBytes` cannot have been written by the spool and count as corruption.
 */
export async function scanSegment(
  handle: FileHandle,
  segment: Segment,
  fileSize: number,
  maxFrameBytes: number,
): Promise<ScanOutcome> {
  let buf = Buffer.allocUnsafe(Math.min(SCAN_CHUNK_BYTES, Math.max(fileSize, FRAME_HEADER_BYTES)));
  let pos = 0; // file offset of buf[0]
  while (pos < fileSize) {
    const want = Math.min(buf.length, fileSize - pos);
    const { bytesRead } = await handle.read(buf, 0, want, pos);
    if (bytesRead < want) fileSize = pos + bytesRead; // shrank under us: what we got is all there is
    let off = 0;
    for (;;) {
      const at = pos + off;
      if (at >= fileSize) return { kind: 'clean' };
      const len = checkFrame(buf, off, bytesRead);
      if (len === FRAME_CORRUPT) return { kind: 'corrupt', offset: at, reason: 'CRC mismatch' };
      if (len === FRAME_INCOMPLETE) {
        if (fileSize - at < FRAME_HEADER_BYTES) return { kind: 'torn', offset: at };
        if (bytesRead - off < FRAME_HEADER_BYTES) break; // header cut by the chunk: read on
        const need = declaredFrameBytes(buf, off);
        if (need > maxFrameBytes) return { kind: 'corrupt', offset: at, reason: `impossible length ${need}` };
        if (at + need > fileSize) return { kind: 'torn', offset: at };
        if (need > buf.length) buf = Buffer.allocUnsafe(need);
        break;
      }
      const expected = segment.firstId + segment.count;
      const id = frameId(buf, off);
      if (id !== expected)
        return { kind: 'corrupt', offset: at, reason: `id ${id} where ${expected} was due` };
      segment.push(at, at + len, frameAppendedAt(buf, off));
      off += len;
    }
    pos += off;
  }
  return { kind: 'clean' };
}
