import ModbusSerial from 'modbus-serial';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ModbusSimulator } from './simulator.ts';

const simulator = new ModbusSimulator({ config: { seed: 7 } });
const client = new ModbusSerial.default();

beforeAll(async () => {
  await Promise.all([simulator.start(), simulator.start()]);
  await client.connectTCP(simulator.host, { port: simulator.port });
  client.setTimeout(300);
});
afterAll(async () => {
  await new Promise<void>((resolve) => client.close(() => resolve()));
  await simulator.stop();
  await simulator.stop();
});

describe('ModbusSimulator', () => {
  it('listens on a free port and serves the power meter as float32 big-endian input registers', async () => {
    expect(simulator.port).toBeGreaterThan(0);
    client.setID(1);
    const { buffer } = await client.readInputRegisters(0, 8);
    const voltage = buffer.readFloatBE(0);
    const current = buffer.readFloatBE(4);
    expect(voltage).toBeGreaterThan(200);
    expect(voltage).toBeLessThan(260);
    expect(buffer.readFloatBE(8)).toBeCloseTo(
      voltage * current * Number(simulator.value(1, 'Power/Factor')),
      0,
    );
  });

  it('answers exception 2 for an address a unit lacks, or an injected code for a range', async () => {
    client.setID(2);
    await expect(client.readHoldingRegisters(500, 1)).rejects.toMatchObject({ modbusCode: 2 });
    simulator.failRange(2, 'holding', 0, 0, 6);
    await expect(client.readHoldingRegisters(0, 2)).rejects.toMatchObject({ modbusCode: 6 });
    simulator.clearFaults();
    expect((await client.readHoldingRegisters(0, 2)).data).toHaveLength(2);
  });

  it('keeps a silenced unit quiet while the others answer', async () => {
    simulator.silence(3);
    client.setID(3);
    await expect(client.readDiscreteInputs(0, 2)).rejects.toMatchObject({ name: 'TransactionTimedOutError' });
    client.setID(1);
    expect((await client.readHoldingRegisters(100, 2)).data).toHaveLength(2);
    simulator.silence(3, false);
    client.setID(3);
    expect((await client.readDiscreteInputs(0, 2)).data.slice(0, 2)).toEqual([expect.any(Boolean), false]);
  });
});
