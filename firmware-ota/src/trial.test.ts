import { describe, expect, it } from 'vitest';
import { OTA_ERRORS } from './errors.ts';
import type { OtaTrial } from './slots.ts';
import { bootDecision, type HealthSample, runHealthCheck, trialDeadline } from './trial.ts';

const trial: OtaTrial = {
  slot: 'b',
  version: '2.0.0',
  campaignId: 'c1',
  revision: 3,
  sha256: '0'.repeat(64),
  activatedAt: '2026-01-01T00:00:00.000Z',
  boots: 1,
  healthTimeoutSeconds: 30,
  previous: 'a',
};

const healthy: HealthSample = { connected: true, driversPending: [], driversFaulted: [], uplinkAcked: true };

describe('trial health check', () => {
  it('confirms once broker, drivers and an uplink ack are all there', async () => {
    const samples: HealthSample[] = [
      { connected: false, driversPending: ['d1'], driversFaulted: [], uplinkAcked: false },
      { connected: true, driversPending: [], driversFaulted: [], uplinkAcked: false },
      healthy,
    ];
    let i = 0;
    const result = await runHealthCheck(
      { deadline: Date.now() + 5000, intervalMs: 5, probe: () => samples[Math.min(i++, 2)] ?? healthy },
      new AbortController().signal,
    );
    expect(result).toEqual({ outcome: 'healthy' });
    expect(i).toBe(3);
  });

  it('times out with a code and every unmet check when a driver stays faulted and nothing is acked', async () => {
    const result = await runHealthCheck(
      {
        deadline: Date.now() + 120,
        intervalMs: 10,
        probe: () => ({ connected: true, driversPending: [], driversFaulted: ['d1'], uplinkAcked: false }),
      },
      new AbortController().signal,
    );
    expect(result).toMatchObject({
      outcome: 'timeout',
      code: OTA_ERRORS.healthTimeout,
      unmet: ['drivers', 'uplink-ack'],
    });
    if (result.outcome === 'timeout') expect(result.reason).toMatch(/driver\(s\) faulted: d1/);
  });

  it('stops without a verdict when the agent stops (the trial stays pending for the next boot)', async () => {
    const controller = new AbortController();
    const pending = runHealthCheck(
      { deadline: Date.now() + 60_000, intervalMs: 10, probe: () => ({ ...healthy, connected: false }) },
      controller.signal,
    );
    setTimeout(() => controller.abort(), 30);
    expect(await pending).toEqual({ outcome: 'aborted' });
  });

  it('counts boots: more than the allowed number is a crash loop', () => {
    expect(bootDecision({ ...trial, boots: 3 }, 3)).toEqual({ action: 'run' });
    const d = bootDecision({ ...trial, boots: 4 }, 3);
    expect(d).toMatchObject({ action: 'rollback', code: OTA_ERRORS.crashLoop });
    expect(trialDeadline(trial)).toBe(Date.parse('2026-01-01T00:00:30.000Z'));
  });
});
