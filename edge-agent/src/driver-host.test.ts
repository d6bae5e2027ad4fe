import type { Reading } from '@citysense/device-drivers';
import { componentLogger } from '@citysense/protocol';
import { afterEach, describe, expect, it } from 'vitest';
import { DriverHost, type DriverRegistry } from './driver-host.ts';
import { TelemetryRecorder } from './recorder.ts';
import { waitUntil } from './testing/harness.ts';
import { TestDriver, testDriverStats } from './testing/test-driver.ts';

describe('DriverHost', () => {
  let host: DriverHost | null = null;
  afterEach(async () => {
    await host?.stop();
    testDriverStats.clear();
  });

  const registry: DriverRegistry = {
    'lamp-pole-sim': ({ id, options }) => new TestDriver({ id, ...(options as object) }),
    'load-generator': () => {
      throw new Error('factory exploded');
    },
  };

  function start(
    drivers: ConstructorParameters<typeof DriverHost>[0]['drivers'],
    onReadings?: (b: Reading[]) => void,
  ) {
    const batches = new Map<string, number>();
    const recorder = new TelemetryRecorder({
      sink: { appendMany: async (p) => p.map((_, i) => i) },
      metricType: () => undefined,
      logger: componentLogger('recorder'),
    });
    host = new DriverHost({
      drivers,
      registry,
      backoff: { initialMs: 20, maxMs: 100 },
      onReadings: (batch, driverId) => {
        batches.set(driverId, (batches.get(driverId) ?? 0) + 1);
        (onReadings ?? ((b: Reading[]) => recorder.recordReadings(b)))(batch);
      },
    });
    return { host, batches };
  }

  it('restarts a driver that fails to start while the others keep running', async () => {
    const { host, batches } = start([
      { type: 'lamp-pole-sim', id: 'flaky', options: { failStarts: 2 } },
      { type: 'lamp-pole-sim', id: 'steady', options: {} },
      { type: 'load-generator', id: 'broken', options: {} },
    ]);
    await host.start();
    expect(host.status().find((s) => s.id === 'flaky')?.state).toBe('faulted');
    expect(host.status().find((s) => s.id === 'steady')?.state).toBe('running');
    await waitUntil(
      () => host.status().find((s) => s.id === 'flaky')?.state === 'running',
      'flaky to recover',
    );
    const flaky = host.status().find((s) => s.id === 'flaky');
    expect(flaky?.restarts).toBe(2);
    expect(flaky?.lastFault?.message).toBe('sensor bus not ready');
    await waitUntil(
      () => (batches.get('flaky') ?? 0) > 2 && (batches.get('steady') ?? 0) > 2,
      'readings from both',
    );
    const broken = host.status().find((s) => s.id === 'broken');
    expect(broken?.state).not.toBe('running');
    expect(broken?.lastFault?.message).toBe('factory exploded');
    expect(
      host
        .devices()
        .map((d) => d.id)
        .sort(),
    ).toEqual(['flaky.dev', 'steady.dev']);
  });

  it('faults and restarts a driver whose batch cannot be recorded, without touching the others', async () => {
    const { host, batches } = start([
      { type: 'lamp-pole-sim', id: 'bad', options: { badBatchAfter: 2 } },
      { type: 'lamp-pole-sim', id: 'good', options: {} },
    ]);
    await host.start();
    await waitUntil(
      () => (host.status().find((s) => s.id === 'bad')?.restarts ?? 0) >= 1,
      'a restart of the bad driver',
    );
    expect(host.status().find((s) => s.id === 'bad')?.lastFault?.code).toBe('CS_ERR_READING_INVALID');
    expect(host.status().find((s) => s.id === 'good')).toMatchObject({
      state: 'running',
      faults: 0,
      restarts: 0,
    });
    const before = batches.get('good') ?? 0;
    await waitUntil(() => (batches.get('good') ?? 0) > before + 3, 'good driver still producing');
  });
});
