import { randomBytes } from 'node:crypto';
import type { Readable } from 'node:stream';
import { ARTIFACT_EXTENSION, OTA_ERRORS, verifyArtifact } from '@citysense/firmware-ota';
import {
  CitysenseError,
  componentLogger,
  errorMessage,
  type Logger,
  type OtaManifest,
  type OtaTarget,
} from '@citysense/protocol';
import { type ArtifactLayout, PackageArtifacts } from '../algorithms/package-artifacts.ts';
import type { AuditActor } from '../audit/audit-log.ts';
import type { RangedFile } from '../http/ranged-file.ts';
import type { HttpPrincipal } from '../http/server.ts';
import type { Database } from '../storage/database.ts';
import {
  type ArtifactRecord,
  campaignsOfArtifact,
  deleteArtifact,
  fileShared,
  findArtifact,
  findArtifactByName,
  insertArtifact,
  listArtifacts,
  nodeTargetedBy,
} from './ota-store.ts';

/** Error when an upload exceeds the configured limit. */
export function artifactTooLarge(maxBytes: number): CitysenseError {
  return new CitysenseError(
    'CS_ERR_OTA_ARTIFACT_TOO_LARGE',
    `artifact is larger than the limit of ${maxBytes} bytes (hub option otaMaxArtifactBytes)`,
    413,
    { maxBytes },
  );
}

/** OTA artifacts on disk: `<artifactDir>/ota/<sha256>.csota`, uploaded like algorithm packages. */
export const OTA_LAYOUT: ArtifactLayout = {
  folder: 'ota',
  extension: ARTIFACT_EXTENSION,
  noun: 'artifact',
  tooLarge: artifactTooLarge,
  codes: {
    aborted: 'CS_ERR_OTA_UPLOAD_ABORTED',
    failed: 'CS_ERR_OTA_UPLOAD_FAILED',
    missing: 'CS_ERR_OTA_ARTIFACT_MISSING',
  },
};

/** An artifact as the API shows it. */
export interface ArtifactView {
  id: string;
  name: string;
  version: string;
  target: OtaTarget;
  manifest: OtaManifest;
  /** SHA-256 and size of the whole `.csota` file. */
  sha256: string;
  bytes: number;
  signerKey: string;
  uploadedBy: string;
  createdAt: Date;
  /** Campaigns that use it (it can be deleted only when there are none). */
  campaigns: string[];
}

/** Options of the artifact service. */
export interface OtaArtifactServiceOptions {
  db: Database;
  artifactDir: string;
  maxArtifactBytes: number;
  /** Public keys allowed to sign artifacts: the platform's trusted signers. */
  trustedKeys: () => Promise<string[]>;
  logger?: Logger;
}

/**
 * OTA artifacts at the hub: streamed upload with a size limit, checked end to end
 * (layout, trusted signer, signature, payload SHA-256) before it is stored; list,
 * delete when no campaign uses it, and the download the nodes of a campaign may make.
 */
export class OtaArtifactService {
  readonly files: PackageArtifacts;
  readonly #o: OtaArtifactServiceOptions;
  readonly #log: Logger;

  constructor(options: OtaArtifactServiceOptions) {
    this.#o = options;
    this.#log = componentLogger('ota-artifacts', options.logger);
    this.files = new PackageArtifacts(options.artifactDir, this.#log, OTA_LAYOUT);
  }

  /** Largest accepted upload. */
  get maxArtifactBytes(): number {
    return this.#o.maxArtifactBytes;
  }

  /** Creates the artifact folders and removes uploads a crash left behind; idempotent. */
  async start(): Promise<void> {
    await this.files.prepare();
  }

  /** Nothing runs in the background; idempotent. */
  async stop(): Promise<void> {}

  /**
   * Stores an uploaded artifact after checking it against the trusted keys. Refusals:
   * CS_ERR_OTA_ARTIFACT_INVALID, CS_ERR_OTA_UNTRUSTED_KEY (403), CS_ERR_OTA_SIGNATURE,
   * CS_ERR_OTA_DIGEST, CS_ERR_OTA_ARTIFACT_TOO_LARGE (413), CS_ERR_OTA_ARTIFACT_EXISTS (409).
   */
  async upload(source: Readable, actor: AuditActor): Promise<ArtifactView> {
    const received = await this.files.receive(source, this.#o.maxArtifactBytes);
    let committed = false;
    try {
      const head = await verifyArtifact(received.tmpPath, { trustedKeys: await this.#o.trustedKeys() });
      const { manifest } = head;
      const existing = await findArtifactByName(this.#o.db, manifest.name, manifest.version);
      if (existing) throw exists(existing);
      await this.files.commit(received);
      committed = true;
      const record: Omit<ArtifactRecord, 'createdAt'> = {
        id: `art_${randomBytes(6).toString('hex')}`,
        name: manifest.name,
        version: manifest.version,
        target: manifest.target,
        manifest,
        sha256: received.sha256,
        bytes: received.bytes,
        signerKey: head.signature.publicKey,
        uploadedBy: actor,
      };
      if (!(await insertArtifact(this.#o.db, record))) {
        const raced = await findArtifactByName(this.#o.db, manifest.name, manifest.version);
        throw raced
          ? exists(raced)
          : new CitysenseError('CS_ERR_OTA_ARTIFACT_EXISTS', 'artifact exists', 409);
      }
      this.#log.info(
        { artifact: record.id, name: manifest.name, version: manifest.version, bytes: received.bytes },
        'OTA artifact stored',
      );
      return this.get(record.id);
    } catch (err) {
      if (!committed) await this.files.discard(received);
      if (err instanceof CitysenseError && Object.values(OTA_ERRORS).includes(err.code as never))
        this.#log.warn({ code: err.code, err: err.message }, 'OTA artifact refused');
      throw err;
    }
  }

  /** Artifacts, newest first. */
  async list(name?: string): Promise<ArtifactView[]> {
    const records = await listArtifacts(this.#o.db, name);
    return Promise.all(records.map(async (r) => view(r, await campaignsOfArtifact(this.#o.db, r.id))));
  }

  /** One artifact; CS_ERR_OTA_ARTIFACT_UNKNOWN. */
  async get(id: string): Promise<ArtifactView> {
    const r = await this.record(id);
    return view(r, await campaignsOfArtifact(this.#o.db, id));
  }

  /** The stored row; CS_ERR_OTA_ARTIFACT_UNKNOWN. */
  async record(id: string): Promise<ArtifactRecord> {
    const r = await findArtifact(this.#o.db, id);
    if (!r)
      throw new CitysenseError(
        'CS_ERR_OTA_ARTIFACT_UNKNOWN',
        `no OTA artifact ${id} (GET /v1/ota/artifacts)`,
        404,
      );
    return r;
  }

  /** Deletes an artifact no campaign uses; CS_ERR_OTA_ARTIFACT_IN_USE (409) otherwise. */
  async remove(id: string): Promise<void> {
    const r = await this.record(id);
    await this.#o.db.transaction(async (tx) => {
      const campaigns = await campaignsOfArtifact(tx, id);
      if (campaigns.length > 0)
        throw new CitysenseError(
          'CS_ERR_OTA_ARTIFACT_IN_USE',
          `artifact ${id} is used by campaign(s) ${campaigns.join(', ')}: it stays as their record`,
          409,
          { campaigns },
        );
      await deleteArtifact(tx, id);
    });
    if (!(await fileShared(this.#o.db, r.sha256)))
      await this.files
        .remove(r.sha256)
        .catch((err: unknown) =>
          this.#log.warn({ artifact: id, err: errorMessage(err) }, 'could not remove the artifact file'),
        );
  }

  /**
   * The file a principal may download: people with access to the route get any artifact;
   * a node only one of a campaign that targets it (403 CS_ERR_OTA_NOT_TARGETED).
   */
  async downloadable(principal: HttpPrincipal, id: string): Promise<RangedFile & { record: ArtifactRecord }> {
    const r = await this.record(id);
    if (principal.kind === 'node' && !(await nodeTargetedBy(this.#o.db, principal.nodeId, id)))
      throw new CitysenseError(
        'CS_ERR_OTA_NOT_TARGETED',
        `node ${principal.nodeId} is not a target of any campaign of artifact ${id}`,
        403,
      );
    return {
      record: r,
      path: this.files.pathOf(r.sha256),
      size: await this.files.size(r.sha256),
      sha256: r.sha256,
      filename: `${r.name}-${r.version}${ARTIFACT_EXTENSION}`,
      rangeErrorCode: 'CS_ERR_OTA_RANGE',
      noun: 'artifact',
    };
  }
}

function exists(r: ArtifactRecord): CitysenseError {
  return new CitysenseError(
    'CS_ERR_OTA_ARTIFACT_EXISTS',
    `${r.name} ${r.version} is already stored as ${r.id}: give a new version a new version number`,
    409,
    { artifactId: r.id },
  );
}

/** The actor's name as the API shows it. */
export function actorName(a: AuditActor): string {
  return a.username ?? (a.kind === 'node' ? `node:${a.id}` : a.kind);
}

function view(r: ArtifactRecord, campaigns: string[]): ArtifactView {
  return {
    id: r.id,
    name: r.name,
    version: r.version,
    target: r.target,
    manifest: r.manifest,
    sha256: r.sha256,
    bytes: r.bytes,
    signerKey: r.signerKey,
    uploadedBy: actorName(r.uploadedBy),
    createdAt: r.createdAt,
    campaigns,
  };
}
