import type { AssignmentStatus } from '@citysense/protocol';
import { componentLogger } from '@citysense/protocol';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { waitUntil } from '../testing/harness.ts';
import { HubClient } from './hub-client.ts';
import { StatusReporter } from './status-reporter.ts';
import { TestAssignmentsHub } from './test-hub.ts';

describe('status reports', () => {
  const hub = new TestAssignmentsHub();
  beforeAll(() => hub.start());
  afterAll(() => hub.close());

  it('while the hub is down, keeps only the latest state of each deployment and delivers it when it is back', async () => {
    const client = new HubClient({
      credentials: { hubUrl: hub.url, nodeId: hub.nodeId, password: hub.password },
    });
    const reporter = new StatusReporter({
      client,
      backoff: { initialMs: 20, maxMs: 50 },
      logger: componentLogger('test'),
    });
    await reporter.start();
    try {
      hub.statusAnswer = 503;
      const report = (state: AssignmentStatus['state'], progress?: number): AssignmentStatus =>
        progress === undefined ? { revision: 1, state } : { revision: 1, state, progress };
      reporter.update('d1', report('queued'));
      await hub.waitForStatus((s) => s.answer === 503, 'a refused report');
      reporter.update('d1', report('downloading', 0.5));
      reporter.update('d2', report('queued'));
      reporter.update('d1', report('verifying'));
      reporter.update('d1', report('active'));
      hub.statusAnswer = 204;
      await waitUntil(() => reporter.status().pending === 0, 'every report delivered');
      const delivered = hub.statuses.filter((s) => s.answer === 204);
      expect(delivered.map((s) => [s.deploymentId, s.status.state]).sort()).toEqual([
        ['d1', 'active'],
        ['d2', 'queued'],
      ]);
      expect(reporter.status()).toMatchObject({ pending: 0, delivered: 2, lastError: null });
      expect(reporter.status().failures).toBeGreaterThanOrEqual(1);
    } finally {
      await reporter.stop();
    }
  });
});
