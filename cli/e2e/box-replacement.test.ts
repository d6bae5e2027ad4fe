import { execFile } from 'node:child_process';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Agent, resolveAgentConfig } from '@citysense/edge-agent';
import { generateEd25519, signEd25519 } from '@citysense/protocol';
import { afterAll, beforeAll, describe, expect, it, onTestFailed } from 'vitest';
import { eventually } from '../../cloud-hub/src/testing/eventually.ts';
import { connectNode } from '../../cloud-hub/src/testing/node-client.ts';
import { startTestHub, type TestHub } from '../../cloud-hub/src/testing/test-hub.ts';

const CLI = fileURLToPath(new URL('../../bin/citysense.mjs', import.meta.url));
const NODE = 'pole-R7';
const PER_BOX = 60;

/** Runs the real CLI in a child process. */
function citysense(args: string[], cwd: string): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [CLI, ...args],
      { cwd, env: { ...process.env, VITEST: '' } },
      (err, stdout, stderr) =>
        resolve({ code: err ? Number((err as { code?: number }).code ?? 1) : 0, stdout, stderr }),
    );
  });
}

/**
 * A field engineer swaps the box on a pole, end to end: a real agent enrolled and
 * publishing, `citysense token replace`, a second real agent with an empty state dir
 * started with the printed command's token. The new box gets the same node id and new
 * credentials, the old box is cut off, and the readings of both boxes are one history.
 */
describe('box replacement with real agents', () => {
  let t: TestHub;
  let dir: string;
  const agents: Agent[] = [];
  const startAgent = async (stateDir: string, token: string, startTime: number, providers: string[]) => {
    const agent = new Agent(
      resolveAgentConfig({
        hubUrl: t.httpUrl,
        token,
        stateDir,
        healthIntervalMs: 60_000,
        inference: { executionProviders: providers, pollIntervalMs: 60_000 },
        uplink: { backoff: { initialMs: 100, maxMs: 500 } },
        drivers: [
          {
            type: 'load-generator',
            id: 'load',
            options: { devices: 1, metrics: 1, ratePerSecond: 100, batchSize: 10, limit: PER_BOX, startTime },
          },
        ],
      }),
    );
    agents.push(agent);
    await agent.start();
    return agent;
  };
  const readings = async (from: number, to: number) =>
    (
      await t.api<Array<{ time: string; node: string }>>(
        'GET',
        `/v1/readings?node=${NODE}&from=${from}&to=${to}`,
      )
    ).body;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'citysense-replace-'));
    t = await startTestHub({}, join(dir, 'hub'));
  });
  afterAll(async () => {
    await Promise.all(agents.map((a) => a.stop()));
    await t?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('the new box takes over node id and history; the old box is cut off; the token works once', async () => {
    const oldStart = Date.now() - 3_600_000;
    const newStart = oldStart + 600_000;
    const first = await t.api<{ token: string }>('POST', '/v1/enrollment-tokens', { name: NODE });
    const oldBox = await startAgent(join(dir, 'old-box'), first.body.token, oldStart, ['cpu']);
    onTestFailed(() => {
      process.stderr.write(
        `${JSON.stringify(
          agents.map((a) => a.status()),
          null,
          1,
        ).slice(0, 4000)}\n`,
      );
    });
    const oldPassword = oldBox.identity?.mqtt.password ?? '';
    expect(oldBox.identity?.nodeId).toBe(NODE);
    await eventually(
      async () => (await readings(oldStart, oldStart + 60_000)).length === PER_BOX,
      30_000,
      'old box readings',
    );
    expect(oldBox.status().connected).toBe(true);
    // A second session with the old credentials, to see it closed (the new box's client id takes over only the agent's own).
    const oldSession = await connectNode(t.mqttUrl, NODE, oldPassword);
    const kicked = new Promise<void>((resolve) => oldSession.once('close', () => resolve()));

    const issued = await citysense(
      ['token', 'replace', NODE, '--ttl', '1h', '--hub', t.httpUrl, '--data-dir', t.dataDir],
      dir,
    );
    expect(issued.code, issued.stderr).toBe(0);
    const token = issued.stdout.trim();
    expect(token).toMatch(/^cst_/);
    expect(issued.stderr).toContain(`npx citysense agent --hub ${t.httpUrl} --token ${token}`);

    const newDir = join(dir, 'new-box');
    const newBox = await startAgent(newDir, token, newStart, ['cuda', 'cpu']);
    expect(newBox.identity?.nodeId).toBe(NODE);
    expect(newBox.identity?.mqtt.password).not.toBe(oldPassword);
    expect(await readdir(newDir)).toContain('identity.json');

    await Promise.race([
      kicked,
      new Promise((_, reject) =>
        setTimeout(() => reject(new Error('the old session was not closed within 10 s')), 10_000).unref(),
      ),
    ]);
    await expect(connectNode(t.mqttUrl, NODE, oldPassword)).rejects.toThrow(/bad username or password/i);
    await eventually(async () => !oldBox.status().connected, 10_000, 'old agent disconnected');
    const oldHttp = await fetch(`${t.httpUrl}/v1/nodes/${NODE}/assignments`, {
      headers: { authorization: `Basic ${Buffer.from(`${NODE}:${oldPassword}`).toString('base64')}` },
    });
    expect(oldHttp.status).toBe(401);

    // One history: the old box's readings and the new box's, under the same node id.
    await eventually(
      async () => (await readings(newStart, newStart + 60_000)).length === PER_BOX,
      30_000,
      'new box readings',
    );
    const all = await readings(oldStart, newStart + 60_000);
    expect(all).toHaveLength(2 * PER_BOX);
    expect(new Set(all.map((r) => r.node))).toEqual(new Set([NODE]));
    expect(newBox.status().connected).toBe(true);
    expect(oldBox.status().connected).toBe(false);

    const node = await t.api<{ hardware: { executionProviders: string[] }; status: string }>(
      'GET',
      `/v1/nodes/${NODE}`,
    );
    expect(node.body.hardware.executionProviders).toEqual(['cuda', 'cpu']);
    await eventually(
      async () => (await t.api<{ status: string }>('GET', `/v1/nodes/${NODE}`)).body.status === 'online',
    );

    // The replacement token is one-time.
    const keys = generateEd25519();
    const reuse = await t.api<{ code: string }>(
      'POST',
      '/v1/nodes/enroll',
      {
        token,
        publicKey: keys.publicKey,
        signature: signEd25519(keys.privateKey, `${token}\n${keys.publicKey}`),
      },
      null,
    );
    expect([reuse.status, reuse.body.code]).toEqual([409, 'CS_ERR_TOKEN_USED']);
    expect(newBox.status().connected).toBe(true);
  }, 120_000);
});
