import type { DriverFault, Reading } from '@citysense/device-drivers';
import { hasCode } from '@citysense/protocol';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { describeDriverContract } from '../../../device-drivers/src/contract.ts';
import { LAMP_POLE_FAULT_CODES, LampPoleSimulator, type LampPoleSimulatorConfig } from './index.ts';

const MINUTE = 60_000;
const HOUR = 60 * MINUTE;

describeDriverContract('LampPoleSimulator', () => new LampPoleSimulator({ config: { intervalMs: 10 } }));
describeDriverContract(
  'LampPoleSimulator with frequent faults',
  () => new LampPoleSimulator({ config: { intervalMs: 10, faultRate: 0.3 } }),
);

interface Run {
  readings: Reading[];
  batches: Reading[][];
  faults: Array<DriverFault & { at: number }>;
}

/** Runs a simulator on fake timers from `fromIso` for `durationMs` of simulated time. */
async function simulate(
  config: Partial<LampPoleSimulatorConfig>,
  fromIso: string,
  durationMs: number,
): Promise<Run> {
  vi.useFakeTimers({ now: new Date(fromIso) });
  const sim = new LampPoleSimulator({ config });
  const run: Run = { readings: [], batches: [], faults: [] };
  sim.on('readings', (batch) => {
    run.batches.push(batch);
    run.readings.push(...batch);
  });
  sim.on('fault', (fault) => run.faults.push({ ...fault, at: Date.now() }));
  await sim.start();
  vi.advanceTimersByTime(durationMs);
  await sim.stop();
  vi.useRealTimers();
  return run;
}

/** Hour of the day on a Beijing (UTC+8) wall clock. */
function beijingHour(time: number): number {
  return new Date(time + 8 * HOUR).getUTCHours();
}

function mean(values: number[]): number {
  return values.reduce((a, b) => a + b, 0) / values.length;
}

function valuesOf(readings: Reading[], device: string, metric: string, hours?: number[]): number[] {
  return readings
    .filter((r) => r.device === device && r.metric === metric && r.quality === 'good')
    .filter((r) => hours === undefined || hours.includes(beijingHour(r.time)))
    .map((r) => Number(r.value));
}

describe('LampPoleSimulator behaviour', () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  it('declares one device per sensor set, named after the pole', async () => {
    const sim = new LampPoleSimulator({ config: { poleId: 'bj-chaoyang-0042' } });
    await sim.start();
    await sim.stop();
    expect(sim.devices().map((d) => [d.id, d.metrics.map((m) => m.name)])).toEqual([
      ['bj-chaoyang-0042.air', ['PM2.5', 'PM10']],
      ['bj-chaoyang-0042.noise', ['LAeq']],
      ['bj-chaoyang-0042.weather', ['Temperature', 'Humidity']],
      ['bj-chaoyang-0042.water', ['Level']],
      ['bj-chaoyang-0042.manhole', ['Tilt', 'Open']],
      ['bj-chaoyang-0042.pole', ['Tilt']],
      ['bj-chaoyang-0042.lamp', ['Power', 'On']],
    ]);
  });

  it('simulates only the selected sensors', async () => {
    const run = await simulate({ sensors: ['lamp', 'noise'], faultRate: 0 }, '2024-06-01T04:00:00Z', 10_000);
    expect(new Set(run.readings.map((r) => r.device))).toEqual(
      new Set(['pole-0001.lamp', 'pole-0001.noise']),
    );
  });

  it('emits one batch per tick with every sensor, starting at once', async () => {
    const run = await simulate({ faultRate: 0 }, '2024-06-01T04:00:00Z', 10_000);
    expect(run.batches).toHaveLength(3); // t = 0, 5 s, 10 s
    for (const batch of run.batches) expect(batch).toHaveLength(11);
  });

  it('lights the lamp at night, dims it late, and switches it off at noon (Beijing)', async () => {
    const lamp = async (fromIso: string) => {
      const run = await simulate({ faultRate: 0, sensors: ['lamp'] }, fromIso, 0);
      const on = run.readings.find((r) => r.metric === 'On')?.value;
      const power = Number(run.readings.find((r) => r.metric === 'Power')?.value);
      return { on, power };
    };
    const noon = await lamp('2024-06-01T04:00:00Z'); // 12:00 in Beijing
    expect(noon.on).toBe(false);
    expect(noon.power).toBeLessThan(5);
    const evening = await lamp('2024-06-01T13:00:00Z'); // 21:00
    expect(evening.on).toBe(true);
    expect(evening.power).toBeGreaterThan(110);
    const lateNight = await lamp('2024-06-01T19:00:00Z'); // 03:00
    expect(lateNight.on).toBe(true);
    expect(lateNight.power).toBeGreaterThan(50);
    expect(lateNight.power).toBeLessThan(100);
  });

  it('follows an injected clock and time offset', async () => {
    const noonUtc = Date.parse('2024-06-01T04:00:00Z');
    const sim = new LampPoleSimulator({
      config: { sensors: ['lamp'], faultRate: 0, timeOffsetMs: 12 * HOUR, intervalMs: 5 },
      now: () => noonUtc,
    });
    const batch = new Promise<Reading[]>((resolve) => sim.on('readings', resolve));
    await sim.start();
    const readings = await batch;
    await sim.stop();
    expect(readings.every((r) => r.time === noonUtc + 12 * HOUR)).toBe(true);
    expect(readings.find((r) => r.metric === 'On')?.value).toBe(true);
  });

  it('shows rush-hour air pollution, quiet nights, warm afternoons and dry afternoons', async () => {
    const run = await simulate(
      { faultRate: 0, intervalMs: 10 * MINUTE },
      '2024-04-01T00:00:00Z',
      4 * 24 * HOUR,
    );
    const air = 'pole-0001.air';
    const rushPm = mean(valuesOf(run.readings, air, 'PM2.5', [8, 18]));
    const nightPm = mean(valuesOf(run.readings, air, 'PM2.5', [3]));
    expect(rushPm).toBeGreaterThan(1.5 * nightPm);

    const pm25 = run.readings.filter((r) => r.device === air && r.metric === 'PM2.5');
    const pm10 = run.readings.filter((r) => r.device === air && r.metric === 'PM10');
    pm25.forEach((r, i) => {
      const ratio = Number(pm10[i]?.value) / Number(r.value);
      if (Number(r.value) > 5) expect(ratio).toBeGreaterThan(1.25);
      if (Number(r.value) > 5) expect(ratio).toBeLessThan(2.05);
    });

    const noise = 'pole-0001.noise';
    expect(mean(valuesOf(run.readings, noise, 'LAeq', [2, 3, 4]))).toBeLessThan(46);
    const dayNoise = mean(valuesOf(run.readings, noise, 'LAeq', [10, 11, 12, 13, 14, 15]));
    expect(dayNoise).toBeGreaterThan(55);
    expect(dayNoise).toBeLessThan(70);

    const weather = 'pole-0001.weather';
    const hot = mean(valuesOf(run.readings, weather, 'Temperature', [14]));
    const cold = mean(valuesOf(run.readings, weather, 'Temperature', [5]));
    expect(hot - cold).toBeGreaterThan(5);
    const dryAfternoon = mean(valuesOf(run.readings, weather, 'Humidity', [14]));
    const dampDawn = mean(valuesOf(run.readings, weather, 'Humidity', [5]));
    expect(dryAfternoon).toBeLessThan(dampDawn);
  });

  it('replays the same readings for the same seed and differs for another', async () => {
    const a = await simulate({ seed: 7, faultRate: 0.05 }, '2024-06-01T00:00:00Z', HOUR);
    const b = await simulate({ seed: 7, faultRate: 0.05 }, '2024-06-01T00:00:00Z', HOUR);
    const c = await simulate({ seed: 8, faultRate: 0.05 }, '2024-06-01T00:00:00Z', HOUR);
    expect(b.batches).toEqual(a.batches);
    expect(b.faults).toEqual(a.faults);
    expect(c.batches).not.toEqual(a.batches);
  });

  it('reports stuck, dropped, out-of-range and offline sensors at a high fault rate', async () => {
    const run = await simulate({ faultRate: 0.05, intervalMs: MINUTE }, '2024-06-01T00:00:00Z', 24 * HOUR);
    const codes = new Set(run.faults.map((f) => f.code));
    expect(codes).toEqual(new Set(Object.values(LAMP_POLE_FAULT_CODES)));
    for (const fault of run.faults) expect(fault.device).toMatch(/^pole-0001\./);

    const bad = run.readings.filter((r) => r.quality === 'bad');
    expect(bad.length).toBeGreaterThan(0);
    const pm = bad.filter((r) => r.metric === 'PM2.5').map((r) => Number(r.value));
    for (const v of pm) expect(v < 0 || v > 1000).toBe(true);
    expect(run.readings.some((r) => r.quality === 'uncertain')).toBe(true);

    // A dropout removes the device from the batch of the tick it starts.
    const dropout = run.faults.find((f) => f.code === 'SENSOR_DROPOUT');
    const dropBatch = run.batches.find((b) => b[0]?.time === dropout?.at);
    expect(dropBatch?.some((r) => r.device === dropout?.device)).toBe(false);

    // A stuck sensor repeats its value on the following ticks.
    const stuck = run.faults.find((f) => f.code === 'SENSOR_STUCK');
    const stuckSeries = run.readings.filter(
      (r) =>
        r.device === stuck?.device && r.time >= (stuck?.at ?? 0) && r.time < (stuck?.at ?? 0) + 10 * MINUTE,
    );
    const firstMetric = stuckSeries[0]?.metric;
    const values = stuckSeries.filter((r) => r.metric === firstMetric).map((r) => r.value);
    expect(values.length).toBeGreaterThan(5);
    expect(new Set(values).size).toBe(1);
  });

  it('rejects bad options at start, listing every problem', async () => {
    const sim = new LampPoleSimulator({
      config: { intervalMs: 0, faultRate: 2, sensors: ['laser'], poleId: 'bad/id' } as Record<
        string,
        unknown
      >,
    });
    const err = await sim.start().catch((e: unknown) => e);
    expect(hasCode(err, 'CS_ERR_CONFIG_INVALID')).toBe(true);
    const paths = (err as { details: Array<{ path: string }> }).details.map((p) => p.path);
    expect(paths).toEqual(expect.arrayContaining(['/intervalMs', '/faultRate', '/sensors/0', '/poleId']));
    expect(sim.devices()).toEqual([]);
  });
});
