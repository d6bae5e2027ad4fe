/**
 * Test helpers for deployments: enrol nodes with hardware facts, publish the
 * reference YOLOX-nano package in several versions, grant an algorithm to nodes,
 * and speak the node side of the assignments API.
 */
import { cp, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { packAlgorithm } from '@citysense/algorithms';
import {
  type AssignmentStatus,
  type AssignmentsDocument,
  generateEd25519,
  type NodeHardware,
  parseSigningKey,
  signEd25519,
} from '@citysense/protocol';
import { centreKeyPath } from '../algorithms/centre-key.ts';
import type { TestHub } from '../testing/test-hub.ts';

const REFERENCE = fileURLToPath(new URL('../../../algorithms/packages/yolox-nano', import.meta.url));

/** The reference package's algorithm id. */
export const REFERENCE_ALGORITHM = 'yolox-nano';

/** An enrolled node with its HTTP Basic credentials. */
export interface FleetNode {
  nodeId: string;
  password: string;
  /** `Basic <node id>:<password>` */
  auth: string;
}

/** A reply of the API. */
export interface Reply<T> {
  status: number;
  body: T;
}

/** Enrols a node like an agent does, with the hardware facts it reports. */
export async function enrollNode(
  t: TestHub,
  name: string,
  hardware?: Partial<NodeHardware>,
): Promise<FleetNode> {
  const created = await t.api<{ token: string }>('POST', '/v1/enrollment-tokens', { name });
  const token = created.body.token;
  const keys = generateEd25519();
  const res = await t.api<{ nodeId: string; mqtt: { password: string } }>(
    'POST',
    '/v1/nodes/enroll',
    {
      token,
      publicKey: keys.publicKey,
      signature: signEd25519(keys.privateKey, `${token}\n${keys.publicKey}`),
      ...(hardware ? { hardware } : {}),
    },
    null,
  );
  if (res.status !== 201) throw new Error(`enrolment of ${name} failed: ${JSON.stringify(res.body)}`);
  const { nodeId } = res.body;
  const password = res.body.mqtt.password;
  return { nodeId, password, auth: `Basic ${Buffer.from(`${nodeId}:${password}`).toString('base64')}` };
}

/**
 * Packs the reference package as each of `versions` with the hub's centre key,
 * uploads it, runs the real adaptation test, files and publishes it. Versions in
 * `draftOnly` are uploaded and left as drafts.
 */
export async function publishReference(
  t: TestHub,
  versions: string[],
  draftOnly: string[] = [],
): Promise<Map<string, { sha256: string; bytes: number }>> {
  const key = parseSigningKey(await readFile(centreKeyPath(t.dataDir), 'utf8'));
  const src = await mkdtemp(join(tmpdir(), 'citysense-deploy-src-'));
  const out = new Map<string, { sha256: string; bytes: number }>();
  try {
    await cp(REFERENCE, src, { recursive: true });
    const manifest = JSON.parse(await readFile(join(REFERENCE, 'manifest.json'), 'utf8')) as object;
    for (const version of [...versions, ...draftOnly]) {
      await writeFile(join(src, 'manifest.json'), JSON.stringify({ ...manifest, version }));
      const { file } = await packAlgorithm(src, key);
      const res = await fetch(`${t.httpUrl}/v1/algorithms/packages`, {
        method: 'POST',
        headers: { authorization: `Bearer ${t.adminToken}`, 'content-type': 'application/octet-stream' },
        body: file,
      });
      const uploaded = (await res.json()) as { sha256: string; bytes: number };
      if (res.status !== 201) throw new Error(`upload of ${version} failed: ${JSON.stringify(uploaded)}`);
      out.set(version, { sha256: uploaded.sha256, bytes: uploaded.bytes });
      if (draftOnly.includes(version)) continue;
      for (const action of ['validate', 'file', 'publish']) {
        const moved = await t.api<{ state: string }>(
          'POST',
          `/v1/algorithms/${REFERENCE_ALGORITHM}/versions/${version}/${action}`,
          action === 'validate' ? undefined : {},
        );
        if (moved.status !== 200)
          throw new Error(`${action} of ${version} failed: ${JSON.stringify(moved.body)}`);
      }
    }
  } finally {
    await rm(src, { recursive: true, force: true });
  }
  return out;
}

/**
 * Makes `agencyId` (created if needed) hold `members` on top of its nodes, grants
 * it the algorithm, and grants the algorithm on to `granted` of them.
 */
export async function grantNodes(
  t: TestHub,
  agencyId: string,
  members: string[],
  granted: string[],
  algorithmId = REFERENCE_ALGORITHM,
): Promise<void> {
  const existing = await t.api<{ nodes: string[] }>('GET', `/v1/agencies/${agencyId}`);
  if (existing.status === 404) await t.api('POST', '/v1/agencies', { id: agencyId, name: agencyId });
  const nodes = [...new Set([...(existing.body.nodes ?? []), ...members])];
  const steps: Array<[string, string, unknown]> = [
    ['PUT', `/v1/agencies/${agencyId}/nodes`, { nodeIds: nodes }],
    ['POST', `/v1/agencies/${agencyId}/grants`, { algorithmId }],
    ['POST', `/v1/agencies/${agencyId}/node-grants`, { algorithmId, nodeIds: granted }],
  ];
  for (const [method, path, body] of steps) {
    const res = await t.api(method, path, body);
    if (res.status >= 300) throw new Error(`${method} ${path} failed: ${JSON.stringify(res.body)}`);
  }
}

/** Calls the API with a node's credentials. */
export async function asNode<T>(
  t: TestHub,
  node: Pick<FleetNode, 'auth'>,
  method: string,
  path: string,
  body?: unknown,
): Promise<Reply<T>> {
  const res = await fetch(`${t.httpUrl}${path}`, {
    method,
    headers: {
      authorization: node.auth,
      ...(body === undefined ? {} : { 'content-type': 'application/json' }),
    },
    body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
  });
  const text = await res.text();
  return { status: res.status, body: (text ? JSON.parse(text) : undefined) as T };
}

/** The node's AssignmentsDocument, as its agent fetches it. */
export async function assignmentsOf(t: TestHub, node: FleetNode): Promise<AssignmentsDocument> {
  const res = await asNode<AssignmentsDocument>(t, node, 'GET', `/v1/nodes/${node.nodeId}/assignments`);
  if (res.status !== 200) throw new Error(`assignments of ${node.nodeId}: ${JSON.stringify(res.body)}`);
  return res.body;
}

/** What the hub answers to a status report. */
export interface ReportReply {
  applied: boolean;
  ignoredBecause?: string;
  state: string;
  deploymentState: string;
  code?: string;
}

/** Reports a status as the node's agent does; `revision` defaults to the node's current one. */
export async function reportStatus(
  t: TestHub,
  node: FleetNode,
  deploymentId: string,
  status: Omit<AssignmentStatus, 'revision'> & { revision?: number },
): Promise<Reply<ReportReply>> {
  const revision = status.revision ?? (await assignmentsOf(t, node)).revision;
  return asNode<ReportReply>(t, node, 'PUT', `/v1/nodes/${node.nodeId}/assignments/${deploymentId}/status`, {
    ...status,
    revision,
  });
}

/** Plausible inference figures of an active assignment. */
export function statsOf(fps: number, p95 = 40): NonNullable<AssignmentStatus['stats']> {
  return {
    frames: Math.round(fps * 60),
    fps,
    inferP50Ms: p95 / 2,
    inferP95Ms: p95,
    errors: 0,
    droppedFrames: 0,
  };
}
