import { hasCode } from '@citysense/protocol';
import { describe, expect, it } from 'vitest';
import {
  decodeRegisters,
  decodeValue,
  encodeRegisters,
  encodeValue,
  type ModbusByteOrder,
  type ModbusValueType,
} from './codec.ts';
import { type ModbusRegisterConfig, resolveModbusConfig } from './config.ts';
import { planReads } from './read-plan.ts';

/** Wire words written out by hand from the big-endian bytes, so the codec is not checked against itself. */
const VECTORS: Array<[ModbusValueType, ModbusByteOrder, number[], number]> = [
  ['int16', 'ABCD', [0xfb2e], -1234],
  ['int16', 'BADC', [0x2efb], -1234],
  ['int16', 'CDAB', [0xfb2e], -1234],
  ['int16', 'DCBA', [0x2efb], -1234],
  ['uint16', 'ABCD', [0xabcd], 0xabcd],
  ['uint16', 'DCBA', [0xcdab], 0xabcd],
  ['int32', 'ABCD', [0xffff, 0xfffe], -2],
  ['int32', 'CDAB', [0xfffe, 0xffff], -2],
  ['int32', 'BADC', [0xffff, 0xfeff], -2],
  ['int32', 'DCBA', [0xfeff, 0xffff], -2],
  ['uint32', 'ABCD', [0x1234, 0x5678], 0x12345678],
  ['uint32', 'CDAB', [0x5678, 0x1234], 0x12345678],
  ['uint32', 'BADC', [0x3412, 0x7856], 0x12345678],
  ['uint32', 'DCBA', [0x7856, 0x3412], 0x12345678],
  ['uint32', 'ABCD', [0xffff, 0xffff], 4294967295],
  ['float32', 'ABCD', [0x42f6, 0xe979], Math.fround(123.456)],
  ['float32', 'CDAB', [0xe979, 0x42f6], Math.fround(123.456)],
  ['float32', 'BADC', [0xf642, 0x79e9], Math.fround(123.456)],
  ['float32', 'DCBA', [0x79e9, 0xf642], Math.fround(123.456)],
  ['float64', 'ABCD', [0xc0c8, 0x1cd6, 0xe631, 0xf8a1], -12345.6789],
  ['float64', 'CDAB', [0xf8a1, 0xe631, 0x1cd6, 0xc0c8], -12345.6789],
  ['float64', 'BADC', [0xc8c0, 0xd61c, 0x31e6, 0xa1f8], -12345.6789],
  ['float64', 'DCBA', [0xa1f8, 0x31e6, 0xd61c, 0xc8c0], -12345.6789],
];

const entry = (over: Partial<ModbusRegisterConfig>): ModbusRegisterConfig => ({
  metric: 'm',
  table: 'holding',
  address: 0,
  type: 'uint16',
  byteOrder: 'ABCD',
  scale: 1,
  offset: 0,
  ...over,
});

describe('Modbus register codec', () => {
  it.each(VECTORS)('%s %s decodes %j to %d and encodes it back', (type, order, words, value) => {
    expect(decodeRegisters(words, type, order)).toBe(value);
    expect(encodeRegisters(value, type, order)).toEqual(words);
  });

  it('applies scale and offset both ways, and reads a register as bool by non-zero', () => {
    const level = entry({ type: 'int16', scale: 0.001 });
    expect(decodeValue(level, [0xfc18])).toBeCloseTo(-1.0, 9);
    expect(encodeValue(level, 0.352)).toEqual([352]);
    const temperature = entry({ type: 'int16', scale: 0.1, offset: -40 });
    expect(decodeValue(temperature, [650])).toBeCloseTo(25, 9);
    expect(decodeValue(entry({ type: 'bool' }), [0x0100])).toBe(true);
    expect(decodeValue(entry({ table: 'coil', type: 'bool' }), false)).toBe(false);
    expect(() => encodeValue(entry({ type: 'uint16' }), 70_000)).toThrow(RangeError);
  });
});

describe('Modbus read planning', () => {
  it('groups contiguous registers per table, never across gaps or past 125 registers', () => {
    const registers = [
      entry({ metric: 'a', address: 0, type: 'float32' }),
      entry({ metric: 'b', address: 2, type: 'float64' }),
      entry({ metric: 'c', address: 7, type: 'uint16' }),
      entry({ metric: 'd', address: 6, type: 'uint16' }),
      entry({ metric: 'e', address: 0, table: 'input' }),
      entry({ metric: 'f', address: 0, table: 'coil', type: 'bool' }),
      entry({ metric: 'g', address: 1, table: 'coil', type: 'bool' }),
    ];
    const blocks = planReads(registers).map((b) => [
      b.table,
      b.address,
      b.count,
      b.registers.map((r) => r.metric),
    ]);
    expect(blocks).toEqual([
      ['holding', 0, 8, ['a', 'b', 'd', 'c']],
      ['input', 0, 1, ['e']],
      ['coil', 0, 2, ['f', 'g']],
    ]);
    const many = Array.from({ length: 100 }, (_, i) =>
      entry({ metric: `r${i}`, address: i * 2, type: 'uint32' }),
    );
    expect(planReads(many).map((b) => b.count)).toEqual([124, 76]);
  });
});

describe('Modbus driver options', () => {
  it('lists every register map problem at once', () => {
    let caught: unknown;
    try {
      resolveModbusConfig({
        transport: 'rtu',
        devices: [
          {
            id: 'meter',
            registers: [
              { metric: 'V', table: 'holding', address: 0, type: 'float32' },
              { metric: 'I', table: 'holding', address: 1, type: 'uint16' },
              { metric: 'door', table: 'coil', address: 0, type: 'float32' },
              { metric: 'big', table: 'input', address: 65534, type: 'float64' },
              { metric: 'V', table: 'input', address: 10, type: 'int16' },
            ],
          },
          {
            id: 'meter',
            registers: [{ metric: 'x', table: 'discrete', address: 0, type: 'bool', scale: 2 }],
          },
        ],
      });
    } catch (err) {
      caught = err;
    }
    expect(hasCode(caught, 'CS_ERR_CONFIG_INVALID')).toBe(true);
    const problems = (caught as { details: Array<{ path: string; message: string }> }).details;
    expect(problems.map((p) => p.path).sort()).toEqual(
      [
        '/serialPort',
        '/devices/0/registers/1/address',
        '/devices/0/registers/2/type',
        '/devices/0/registers/3/address',
        '/devices/0/registers/4/metric',
        '/devices/1/id',
        '/devices/1/registers/0',
      ].sort(),
    );
    expect(problems.find((p) => p.path === '/devices/0/registers/2/type')?.message).toMatch(/must be bool/);
    expect(problems.find((p) => p.path === '/devices/0/registers/1/address')?.message).toMatch(/overlaps/);
  });

  it('reports schema problems with their paths and the choices', () => {
    expect(() =>
      resolveModbusConfig({
        port: 0,
        devices: [{ id: 'x', registers: [{ metric: 'a', table: 'eeprom', type: 'int8' }] }],
      }),
    ).toThrow(/\/port.*\/devices\/0\/registers\/0\/table: must be one of holding, input, coil, discrete/s);
  });
});
