/**
 * Read planning: the registers of one unit grouped into as few requests as the protocol allows, so a
 * meter with 40 values costs a handful of round trips per poll instead of 40.
 */
import { BIT_TABLES, type ModbusTable, registerCount } from './codec.ts';
import type { ModbusRegisterConfig } from './config.ts';

/**
 * Most registers one read may ask for (FC3/FC4, Modbus Application Protocol v1.1b3 §6.3/§6.4: 1–125)
 * and most bits (FC1/FC2, §6.1/§6.2: 1–2000).
 */
export const MAX_READ = { registers: 125, bits: 2000 } as const;

/** One request of a poll: a contiguous span of one table and the map entries it carries. */
export interface ReadBlock {
  table: ModbusTable;
  address: number;
  /** Registers or bits to read. */
  count: number;
  registers: ModbusRegisterConfig[];
}

/** Width of one map entry in its table: bits count one, registers their type's size. */
function width(register: ModbusRegisterConfig): number {
  return BIT_TABLES.has(register.table) ? 1 : registerCount(register.type);
}

/**
 * Groups a unit's map into read blocks: per table, entries sorted by address, and an entry joins the
 * current block when it starts right where the block ends and the block stays within MAX_READ. Gaps
 * are never read across, because an unmapped address may well answer with an exception.
 */
export function planReads(registers: readonly ModbusRegisterConfig[]): ReadBlock[] {
  const blocks: ReadBlock[] = [];
  const byTable = new Map<ModbusTable, ModbusRegisterConfig[]>();
  for (const register of registers) {
    const list = byTable.get(register.table) ?? [];
    list.push(register);
    byTable.set(register.table, list);
  }
  for (const [table, list] of byTable) {
    const limit = BIT_TABLES.has(table) ? MAX_READ.bits : MAX_READ.registers;
    let block: ReadBlock | undefined;
    for (const register of [...list].sort((a, b) => a.address - b.address)) {
      const size = width(register);
      if (block && register.address === block.address + block.count && block.count + size <= limit) {
        block.count += size;
        block.registers.push(register);
        continue;
      }
      block = { table, address: register.address, count: size, registers: [register] };
      blocks.push(block);
    }
  }
  return blocks;
}

/** The words (or bit) of `register` inside the data a read of `block` returned. */
export function sliceOf(
  block: ReadBlock,
  register: ModbusRegisterConfig,
  data: readonly number[] | readonly boolean[],
): number[] | boolean {
  const start = register.address - block.address;
  if (BIT_TABLES.has(block.table)) return (data as readonly boolean[])[start] === true;
  return (data as readonly number[]).slice(start, start + width(register));
}
