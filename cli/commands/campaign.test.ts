import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { enrollNode, type FleetNode } from '../../cloud-hub/src/deployments/test-fleet.ts';
import { centreKey, otaDocumentOf, packTestArtifact, reportOta } from '../../cloud-hub/src/ota/test-ota.ts';
import { startTestHub, type TestHub } from '../../cloud-hub/src/testing/test-hub.ts';
import { runCampaign } from './campaign.ts';

describe('citysense campaign', () => {
  let t: TestHub;
  let dir: string;
  let nodes: FleetNode[];

  const run = async (argv: string[]) => {
    const chunks: string[] = [];
    const out = Object.assign(
      new Writable({
        write(chunk, _encoding, done) {
          chunks.push(String(chunk));
          done();
        },
      }),
      { isTTY: true, columns: 120 },
    );
    const code = await runCampaign([...argv, '--hub', t.httpUrl, '--interval', '100'], {
      out,
      env: { CITYSENSE_ADMIN_TOKEN: t.adminToken },
    });
    return { code, text: chunks.join('') };
  };

  beforeAll(async () => {
    t = await startTestHub({ otaCheckIntervalMs: 100 });
    dir = await mkdtemp(join(tmpdir(), 'citysense-cli-ota-'));
    nodes = [];
    for (const name of ['a', 'b', 'c']) nodes.push(await enrollNode(t, name, { model: 'LPG-3' }));
  });
  afterAll(async () => {
    await t?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it('uploads an artifact, runs a campaign with a fleet progress bar until it completes', async () => {
    const file = await packTestArtifact(
      dir,
      { name: 'citysense-agent', version: '1.4.0', target: 'agent', hardware: ['LPG-3'] },
      await centreKey(t),
    );
    const uploaded = await run(['upload', file, '--json']);
    expect(uploaded.code).toBe(0);
    const artifactId = (JSON.parse(uploaded.text) as { id: string }).id;

    // The nodes' updaters: every update they find ends healthy.
    const stop = new AbortController();
    const agents = (async () => {
      const done = new Set<string>();
      while (!stop.signal.aborted) {
        for (const n of nodes) {
          const doc = await otaDocumentOf(t, n);
          for (const u of doc.updates.filter((x) => !done.has(`${n.nodeId}/${x.campaignId}`))) {
            done.add(`${n.nodeId}/${u.campaignId}`);
            await reportOta(t, n, u.campaignId, {
              revision: doc.revision,
              state: 'downloading',
              progress: 0.5,
            });
            await reportOta(t, n, u.campaignId, { revision: doc.revision, state: 'healthy' });
          }
        }
        await new Promise((r) => setTimeout(r, 50));
      }
    })();
    const watched = await run([
      'create',
      '--artifact',
      artifactId,
      '--nodes',
      nodes.map((n) => n.nodeId).join(','),
      '--canary',
      '0.34',
      '--watch',
    ]);
    stop.abort();
    await agents;
    expect(watched.code).toBe(0);
    expect(watched.text).toContain('citysense-agent 1.4.0 (agent)');
    expect(watched.text).toMatch(/healthy\s+█+\s+3\/3/);
    expect(watched.text).toContain('completed: 3 node(s) healthy');

    const listed = await run(['list']);
    expect(listed.text).toMatch(/completed/);
    const id = /campaign (ota_[0-9a-f]+)/.exec(watched.text)?.[1] ?? '';
    await expect(run(['pause', id])).rejects.toMatchObject({ code: 'CS_ERR_OTA_CAMPAIGN_STATE' });
  });
});
