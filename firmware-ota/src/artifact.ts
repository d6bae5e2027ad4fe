/**
 * The OTA artifact file (`.csota`): one file the centre signs and the hub and nodes
 * check without ever holding the payload in memory.
 *
 *   CSOTA/1 <manifest bytes> <signature bytes>\n     header line, ASCII decimal lengths
 *   <manifest>                                         OtaManifest, UTF-8 JSON
 *   <signature>                                        DetachedSignature over the exact manifest bytes
 *   <payload>                                          manifest.payload.bytes bytes
 *
 * Trust flows signature → manifest → payload SHA-256, as for algorithm packages.
 * The header is read in one small read; the payload is streamed for hashing and copying.
 */
import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { open, rename, rm, stat } from 'node:fs/promises';
import { pipeline } from 'node:stream/promises';
import {
  CitysenseError,
  type DetachedSignature,
  isSignatureAlgorithm,
  OTA_MANIFEST_FORMAT,
  type OtaManifest,
  OtaManifestSchema,
  type SigningKey,
  signDetached,
  verifyDetached,
} from '@citysense/protocol';
import { Value } from '@sinclair/typebox/value';
import { OTA_ERRORS } from './errors.ts';

/** File extension of artifacts. */
export const ARTIFACT_EXTENSION = '.csota';

const MAGIC = 'CSOTA/1';
/** Manifest and signature together stay far below this; a larger header is not an artifact. */
const MAX_HEADER_BYTES = 64 * 1024;
const HEADER_LINE = /^CSOTA\/1 (\d{1,6}) (\d{1,6})$/;

/** What the manifest says besides what packing computes. */
export type ArtifactDescription = Omit<OtaManifest, 'format' | 'payload' | 'createdAt'> & {
  createdAt?: string;
};

/** An artifact's head, parsed and schema-checked (the signature not yet verified). */
export interface ArtifactHead {
  manifest: OtaManifest;
  /** The exact bytes the signature covers. */
  manifestBytes: Buffer;
  signature: DetachedSignature;
  /** Offset of the payload in the file. */
  payloadOffset: number;
  /** Size of the whole file. */
  fileBytes: number;
}

/** Options of `verifyArtifact`. */
export interface VerifyArtifactOptions {
  /** Public keys allowed to sign; any other signer is refused (CS_ERR_OTA_UNTRUSTED_KEY). Absent: any valid signature. */
  trustedKeys?: readonly string[] | undefined;
}

/**
 * Writes an artifact for the payload file `payloadPath` to `outPath`, signed with `key`.
 * The payload is streamed twice (hash, then copy); the output appears atomically.
 */
export async function packArtifact(
  description: ArtifactDescription,
  payloadPath: string,
  outPath: string,
  key: SigningKey,
): Promise<ArtifactHead> {
  const info = await stat(payloadPath).catch(() => undefined);
  if (!info?.isFile() || info.size === 0)
    throw new CitysenseError(
      OTA_ERRORS.invalid,
      `payload ${payloadPath} is not a non-empty regular file`,
      400,
    );
  const manifest: OtaManifest = {
    format: OTA_MANIFEST_FORMAT,
    ...description,
    createdAt: description.createdAt ?? new Date().toISOString(),
    payload: { bytes: info.size, sha256: await sha256OfFile(payloadPath) },
  };
  assertManifest(manifest);
  const manifestBytes = Buffer.from(JSON.stringify(manifest));
  const signature = signDetached(key, manifestBytes);
  const signatureBytes = Buffer.from(JSON.stringify(signature));
  const header = Buffer.from(`${MAGIC} ${manifestBytes.length} ${signatureBytes.length}\n`, 'ascii');
  const partial = `${outPath}.partial`;
  try {
    const out = createWriteStream(partial);
    out.write(header);
    out.write(manifestBytes);
    out.write(signatureBytes);
    await pipeline(createReadStream(payloadPath), out);
    await rename(partial, outPath);
  } catch (err) {
    await rm(partial, { force: true });
    throw err;
  }
  const payloadOffset = header.length + manifestBytes.length + signatureBytes.length;
  return { manifest, manifestBytes, signature, payloadOffset, fileBytes: payloadOffset + info.size };
}

/**
 * Reads and checks an artifact's head: layout, manifest schema, signature shape, and that
 * the file is exactly as long as the manifest says. Throws CS_ERR_OTA_ARTIFACT_INVALID.
 */
export async function readArtifactHead(path: string): Promise<ArtifactHead> {
  const file = await open(path, 'r').catch((err: NodeJS.ErrnoException) => {
    throw new CitysenseError(
      OTA_ERRORS.invalid,
      `cannot open artifact ${path}: ${err.code ?? err.message}`,
      400,
    );
  });
  try {
    const { size } = await file.stat();
    const head = Buffer.alloc(Math.min(size, MAX_HEADER_BYTES));
    const { bytesRead } = await file.read(head, 0, head.length, 0);
    return parseArtifactHead(head.subarray(0, bytesRead), size);
  } finally {
    await file.close();
  }
}

/**
 * Parses an artifact head from the first bytes of the file (at least the header, manifest
 * and signature) and the whole file size. Throws CS_ERR_OTA_ARTIFACT_INVALID.
 */
export function parseArtifactHead(head: Buffer, fileBytes: number): ArtifactHead {
  const newline = head.indexOf(0x0a);
  const line = newline > 0 && newline < 64 ? head.toString('ascii', 0, newline) : '';
  const lengths = HEADER_LINE.exec(line);
  if (!lengths) throw invalid(`it does not start with "${MAGIC} <manifest bytes> <signature bytes>"`);
  const manifestStart = newline + 1;
  const signatureStart = manifestStart + Number(lengths[1]);
  const payloadOffset = signatureStart + Number(lengths[2]);
  if (payloadOffset > head.length) throw invalid('its header is cut short');
  const manifestBytes = Buffer.from(head.subarray(manifestStart, signatureStart));
  const manifest = parseJson(manifestBytes, 'manifest');
  assertManifest(manifest);
  const signature = parseSignature(parseJson(head.subarray(signatureStart, payloadOffset), 'signature'));
  const expected = payloadOffset + manifest.payload.bytes;
  if (fileBytes !== expected)
    throw invalid(
      `it is ${fileBytes} bytes but its manifest promises ${expected} (truncated or padded; download it again)`,
    );
  return { manifest, manifestBytes, signature, payloadOffset, fileBytes };
}

/**
 * Checks an artifact end to end: head, trusted signer, signature over the manifest, payload
 * SHA-256. Coded errors: CS_ERR_OTA_ARTIFACT_INVALID, CS_ERR_OTA_UNTRUSTED_KEY,
 * CS_ERR_OTA_SIGNATURE, CS_ERR_OTA_DIGEST.
 */
export async function verifyArtifact(
  path: string,
  options: VerifyArtifactOptions = {},
): Promise<ArtifactHead> {
  const head = await readArtifactHead(path);
  verifyArtifactHead(head, options);
  const actual = await sha256OfFile(path, head.payloadOffset);
  if (actual !== head.manifest.payload.sha256)
    throw new CitysenseError(
      OTA_ERRORS.digest,
      `payload SHA-256 is ${actual}, the manifest says ${head.manifest.payload.sha256}: the artifact is corrupt`,
      400,
    );
  return head;
}

/** Checks the signer and the signature of a parsed head (no payload read). */
export function verifyArtifactHead(head: ArtifactHead, options: VerifyArtifactOptions = {}): void {
  const { signature } = head;
  if (options.trustedKeys && !options.trustedKeys.some((k) => k.trim() === signature.publicKey.trim()))
    throw new CitysenseError(
      OTA_ERRORS.untrustedKey,
      `artifact ${head.manifest.name} ${head.manifest.version} is signed by a key this platform does not trust`,
      403,
    );
  if (!verifyDetached(signature, head.manifestBytes))
    throw new CitysenseError(
      OTA_ERRORS.signature,
      `artifact signature does not verify (${signature.algorithm}): the manifest was altered or signed by another key`,
      400,
    );
}

/** Copies the payload of a verified artifact to `dest` (atomically, through `dest.partial`). */
export async function extractPayload(path: string, head: ArtifactHead, dest: string): Promise<void> {
  const partial = `${dest}.partial`;
  try {
    await pipeline(createReadStream(path, { start: head.payloadOffset }), createWriteStream(partial));
    await rename(partial, dest);
  } catch (err) {
    await rm(partial, { force: true });
    throw err;
  }
}

/** SHA-256 (hex) of a file from byte `start` on, streamed. */
export async function sha256OfFile(path: string, start = 0): Promise<string> {
  const hash = createHash('sha256');
  await pipeline(createReadStream(path, { start }), hash);
  return hash.digest('hex');
}

function assertManifest(value: unknown): asserts value is OtaManifest {
  const first = Value.Errors(OtaManifestSchema, value).First();
  if (first) throw invalid(`its manifest is invalid at ${first.path || '/'}: ${first.message}`);
}

function parseJson(bytes: Uint8Array, what: string): unknown {
  try {
    return JSON.parse(Buffer.from(bytes).toString('utf8'));
  } catch {
    throw invalid(`its ${what} is not JSON`);
  }
}

function parseSignature(value: unknown): DetachedSignature {
  const doc = value as Partial<DetachedSignature> | null;
  if (
    !doc ||
    !isSignatureAlgorithm(doc.algorithm) ||
    typeof doc.publicKey !== 'string' ||
    typeof doc.signature !== 'string'
  )
    throw invalid('its signature section is not {algorithm, publicKey, signature}');
  return { algorithm: doc.algorithm, publicKey: doc.publicKey, signature: doc.signature };
}

function invalid(why: string): CitysenseError {
  return new CitysenseError(OTA_ERRORS.invalid, `not a valid citysense OTA artifact: ${why}`, 400);
}
