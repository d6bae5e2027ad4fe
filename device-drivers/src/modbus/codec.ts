/**
 * Register codec: turns the 16-bit words of a Modbus table into typed values and back. Modbus itself
 * only fixes big-endian bytes inside one register (Modbus Application Protocol v1.1b3 §4.2); how a 32- or
 * 64-bit value spans registers is up to the vendor, hence the four byte orders of the register map.
 */
import type { MetricType } from '../driver.ts';

/** The four Modbus data tables. */
export const MODBUS_TABLES = ['holding', 'input', 'coil', 'discrete'] as const;
/** One Modbus data table. */
export type ModbusTable = (typeof MODBUS_TABLES)[number];
/** Tables of single bits. */
export const BIT_TABLES: ReadonlySet<ModbusTable> = new Set<ModbusTable>(['coil', 'discrete']);

/** Value encodings of a register map entry. */
export const MODBUS_VALUE_TYPES = [
  'int16',
  'uint16',
  'int32',
  'uint32',
  'float32',
  'float64',
  'bool',
] as const;
/** One value encoding. */
export type ModbusValueType = (typeof MODBUS_VALUE_TYPES)[number];

/**
 * Byte orders, named by where the bytes A (most significant) to D land on the wire: ABCD big-endian,
 * CDAB word-swapped (common on meters), BADC byte-swapped, DCBA little-endian. For 64-bit values the same
 * two swaps apply to all four words; 16-bit values see only the byte swap.
 */
export const MODBUS_BYTE_ORDERS = ['ABCD', 'CDAB', 'BADC', 'DCBA'] as const;
/** One byte order. */
export type ModbusByteOrder = (typeof MODBUS_BYTE_ORDERS)[number];

/** Registers a value of `type` occupies (a bool on a register table takes one register). */
export function registerCount(type: ModbusValueType): number {
  switch (type) {
    case 'int32':
    case 'uint32':
    case 'float32':
      return 2;
    case 'float64':
      return 4;
    default:
      return 1;
  }
}

/** The Sparkplug type a value is reported as: integers stay integers unless a fractional scale or offset applies. */
export function metricTypeOf(register: { type: ModbusValueType; scale: number; offset: number }): MetricType {
  if (register.type === 'bool') return 'bool';
  if (register.type === 'float32' || register.type === 'float64') return 'double';
  return Number.isInteger(register.scale) && Number.isInteger(register.offset) ? 'int' : 'double';
}

const swapsWords = (order: ModbusByteOrder): boolean => order === 'CDAB' || order === 'DCBA';
const swapsBytes = (order: ModbusByteOrder): boolean => order === 'BADC' || order === 'DCBA';

/** Wire words (as read) → big-endian bytes ABCD…; the mapping is its own inverse. */
function toBigEndian(words: readonly number[], order: ModbusByteOrder): Buffer {
  const ordered = swapsWords(order) ? [...words].reverse() : words;
  const bytes = Buffer.alloc(ordered.length * 2);
  ordered.forEach((word, i) => {
    bytes.writeUInt16BE(word & 0xffff, i * 2);
  });
  if (swapsBytes(order)) bytes.swap16();
  return bytes;
}

/** Big-endian bytes → wire words in `order`. */
function fromBigEndian(bytes: Buffer, order: ModbusByteOrder): number[] {
  const copy = Buffer.from(bytes);
  if (swapsBytes(order)) copy.swap16();
  const words: number[] = [];
  for (let i = 0; i < copy.length; i += 2) words.push(copy.readUInt16BE(i));
  return swapsWords(order) ? words.reverse() : words;
}

/** The raw (unscaled) value of `type` held in `words`, which must be exactly registerCount(type) long. */
export function decodeRegisters(
  words: readonly number[],
  type: ModbusValueType,
  order: ModbusByteOrder,
): number {
  const bytes = toBigEndian(words, order);
  switch (type) {
    case 'int16':
      return bytes.readInt16BE(0);
    case 'uint16':
    case 'bool':
      return bytes.readUInt16BE(0);
    case 'int32':
      return bytes.readInt32BE(0);
    case 'uint32':
      return bytes.readUInt32BE(0);
    case 'float32':
      return bytes.readFloatBE(0);
    case 'float64':
      return bytes.readDoubleBE(0);
  }
}

/** The words that hold raw value `raw` as `type`; throws RangeError when it does not fit. */
export function encodeRegisters(raw: number, type: ModbusValueType, order: ModbusByteOrder): number[] {
  const bytes = Buffer.alloc(registerCount(type) * 2);
  switch (type) {
    case 'int16':
      bytes.writeInt16BE(raw, 0);
      break;
    case 'uint16':
    case 'bool':
      bytes.writeUInt16BE(raw, 0);
      break;
    case 'int32':
      bytes.writeInt32BE(raw, 0);
      break;
    case 'uint32':
      bytes.writeUInt32BE(raw, 0);
      break;
    case 'float32':
      bytes.writeFloatBE(raw, 0);
      break;
    case 'float64':
      bytes.writeDoubleBE(raw, 0);
      break;
  }
  return fromBigEndian(bytes, order);
}

/** What a register map entry needs to be decoded. */
export interface RegisterCodec {
  table: ModbusTable;
  type: ModbusValueType;
  byteOrder: ModbusByteOrder;
  scale: number;
  offset: number;
}

/** The engineering value of one map entry from its words (register tables) or bit (coil, discrete). */
export function decodeValue(register: RegisterCodec, data: readonly number[] | boolean): number | boolean {
  if (typeof data === 'boolean') return data;
  const raw = decodeRegisters(data, register.type, register.byteOrder);
  if (register.type === 'bool') return raw !== 0;
  return raw * register.scale + register.offset;
}

/** The words to write for engineering value `value`; integer types round. Throws RangeError when out of range. */
export function encodeValue(register: RegisterCodec, value: number | boolean): number[] {
  if (register.type === 'bool') return [value === true || value === 1 ? 1 : 0];
  if (typeof value !== 'number' || !Number.isFinite(value))
    throw new RangeError(`${String(value)} is not a number`);
  const raw = (value - register.offset) / register.scale;
  const isFloat = register.type === 'float32' || register.type === 'float64';
  return encodeRegisters(isFloat ? raw : Math.round(raw), register.type, register.byteOrder);
}
