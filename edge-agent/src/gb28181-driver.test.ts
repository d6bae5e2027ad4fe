import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SipEndpoint } from '@citysense/device-drivers';
import { DataType, decodeEdgeAlert, EDGE_ALERT_METRIC } from '@citysense/protocol';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Gb28181Camera } from '../../simulators/src/camera/gb28181/gb28181-camera.ts';
import { Agent } from './agent.ts';
import { resolveAgentConfig } from './config.ts';
import { builtinDrivers } from './drivers.ts';
import { type SeenMessage, TestBroker, TestEnrollServer, TestHost } from './testing/harness.ts';

const GATEWAY = '34020000002000000001';
const IPC = '34020000001320000001';
const PASSWORD = 'pole-secret';

/** A port free on UDP and TCP right now: the driver is built by the agent, so the test picks its port. */
async function freeSipPort(): Promise<number> {
  const probe = new SipEndpoint({ host: '127.0.0.1' });
  await probe.start();
  const port = probe.port;
  await probe.stop();
  return port;
}

/** True when `m` is a DDATA of the IPC whose `metric` has `value`. */
function data(metric: string, value: unknown): (m: SeenMessage) => boolean {
  return (m) => m.type === 'DDATA' && m.device === IPC && m.values.get(metric)?.value === value;
}

describe('agent with a gb28181 driver', () => {
  let dir: string;
  let broker: TestBroker;
  let hub: TestEnrollServer;
  let host: TestHost;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'cs-agent-gb-'));
    broker = await TestBroker.start();
    hub = new TestEnrollServer(broker);
    await hub.start();
    host = new TestHost(broker);
    await host.start();
    await host.publishState(true);
  });

  afterAll(async () => {
    await host?.close();
    await hub?.close();
    await broker?.close();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it("publishes the pole's camera as a device: online, its channels, and its alarm as an Edge Alert", async () => {
    const port = await freeSipPort();
    const config = resolveAgentConfig({
      hubUrl: hub.url,
      token: 'tok',
      stateDir: join(dir, 'state'),
      healthIntervalMs: 60_000,
      drivers: [
        {
          type: 'gb28181',
          id: 'pole-cams',
          options: {
            sip: { id: GATEWAY, host: '127.0.0.1', port, password: PASSWORD, keepaliveIntervalS: 1 },
            cameras: [{ id: IPC, name: '政务区广场球机' }],
            statusIntervalMs: 500,
          },
        },
      ],
    });
    const agent = new Agent(config, undefined, { driverRegistry: builtinDrivers });
    const camera = new Gb28181Camera({
      deviceId: IPC,
      password: PASSWORD,
      server: { id: GATEWAY, host: '127.0.0.1', port },
      keepaliveIntervalMs: 500,
      t1Ms: 50,
    });
    try {
      await agent.start();
      const birth = await host.nextMessage((m) => m.type === 'DBIRTH' && m.device === IPC);
      expect(birth.payload.metrics.find((m) => m.name === EDGE_ALERT_METRIC)?.datatype).toBe(DataType.Bytes);
      expect(birth.payload.metrics.map((m) => m.name)).toEqual(
        expect.arrayContaining(['Video/Online', 'Video/Registered', 'Video/Channels']),
      );
      await camera.start();
      await host.nextMessage(data('Video/Online', true));
      await host.nextMessage(data('Video/Registered', true));
      await host.nextMessage(data('Video/Channels', 1));

      await camera.raiseAlarm({ priority: 2, method: 5, type: '2', description: '画面移动' });
      const alarm = await host.nextMessage(
        (m) => m.type === 'DDATA' && m.device === IPC && m.values.has(EDGE_ALERT_METRIC),
      );
      const alert = decodeEdgeAlert(alarm.values.get(EDGE_ALERT_METRIC)?.value as Uint8Array);
      expect(alert).toMatchObject({
        kind: 'device-alarm',
        severity: 'critical',
        source: IPC,
        algorithmId: 'gb28181',
      });
      expect(alert.message).toContain('画面移动');
      expect(agent.status().drivers).toMatchObject([{ id: 'pole-cams', state: 'running', faults: 0 }]);
    } finally {
      await camera.stop();
      await agent.stop();
    }
  });
});
