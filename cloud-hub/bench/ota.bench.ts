/**
 * OTA campaign benchmark (`npm run bench:ota`): a hub with the embedded broker and
 * database, a 20 MB artifact signed with the centre key, and 200 simulated agents
 * that speak the OTA contract over HTTP with their own node credentials: poll the
 * OTA document, download the artifact (HTTP Basic, streamed, SHA-256 checked),
 * report downloading → verifying → installing → activating → healthy. The campaign
 * runs with a 5 % canary and a health gate; the clock runs from its creation to
 * `completed`. The agents have no MQTT session, so no NCMD nudge reaches them: they
 * poll every BENCH_POLL_MS (5 s), which adds up to one poll interval per stage.
 *
 * Baselines in the same run, with the same client code and the same 200 concurrent
 * clients: the same bytes from a bare `node:http` static server, and from the hub's
 * artifact route without a campaign around it.
 *
 *   BENCH_AGENTS=200 BENCH_ARTIFACT_MB=20 npm run bench:ota
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdtemp, rm, stat } from 'node:fs/promises';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { OtaAssignment } from '@citysense/protocol';
import { enrollNode, type FleetNode } from '../src/deployments/test-fleet.ts';
import {
  centreKey,
  otaDocumentOf,
  packTestArtifact,
  reportOta,
  uploadArtifact,
} from '../src/ota/test-ota.ts';
import { startTestHub, type TestHub } from '../src/testing/test-hub.ts';

const AGENTS = Number(process.env.BENCH_AGENTS ?? 200);
const ARTIFACT_MB = Number(process.env.BENCH_ARTIFACT_MB ?? 20);
const POLL_MS = Number(process.env.BENCH_POLL_MS ?? 5000);
const MB = 1024 * 1024;

/** Downloads `url` as one client: streamed, hashed; returns bytes and SHA-256. */
async function download(url: string, auth: string | undefined): Promise<{ bytes: number; sha256: string }> {
  const res = await fetch(url, auth ? { headers: { authorization: auth } } : {});
  if (res.status !== 200 || !res.body) throw new Error(`download ${url}: HTTP ${res.status}`);
  const hash = createHash('sha256');
  let bytes = 0;
  for await (const chunk of res.body as AsyncIterable<Uint8Array>) {
    hash.update(chunk);
    bytes += chunk.length;
  }
  return { bytes, sha256: hash.digest('hex') };
}

/** `clients` concurrent downloads of `url`; wall time and MB/s served. */
async function fanOut(
  clients: number,
  url: string,
  authOf: (i: number) => string | undefined,
  sha256: string,
): Promise<{ seconds: number; mbps: number }> {
  const started = performance.now();
  const results = await Promise.all(Array.from({ length: clients }, (_, i) => download(url, authOf(i))));
  const seconds = (performance.now() - started) / 1000;
  if (results.some((r) => r.sha256 !== sha256)) throw new Error('a client received different bytes');
  const bytes = results.reduce((a, r) => a + r.bytes, 0);
  return { seconds, mbps: bytes / MB / seconds };
}

/** One simulated agent: polls its OTA document and plays the updater for each new update. */
async function runAgent(t: TestHub, node: FleetNode, signal: AbortSignal, served: { bytes: number }) {
  const done = new Set<string>();
  // Spread the polls over the interval, as real agents started at different times do.
  await new Promise((r) => setTimeout(r, Math.random() * POLL_MS));
  while (!signal.aborted) {
    const doc = await otaDocumentOf(t, node);
    for (const u of doc.updates as OtaAssignment[]) {
      if (done.has(u.campaignId)) continue;
      done.add(u.campaignId);
      const revision = doc.revision;
      await reportOta(t, node, u.campaignId, { revision, state: 'downloading', progress: 0 });
      const got = await download(`${t.httpUrl}${u.filePath}`, node.auth);
      served.bytes += got.bytes;
      if (got.sha256 !== u.sha256) {
        await reportOta(t, node, u.campaignId, { revision, state: 'failed', code: 'CS_ERR_OTA_DIGEST' });
        continue;
      }
      for (const state of ['verifying', 'installing', 'activating', 'healthy'] as const)
        await reportOta(t, node, u.campaignId, { revision, state, slot: 'b' });
    }
    await new Promise((r) => setTimeout(r, POLL_MS));
  }
}

const dir = await mkdtemp(join(tmpdir(), 'citysense-bench-ota-'));
let hub: TestHub | undefined;
let artifactPath = '';
let artifactBytes = 0;
const bare = createServer((_req, res) => {
  res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': String(artifactBytes) });
  createReadStream(artifactPath).pipe(res);
});
const stopAgents = new AbortController();
try {
  hub = await startTestHub({ otaCheckIntervalMs: 200 }, join(dir, 'hub'));
  const t = hub;
  artifactPath = await packTestArtifact(
    dir,
    { name: 'lamp-gateway-fw', version: '3.0.0', target: 'firmware', hardware: ['LPG-3'] },
    await centreKey(t),
    ARTIFACT_MB * MB,
  );
  artifactBytes = (await stat(artifactPath)).size;
  const uploadStarted = performance.now();
  const uploaded = await uploadArtifact(t, artifactPath);
  if (uploaded.status !== 201) throw new Error(`upload failed: ${JSON.stringify(uploaded.body)}`);
  const uploadSeconds = (performance.now() - uploadStarted) / 1000;
  const artifact = uploaded.body;

  const enrolStarted = performance.now();
  const fleet: FleetNode[] = [];
  for (let i = 0; i < AGENTS; i += 20)
    fleet.push(
      ...(await Promise.all(
        Array.from({ length: Math.min(20, AGENTS - i) }, (_, k) =>
          enrollNode(t, `pole-${String(i + k).padStart(3, '0')}`, { arch: 'arm64', model: 'LPG-3' }),
        ),
      )),
    );

  const enrolSeconds = (performance.now() - enrolStarted) / 1000;
  // The campaign: canary 5 %, gate on every canary node healthy, then the rest.
  const served = { bytes: 0 };
  const agentErrors: unknown[] = [];
  const agents = fleet.map((n) =>
    runAgent(t, n, stopAgents.signal, served).catch((err: unknown) => {
      agentErrors.push(err);
    }),
  );
  const started = performance.now();
  const created = await t.api<{ id: string }>('POST', '/v1/ota/campaigns', {
    artifactId: artifact.id,
    targets: { nodes: fleet.map((n) => n.nodeId) },
    canaryShare: 0.05,
    gate: { minHealthyShare: 1, maxFailed: 0, timeoutMs: 600_000 },
  });
  if (created.status !== 201) throw new Error(`campaign failed: ${JSON.stringify(created.body)}`);
  let gateSeconds: number | undefined;
  let state = 'canary';
  while (state !== 'completed') {
    await new Promise((r) => setTimeout(r, 100));
    const c = await t.api<{ state: string; reason: string | null }>(
      'GET',
      `/v1/ota/campaigns/${created.body.id}`,
    );
    state = c.body.state;
    if (state === 'rolling' && gateSeconds === undefined) gateSeconds = (performance.now() - started) / 1000;
    if (state === 'paused' || state === 'aborted') throw new Error(`campaign ${state}: ${c.body.reason}`);
    if (agentErrors.length > 0) throw agentErrors[0];
  }
  const campaignSeconds = (performance.now() - started) / 1000;
  stopAgents.abort();
  await Promise.allSettled(agents);

  // Baselines after the campaign, both warm: the same bytes from a bare static server, same clients.
  await new Promise<void>((r) => bare.listen(0, '127.0.0.1', r));
  const barePort = (bare.address() as AddressInfo).port;
  const baseline = await fanOut(
    AGENTS,
    `http://127.0.0.1:${barePort}/fw.csota`,
    () => undefined,
    artifact.sha256,
  );

  // Baseline 2: the hub's artifact route alone (node credentials, access check, Range-capable), no campaign.
  const route = await fanOut(
    AGENTS,
    `${t.httpUrl}/v1/ota/artifacts/${artifact.id}/file`,
    (i) => fleet[i]?.auth,
    artifact.sha256,
  );

  const servedMb = served.bytes / MB;
  const fmt = (n: number, d = 1) => n.toFixed(d);
  console.log(`OTA campaign: ${fmt(artifactBytes / MB)} MB artifact to ${AGENTS} simulated agents`);
  console.log(`  enrolment of ${AGENTS} nodes                      ${fmt(enrolSeconds, 1)} s`);
  console.log(`  upload to the hub (streamed, verified)       ${fmt(uploadSeconds, 2)} s`);
  console.log(
    `  campaign create → completed                   ${fmt(campaignSeconds)} s (canary gate passed at ${fmt(gateSeconds ?? 0)} s)`,
  );
  console.log(
    `  bytes served during the campaign              ${fmt(servedMb, 0)} MB, ${fmt(servedMb / campaignSeconds)} MB/s over the whole campaign`,
  );
  console.log(
    `  hub artifact route, ${AGENTS} concurrent clients    ${fmt(route.seconds, 2)} s, ${fmt(route.mbps)} MB/s`,
  );
  console.log(
    `  bare node:http static server, same clients    ${fmt(baseline.seconds, 2)} s, ${fmt(baseline.mbps)} MB/s`,
  );
  console.log(`  ratio hub route / bare server (MB/s)          ${fmt(route.mbps / baseline.mbps, 2)}`);
  console.log(
    `  ratio bare fan-out time / whole campaign      ${fmt(baseline.seconds / campaignSeconds, 2)}`,
  );
} finally {
  stopAgents.abort();
  bare.close();
  await hub?.stop();
  await rm(dir, { recursive: true, force: true });
}
