import { readFile } from 'node:fs/promises';
import type { Readable } from 'node:stream';
import {
  type AdaptationReport,
  type AdaptationTester,
  type AlgorithmPackage,
  keyFingerprint,
  openAlgorithmPackage,
} from '@citysense/algorithms';
import {
  CitysenseError,
  componentLogger,
  errorMessage,
  type Logger,
  type SignatureAlgorithm,
  type SigningKey,
} from '@citysense/protocol';
import type { Database } from '../storage/database.ts';
import { AlgorithmAuthorisation } from './authorisation.ts';
import { AlgorithmCatalogue, type AlgorithmVersionSummary, stateError } from './catalogue.ts';
import { type CentreKey, resolveCentreKey } from './centre-key.ts';
import { PackageArtifacts } from './package-artifacts.ts';
import { SignerStore } from './signer-store.ts';

/** Options of the algorithm centre. */
export interface AlgorithmCentreOptions {
  db: Database;
  /** Hub data dir: the centre signing key lives here. */
  dataDir: string;
  /** Package files live in `<artifactDir>/algorithms`. */
  artifactDir: string;
  maxPackageBytes: number;
  /** Algorithm of a centre key generated on first start. */
  keyAlgorithm: SignatureAlgorithm;
  /** Runs the adaptation test; without one, validation answers CS_ERR_ALGO_TESTER_UNAVAILABLE. */
  tester?: AdaptationTester | undefined;
  logger?: Logger;
}

/** Who asks the centre for something over HTTP. */
export type CentrePrincipal = { kind: 'admin' } | { kind: 'node'; nodeId: string };

/** What an upload did. */
export interface UploadResult {
  /** False when the same package was already stored (an idempotent repeat). */
  created: boolean;
  version: AlgorithmVersionSummary;
}

/**
 * The city algorithm centre (001 Art. 49(一)): accepts signed algorithm packages,
 * runs their adaptation test, takes them through filing and publication, and
 * decides which nodes may download which version.
 */
export class AlgorithmCentre {
  readonly signers: SignerStore;
  readonly catalogue: AlgorithmCatalogue;
  readonly authorisation: AlgorithmAuthorisation;
  readonly artifacts: PackageArtifacts;
  readonly #options: AlgorithmCentreOptions;
  readonly #log: Logger;
  #centreKey: CentreKey | undefined;
  /** Validations run one at a time: each loads a whole model into ONNX Runtime. */
  #validations: Promise<unknown> = Promise.resolve();
  #stopping = false;

  constructor(options: AlgorithmCentreOptions) {
    this.#options = options;
    this.#log = componentLogger('algorithms', options.logger);
    this.signers = new SignerStore(options.db);
    this.catalogue = new AlgorithmCatalogue(options.db);
    this.authorisation = new AlgorithmAuthorisation(options.db);
    this.artifacts = new PackageArtifacts(options.artifactDir, this.#log);
  }

  /** Largest accepted package. */
  get maxPackageBytes(): number {
    return this.#options.maxPackageBytes;
  }

  /** The centre signing key, once started. */
  get centreKey(): SigningKey {
    if (!this.#centreKey) throw new Error('algorithm centre is not started');
    return this.#centreKey.key;
  }

  /** Loads or generates the centre key, trusts it as signer `centre`, prepares the artifact dir. */
  async start(): Promise<void> {
    if (this.#centreKey) return;
    this.#stopping = false;
    const centreKey = await resolveCentreKey(this.#options.dataDir, this.#options.keyAlgorithm);
    const replaced = await this.signers.registerCentre(centreKey.key);
    if (replaced)
      this.#log.warn(
        { keptAs: replaced },
        'the centre key differs from the one registered in the database; the old key stays trusted under ' +
          'another name (hubs sharing one database should share centre-signing-key.json)',
      );
    await this.artifacts.prepare();
    this.#centreKey = centreKey;
    this.#log.info(
      {
        key: centreKey.path,
        source: centreKey.source,
        algorithm: centreKey.key.algorithm,
        fingerprint: keyFingerprint(centreKey.key.publicKey),
        tester: this.#options.tester !== undefined,
      },
      'algorithm centre ready',
    );
  }

  /** Refuses new validations and waits for the running one; idempotent. */
  async stop(): Promise<void> {
    this.#stopping = true;
    await this.#validations;
    this.#centreKey = undefined;
  }

  /**
   * Stores an uploaded package as a new `draft` version: streamed to a temporary
   * file, opened (structure, digests, signature by a trusted signer), then moved
   * into place. The same package again is an idempotent success; another package
   * with the same id and version is CS_ERR_ALGO_VERSION_EXISTS.
   */
  async upload(source: Readable, actor: string): Promise<UploadResult> {
    const received = await this.artifacts.receive(source, this.maxPackageBytes);
    let committed = false;
    try {
      const known = await this.catalogue.bySha256(received.sha256);
      if (known) return { created: false, version: known };
      const pkg = openAlgorithmPackage(await readFile(received.tmpPath), {
        trustedKeys: await this.signers.trustedKeys(),
        maxBytes: this.maxPackageBytes,
      });
      const { id, version } = pkg.manifest;
      const existing = await this.catalogue.find(id, version);
      if (existing) throw versionExists(existing);
      const fingerprint = keyFingerprint(pkg.signature.publicKey);
      const signer = await this.signers.byFingerprint(fingerprint);
      await this.artifacts.commit(received);
      committed = true;
      const inserted = await this.catalogue
        .insert(pkg, { name: signer?.name ?? null, fingerprint }, actor)
        .catch(async (err: unknown) => {
          await this.#removeUnreferenced(pkg.sha256);
          throw err;
        });
      if (inserted) {
        this.#log.info({ algorithm: id, version, sha256: pkg.sha256, bytes: pkg.bytes }, 'package uploaded');
        return { created: true, version: inserted };
      }
      // A concurrent upload of the same id and version won the insert.
      const winner = await this.catalogue.summary(id, version);
      if (winner.sha256 === pkg.sha256) return { created: false, version: winner };
      await this.#removeUnreferenced(pkg.sha256);
      throw versionExists(winner);
    } finally {
      if (!committed) await this.artifacts.discard(received);
    }
  }

  /**
   * Runs the adaptation test of a draft version (one at a time). A passing report
   * moves it to `validated`; a failing one is stored and it stays a draft.
   */
  async validate(
    id: string,
    version: string,
    actor: string,
  ): Promise<{ version: AlgorithmVersionSummary; report: AdaptationReport }> {
    const tester = this.#options.tester;
    if (!tester)
      throw new CitysenseError(
        'CS_ERR_ALGO_TESTER_UNAVAILABLE',
        'this hub has no adaptation tester: it cannot validate packages',
        503,
      );
    await this.catalogue.summary(id, version);
    const run = this.#validations.then(async () => {
      if (this.#stopping)
        throw new CitysenseError('CS_ERR_ALGO_STOPPING', 'the hub is stopping: validate again later', 503);
      const summary = await this.catalogue.summary(id, version);
      if (summary.state !== 'draft') throw stateError(id, version, 'validate', summary.state, ['draft']);
      const pkg = await this.open(summary);
      const report = await runTester(tester, pkg);
      this.#log.info({ algorithm: id, version, passed: report.passed }, 'adaptation test finished');
      return { version: await this.catalogue.recordValidation(id, version, report, actor), report };
    });
    this.#validations = run.catch(() => undefined);
    return run;
  }

  /** Opens a stored package again, checking it against its record and the trusted signers. */
  async open(summary: AlgorithmVersionSummary): Promise<AlgorithmPackage> {
    const path = this.artifacts.pathOf(summary.sha256);
    const file = await readFile(path).catch((err: unknown) => {
      this.#log.error({ err: errorMessage(err), file: path }, 'algorithm package file is missing');
      throw new CitysenseError(
        'CS_ERR_ALGO_ARTIFACT_MISSING',
        `the package file of ${summary.algorithmId} ${summary.version} is missing from the artifact dir: restore it from a backup`,
        500,
      );
    });
    const pkg = openAlgorithmPackage(file, {
      trustedKeys: await this.signers.trustedKeys(),
      maxBytes: Math.max(this.maxPackageBytes, summary.bytes),
    });
    if (pkg.sha256 !== summary.sha256)
      throw new CitysenseError(
        'CS_ERR_ALGO_ARTIFACT_CORRUPT',
        `the stored package of ${summary.algorithmId} ${summary.version} changed on disk: restore it from a backup`,
        500,
      );
    return pkg;
  }

  /**
   * The version `principal` may download. The admin gets any version; a node only
   * a published version of an algorithm its agency granted it (CS_ERR_ALGO_NOT_GRANTED).
   */
  async downloadable(
    principal: CentrePrincipal,
    id: string,
    version: string,
  ): Promise<AlgorithmVersionSummary> {
    const summary = await this.catalogue.summary(id, version);
    if (principal.kind === 'admin') return summary;
    const refusal = await this.authorisation.nodeRefusal(principal.nodeId, id);
    if (refusal !== null)
      throw new CitysenseError(
        'CS_ERR_ALGO_NOT_GRANTED',
        `node ${principal.nodeId} is not authorised for ${id}: ${REFUSALS[refusal]}`,
        403,
        { reason: refusal },
      );
    if (summary.state !== 'published')
      throw new CitysenseError(
        'CS_ERR_ALGO_NOT_GRANTED',
        `${id} ${version} is ${summary.state}: nodes get only published versions`,
        403,
        { reason: 'not-published', state: summary.state },
      );
    return summary;
  }

  async #removeUnreferenced(sha256: string): Promise<void> {
    if (await this.catalogue.bySha256(sha256)) return;
    await this.artifacts
      .remove(sha256)
      .catch((err: unknown) =>
        this.#log.warn({ err: errorMessage(err), sha256 }, 'could not remove an unreferenced package file'),
      );
  }
}

const REFUSALS = {
  'no-agency': 'it belongs to no agency (PUT /v1/agencies/:agency/nodes)',
  'no-agency-grant': 'its agency holds no grant from the centre',
  'no-node-grant': 'its agency has not granted it to this node',
} as const;

function versionExists(existing: AlgorithmVersionSummary): CitysenseError {
  return new CitysenseError(
    'CS_ERR_ALGO_VERSION_EXISTS',
    `${existing.algorithmId} ${existing.version} already exists with other content (sha256 ${existing.sha256}): ` +
      'versions are immutable, raise the version in manifest.json and pack again',
    409,
    { sha256: existing.sha256, state: existing.state },
  );
}

/** Runs the tester; a tester that throws yields a failing report carrying its error. */
async function runTester(tester: AdaptationTester, pkg: AlgorithmPackage): Promise<AdaptationReport> {
  const started = performance.now();
  try {
    return await tester(pkg);
  } catch (err) {
    return {
      passed: false,
      checkedAt: new Date().toISOString(),
      runtime: 'unknown',
      graph: null,
      tests: [],
      error: {
        code: err instanceof CitysenseError ? err.code : 'CS_ERR_ALGO_ADAPTATION',
        message: errorMessage(err),
      },
      durationMs: Math.round(performance.now() - started),
    };
  }
}
