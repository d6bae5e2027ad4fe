import { mkdtemp, rm } from 'node:fs/promises';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestHub, type TestHub } from '../../../cloud-hub/src/testing/test-hub.ts';
import { resolveAgentConfig } from '../config.ts';
import { ensureIdentity } from '../enrollment.ts';
import { type DoctorReport, runDoctor } from './index.ts';

/** A port nothing listens on: bind, note it, close. */
async function closedPort(): Promise<number> {
  const server: Server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  const { port } = server.address() as { port: number };
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

const line = (report: DoctorReport, name: string) => report.checks.find((c) => c.name === name);

describe('agent doctor', () => {
  let hub: TestHub;
  let dir: string;
  let stateDir: string;

  beforeAll(async () => {
    hub = await startTestHub();
    dir = await mkdtemp(join(tmpdir(), 'citysense-doctor-'));
    stateDir = join(dir, 'state');
    const { body } = await hub.api<{ token: string }>('POST', '/v1/enrollment-tokens', { name: 'gw-doctor' });
    await ensureIdentity(
      { hubUrl: hub.httpUrl, token: body.token, stateDir, backoff: { initialMs: 50, maxMs: 200 } },
      AbortSignal.timeout(10_000),
    );
  }, 30_000);

  afterAll(async () => {
    await hub?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('says ok for hub, broker and clock of an enrolled gateway', async () => {
    const config = resolveAgentConfig({ hubUrl: hub.httpUrl, stateDir, spool: { maxBytes: 1024 * 1024 } });
    const report = await runDoctor(config, { timeoutMs: 4_000 });
    expect(line(report, 'hub')?.verdict).toBe('ok');
    expect(line(report, 'broker')?.verdict).toBe('ok');
    expect(line(report, 'clock')?.verdict).toBe('ok');
    expect(line(report, 'identity')?.verdict).toBe('ok');
    expect(line(report, 'driver:lamp-pole-sim')?.verdict).toBe('ok');
    expect(report.nodeId).toBeTruthy();
  }, 15_000);

  it('fails with explanations for a wrong hub URL, an unreachable camera and invalid driver options', async () => {
    const deadHub = `http://127.0.0.1:${await closedPort()}`;
    const cameraPort = await closedPort();
    const config = resolveAgentConfig({
      hubUrl: deadHub,
      stateDir,
      spool: { maxBytes: 1024 * 1024 },
      drivers: [
        { type: 'lamp-pole-sim', id: 'sim', options: {} },
        { type: 'modbus', id: 'plc', options: { devices: 'not a list' } },
      ],
      inference: {
        localPackages: [
          { file: 'x.csalgo', sources: [{ id: 'cam-1', url: `rtsp://127.0.0.1:${cameraPort}/stream1` }] },
        ],
      },
    });
    const report = await runDoctor(config, { timeoutMs: 4_000 });
    expect(report.healthy).toBe(false);
    const hubLine = line(report, 'hub');
    expect(hubLine?.verdict).toBe('fail');
    expect(hubLine?.detail).toContain('check hubUrl');
    const camera = line(report, `camera:127.0.0.1:${cameraPort}`);
    expect(camera?.verdict).toBe('fail');
    expect(camera?.detail).toMatch(/unreachable.*check the camera/);
    expect(line(report, 'driver:plc')?.verdict).toBe('fail');
    expect(line(report, 'driver:sim')?.verdict).toBe('ok');
    // The broker comes from the stored identity, so it still answers.
    expect(line(report, 'broker')?.verdict).toBe('ok');
    expect(report.checks.find((c) => c.name === 'identity' && c.verdict === 'warn')?.detail).toContain(
      'differs from the enrolled hub',
    );
  }, 15_000);
});
