import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eventually } from '../../cloud-hub/src/testing/eventually.ts';
import { startTestHub, type TestHub } from '../../cloud-hub/src/testing/test-hub.ts';
import { OnvifCamera } from '../../simulators/src/camera/onvif/index.ts';
import { Agent } from './agent.ts';
import { resolveAgentConfig } from './config.ts';
import { builtinDrivers } from './drivers.ts';

interface Detection {
  node: string;
  source: string;
  algorithmId: string;
  algorithmVersion: string;
  label: string;
  classId: number;
  likelihood: number;
  objectId: number;
  box: { left: number; top: number; right: number; bottom: number };
}

describe('camera analytics (ONVIF Profile M) end to end', () => {
  let dir: string;
  let t: TestHub;
  const camera = new OnvifCamera({ username: 'citysense', password: 's3cret!', discovery: false });

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'cs-agent-onvif-'));
    await camera.start();
    t = await startTestHub();
  });

  afterAll(async () => {
    await t?.stop();
    await camera.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it("lands the camera's own detections in the hub's detections, next to edge inference's", async () => {
    camera.setAnalyticsObjects([
      {
        objectId: 12,
        classes: [{ type: 'Vehicle', likelihood: 0.9 }],
        box: { left: 0.5, top: 0.5, right: 0.75, bottom: 1 },
      },
    ]);
    const { body } = await t.api<{ token: string }>('POST', '/v1/enrollment-tokens', { name: 'gw-onvif' });
    const agent = new Agent(
      resolveAgentConfig({
        hubUrl: t.httpUrl,
        token: body.token,
        stateDir: join(dir, 'state'),
        healthIntervalMs: 60_000,
        drivers: [
          {
            type: 'onvif',
            id: 'onvif',
            options: {
              cameraId: 'cam-east',
              hostname: '127.0.0.1',
              port: camera.port,
              username: 'citysense',
              password: 's3cret!',
              metadata: { url: camera.metadataUrl, intervalMs: 200 },
            },
          },
        ],
      }),
      undefined,
      { driverRegistry: builtinDrivers },
    );
    try {
      await agent.start();
      const detections = await eventually(
        async () => {
          const res = await t.api<Detection[]>(
            'GET',
            `/v1/analytics/detections?source=cam-east&label=vehicle&from=${Date.now() - 600_000}&to=${Date.now() + 60_000}`,
          );
          return res.status === 200 && res.body.length > 0 ? res.body : undefined;
        },
        30_000,
        'camera detections at the hub',
      );
      expect(detections[0]).toMatchObject({
        source: 'cam-east',
        algorithmId: 'onvif-analytics',
        algorithmVersion: 'SimCam/1.0.0-sim',
        label: 'vehicle',
        objectId: 12,
      });
      const box = detections[0]?.box;
      expect([box?.left, box?.top, box?.right, box?.bottom].map((v) => Number(v?.toFixed(3)))).toEqual([
        0.5, 0.5, 0.75, 1,
      ]);
    } finally {
      await agent.stop();
    }
  });
});
