/**
 * The demo's video slice: a simulated street camera (MJPEG over HTTP), the
 * reference YOLOX-nano package packed, validated, filed and published at the
 * hub's algorithm centre, granted to the demo district, and deployed to one
 * gateway with a local alert rule. Every step is idempotent, so a second
 * `npm start` finds it all in place and the gateway picks up where it was.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { packAlgorithm } from '@citysense/algorithms';
import { centreKeyPath } from '@citysense/cloud-hub';
import { CitysenseError, parseSigningKey } from '@citysense/protocol';
import { MjpegCamera } from '@citysense/simulators';
import type { HubClient } from './hub-client.ts';
import { advanceVersion, type PublishState } from './version-lifecycle.ts';

const REFERENCE = fileURLToPath(new URL('../algorithms/packages/yolox-nano', import.meta.url));
const ALGORITHM = 'yolox-nano';
const VERSION = '1.0.0';
const AGENCY = 'demo-district';

/** What the demo's video slice runs. */
export interface DemoVideo {
  camera: MjpegCamera;
  /** Resolves with the deployment id once the gateways have enrolled and the deployment exists. */
  deployed: Promise<string>;
  nodeId: string;
}

/** Starts the camera and makes sure the algorithm runs on `nodeId`. */
export async function startDemoVideo(o: {
  client: HubClient;
  hubUrl: string;
  adminToken: string;
  dataDir: string;
  cameraPort: number;
  nodeId: string;
  nodeIds: string[];
}): Promise<DemoVideo> {
  const camera = new MjpegCamera({
    images: [join(REFERENCE, 'samples/000000000139.jpg'), join(REFERENCE, 'samples/000000000724.jpg')],
    fps: 2,
    port: o.cameraPort,
  });
  await camera.start();
  await publishReference(o).catch(async (err: unknown) => {
    await camera.stop();
    throw err;
  });
  // The gateways enrol in their own processes: grant and deploy once the hub knows them.
  const deployed = untilEnrolled(o.client, o.nodeIds).then(async () => {
    await grantDistrict(o.client, o.nodeIds);
    return ensureDeployment(o.client, o.nodeId, camera.url);
  });
  return { camera, deployed, nodeId: o.nodeId };
}

async function untilEnrolled(client: HubClient, nodeIds: string[], timeoutMs = 120_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const nodes = await client.request<Array<{ id: string }>>('GET', '/v1/nodes');
    const known = new Set(nodes.map((n) => n.id));
    if (nodeIds.every((id) => known.has(id))) return;
    if (Date.now() > deadline)
      throw new CitysenseError(
        'CS_ERR_DEMO_SETUP',
        `gateways did not enrol within ${timeoutMs / 1000} s`,
        500,
      );
    await new Promise((r) => setTimeout(r, 500));
  }
}

async function publishReference(o: {
  client: HubClient;
  hubUrl: string;
  adminToken: string;
  dataDir: string;
}) {
  const path = `/v1/algorithms/${ALGORITHM}/versions/${VERSION}`;
  let state = await o.client
    .request<{ state: string }>('GET', path)
    .then((v) => v.state)
    .catch(notFound(undefined));
  if (state === undefined) {
    // Signed with the hub's own centre key, as an algorithm-centre admin would.
    const key = parseSigningKey(await readFile(centreKeyPath(o.dataDir), 'utf8'));
    const { file } = await packAlgorithm(REFERENCE, key);
    const res = await fetch(`${o.hubUrl}/v1/algorithms/packages`, {
      method: 'POST',
      headers: { authorization: `Bearer ${o.adminToken}`, 'content-type': 'application/octet-stream' },
      body: file,
    });
    if (!res.ok)
      throw new CitysenseError('CS_ERR_DEMO_SETUP', `uploading ${ALGORITHM}: ${await res.text()}`, 500);
    state = 'draft';
  }
  const result = await advanceVersion(o.client, ALGORITHM, VERSION, state as PublishState, 'published');
  if (result.stuck)
    throw new CitysenseError(
      'CS_ERR_DEMO_SETUP',
      `${ALGORITHM} ${VERSION} did not pass ${result.stuck.action}: ${result.stuck.reason}`,
      500,
    );
}

async function grantDistrict(client: HubClient, nodeIds: string[]) {
  await client.request('POST', '/v1/agencies', { id: AGENCY, name: 'Demo district' }).catch(conflictIsFine);
  await client.request('PUT', `/v1/agencies/${AGENCY}/nodes`, { nodeIds });
  await client.request('POST', `/v1/agencies/${AGENCY}/grants`, { algorithmId: ALGORITHM });
  await client.request('POST', `/v1/agencies/${AGENCY}/node-grants`, { algorithmId: ALGORITHM, nodeIds });
}

async function ensureDeployment(client: HubClient, nodeId: string, cameraUrl: string): Promise<string> {
  const existing = await client.request<Array<{ id: string; state: string; version: string }>>(
    'GET',
    `/v1/deployments?algorithmId=${ALGORITHM}`,
  );
  const live = existing.find((d) => ['canary', 'rolling', 'completed'].includes(d.state));
  if (live) return live.id;
  const created = await client.request<{ id: string }>('POST', '/v1/deployments', {
    algorithmId: ALGORITHM,
    version: VERSION,
    targets: { nodes: [nodeId] },
    sources: [{ id: 'cam-01', url: cameraUrl, fps: 1 }],
    rules: [
      { id: 'person-at-pole', kind: 'presence', labels: ['person'], cooldownSeconds: 60, severity: 'info' },
    ],
    rollout: { canaryShare: 1 },
  });
  return created.id;
}

function notFound<T>(value: T) {
  return (err: unknown): T => {
    if ((err as { statusCode?: number }).statusCode === 404) return value;
    throw err;
  };
}

function conflictIsFine(err: unknown): void {
  if ((err as { statusCode?: number }).statusCode !== 409) throw err;
}
