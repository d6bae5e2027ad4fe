import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { packAlgorithm } from '@citysense/algorithms';
import {
  ASSIGNMENTS_REVISION,
  type AssignmentsDocument,
  DataType,
  decodeVideoAnalyticsFrame,
  encodePayload,
  generateEd25519,
  generateSigningKey,
  VIDEO_ANALYTICS_METRIC,
} from '@citysense/protocol';
import { connectAsync } from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Agent } from '../agent.ts';
import { resolveAgentConfig } from '../config.ts';
import { IdentityStore } from '../identity-store.ts';
import { TestBroker, TestHost, waitUntil } from '../testing/harness.ts';
import { TestAssignmentsHub } from './test-hub.ts';

const REFERENCE = fileURLToPath(new URL('../../../algorithms/packages/yolox-nano/', import.meta.url));
const SAMPLES = join(REFERENCE, 'samples');

describe('inference inside the agent', () => {
  const hub = new TestAssignmentsHub();
  const key = generateSigningKey('ed25519');
  let broker: TestBroker;
  let dir: string;

  beforeAll(async () => {
    broker = await TestBroker.start();
    await hub.start();
    dir = await mkdtemp(join(tmpdir(), 'cs-agent-inference-'));
    // An enrolled node: its MQTT credentials are also its HTTP Basic credentials at the hub.
    broker.credentials.set(hub.nodeId, hub.password);
    await new IdentityStore(dir).save({
      version: 1,
      nodeId: hub.nodeId,
      groupId: 'city',
      hubId: 'hub-1',
      hubUrl: hub.url,
      ...generateEd25519(),
      mqtt: { url: broker.url, username: hub.nodeId, password: hub.password, clientId: hub.nodeId },
      enrolledAt: new Date().toISOString(),
    });
  });
  afterAll(async () => {
    await hub.close();
    await broker.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('declares the sources in births, sends analytics frames as DDATA, and syncs on NCMD', async () => {
    const host = new TestHost(broker, 'city', hub.nodeId, 'hub-1');
    await host.start();
    await host.publishState(true);
    const served = hub.serve('yolox-nano', '1.0.0', (await packAlgorithm(REFERENCE, key)).file);
    const assignment = (sources: string[]) => ({
      deploymentId: 'd1',
      algorithmId: 'yolox-nano',
      version: '1.0.0',
      sha256: served.sha256,
      bytes: served.bytes,
      packagePath: served.path,
      sources: sources.map((id) => ({ id, url: SAMPLES, fps: 5 })),
    });
    const doc = (revision: number, sources: string[]): AssignmentsDocument => ({
      nodeId: hub.nodeId,
      revision,
      assignments: [assignment(sources)],
      trustedKeys: [key.publicKey],
    });
    hub.document = doc(1, ['cam-1']);
    const agent = new Agent(
      resolveAgentConfig({
        hubUrl: hub.url,
        stateDir: dir,
        drivers: [],
        healthIntervalMs: 60_000,
        uplink: { backoff: { initialMs: 100, maxMs: 400 } },
        // Only the start, the MQTT connect and the NCMD make it poll.
        inference: { pollIntervalMs: 600_000, statsIntervalMs: 500 },
      }),
    );
    try {
      await agent.start();
      const dbirth = await waitUntil(
        () => host.ofType('DBIRTH').find((m) => m.device === 'cam-1'),
        'DBIRTH of cam-1',
        30_000,
      );
      expect(dbirth.payload.metrics.find((m) => m.name === VIDEO_ANALYTICS_METRIC)?.datatype).toBe(
        DataType.Bytes,
      );
      const ddata = await waitUntil(
        () => host.ofType('DDATA').find((m) => m.device === 'cam-1' && m.values.has(VIDEO_ANALYTICS_METRIC)),
        'analytics DDATA',
      );
      const frame = decodeVideoAnalyticsFrame(ddata.values.get(VIDEO_ANALYTICS_METRIC)?.value as Uint8Array);
      expect(frame).toMatchObject({ source: 'cam-1', algorithmId: 'yolox-nano', algorithmVersion: '1.0.0' });
      expect(agent.status().inference?.deployments[0]).toMatchObject({
        state: 'active',
        activeVersion: '1.0.0',
      });

      // The hub adds a camera and nudges the node: a rebirth declares it.
      hub.document = doc(2, ['cam-1', 'cam-2']);
      const polls = hub.assignmentGets;
      const client = await connectAsync(broker.url, {
        username: 'host',
        password: 'host-pw',
        clientId: 'nudge',
      });
      await client.publishAsync(
        `spBv1.0/city/NCMD/${hub.nodeId}`,
        Buffer.from(
          encodePayload({
            timestamp: Date.now(),
            metrics: [
              { name: ASSIGNMENTS_REVISION, datatype: DataType.Int64, value: 2, timestamp: Date.now() },
            ],
          }),
        ),
        { qos: 1 },
      );
      await client.endAsync();
      await waitUntil(() => host.ofType('DBIRTH').find((m) => m.device === 'cam-2'), 'DBIRTH of cam-2');
      expect(hub.assignmentGets).toBeGreaterThan(polls);
      await waitUntil(
        () => host.ofType('DDATA').find((m) => m.device === 'cam-2' && m.values.has(VIDEO_ANALYTICS_METRIC)),
        'analytics DDATA from cam-2',
      );
      await hub.waitForStatus(
        (s) => s.status.revision === 2 && s.status.state === 'active',
        'rev 2 reported',
      );
    } finally {
      await agent.stop();
      await host.close();
    }
  });
});
