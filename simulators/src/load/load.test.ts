import { checkReadings, checkSeriesOrder, type DriverFault, type Reading } from '@citysense/device-drivers';
import { hasCode } from '@citysense/protocol';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { describeDriverContract } from '../../../device-drivers/src/contract.ts';
import { generateReadings, LOAD_GENERATOR_BEHIND, LoadGenerator, loadDevices } from './index.ts';

describeDriverContract(
  'LoadGenerator',
  () => new LoadGenerator({ config: { devices: 4, metrics: 3, ratePerSecond: 2000, batchSize: 50 } }),
);

const START = Date.parse('2024-06-01T00:00:00Z');

describe('generateReadings', () => {
  it('produces the requested count of declared, uniquely timestamped readings', () => {
    const shape = { devices: 10, metrics: 5, ratePerSecond: 20_000, startTime: START };
    const readings = generateReadings(10_000, shape);
    expect(readings).toHaveLength(10_000);
    const devices = loadDevices({ devicePrefix: 'load', ...shape });
    expect(checkReadings(devices, readings, { min: START, max: START + 3_600_000 })).toEqual([]);
    expect(checkSeriesOrder(readings, new Map())).toEqual([]);
    const keys = new Set(readings.map((r) => `${r.device}|${r.metric}|${r.time}`));
    expect(keys.size).toBe(10_000);
    // 50 series at 20 000/s: each series every 2.5 ms, so 10 000 readings span ~0.5 s.
    expect(readings.at(-1)?.time).toBeGreaterThanOrEqual(START + 497);
    expect(readings.at(-1)?.time).toBeLessThanOrEqual(START + 500);
  });

  it('is deterministic for a seed and start time', () => {
    const a = generateReadings(500, { seed: 3, startTime: START });
    expect(generateReadings(500, { seed: 3, startTime: START })).toEqual(a);
    expect(generateReadings(500, { seed: 4, startTime: START })).not.toEqual(a);
  });

  it('keeps timestamps unique when the rate outruns the millisecond', () => {
    const readings = generateReadings(1000, {
      devices: 1,
      metrics: 1,
      ratePerSecond: 1_000_000,
      startTime: START,
    });
    expect(checkSeriesOrder(readings, new Map())).toEqual([]);
  });

  it('rejects a negative count and bad options with coded errors', () => {
    expect(() => generateReadings(-1)).toThrow(
      expect.objectContaining({ code: 'CS_ERR_LOAD_COUNT_INVALID' }),
    );
    expect(() => generateReadings(1, { devices: 0 })).toThrow(
      expect.objectContaining({ code: 'CS_ERR_CONFIG_INVALID' }),
    );
  });
});

describe('LoadGenerator', () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  function collect(generator: LoadGenerator): { batches: Reading[][]; faults: DriverFault[] } {
    const out = { batches: [] as Reading[][], faults: [] as DriverFault[] };
    generator.on('readings', (b) => out.batches.push(b)).on('fault', (f) => out.faults.push(f));
    return out;
  }

  it('emits ratePerSecond readings per second in batches of batchSize', async () => {
    vi.useFakeTimers({ now: START });
    const generator = new LoadGenerator({ config: { ratePerSecond: 20_000, batchSize: 500 } });
    const out = collect(generator);
    await generator.start();
    vi.advanceTimersByTime(1000);
    await generator.stop();
    expect(out.batches.flat()).toHaveLength(20_000);
    expect(out.batches.every((b) => b.length === 500)).toBe(true);
    expect(generator.stats()).toEqual({ readings: 20_000, batches: 40, dropped: 0 });
    expect(generator.devices()).toHaveLength(100);
    expect(checkSeriesOrder(out.batches.flat(), new Map())).toEqual([]);
  });

  it('bursts on demand, up to its limit', async () => {
    const generator = new LoadGenerator({ config: { ratePerSecond: 0, batchSize: 500, limit: 2000 } });
    const out = collect(generator);
    expect(() => generator.burst(10)).toThrow(expect.objectContaining({ code: 'CS_ERR_DRIVER_NOT_RUNNING' }));
    await generator.start();
    expect(generator.burst(1234)).toBe(1234);
    expect(out.batches.map((b) => b.length)).toEqual([500, 500, 234]);
    expect(generator.burst(1234)).toBe(766);
    expect(generator.burst(1)).toBe(0);
    await generator.stop();
  });

  it('drops the backlog and reports LOAD_GENERATOR_BEHIND when the consumer stalls', async () => {
    vi.useFakeTimers({ now: START });
    let now = START;
    const generator = new LoadGenerator({ config: { ratePerSecond: 1000, batchSize: 100 }, now: () => now });
    const out = collect(generator);
    await generator.start();
    now += 5000; // the event loop was blocked for 5 s
    vi.advanceTimersByTime(100);
    now += 200;
    vi.advanceTimersByTime(200);
    await generator.stop();
    expect(out.faults.map((f) => f.code)).toEqual([LOAD_GENERATOR_BEHIND]);
    expect(generator.stats().dropped).toBe(5000);
    expect(out.batches.flat()).toHaveLength(200);
  });

  it('rejects bad options at start', async () => {
    const generator = new LoadGenerator({ config: { devicePrefix: 'x'.repeat(60), batchSize: 0 } });
    const err = await generator.start().catch((e: unknown) => e);
    expect(hasCode(err, 'CS_ERR_CONFIG_INVALID')).toBe(true);
  });
});
