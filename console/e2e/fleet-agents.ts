/**
 * Edge agents for the console tests, speaking the node side of the assignments API as
 * edge-agent does (cloud-hub/src/deployments/test-fleet.ts): poll the AssignmentsDocument,
 * download each assigned package over HTTP Basic, check its SHA-256, and report
 * queued → downloading (progress) → verifying → loading → active. A package whose digest
 * does not match is reported failed with the agent's error code. No model is loaded:
 * the console only sees the reports, exactly as a real agent sends them.
 */
import { createHash } from 'node:crypto';
import { cp, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { packAlgorithm } from '@citysense/algorithms';
import { type AssignmentStatus, type AssignmentsDocument, parseSigningKey } from '@citysense/protocol';
import { centreKeyPath } from '../../cloud-hub/src/algorithms/centre-key.ts';
import { asNode, type FleetNode } from '../../cloud-hub/src/deployments/test-fleet.ts';
import type { TestHub } from '../../cloud-hub/src/testing/test-hub.ts';

const REFERENCE = fileURLToPath(new URL('../../algorithms/packages/yolox-nano', import.meta.url));

/** Packs the reference YOLOX-nano package as `version`, signed with the hub's centre key; returns the file path. */
export async function packReference(
  t: TestHub,
  version: string,
): Promise<{ path: string; dispose(): Promise<void> }> {
  const key = parseSigningKey(await readFile(centreKeyPath(t.dataDir), 'utf8'));
  const dir = await mkdtemp(join(tmpdir(), 'citysense-console-pkg-'));
  const src = join(dir, 'yolox-nano');
  await cp(REFERENCE, src, { recursive: true });
  const manifest = JSON.parse(await readFile(join(REFERENCE, 'manifest.json'), 'utf8')) as object;
  await writeFile(join(src, 'manifest.json'), JSON.stringify({ ...manifest, version }));
  const { file } = await packAlgorithm(src, key);
  const path = join(dir, `yolox-nano-${version}.csalgo`);
  await writeFile(path, file);
  return { path, dispose: () => rm(dir, { recursive: true, force: true }) };
}

/** Simulated agents running until `stop()`. */
export interface FleetAgents {
  stop(): Promise<void>;
}

/** Starts one agent loop per node; `stepMs` spaces the reports so a watcher sees every state. */
export function startAgents(t: TestHub, nodes: FleetNode[], stepMs = 250): FleetAgents {
  const abort = new AbortController();
  const loops = nodes.map((node) => runAgent(t, node, stepMs, abort.signal));
  return {
    async stop() {
      abort.abort();
      await Promise.allSettled(loops);
    },
  };
}

const pause = (ms: number, signal: AbortSignal) =>
  new Promise<void>((resolve) => {
    const stop = () => {
      clearTimeout(timer);
      resolve();
    };
    const timer = setTimeout(() => {
      signal.removeEventListener('abort', stop);
      resolve();
    }, ms);
    signal.addEventListener('abort', stop, { once: true });
  });

async function runAgent(t: TestHub, node: FleetNode, stepMs: number, signal: AbortSignal): Promise<void> {
  const done = new Map<string, number>();
  while (!signal.aborted) {
    const res = await asNode<AssignmentsDocument>(
      t,
      node,
      'GET',
      `/v1/nodes/${node.nodeId}/assignments`,
    ).catch(() => undefined);
    const doc = res?.status === 200 ? res.body : undefined;
    for (const a of doc?.assignments ?? []) {
      if (signal.aborted || !doc || done.get(a.deploymentId) === doc.revision) continue;
      done.set(a.deploymentId, doc.revision);
      const report = (status: Omit<AssignmentStatus, 'revision'>) =>
        asNode(t, node, 'PUT', `/v1/nodes/${node.nodeId}/assignments/${a.deploymentId}/status`, {
          ...status,
          revision: doc.revision,
        });
      await report({ state: 'queued' });
      await pause(stepMs, signal);
      const pkg = await fetch(`${t.httpUrl}${a.packagePath}`, {
        headers: { authorization: node.auth },
        signal,
      });
      if (!pkg.ok || !pkg.body) {
        await report({
          state: 'failed',
          code: 'CS_ERR_AGENT_DOWNLOAD',
          reason: `download answered ${pkg.status}`,
        });
        continue;
      }
      const hash = createHash('sha256');
      let received = 0;
      let reported = 0;
      for await (const chunk of pkg.body as unknown as AsyncIterable<Uint8Array>) {
        hash.update(chunk);
        received += chunk.byteLength;
        const progress = Math.min(1, received / a.bytes);
        if (progress - reported >= 0.25 || progress === 1) {
          reported = progress;
          await report({ state: 'downloading', progress: +progress.toFixed(3) });
          await pause(stepMs, signal);
        }
      }
      await report({ state: 'verifying' });
      if (hash.digest('hex') !== a.sha256) {
        await report({
          state: 'failed',
          code: 'CS_ERR_AGENT_DIGEST',
          reason: 'package digest does not match',
        });
        continue;
      }
      await pause(stepMs, signal);
      await report({ state: 'loading' });
      await pause(stepMs, signal);
      await report({
        state: 'active',
        activeVersion: a.version,
        stats: { frames: 120, fps: 2, inferP50Ms: 20, inferP95Ms: 40, errors: 0, droppedFrames: 0 },
      });
    }
    await pause(300, signal);
  }
}
