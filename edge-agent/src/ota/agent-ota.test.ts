import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { OTA_ERRORS, packArtifact, readSlotsState } from '@citysense/firmware-ota';
import { DataType, encodePayload, generateSigningKey, OTA_REVISION } from '@citysense/protocol';
import { connectAsync } from 'mqtt';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { Agent } from '../agent.ts';
import { resolveAgentConfig } from '../config.ts';
import type { DriverRegistry } from '../driver-host.ts';
import { Spool } from '../spool/index.ts';
import { TestBroker, TestEnrollServer, TestHost, waitUntil } from '../testing/harness.ts';
import { TestDriver } from '../testing/test-driver.ts';
import { TestOtaHub } from './test-ota-hub.ts';

const NODE = 'gw-test-1';

describe('agent with OTA: a new firmware whose drivers fault is rolled back on its own', () => {
  let broker: TestBroker;
  let enroll: TestEnrollServer;
  const hub = new TestOtaHub();
  const cleanups: Array<() => Promise<void>> = [];

  beforeAll(async () => {
    broker = await TestBroker.start();
    enroll = new TestEnrollServer(broker);
    await enroll.start();
    await hub.start();
    hub.enrollUrl = enroll.url;
  });
  afterEach(async () => {
    for (const c of cleanups.splice(0).reverse()) await c();
  });
  afterAll(async () => {
    await hub.close();
    await enroll.close();
    await broker.close();
  });

  /** The "firmware" decides whether the sensor bus comes up: a broken one makes the driver fault. */
  function registry(sensorBusWorks: boolean): DriverRegistry {
    return {
      'lamp-pole-sim': ({ id }) =>
        new TestDriver({ id, intervalMs: 20, failStarts: sensorBusWorks ? 0 : 1000 }),
    };
  }

  function agent(dir: string, sensorBusWorks: boolean): Agent {
    const config = resolveAgentConfig({
      hubUrl: hub.url,
      token: 'tok',
      stateDir: dir,
      healthIntervalMs: 200,
      spool: { maxBytes: 16 * 1024 * 1024 },
      uplink: { window: 64, ackTimeoutMs: 3000, backoff: { initialMs: 100, maxMs: 400 } },
      inference: { enabled: false },
      ota: { pollIntervalMs: 60_000, firmwareVersion: '1.0.0', hardwareModel: 'LPG-3' },
      drivers: [{ type: 'lamp-pole-sim', id: 'd1', options: {} }],
    });
    const a = new Agent(config, undefined, { driverRegistry: registry(sensorBusWorks) });
    cleanups.push(() => a.stop());
    return a;
  }

  it('downloads on an NCMD nudge, restarts into the new slot, fails the health check, rolls back and loses no data', async () => {
    const host = new TestHost(broker);
    await host.start();
    await host.publishState(true);
    cleanups.push(() => host.close());
    const dir = await mkdtemp(join(tmpdir(), 'cs-agent-ota-'));
    cleanups.push(() => rm(dir, { recursive: true, force: true }));

    const key = generateSigningKey('ed25519');
    const image = join(dir, 'fw.img');
    await writeFile(image, randomBytes(400_000));
    const artifact = join(dir, 'fw.csota');
    await packArtifact(
      { name: 'lamp-gateway-fw', version: '2.0.0', target: 'firmware', hardware: ['LPG-3'] },
      image,
      artifact,
      key,
    );
    const served = await hub.serve('fw-2', artifact);

    // Factory firmware 1.0.0 runs; the hub has nothing for it yet.
    const first = agent(dir, true);
    await first.start();
    await waitUntil(() => first.status().lastAckAt, 'a first ack');
    await waitUntil(() => hub.documentGets > 0, 'the first OTA poll');
    hub.document = {
      nodeId: NODE,
      revision: 1,
      updates: [
        {
          campaignId: 'camp-fw',
          artifactId: 'fw-2',
          name: 'lamp-gateway-fw',
          version: '2.0.0',
          target: 'firmware',
          sha256: served.sha256,
          bytes: served.bytes,
          filePath: served.filePath,
          healthTimeoutSeconds: 10,
        },
      ],
      trustedKeys: [key.publicKey],
    };
    // The hub stops acking: what the drivers record now waits in the spool across the restart.
    host.autoAck = false;
    broker.credentials.set('ncmd-test', 'pw');
    const ncmd = await connectAsync(broker.url, {
      username: 'ncmd-test',
      password: 'pw',
      clientId: 'ncmd-test',
    });
    const payload = encodePayload({
      timestamp: Date.now(),
      metrics: [{ name: OTA_REVISION, datatype: DataType.Int64, value: 1, timestamp: Date.now() }],
    });
    await ncmd.publishAsync(`spBv1.0/city/NCMD/${NODE}`, Buffer.from(payload), { qos: 1 });
    await ncmd.endAsync();

    const reason = await first.restartRequested();
    expect(reason).toMatch(/activate firmware 2\.0\.0 in slot a/);
    await first.stop();
    // What the stopped agent left in its spool (flushed on stop): every one must reach the hub.
    const spool = new Spool({ dir: join(dir, 'spool'), maxBytes: 16 * 1024 * 1024 });
    await spool.open();
    const waiting = (await spool.read(spool.firstUnackedId() ?? 1, 100_000, 64 * 1024 * 1024)).map(
      (r) => r.id,
    );
    await spool.close();
    expect(waiting.length).toBeGreaterThan(0);
    expect((await readSlotsState(dir, 'firmware')).trial).toMatchObject({ version: '2.0.0', slot: 'a' });

    // "Reboot" into firmware 2.0.0: the sensor bus is dead, the driver faults; the hub acks again.
    host.autoAck = true;
    const second = agent(dir, false);
    await second.start();
    expect(second.status().ota?.targets.firmware).toMatchObject({ runningVersion: '2.0.0', slot: 'a' });
    const rolled = await hub.waitForStatus(
      (s) => s.campaignId === 'camp-fw' && s.status.state === 'rolled-back',
      'rolled-back',
      20_000,
    );
    expect(rolled.status).toMatchObject({ code: OTA_ERRORS.healthTimeout, runningVersion: '1.0.0' });
    expect(rolled.status.reason).toMatch(/d1/);
    expect(await second.restartRequested()).toMatch(/rolled back/);
    // Records spooled before the restart were sent again and acked after it: nothing was lost.
    await waitUntil(() => second.status().spool?.records === 0, 'an empty spool');
    await second.stop();
    const delivered = new Set(host.spoolIds());
    expect(waiting.filter((id) => !delivered.has(id))).toEqual([]);

    // Back on factory firmware: it runs and does not try 2.0.0 again.
    const third = agent(dir, true);
    await third.start();
    expect(third.status().ota?.targets.firmware).toMatchObject({
      runningVersion: '1.0.0',
      slot: null,
      trial: null,
    });
    const downloads = hub.downloads.length;
    await waitUntil(() => third.status().ota?.revision === 1, 'a poll of revision 1');
    await waitUntil(() => third.status().lastAckAt, 'acks on the factory firmware');
    expect(hub.downloads.length).toBe(downloads);
  });
});
