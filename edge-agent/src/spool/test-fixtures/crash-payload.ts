/** Payload of the seq-th record the crash-appender writes, so the test can verify it byte for byte. */
export function crashPayload(seq: number): Uint8Array {
  return new TextEncoder().encode(`record-${seq}-`.padEnd(100, String(seq % 10)));
}
