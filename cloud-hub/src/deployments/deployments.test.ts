import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import {
  ASSIGNMENTS_REVISION,
  type AssignmentsDocument,
  DataType,
  decodePayload,
  parseSigningKey,
} from '@citysense/protocol';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { centreKeyPath } from '../algorithms/centre-key.ts';
import { connectNode } from '../testing/node-client.ts';
import { startTestHub, type TestHub } from '../testing/test-hub.ts';
import type { DeploymentView, NodeInference } from './deployment-service.ts';
import {
  asNode,
  assignmentsOf,
  enrollNode,
  type FleetNode,
  grantNodes,
  publishReference,
  REFERENCE_ALGORITHM,
  reportStatus,
  statsOf,
} from './test-fleet.ts';

type ErrorBody = { code: string; message: string; details?: unknown };
type Detail = DeploymentView & Required<Pick<DeploymentView, 'nodes' | 'stats' | 'history'>>;
type Event = {
  nodeId: string | null;
  fromState: string | null;
  toState: string;
  actor: string;
  reason: string;
};

const MIB = 1024 * 1024;
const CAMERA = { id: 'cam1', url: 'rtsp://10.0.0.7/stream1', fps: 2 };
const CROWD = { id: 'crowd', kind: 'count', labels: ['person'], threshold: 5, sources: ['cam1'] };

describe('deployments with staged rollout', () => {
  let t: TestHub;
  let packages: Map<string, { sha256: string; bytes: number }>;
  let cams: FleetNode[];
  let ungranted: FleetNode;
  let small: FleetNode;
  let first: string;

  const cam = (i: number): FleetNode => {
    const n = cams[i];
    if (!n) throw new Error(`no cam ${i}`);
    return n;
  };
  const deploy = (body: unknown) => t.api<Detail & ErrorBody>('POST', '/v1/deployments', body);
  const deployment = async (id: string) => (await t.api<Detail>('GET', `/v1/deployments/${id}`)).body;
  const nodeOf = (d: Detail, n: FleetNode) => d.nodes.find((x) => x.nodeId === n.nodeId);
  const act = (id: string, action: string, reason?: string) =>
    t.api<Detail & ErrorBody>('POST', `/v1/deployments/${id}/${action}`, reason ? { reason } : undefined);
  const assignmentOf = (doc: AssignmentsDocument) =>
    doc.assignments.find((a) => a.algorithmId === REFERENCE_ALGORITHM);

  beforeAll(async () => {
    t = await startTestHub({ deploymentCheckIntervalMs: 100 });
    packages = await publishReference(t, ['1.0.0', '1.1.0', '1.3.0'], ['1.2.0']);
    const fit = { cpuCores: 4, memoryBytes: 4096 * MIB, executionProviders: ['cpu'] };
    cams = [];
    for (const name of ['cam-a', 'cam-b', 'cam-c', 'cam-d']) cams.push(await enrollNode(t, name, fit));
    ungranted = await enrollNode(t, 'cam-ungranted', fit);
    small = await enrollNode(t, 'cam-small', {
      cpuCores: 1,
      memoryBytes: 128 * MIB,
      executionProviders: ['cpu'],
    });
    const all = [...cams, ungranted, small].map((n) => n.nodeId);
    await grantNodes(
      t,
      'traffic',
      all,
      [...cams, small].map((n) => n.nodeId),
    );
  });
  afterAll(async () => {
    await t?.stop();
  });

  it('deploys only published versions and validates what it is asked', async () => {
    const base = {
      algorithmId: REFERENCE_ALGORITHM,
      version: '1.0.0',
      targets: { nodes: [cam(0).nodeId] },
      sources: [CAMERA],
    };
    const draft = await deploy({ ...base, version: '1.2.0' });
    expect([draft.status, draft.body.code]).toEqual([409, 'CS_ERR_DEPLOY_VERSION_STATE']);
    expect(draft.body.message).toContain('draft');
    const missing = await deploy({ ...base, version: '9.0.0' });
    expect([missing.status, missing.body.code]).toEqual([404, 'CS_ERR_ALGO_VERSION_UNKNOWN']);

    const cases: Array<[unknown, number, string]> = [
      [{ ...base, sources: undefined }, 400, 'CS_ERR_VALIDATION'],
      [{ ...base, rollout: { canaryShare: 2 } }, 400, 'CS_ERR_VALIDATION'],
      [{ ...base, rollout: { gate: { maxFailed: -1 } } }, 400, 'CS_ERR_VALIDATION'],
      [{ ...base, sources: [{ ...CAMERA, fps: 0 }] }, 400, 'CS_ERR_VALIDATION'],
      [{ ...base, surprise: true }, 400, 'CS_ERR_VALIDATION'],
      [{ ...base, targets: {} }, 400, 'CS_ERR_DEPLOY_NO_TARGETS'],
      [{ ...base, targets: { nodes: ['no-such-node'] } }, 400, 'CS_ERR_DEPLOY_NODE_UNKNOWN'],
      [{ ...base, targets: { agencies: ['no-such-agency'] } }, 404, 'CS_ERR_ALGO_AGENCY_UNKNOWN'],
      [{ ...base, sources: [CAMERA, CAMERA] }, 400, 'CS_ERR_DEPLOY_SOURCE_DUPLICATE'],
      [{ ...base, sources: [] }, 400, 'CS_ERR_DEPLOY_NO_SOURCES'],
      [{ ...base, sourcesByNode: { [cam(1).nodeId]: [CAMERA] } }, 400, 'CS_ERR_DEPLOY_SOURCE_NODE'],
      [{ ...base, rules: [{ ...CROWD, kind: 'explode' }] }, 400, 'CS_ERR_VALIDATION'],
      [{ ...base, rules: [CROWD, CROWD] }, 400, 'CS_ERR_DEPLOY_RULE_DUPLICATE'],
      [{ ...base, rules: [{ ...CROWD, sources: ['cam9'] }] }, 400, 'CS_ERR_DEPLOY_RULE_SOURCE'],
      [{ ...base, targets: { nodes: [ungranted.nodeId] } }, 409, 'CS_ERR_DEPLOY_NO_ELIGIBLE_NODE'],
      ['{"algorithmId": ', 400, 'CS_ERR_HTTP_FST_ERR_CTP_INVALID_JSON_BODY'],
    ];
    for (const [body, status, code] of cases) {
      const res = await deploy(body);
      expect([res.status, res.body.code], JSON.stringify(body)).toEqual([status, code]);
    }
    expect((await t.api<unknown[]>('GET', '/v1/deployments')).body).toEqual([]);
  });

  it('gives the canary its assignment first and the rest once the canary is active; refuses nodes it cannot run on', async () => {
    const created = await deploy({
      algorithmId: REFERENCE_ALGORITHM,
      version: '1.0.0',
      targets: { nodes: [...cams, ungranted, small].map((n) => n.nodeId) },
      sources: [CAMERA],
      sourcesByNode: { [cam(3).nodeId]: [{ id: 'gate-cam', url: '/srv/frames/gate', fps: 1 }] },
      rules: [CROWD],
      rollout: { canaryShare: 0.25 },
    });
    expect(created.status).toBe(201);
    first = created.body.id;
    expect(created.body).toMatchObject({ state: 'canary', total: 6, rollout: { canaryShare: 0.25 } });
    expect(created.body.rollout.gate).toEqual({ minActiveShare: 1, maxFailed: 0, timeoutMs: 600_000 });
    expect(created.body.counts).toMatchObject({ queued: 1, pending: 3, refused: 2 });
    expect(nodeOf(created.body, ungranted)).toMatchObject({ state: 'refused', code: 'not-granted' });
    expect(nodeOf(created.body, ungranted)?.reason).toMatch(/^not-granted: .*has not granted/);
    expect(nodeOf(created.body, small)).toMatchObject({ state: 'refused', code: 'insufficient-hardware' });
    expect(nodeOf(created.body, small)?.reason).toContain('needs 256 MiB memory, has 128 MiB');
    expect(nodeOf(created.body, cam(0))).toMatchObject({ state: 'queued', canary: true });

    // The canary's document: the package to fetch, the keys to check it with, the sources to run it on.
    const doc = await assignmentsOf(t, cam(0));
    const centreKey = parseSigningKey(await readFile(centreKeyPath(t.dataDir), 'utf8'));
    const v1 = packages.get('1.0.0');
    expect(doc).toMatchObject({ nodeId: cam(0).nodeId, revision: 1 });
    expect(doc.trustedKeys).toContain(centreKey.publicKey);
    expect(doc.assignments).toEqual([
      {
        deploymentId: first,
        algorithmId: REFERENCE_ALGORITHM,
        version: '1.0.0',
        sha256: v1?.sha256,
        bytes: v1?.bytes,
        packagePath: '/v1/algorithms/yolox-nano/versions/1.0.0/package',
        sources: [CAMERA],
        // Defaults of the rule schema are filled in, so the node gets the rule complete.
        rules: [
          {
            ...CROWD,
            minCount: 1,
            seconds: 10,
            gapSeconds: 2,
            minScore: 0,
            cooldownSeconds: 60,
            severity: 'warning',
          },
        ],
      },
    ]);
    const download = await fetch(`${t.httpUrl}${doc.assignments[0]?.packagePath}`, {
      headers: { authorization: cam(0).auth },
    });
    expect(download.status).toBe(200);
    expect(
      createHash('sha256')
        .update(Buffer.from(await download.arrayBuffer()))
        .digest('hex'),
    ).toBe(v1?.sha256);
    expect(await assignmentsOf(t, cam(1))).toMatchObject({ revision: 0, assignments: [] });
    const byAdmin = await t.api<AssignmentsDocument>('GET', `/v1/nodes/${cam(0).nodeId}/assignments`);
    expect(byAdmin.body.revision).toBe(1);

    const downloading = await reportStatus(t, cam(0), first, { state: 'downloading', progress: 0.5 });
    expect(downloading.body).toMatchObject({
      applied: true,
      state: 'downloading',
      deploymentState: 'canary',
    });
    expect(nodeOf(await deployment(first), cam(0))).toMatchObject({ state: 'downloading', progress: 0.5 });

    const active = await reportStatus(t, cam(0), first, { state: 'active', stats: statsOf(2, 40) });
    expect(active.body).toMatchObject({ applied: true, state: 'active', deploymentState: 'rolling' });
    for (const n of cams.slice(1)) {
      const d = await assignmentsOf(t, n);
      expect(d.revision).toBe(1);
      expect(assignmentOf(d)).toMatchObject({ deploymentId: first, version: '1.0.0' });
    }
    expect(assignmentOf(await assignmentsOf(t, cam(3)))?.sources).toEqual([
      { id: 'gate-cam', url: '/srv/frames/gate', fps: 1 },
    ]);
    expect((await assignmentsOf(t, small)).assignments).toEqual([]);

    for (const [i, n] of cams.slice(1).entries()) {
      const r = await reportStatus(t, n, first, { state: 'active', stats: statsOf(2, 30 + i * 10) });
      expect(r.status).toBe(200);
    }
    const done = await deployment(first);
    expect(done).toMatchObject({ state: 'completed', reason: '4 node(s) active' });
    expect(done.counts).toMatchObject({ active: 4, refused: 2, queued: 0 });
    expect(done.stats).toEqual({
      nodesReporting: 4,
      frames: 480,
      fps: 8,
      inferP50Ms: 20,
      inferP95Ms: 50,
      errors: 0,
      droppedFrames: 0,
    });
    expect(done.history.map((h) => [h.fromState, h.toState, h.actor])).toEqual([
      [null, 'canary', 'admin'],
      ['canary', 'rolling', 'hub'],
      ['rolling', 'completed', 'hub'],
    ]);
    expect(done.history[1]?.reason).toContain('gate passed: 1 of 1 canary node(s) active');

    const inference = await t.api<NodeInference>('GET', `/v1/nodes/${cam(0).nodeId}/inference`);
    expect(inference.body).toMatchObject({
      nodeId: cam(0).nodeId,
      online: false,
      algorithms: [
        {
          algorithmId: REFERENCE_ALGORITHM,
          deploymentId: first,
          version: '1.0.0',
          state: 'active',
          activeVersion: '1.0.0',
          stats: statsOf(2, 40),
        },
      ],
    });
    const list = await t.api<DeploymentView[]>('GET', '/v1/deployments?algorithmId=yolox-nano');
    expect(list.body.map((d) => [d.id, d.state, d.counts.active])).toEqual([[first, 'completed', 4]]);
  });

  it('upgrades through a canary: a failing canary pauses it and is rolled back to the version it ran', async () => {
    const created = await deploy({
      algorithmId: REFERENCE_ALGORITHM,
      version: '1.1.0',
      targets: { agencies: ['traffic'] },
      sources: [CAMERA],
      rollout: { canaryShare: 0.25 },
    });
    expect(created.status).toBe(201);
    const upgrade = created.body.id;
    expect(created.body.counts).toMatchObject({ queued: 1, pending: 3, refused: 2 });

    // One deployment per algorithm on a node: the canary swaps 1.0.0 for 1.1.0.
    const swapped = await assignmentsOf(t, cam(0));
    expect(swapped.revision).toBe(2);
    expect(swapped.assignments.map((a) => [a.deploymentId, a.version])).toEqual([[upgrade, '1.1.0']]);
    expect(nodeOf(await deployment(first), cam(0))?.state).toBe('superseded');
    expect((await assignmentsOf(t, cam(1))).revision).toBe(1);

    const failed = await reportStatus(t, cam(0), upgrade, {
      state: 'failed',
      code: 'CS_ERR_INFER_LOAD',
      reason: 'the model did not load',
      activeVersion: '1.0.0',
    });
    expect(failed.body).toMatchObject({ applied: true, state: 'rolled-back', deploymentState: 'paused' });
    const paused = await deployment(upgrade);
    expect(paused.reason).toContain(
      `1 node(s) failed, more than maxFailed 0: ${cam(0).nodeId} (CS_ERR_INFER_LOAD: the model did not load)`,
    );
    expect(nodeOf(paused, cam(0))).toMatchObject({
      state: 'rolled-back',
      code: 'CS_ERR_INFER_LOAD',
      reason: 'the model did not load',
    });
    const failure = await t.api<Event[]>('GET', `/v1/deployments/${upgrade}/events?nodeId=${cam(0).nodeId}`);
    expect(failure.body.map((e) => [e.fromState, e.toState, e.actor])).toEqual([
      ['pending', 'queued', 'hub'],
      ['queued', 'failed', `node:${cam(0).nodeId}`],
      ['failed', 'rolled-back', 'hub'],
    ]);
    // The node is given back what it ran; nobody else got 1.1.0.
    const back = await assignmentsOf(t, cam(0));
    expect(back.revision).toBe(3);
    expect(back.assignments.map((a) => [a.deploymentId, a.version])).toEqual([[first, '1.0.0']]);
    expect((await assignmentsOf(t, cam(1))).revision).toBe(1);
    const runs = await t.api<NodeInference>('GET', `/v1/nodes/${cam(0).nodeId}/inference`);
    expect(runs.body.algorithms[0]).toMatchObject({
      deploymentId: first,
      version: '1.0.0',
      activeVersion: '1.0.0',
    });

    // A late report about the withdrawn assignment changes nothing.
    const late = await reportStatus(t, cam(0), upgrade, { revision: 2, state: 'active' });
    expect(late.body).toMatchObject({ applied: false, ignoredBecause: 'not-assigned', state: 'rolled-back' });
    expect((await reportStatus(t, cam(0), first, { state: 'active' })).body.applied).toBe(true);
    const stale = await reportStatus(t, cam(0), first, { revision: 1, state: 'loading' });
    expect(stale.body).toMatchObject({ applied: false, ignoredBecause: 'stale-revision', state: 'active' });

    // Resume acknowledges the failure; the canary is gone, so the next node becomes it.
    const resumed = await act(upgrade, 'resume', 'fixed the model path on cam-a');
    expect(resumed.body.state).toBe('canary');
    expect(nodeOf(resumed.body, cam(1))).toMatchObject({ canary: true, state: 'queued' });
    expect(resumed.body.history.at(-1)?.reason).toContain('new canary cam-b');
    await reportStatus(t, cam(1), upgrade, { state: 'active' });
    expect((await deployment(upgrade)).state).toBe('rolling');
    for (const n of [cam(2), cam(3)]) await reportStatus(t, n, upgrade, { state: 'active' });
    const completed = await deployment(upgrade);
    expect(completed).toMatchObject({ state: 'completed', reason: '3 node(s) active, 1 rolled back' });
    expect((await deployment(first)).counts).toMatchObject({ active: 1, superseded: 3 });

    // Rollback: every node that had 1.0.0 gets it back.
    const rolledBack = await act(upgrade, 'rollback', 'complaints about missed detections');
    expect(rolledBack.body).toMatchObject({ state: 'rolled-back' });
    expect(rolledBack.body.counts).toMatchObject({ 'rolled-back': 4, active: 0 });
    for (const n of cams) {
      const d = await assignmentsOf(t, n);
      expect(
        d.assignments.map((a) => [a.deploymentId, a.version]),
        n.nodeId,
      ).toEqual([[first, '1.0.0']]);
    }
    expect((await assignmentsOf(t, cam(1))).revision).toBe(3);
    expect((await deployment(first)).counts).toMatchObject({ active: 1, queued: 3 });
    const events = await t.api<Event[]>('GET', `/v1/deployments/${upgrade}/events?nodeId=${cam(1).nodeId}`);
    expect(events.body.map((e) => [e.toState, e.actor])).toEqual([
      ['queued', 'hub'],
      ['active', `node:${cam(1).nodeId}`],
      ['rolled-back', 'admin'],
    ]);
    expect(events.body.at(-1)?.reason).toContain('complaints about missed detections');
    const again = await act(upgrade, 'rollback');
    expect([again.status, again.body.code]).toEqual([409, 'CS_ERR_DEPLOY_STATE']);
    for (const n of cams.slice(1)) await reportStatus(t, n, first, { state: 'active' });
  });

  it('pauses when the canary gate times out; cancel keeps what the nodes run', async () => {
    const created = await deploy({
      algorithmId: REFERENCE_ALGORITHM,
      version: '1.1.0',
      targets: { nodes: cams.map((n) => n.nodeId) },
      sources: [CAMERA],
      rollout: { canaryShare: 0.25, gate: { timeoutMs: 1000 } },
    });
    const slow = created.body.id;
    await reportStatus(t, cam(0), slow, { state: 'downloading', progress: 0.1 });
    await vi.waitFor(
      async () => {
        const d = await deployment(slow);
        expect(d.state).toBe('paused');
        expect(d.reason).toMatch(/^canary gate timed out after 1 s: 0 of 1 canary node\(s\) active/);
      },
      { timeout: 10_000, interval: 100 },
    );
    const pauseAgain = await act(slow, 'pause');
    expect([pauseAgain.status, pauseAgain.body.code]).toEqual([409, 'CS_ERR_DEPLOY_STATE']);

    const cancelled = await act(slow, 'cancel');
    expect(cancelled.body.state).toBe('cancelled');
    expect(cancelled.body.counts).toMatchObject({ downloading: 1, cancelled: 3 });
    expect(assignmentOf(await assignmentsOf(t, cam(0)))?.deploymentId).toBe(slow);
    expect(assignmentOf(await assignmentsOf(t, cam(1)))?.deploymentId).toBe(first);
    expect((await act(slow, 'resume')).status).toBe(409);
    const undo = await act(slow, 'rollback');
    expect(undo.body.state).toBe('rolled-back');
    expect(assignmentOf(await assignmentsOf(t, cam(0)))?.deploymentId).toBe(first);
    const unknown = await act('dep_nope', 'pause');
    expect([unknown.status, unknown.body.code]).toEqual([404, 'CS_ERR_DEPLOY_UNKNOWN']);
  });

  it('gives a version retired during its rollout to no further node', async () => {
    const created = await deploy({
      algorithmId: REFERENCE_ALGORITHM,
      version: '1.3.0',
      targets: { nodes: cams.map((n) => n.nodeId) },
      sources: [CAMERA],
      rollout: { canaryShare: 0.25 },
    });
    const id = created.body.id;
    expect(assignmentOf(await assignmentsOf(t, cam(0)))?.version).toBe('1.3.0');
    const retired = await t.api('POST', `/v1/algorithms/${REFERENCE_ALGORITHM}/versions/1.3.0/retire`, {
      note: 'licence withdrawn',
    });
    expect(retired.status).toBe(200);
    const report = await reportStatus(t, cam(0), id, { state: 'active' });
    expect(report.body.deploymentState).toBe('paused');
    expect((await deployment(id)).reason).toMatch(/^yolox-nano 1\.3\.0 is retired: no further node gets it/);
    expect(assignmentOf(await assignmentsOf(t, cam(1)))?.deploymentId).toBe(first);
    const undone = await act(id, 'rollback');
    expect(undone.body.state).toBe('rolled-back');
    expect(assignmentOf(await assignmentsOf(t, cam(0)))?.deploymentId).toBe(first);
    const again = await deploy({
      algorithmId: REFERENCE_ALGORITHM,
      version: '1.3.0',
      targets: { nodes: [cam(0).nodeId] },
      sources: [CAMERA],
    });
    expect([again.status, again.body.code]).toEqual([409, 'CS_ERR_DEPLOY_VERSION_STATE']);
  });

  it('nudges a connected node with NCMD Assignments Revision when its assignments change', async () => {
    const node = cam(2);
    const client = await connectNode(t.mqttUrl, node.nodeId, node.password);
    try {
      const received = new Promise<Buffer>((resolve) =>
        client.on('message', (_topic, payload) => resolve(payload)),
      );
      await client.subscribeAsync(`spBv1.0/city/NCMD/${node.nodeId}`, { qos: 1 });
      const nudged = await deploy({
        algorithmId: REFERENCE_ALGORITHM,
        version: '1.1.0',
        targets: { nodes: [node.nodeId] },
        sources: [CAMERA],
      });
      expect(nudged.status).toBe(201);
      const metric = decodePayload(await received).metrics.find((m) => m.name === ASSIGNMENTS_REVISION);
      const doc = await assignmentsOf(t, node);
      expect(metric).toMatchObject({ datatype: DataType.Int64, value: doc.revision });
      expect(assignmentOf(doc)?.deploymentId).toBe(nudged.body.id);
      await act(nudged.body.id, 'rollback');
    } finally {
      await client.endAsync();
    }
  });

  it('takes reports only from the node itself, and refuses garbage with codes', async () => {
    const [a, b] = [cam(0), cam(1)];
    const path = (n: FleetNode, dep = first) => `/v1/nodes/${n.nodeId}/assignments/${dep}/status`;
    const revision = (await assignmentsOf(t, b)).revision;
    const forOther = await asNode<ErrorBody>(t, a, 'PUT', path(b), { revision, state: 'active' });
    expect([forOther.status, forOther.body.code]).toEqual([403, 'CS_ERR_DEPLOY_OTHER_NODE']);
    const readOther = await asNode<ErrorBody>(t, a, 'GET', `/v1/nodes/${b.nodeId}/assignments`);
    expect([readOther.status, readOther.body.code]).toEqual([403, 'CS_ERR_DEPLOY_OTHER_NODE']);
    const admin = await t.api<ErrorBody>('PUT', path(b), { revision, state: 'active' });
    expect([admin.status, admin.body.code]).toEqual([403, 'CS_ERR_DEPLOY_NODE_ONLY']);
    const wrong = await asNode<ErrorBody>(
      t,
      { auth: `Basic ${Buffer.from(`${b.nodeId}:guess`).toString('base64')}` },
      'PUT',
      path(b),
      {
        revision,
        state: 'active',
      },
    );
    expect([wrong.status, wrong.body.code]).toEqual([401, 'CS_ERR_AUTH_INVALID']);
    const anonymous = await t.api<ErrorBody>('GET', `/v1/nodes/${b.nodeId}/assignments`, undefined, null);
    expect(anonymous.status).toBe(401);

    const garbage: Array<[unknown, string]> = [
      [{ revision, state: 'exploded' }, 'CS_ERR_VALIDATION'],
      [{ state: 'active' }, 'CS_ERR_VALIDATION'],
      [{ revision: -1, state: 'active' }, 'CS_ERR_VALIDATION'],
      [{ revision, state: 'downloading', progress: 1.5 }, 'CS_ERR_VALIDATION'],
      [{ revision, state: 'active', stats: { fps: 'fast' } }, 'CS_ERR_VALIDATION'],
      [{ revision, state: 'active', extra: 1 }, 'CS_ERR_VALIDATION'],
      ['not json at all', 'CS_ERR_HTTP_FST_ERR_CTP_INVALID_JSON_BODY'],
      [[], 'CS_ERR_VALIDATION'],
    ];
    for (const [body, code] of garbage) {
      const res = await asNode<ErrorBody>(t, b, 'PUT', path(b), body);
      expect([res.status, res.body.code], JSON.stringify(body)).toEqual([400, code]);
    }
    const unknown = await asNode<ErrorBody>(t, b, 'PUT', path(b, 'dep_000000000000'), {
      revision,
      state: 'active',
    });
    expect([unknown.status, unknown.body.code]).toEqual([404, 'CS_ERR_DEPLOY_UNKNOWN']);
    const notTarget = await asNode<ErrorBody>(t, ungranted, 'PUT', path(ungranted), {
      revision: 0,
      state: 'active',
    });
    expect(notTarget.status).toBe(200);
    expect(notTarget.body).toMatchObject({ applied: false, state: 'refused' });
    const ghost = await t.api<ErrorBody>('GET', '/v1/nodes/ghost-node/assignments');
    expect([ghost.status, ghost.body.code]).toEqual([404, 'CS_ERR_NODE_UNKNOWN']);
    expect(nodeOf(await deployment(first), b)?.state).toBe('active');
  });

  it('rolls out to 25 nodes: a canary of 5, then the other 20, then completed', async () => {
    const fleet: FleetNode[] = [];
    for (let i = 0; i < 25; i++) fleet.push(await enrollNode(t, `pole-${String(i).padStart(2, '0')}`));
    const ids = fleet.map((n) => n.nodeId);
    await grantNodes(t, 'city-lighting', ids, ids);
    const created = await deploy({
      algorithmId: REFERENCE_ALGORITHM,
      version: '1.1.0',
      targets: { agencies: ['city-lighting'] },
      sources: [CAMERA],
      rollout: { canaryShare: 0.2 },
    });
    expect(created.body.counts).toMatchObject({ queued: 5, pending: 20 });
    const id = created.body.id;
    const canary = fleet.filter((n) => nodeOf(created.body, n)?.canary);
    expect(canary.map((n) => n.nodeId)).toEqual(ids.slice(0, 5));
    await Promise.all(canary.map((n) => reportStatus(t, n, id, { state: 'active', stats: statsOf(2) })));
    const rolling = await deployment(id);
    expect(rolling.state).toBe('rolling');
    expect(rolling.counts).toMatchObject({ active: 5, queued: 20 });
    const rest = fleet.filter((n) => !canary.includes(n));
    const docs = await Promise.all(rest.map((n) => assignmentsOf(t, n)));
    expect(docs.every((d) => d.revision === 1 && assignmentOf(d)?.deploymentId === id)).toBe(true);
    await Promise.all(rest.map((n) => reportStatus(t, n, id, { state: 'active', stats: statsOf(2) })));
    const done = await deployment(id);
    expect(done).toMatchObject({ state: 'completed', reason: '25 node(s) active' });
    expect(done.stats).toMatchObject({ nodesReporting: 25, fps: 50 });
  });

  it('documents the deployment routes in OpenAPI', async () => {
    const doc = await t.api<{ paths: Record<string, unknown> }>('GET', '/docs/json');
    for (const p of [
      '/v1/deployments',
      '/v1/deployments/{id}',
      '/v1/deployments/{id}/rollback',
      '/v1/nodes/{id}/assignments',
      '/v1/nodes/{id}/assignments/{deploymentId}/status',
      '/v1/nodes/{id}/inference',
    ])
      expect(Object.keys(doc.body.paths)).toContain(p);
  });
});
