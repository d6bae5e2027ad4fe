import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { HEALTH_METRICS } from '@citysense/protocol';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HealthMonitor, healthMetrics } from './health.ts';

describe('HealthMonitor', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'cs-health-'));
    for (const [zone, milli] of [
      ['thermal_zone0', '41250'],
      ['thermal_zone1', '55500'],
    ] as const) {
      await mkdir(join(dir, 'thermal', zone), { recursive: true });
      await writeFile(join(dir, 'thermal', zone, 'temp'), `${milli}\n`);
    }
  });
  afterAll(() => rm(dir, { recursive: true, force: true }));

  const spoolStats = () => ({
    records: 12,
    bytes: 3456,
    oldestAppendedAt: 10_000,
    droppedRecords: 2,
    corruptions: 0,
    firstId: 5,
    lastId: 16,
  });

  it('reports machine, spool and link figures, with the hottest thermal zone', async () => {
    const monitor = new HealthMonitor({
      stateDir: dir,
      spoolStats,
      rttMs: () => 42,
      thermalDir: join(dir, 'thermal'),
    });
    const s = await monitor.sample(25_000);
    expect(s).toMatchObject({
      time: 25_000,
      temperatureC: 55.5,
      spoolBytes: 3456,
      spoolRecords: 12,
      spoolAgeS: 15,
      droppedRecords: 2,
      linkRttMs: 42,
    });
    for (const pct of [s.cpuPercent, s.memoryPercent, s.diskPercent]) {
      expect(pct).toBeGreaterThanOrEqual(0);
      expect(pct).toBeLessThanOrEqual(100);
    }
    expect(s.uptimeS).toBeGreaterThan(0);
    const metrics = healthMetrics(s);
    expect(metrics.find((m) => m.name === HEALTH_METRICS.temperatureC)?.value).toBe(55.5);
  });

  it('leaves out what it cannot measure', async () => {
    const monitor = new HealthMonitor({
      stateDir: dir,
      spoolStats,
      rttMs: () => null,
      thermalDir: join(dir, 'none'),
    });
    const s = await monitor.sample();
    expect(s.temperatureC).toBeUndefined();
    expect(s.linkRttMs).toBeUndefined();
    const names = healthMetrics(s).map((m) => m.name);
    expect(names).not.toContain(HEALTH_METRICS.temperatureC);
    expect(names).not.toContain(HEALTH_METRICS.linkRttMs);
    expect(names).toContain(HEALTH_METRICS.cpuPercent);
  });
});
