import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import type { AssignmentStatus } from '@citysense/protocol';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  assignmentsOf,
  enrollNode,
  type FleetNode,
  grantNodes,
  publishReference,
  reportStatus,
  statsOf,
} from '../../cloud-hub/src/deployments/test-fleet.ts';
import { startTestHub, type TestHub } from '../../cloud-hub/src/testing/test-hub.ts';
import { deployActionOf, runDeployAction } from './deploy.ts';

/** Plays the agents of `nodes`: reports `outcome` for every assignment revision they get. */
async function playAgents(
  t: TestHub,
  nodes: FleetNode[],
  outcome: 'active' | 'failed',
  signal: AbortSignal,
): Promise<void> {
  const reported = new Set<string>();
  while (!signal.aborted) {
    for (const n of nodes) {
      const doc = await assignmentsOf(t, n);
      for (const a of doc.assignments) {
        const key = `${n.nodeId}/${a.deploymentId}/${doc.revision}`;
        if (reported.has(key)) continue;
        reported.add(key);
        const status: Omit<AssignmentStatus, 'revision'> =
          outcome === 'active'
            ? { state: 'active', stats: statsOf(a.sources.length * 2) }
            : { state: 'failed', code: 'CS_ERR_INFER_LOAD', reason: 'out of memory loading the model' };
        await reportStatus(t, n, a.deploymentId, { revision: doc.revision, ...status });
      }
    }
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe('citysense algo deploy', () => {
  let t: TestHub;
  let nodes: FleetNode[];
  let dir: string;

  const run = async (argv: string[], tty = false) => {
    const chunks: string[] = [];
    const out = Object.assign(
      new Writable({
        write(chunk, _encoding, done) {
          chunks.push(String(chunk));
          done();
        },
      }),
      tty ? { isTTY: true, columns: 120 } : {},
    );
    const code = await runDeployAction([...argv, '--hub', t.httpUrl, '--admin-token', t.adminToken], {
      out,
      env: {},
    });
    return { code, text: chunks.join('') };
  };

  beforeAll(async () => {
    t = await startTestHub({ deploymentCheckIntervalMs: 100 });
    dir = await mkdtemp(join(tmpdir(), 'citysense-deploy-cli-'));
    await publishReference(t, ['1.0.0']);
    nodes = [];
    for (const name of ['kiosk-1', 'kiosk-2', 'kiosk-3']) nodes.push(await enrollNode(t, name));
    const ids = nodes.map((n) => n.nodeId);
    await grantNodes(t, 'parks', ids, ids);
  });
  afterAll(async () => {
    await t?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it('finds its actions among the algo arguments', () => {
    expect(deployActionOf(['--hub', 'http://hub:8080', 'deploy', 'yolox-nano', '1.0.0'])).toBe('deploy');
    expect(deployActionOf(['rollback', 'dep_1', '--reason', 'pack'])).toBe('rollback');
    expect(deployActionOf(['pack', 'folder', '--key', 'k.json'])).toBeUndefined();
  });

  it('deploys, prints progress lines until completed, and exits 0', async () => {
    const rules = join(dir, 'rules.json');
    await writeFile(
      rules,
      JSON.stringify([{ id: 'queue', kind: 'presence', labels: ['person'], minCount: 3 }]),
    );
    const agents = new AbortController();
    const playing = playAgents(t, nodes, 'active', agents.signal);
    try {
      const { code, text } = await run([
        'deploy',
        'yolox-nano',
        '1.0.0',
        '--nodes',
        nodes.map((n) => n.nodeId).join(','),
        '--source',
        'cam1=rtsp://10.0.0.7/stream1',
        '--source=cam2=http://10.0.0.8/snapshot.jpg?size=large',
        '--fps',
        '1',
        '--canary',
        '0.33',
        '--rules',
        rules,
        '--interval',
        '100',
      ]);
      expect(text).toMatch(/^deployment dep_\w+: yolox-nano 1\.0\.0 onto 3 node\(s\), canary kiosk-1\n/);
      expect(text).toMatch(/^\d{4}-\d\d-\d\dT\S+ dep_\w+ canary: queued 1, pending 2 of 3$/m);
      expect(text).toContain('completed: 3 node(s) active\n');
      expect(code).toBe(0);
    } finally {
      agents.abort();
      await playing;
    }
    const doc = await assignmentsOf(t, nodes[0] as FleetNode);
    expect(doc.assignments[0]?.sources).toEqual([
      { id: 'cam1', url: 'rtsp://10.0.0.7/stream1', fps: 1 },
      { id: 'cam2', url: 'http://10.0.0.8/snapshot.jpg?size=large', fps: 1 },
    ]);
    expect(doc.assignments[0]?.rules).toMatchObject([{ id: 'queue', kind: 'presence', minCount: 3 }]);
  });

  it('lists deployments and rolls one back', async () => {
    const listed = await run(['deployments', '--algorithm-id', 'yolox-nano']);
    expect(listed.code).toBe(0);
    const id = /^(dep_\w+) +yolox-nano 1\.0\.0 +completed /m.exec(listed.text)?.[1];
    expect(id).toBeDefined();
    const json = await run(['deployments', '--json']);
    expect(JSON.parse(json.text)).toMatchObject([{ id, state: 'completed', counts: { active: 3 } }]);
    const rolledBack = await run(['rollback', id ?? '', '--reason', 'wrong camera']);
    expect(rolledBack.code).toBe(0);
    expect(rolledBack.text).toContain(`rolled back ${id} (yolox-nano 1.0.0): 3 node(s) rolled back`);
    expect((await assignmentsOf(t, nodes[1] as FleetNode)).assignments).toEqual([]);
  });

  it('draws state bars on a terminal and exits 1 when the canary fails', async () => {
    const agents = new AbortController();
    const playing = playAgents(t, nodes, 'failed', agents.signal);
    try {
      const { code, text } = await run(
        [
          'deploy',
          'yolox-nano',
          '1.0.0',
          '--agency',
          'parks',
          '--source',
          'cam1=/srv/frames',
          '--interval',
          '100',
        ],
        true,
      );
      expect(text).toContain('\x1b[2K');
      expect(text).toMatch(/ {2}queued +█+░+ +1\/3/);
      expect(text).toContain('paused: 1 node(s) failed, more than maxFailed 0: kiosk-1 (CS_ERR_INFER_LOAD');
      expect(text).toContain('citysense algo rollback dep_');
      expect(code).toBe(1);
    } finally {
      agents.abort();
      await playing;
    }
  });

  it('explains what is missing', async () => {
    expect((await run(['deploy', 'yolox-nano', '1.0.0', '--help'])).code).toBe(0);
    await expect(run(['deploy', 'yolox-nano', '1.0.0', '--source', 'cam1=rtsp://x'])).rejects.toMatchObject({
      code: 'CS_ERR_CONFIG_INVALID',
      message: expect.stringContaining('--nodes a,b,c or --agency X'),
    });
    await expect(
      run(['deploy', 'yolox-nano', '1.0.0', '--nodes', 'kiosk-1', '--source', 'rtsp://x']),
    ).rejects.toMatchObject({
      message: expect.stringContaining('write <id>=<url>'),
    });
    await expect(
      run(['deploy', 'yolox-nano', '1.0.0', '--nodes', 'kiosk-1', '--source']),
    ).rejects.toMatchObject({
      message: expect.stringContaining('--source: needs a value'),
    });
    await expect(
      run(['deploy', 'yolox-nano', '9.9.9', '--nodes', 'kiosk-1', '--source', 'cam1=rtsp://x']),
    ).rejects.toMatchObject({ code: 'CS_ERR_ALGO_VERSION_UNKNOWN' });
  });
});
