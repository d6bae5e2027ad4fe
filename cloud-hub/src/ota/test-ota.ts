/**
 * Test and bench helpers for OTA: pack artifacts with the hub's centre key (or any
 * key), upload them, and speak the node side of the OTA contract (protocol/src/ota.ts)
 * with node credentials from enrolment (deployments/test-fleet.ts). No agent needed.
 */
import { randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { type ArtifactDescription, packArtifact } from '@citysense/firmware-ota';
import { type OtaDocument, type OtaStatus, parseSigningKey, type SigningKey } from '@citysense/protocol';
import { centreKeyPath } from '../algorithms/centre-key.ts';
import { asNode, type FleetNode, type Reply } from '../deployments/test-fleet.ts';
import type { TestHub } from '../testing/test-hub.ts';

/** The hub's own centre key: artifacts it signs are trusted. */
export async function centreKey(t: TestHub): Promise<SigningKey> {
  return parseSigningKey(await readFile(centreKeyPath(t.dataDir), 'utf8'));
}

/** Packs a `payloadBytes` random payload as an artifact in `dir`; returns its path. */
export async function packTestArtifact(
  dir: string,
  description: ArtifactDescription,
  key: SigningKey,
  payloadBytes = 64 * 1024,
): Promise<string> {
  const payload = join(dir, `${description.name}-${description.version}.bin`);
  await writeFile(payload, randomBytes(payloadBytes));
  const out = join(dir, `${description.name}-${description.version}.csota`);
  await packArtifact(description, payload, out, key);
  return out;
}

/** An artifact as the API returns it. */
export interface UploadedArtifact {
  id: string;
  name: string;
  version: string;
  sha256: string;
  bytes: number;
  code?: string;
  message?: string;
}

/** Uploads an artifact file as the admin, streamed (`application/octet-stream`). */
export async function uploadArtifact(t: TestHub, path: string): Promise<Reply<UploadedArtifact>> {
  const size = (await stat(path)).size;
  const res = await fetch(`${t.httpUrl}/v1/ota/artifacts`, {
    method: 'POST',
    headers: {
      authorization: `Bearer ${t.adminToken}`,
      'content-type': 'application/octet-stream',
      'content-length': String(size),
    },
    body: Readable.toWeb(createReadStream(path)) as ReadableStream<Uint8Array>,
    duplex: 'half',
  } as RequestInit);
  return { status: res.status, body: (await res.json()) as UploadedArtifact };
}

/** The node's OTA document, as its updater fetches it. */
export async function otaDocumentOf(t: TestHub, node: FleetNode): Promise<OtaDocument> {
  const res = await asNode<OtaDocument>(t, node, 'GET', `/v1/nodes/${node.nodeId}/ota`);
  if (res.status !== 200) throw new Error(`OTA document of ${node.nodeId}: ${JSON.stringify(res.body)}`);
  return res.body;
}

/** What the hub answers to an OTA status report. */
export interface OtaReportReply {
  applied: boolean;
  ignoredBecause?: string;
  state: string;
  campaignState: string;
  code?: string;
}

/** Reports an OTA status as the node's updater does; `revision` defaults to the node's current one. */
export async function reportOta(
  t: TestHub,
  node: FleetNode,
  campaignId: string,
  status: Omit<OtaStatus, 'revision'> & { revision?: number },
): Promise<Reply<OtaReportReply>> {
  const revision = status.revision ?? (await otaDocumentOf(t, node)).revision;
  return asNode<OtaReportReply>(t, node, 'PUT', `/v1/nodes/${node.nodeId}/ota/${campaignId}/status`, {
    ...status,
    revision,
  });
}
