/**
 * CRC-32 (IEEE 802.3, reflected polynomial 0xEDB88320), the checksum zlib and gzip use.
 * Node 20 has no `zlib.crc32`, so this is the slicing-by-8 table algorithm: eight 256-entry
 * tables let the loop consume 8 bytes per iteration (~1 GB/s in V8 versus ~350 MB/s bytewise).
 */

const TABLES = buildTables();
const T0 = TABLES.subarray(0, 256);
const T1 = TABLES.subarray(256, 512);
const T2 = TABLES.subarray(512, 768);
const T3 = TABLES.subarray(768, 1024);
const T4 = TABLES.subarray(1024, 1280);
const T5 = TABLES.subarray(1280, 1536);
const T6 = TABLES.subarray(1536, 1792);
const T7 = TABLES.subarray(1792, 2048);

function buildTables(): Int32Array {
  const tables = new Int32Array(256 * 8);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    tables[n] = c;
  }
  for (let n = 0; n < 256; n++) {
    let c = tables[n] as number;
    for (let t = 1; t < 8; t++) {
      c = (tables[c & 0xff] as number) ^ (c >>> 8);
      tables[t * 256 + n] = c;
    }
  }
  return tables;
}

/**
 * CRC-32 of `data[start, end)`, continuing from `crc` (the result of a previous call, 0 to
 * start), so a checksum can span several non-contiguous pieces.
 */
export function crc32(data: Uint8Array, crc = 0, start = 0, end: number = data.length): number {
  // Indexing typed arrays in bounds: the `as number` casts only silence noUncheckedIndexedAccess
  // in this hot loop, they cost nothing at run time.
  let c = ~crc;
  let i = start;
  for (; i + 8 <= end; i += 8) {
    c ^=
      (data[i] as number) |
      ((data[i + 1] as number) << 8) |
      ((data[i + 2] as number) << 16) |
      ((data[i + 3] as number) << 24);
    c =
      (T7[c & 0xff] as number) ^
      (T6[(c >>> 8) & 0xff] as number) ^
      (T5[(c >>> 16) & 0xff] as number) ^
      (T4[c >>> 24] as number) ^
      (T3[data[i + 4] as number] as number) ^
      (T2[data[i + 5] as number] as number) ^
      (T1[data[i + 6] as number] as number) ^
      (T0[data[i + 7] as number] as number);
  }
  for (; i < end; i++) c = (T0[(c ^ (data[i] as number)) & 0xff] as number) ^ (c >>> 8);
  return ~c >>> 0;
}
