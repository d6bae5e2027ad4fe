/**
 * The container of an algorithm package: a POSIX ustar archive, so that an admin
 * can look inside one with `tar tvf`. Written deterministically (mtime 0, uid 0,
 * mode 0644), read strictly: regular files only, checksums checked, no `..`.
 */
import { CitysenseError } from '@citysense/protocol';

const BLOCK = 512;

/** One file in an archive. */
export interface TarEntry {
  path: string;
  data: Buffer;
}

/** Writes `entries` into one ustar archive. */
export function writeTar(entries: TarEntry[]): Buffer {
  const blocks: Buffer[] = [];
  for (const entry of entries) {
    blocks.push(header(entry.path, entry.data.length));
    blocks.push(entry.data);
    const pad = (BLOCK - (entry.data.length % BLOCK)) % BLOCK;
    if (pad) blocks.push(Buffer.alloc(pad));
  }
  blocks.push(Buffer.alloc(BLOCK * 2)); // end of archive: two zero blocks
  return Buffer.concat(blocks);
}

/** Reads every entry of a ustar archive; throws CS_ERR_ALGO_PACKAGE_CORRUPT on anything malformed. */
export function readTar(archive: Buffer): TarEntry[] {
  const entries: TarEntry[] = [];
  const seen = new Set<string>();
  let offset = 0;
  for (;;) {
    if (offset + BLOCK > archive.length) throw corrupt('archive ends without its end marker (truncated?)');
    const block = archive.subarray(offset, offset + BLOCK);
    if (block.every((b) => b === 0)) return entries;
    if (checksum(block) !== readOctal(block, 148, 8))
      throw corrupt(`header checksum mismatch at byte ${offset} (damaged or not a package)`);
    const type = String.fromCharCode(block[156] ?? 0);
    if (type !== '0' && type !== '\0') throw corrupt(`entry at byte ${offset} is not a regular file`);
    const name = cString(block, 0, 100);
    const prefix = block.subarray(257, 263).toString('latin1') === 'ustar\0' ? cString(block, 345, 155) : '';
    const path = prefix ? `${prefix}/${name}` : name;
    if (!path || path.startsWith('/') || path.split('/').includes('..'))
      throw corrupt(`unsafe entry path ${JSON.stringify(path)}`);
    if (seen.has(path)) throw corrupt(`entry ${path} appears twice`);
    seen.add(path);
    const size = readOctal(block, 124, 12);
    const start = offset + BLOCK;
    if (start + size > archive.length) throw corrupt(`entry ${path} is cut short (truncated package)`);
    entries.push({ path, data: archive.subarray(start, start + size) });
    offset = start + Math.ceil(size / BLOCK) * BLOCK;
  }
}

function header(path: string, size: number): Buffer {
  const block = Buffer.alloc(BLOCK);
  let name = path;
  let prefix = '';
  if (Buffer.byteLength(path) > 100) {
    const cut = path.lastIndexOf('/', 155);
    if (cut <= 0 || Buffer.byteLength(path.slice(cut + 1)) > 100)
      throw new CitysenseError('CS_ERR_ALGO_PACKAGE_PATH', `path too long for a package: ${path}`, 400);
    prefix = path.slice(0, cut);
    name = path.slice(cut + 1);
  }
  block.write(name, 0, 100, 'utf8');
  writeOctal(block, 100, 8, 0o644);
  writeOctal(block, 108, 8, 0);
  writeOctal(block, 116, 8, 0);
  writeOctal(block, 124, 12, size);
  writeOctal(block, 136, 12, 0);
  block.write('        ', 148, 8, 'latin1'); // checksum field counts as spaces while summing
  block.write('0', 156, 1, 'latin1');
  block.write('ustar\u000000', 257, 8, 'latin1');
  block.write(prefix, 345, 155, 'utf8');
  writeOctal(block, 148, 8, checksum(block));
  return block;
}

function checksum(block: Buffer): number {
  let sum = 0;
  for (let i = 0; i < BLOCK; i++) sum += i >= 148 && i < 156 ? 32 : (block[i] ?? 0);
  return sum;
}

function writeOctal(block: Buffer, offset: number, length: number, value: number): void {
  block.write(`${value.toString(8).padStart(length - 1, '0')}\0`, offset, length, 'latin1');
}

function readOctal(block: Buffer, offset: number, length: number): number {
  const text = cString(block, offset, length).trim();
  if (!/^[0-7]+$/.test(text)) throw corrupt(`bad number field ${JSON.stringify(text)} in a header`);
  return Number.parseInt(text, 8);
}

function cString(block: Buffer, offset: number, length: number): string {
  const raw = block.subarray(offset, offset + length);
  const end = raw.indexOf(0);
  return raw.subarray(0, end === -1 ? length : end).toString('utf8');
}

function corrupt(message: string): CitysenseError {
  return new CitysenseError('CS_ERR_ALGO_PACKAGE_CORRUPT', `corrupt algorithm package: ${message}`, 400);
}
