import { createHash } from 'node:crypto';
import { mkdtemp, open, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { generateSigningKey, type SigningKey } from '@citysense/protocol';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { asNode, enrollNode, type FleetNode } from '../deployments/test-fleet.ts';
import { startTestHub, type TestHub } from '../testing/test-hub.ts';
import {
  centreKey,
  otaDocumentOf,
  packTestArtifact,
  reportOta,
  type UploadedArtifact,
  uploadArtifact,
} from './test-ota.ts';

interface CampaignNode {
  nodeId: string;
  canary: boolean;
  state: string;
  progress: number | null;
  reason: string | null;
  code: string | null;
}
interface Campaign {
  id: string;
  state: string;
  reason: string | null;
  counts: Record<string, number>;
  totals: {
    eligible: number;
    healthy: number;
    failed: number;
    inFlight: number;
    downloadProgress: number | null;
  };
  nodes: CampaignNode[];
  history: Array<{ toState: string; actor: string; reason: string | null }>;
  code?: string;
}

const FIRMWARE = { name: 'lamp-gateway-fw', target: 'firmware', hardware: ['LPG-3'] } as const;

describe('OTA artifacts and campaigns', () => {
  let t: TestHub;
  let dir: string;
  let key: SigningKey;
  let fleet: FleetNode[];
  let oldBoard: FleetNode;
  let firmware: UploadedArtifact;
  let firmwarePath: string;

  const campaign = async (id: string) => (await t.api<Campaign>('GET', `/v1/ota/campaigns/${id}`)).body;
  const nodeOf = (c: Campaign, nodeId: string) => c.nodes.find((n) => n.nodeId === nodeId);
  /** Plays a node's updater through a successful update. */
  const installHealthy = async (node: FleetNode, campaignId: string, version: string) => {
    for (const status of [
      { state: 'downloading', progress: 0.5 },
      { state: 'verifying' },
      { state: 'installing', slot: 'b' },
      { state: 'activating', slot: 'b' },
      { state: 'healthy', slot: 'b', runningVersion: version },
    ] as const) {
      const res = await reportOta(t, node, campaignId, status);
      expect(res.status).toBe(200);
      expect(res.body.applied).toBe(true);
    }
  };

  beforeAll(async () => {
    t = await startTestHub({ otaCheckIntervalMs: 100 });
    dir = await mkdtemp(join(tmpdir(), 'citysense-ota-test-'));
    key = await centreKey(t);
    fleet = [];
    for (let i = 0; i < 5; i++)
      fleet.push(await enrollNode(t, `pole-${i}`, { arch: 'arm64', model: 'LPG-3', cpuCores: 4 }));
    oldBoard = await enrollNode(t, 'pole-old', { arch: 'arm', model: 'LPG-2' });
    firmwarePath = await packTestArtifact(
      dir,
      { ...FIRMWARE, hardware: [...FIRMWARE.hardware], version: '2.1.0' },
      key,
      300_000,
    );
  });
  afterAll(async () => {
    await t?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it('refuses corrupt, unsigned-by-a-trusted-key and duplicate artifacts, each with its code', async () => {
    const garbage = join(dir, 'garbage.csota');
    await writeFile(garbage, 'this is not an artifact at all');
    expect((await uploadArtifact(t, garbage)).body).toMatchObject({ code: 'CS_ERR_OTA_ARTIFACT_INVALID' });

    const corrupt = join(dir, 'corrupt.csota');
    await writeFile(corrupt, await readFile(firmwarePath));
    const file = await open(corrupt, 'r+');
    const { size } = await file.stat();
    await file.write(Buffer.from([0x42]), 0, 1, size - 10);
    await file.close();
    const refusedCorrupt = await uploadArtifact(t, corrupt);
    expect(refusedCorrupt).toMatchObject({ status: 400, body: { code: 'CS_ERR_OTA_DIGEST' } });

    const stranger = await packTestArtifact(
      dir,
      { name: 'rogue-fw', version: '1.0.0', target: 'firmware' },
      generateSigningKey('ed25519'),
    );
    expect(await uploadArtifact(t, stranger)).toMatchObject({
      status: 403,
      body: { code: 'CS_ERR_OTA_UNTRUSTED_KEY' },
    });

    // The good one, as a form upload (multipart) like a browser sends it.
    const form = new FormData();
    form.set('file', new Blob([await readFile(firmwarePath)]), 'fw.csota');
    const res = await fetch(`${t.httpUrl}/v1/ota/artifacts`, {
      method: 'POST',
      headers: { authorization: `Bearer ${t.adminToken}` },
      body: form,
    });
    firmware = (await res.json()) as UploadedArtifact;
    expect(res.status).toBe(201);
    expect(firmware).toMatchObject({ name: FIRMWARE.name, version: '2.1.0', uploadedBy: 'admin' });
    expect(firmware.sha256).toBe(
      createHash('sha256')
        .update(await readFile(firmwarePath))
        .digest('hex'),
    );

    expect(await uploadArtifact(t, firmwarePath)).toMatchObject({
      status: 409,
      body: { code: 'CS_ERR_OTA_ARTIFACT_EXISTS' },
    });
    const listed = await t.api<UploadedArtifact[]>('GET', '/v1/ota/artifacts');
    expect(listed.body.map((a) => a.id)).toEqual([firmware.id]);
  });

  let first: Campaign;
  it('rolls out canary → health gate → rolling → completed, refusing the wrong hardware', async () => {
    const created = await t.api<Campaign>('POST', '/v1/ota/campaigns', {
      artifactId: firmware.id,
      targets: { nodes: [...fleet.map((n) => n.nodeId), oldBoard.nodeId] },
      canaryShare: 0.2,
      gate: { minHealthyShare: 1, maxFailed: 0, timeoutMs: 60_000 },
      healthTimeoutSeconds: 120,
    });
    expect(created.status).toBe(201);
    first = created.body;
    expect(first.state).toBe('canary');
    expect(nodeOf(first, oldBoard.nodeId)).toMatchObject({
      state: 'refused',
      code: 'CS_ERR_OTA_HARDWARE',
      reason: expect.stringContaining('LPG-2'),
    });
    const canary = first.nodes.filter((n) => n.canary).map((n) => n.nodeId);
    expect(canary).toHaveLength(1);
    const [canaryNode, ...rest] = [...fleet].sort((a, b) =>
      canary.includes(a.nodeId) ? -1 : canary.includes(b.nodeId) ? 1 : 0,
    );
    if (!canaryNode) throw new Error('no canary');

    const doc = await otaDocumentOf(t, canaryNode);
    expect(doc.updates).toEqual([
      expect.objectContaining({
        campaignId: first.id,
        artifactId: firmware.id,
        version: '2.1.0',
        target: 'firmware',
        sha256: firmware.sha256,
        bytes: firmware.bytes,
        filePath: `/v1/ota/artifacts/${firmware.id}/file`,
        healthTimeoutSeconds: 120,
      }),
    ]);
    expect(doc.trustedKeys).toContain(key.publicKey);
    expect((await otaDocumentOf(t, rest[0] as FleetNode)).updates).toEqual([]);

    await reportOta(t, canaryNode, first.id, { state: 'downloading', progress: 0.25 });
    const downloading = await campaign(first.id);
    expect(nodeOf(downloading, canaryNode.nodeId)).toMatchObject({ state: 'downloading', progress: 0.25 });
    expect(downloading.totals).toMatchObject({
      eligible: 5,
      healthy: 0,
      inFlight: 1,
      downloadProgress: 0.25,
    });

    await installHealthy(canaryNode, first.id, '2.1.0');
    const rolling = await campaign(first.id);
    expect(rolling.state).toBe('rolling');
    expect(rolling.history.at(-1)).toMatchObject({
      toState: 'rolling',
      actor: 'hub',
      reason: expect.stringContaining('gate passed: 1 of 1 canary node(s) healthy'),
    });
    for (const n of rest) expect((await otaDocumentOf(t, n)).updates).toHaveLength(1);

    for (const n of rest) await installHealthy(n, first.id, '2.1.0');
    const done = await campaign(first.id);
    expect(done).toMatchObject({ state: 'completed', reason: '5 node(s) healthy' });
    expect(done.counts).toMatchObject({ healthy: 5, refused: 1 });

    // The hub's own decisions are in the audit log, next to what people did over HTTP.
    const audit = await t.api<{ entries: Array<{ action: string; targetId: string }> }>(
      'GET',
      `/v1/audit?target=${first.id}`,
    );
    expect(audit.body.entries.map((e) => e.action)).toEqual(
      expect.arrayContaining(['ota-campaign.gate-passed', 'ota-campaign.complete']),
    );
  });

  it('serves the artifact with Range to targeted nodes only', async () => {
    const node = fleet[0] as FleetNode;
    const whole = await readFile(firmwarePath);
    const path = `/v1/ota/artifacts/${firmware.id}/file`;
    const resumed = await fetch(`${t.httpUrl}${path}`, {
      headers: { authorization: node.auth, range: 'bytes=100000-' },
    });
    expect(resumed.status).toBe(206);
    expect(resumed.headers.get('content-range')).toBe(`bytes 100000-${whole.length - 1}/${whole.length}`);
    expect(Buffer.from(await resumed.arrayBuffer()).equals(whole.subarray(100_000))).toBe(true);

    // A node that is no target (refused for its hardware) gets nothing; nor does any node for another campaign.
    const refused = await asNode<{ code: string }>(t, oldBoard, 'GET', path);
    expect(refused).toMatchObject({ status: 403, body: { code: 'CS_ERR_OTA_NOT_TARGETED' } });
    const agentPath = await packTestArtifact(
      dir,
      { name: 'citysense-agent', version: '0.9.0', target: 'agent' },
      key,
    );
    const agent = (await uploadArtifact(t, agentPath)).body;
    const only = fleet[1] as FleetNode;
    const c = await t.api<Campaign>('POST', '/v1/ota/campaigns', {
      artifactId: agent.id,
      targets: { nodes: [only.nodeId] },
    });
    expect(c.status).toBe(201);
    const other = await asNode<{ code: string }>(
      t,
      fleet[2] as FleetNode,
      'GET',
      `/v1/ota/artifacts/${agent.id}/file`,
    );
    expect(other).toMatchObject({ status: 403, body: { code: 'CS_ERR_OTA_NOT_TARGETED' } });
    const own = await asNode(t, only, 'HEAD', `/v1/ota/artifacts/${agent.id}/file`);
    expect(own.status).toBe(200);
    // One update per target: the agent update sits next to the firmware one.
    expect((await otaDocumentOf(t, only)).updates.map((u) => u.target).sort()).toEqual(['agent', 'firmware']);
    // A node reads only its own document.
    expect(await asNode(t, only, 'GET', `/v1/nodes/${oldBoard.nodeId}/ota`)).toMatchObject({
      status: 403,
      body: { code: 'CS_ERR_OTA_OTHER_NODE' },
    });
    // Used artifacts stay.
    expect(await t.api('DELETE', `/v1/ota/artifacts/${agent.id}`)).toMatchObject({
      status: 409,
      body: { code: 'CS_ERR_OTA_ARTIFACT_IN_USE' },
    });
  });

  it('pauses when a node rolls back (maxFailed 0); resume and abort work', async () => {
    const nextPath = await packTestArtifact(
      dir,
      { ...FIRMWARE, hardware: [...FIRMWARE.hardware], version: '2.2.0' },
      key,
    );
    const next = (await uploadArtifact(t, nextPath)).body;
    const created = await t.api<Campaign>('POST', '/v1/ota/campaigns', {
      artifactId: next.id,
      targets: { nodes: fleet.map((n) => n.nodeId) },
      canaryShare: 0.2,
      gate: { maxFailed: 0 },
    });
    const c = created.body;
    const canaryId = c.nodes.find((n) => n.canary)?.nodeId;
    const canary = fleet.find((n) => n.nodeId === canaryId) as FleetNode;
    // The newer campaign took the canary node over from the first one.
    expect(nodeOf(await campaign(first.id), canary.nodeId)?.state).toBe('superseded');

    await reportOta(t, canary, c.id, { state: 'downloading', progress: 1 });
    await reportOta(t, canary, c.id, { state: 'activating', slot: 'a' });
    const rolledBack = await reportOta(t, canary, c.id, {
      state: 'rolled-back',
      code: 'CS_ERR_OTA_HEALTH_TIMEOUT',
      reason: 'no health report within 300 s',
      runningVersion: '2.1.0',
      slot: 'b',
    });
    expect(rolledBack.body).toMatchObject({ applied: true, state: 'rolled-back', campaignState: 'paused' });
    const paused = await campaign(c.id);
    expect(paused.state).toBe('paused');
    expect(paused.reason).toContain('CS_ERR_OTA_HEALTH_TIMEOUT');
    expect(paused.totals.failed).toBe(1);
    expect((await otaDocumentOf(t, canary)).updates.filter((u) => u.target === 'firmware')).toEqual([]);
    const audit = await t.api<{ entries: Array<{ action: string; outcome: string }> }>(
      'GET',
      `/v1/audit?target=${c.id}`,
    );
    expect(audit.body.entries).toContainEqual(
      expect.objectContaining({ action: 'ota-campaign.pause', outcome: 'failure' }),
    );

    // Resume acknowledges the failure: the canary is gone, so the next pending node becomes it.
    const resumed = await t.api<Campaign>('POST', `/v1/ota/campaigns/${c.id}/resume`, {
      reason: 'slot b checked',
    });
    expect(resumed.status).toBe(200);
    expect(resumed.body.state).toBe('canary');
    const newCanary = resumed.body.nodes.filter((n) => n.canary && n.state === 'queued');
    expect(newCanary).toHaveLength(1);

    expect((await t.api('POST', `/v1/ota/campaigns/${c.id}/resume`)).body).toMatchObject({
      code: 'CS_ERR_OTA_CAMPAIGN_STATE',
    });
    const aborted = await t.api<Campaign>('POST', `/v1/ota/campaigns/${c.id}/abort`);
    expect(aborted.body.state).toBe('aborted');
    expect(aborted.body.counts).toMatchObject({ cancelled: 4, 'rolled-back': 1, pending: 0, queued: 0 });
    const withdrawn = fleet.find((n) => n.nodeId === newCanary[0]?.nodeId) as FleetNode;
    expect((await otaDocumentOf(t, withdrawn)).updates.filter((u) => u.campaignId === c.id)).toEqual([]);
    // A late report about the withdrawn update changes nothing.
    const late = await reportOta(t, withdrawn, c.id, { state: 'healthy' });
    expect(late.body).toMatchObject({ applied: false, ignoredBecause: 'not-assigned' });
  });

  it('keeps agency operators to their own nodes', async () => {
    await t.api('POST', '/v1/agencies', { id: 'haidian', name: 'Haidian' });
    await t.api('PUT', '/v1/agencies/haidian/nodes', { nodeIds: [(fleet[3] as FleetNode).nodeId] });
    const user = await t.api('POST', '/v1/users', {
      username: 'hd-ops',
      displayName: 'Haidian operator',
      password: 'correct horse battery',
      agencyId: 'haidian',
      roles: [{ role: 'agency-operator' }],
    });
    expect(user.status).toBe(201);
    const login = await t.api<{ token: string }>(
      'POST',
      '/v1/auth/login',
      { username: 'hd-ops', password: 'correct horse battery' },
      null,
    );
    const token = login.body.token;
    const mine = await t.api<Campaign>(
      'POST',
      '/v1/ota/campaigns',
      { artifactId: firmware.id, targets: { agencies: ['haidian'] } },
      token,
    );
    expect(mine.status).toBe(201);
    const notMine = await t.api<{ code: string }>(
      'POST',
      '/v1/ota/campaigns',
      { artifactId: firmware.id, targets: { nodes: [(fleet[4] as FleetNode).nodeId] } },
      token,
    );
    expect(notMine).toMatchObject({ status: 403, body: { code: 'CS_ERR_AUTH_FORBIDDEN' } });
    const seen = await t.api<Campaign[]>('GET', '/v1/ota/campaigns', undefined, token);
    expect(seen.body.map((x) => x.id)).toEqual([mine.body.id]);
    // Uploading artifacts is the platform's: an operator may not.
    const upload = await fetch(`${t.httpUrl}/v1/ota/artifacts`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/octet-stream' },
      body: await readFile(firmwarePath),
    });
    expect(upload.status).toBe(403);
  });
});
