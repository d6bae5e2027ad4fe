/**
 * Models imported on the gateway itself (a field engineer's USB stick, a vendor's
 * local build). A locally built algorithm must be adapted and filed at the centre
 * before it runs (001 Art. 49(一)): the agent asks the hub whether that exact
 * package (by SHA-256) is filed, and only then runs it like an assignment. The
 * signature and digests are still checked against the centre's trusted keys.
 */
import { randomBytes } from 'node:crypto';
import { copyFile, mkdir, readFile, rename, rm, stat } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { openAlgorithmPackage } from '@citysense/algorithms';
import {
  type AlertRule,
  type AlgorithmAssignment,
  errorMessage,
  type Logger,
  sha256Hex,
  type VideoSource,
} from '@citysense/protocol';
import { codeOf } from './errors.ts';
import type { HubClient } from './hub-client.ts';
import type { PackageCache } from './package-cache.ts';

/** A package file on the gateway and what to run it on. */
export interface LocalPackageConfig {
  file: string;
  sources: VideoSource[];
  rules?: AlertRule[] | undefined;
}

/** Where a local package stands. */
export interface LocalPackageStatus {
  file: string;
  algorithmId: string | null;
  version: string | null;
  sha256: string | null;
  state: 'filed' | 'not-filed' | 'unreadable' | 'unknown';
  reason: string | null;
}

/** Deployment id prefix of local packages (the hub knows no such deployment). */
export const LOCAL_DEPLOYMENT_PREFIX = 'local-';

/** Turns filed local packages into assignments. */
export class LocalPackages {
  readonly #packages: readonly LocalPackageConfig[];
  readonly #cache: PackageCache;
  readonly #client: Pick<HubClient, 'packageFiled'>;
  readonly #log: Logger;
  readonly #status = new Map<string, LocalPackageStatus>();

  constructor(o: {
    packages: readonly LocalPackageConfig[];
    cache: PackageCache;
    client: Pick<HubClient, 'packageFiled'>;
    logger: Logger;
  }) {
    this.#packages = o.packages;
    this.#cache = o.cache;
    this.#client = o.client;
    this.#log = o.logger.child({ component: 'local-packages' });
  }

  /** The local packages, each with where it stands. */
  status(): LocalPackageStatus[] {
    return this.#packages.map((p) => this.#status.get(p.file) ?? blank(p.file, 'unknown', null));
  }

  /** Assignments for the local packages the centre has filed; the others are refused and logged. */
  async assignments(signal: AbortSignal): Promise<AlgorithmAssignment[]> {
    const out: AlgorithmAssignment[] = [];
    for (const p of this.#packages) {
      const before = this.#status.get(p.file)?.state;
      const status = await this.#check(p, signal);
      this.#status.set(p.file, status);
      if (status.state !== before && status.state !== 'filed')
        this.#log.warn(
          { file: p.file, sha256: status.sha256, state: status.state, reason: status.reason },
          'local package not run',
        );
      if (status.state !== 'filed' || !status.algorithmId || !status.version || !status.sha256) continue;
      const bytes = (await stat(p.file)).size;
      out.push({
        deploymentId: `${LOCAL_DEPLOYMENT_PREFIX}${status.algorithmId}`,
        algorithmId: status.algorithmId,
        version: status.version,
        sha256: status.sha256,
        bytes,
        // Never fetched: the file is placed in the cache below.
        packagePath: `/v1/algorithm-packages/${status.sha256}`,
        sources: p.sources,
        ...(p.rules ? { rules: p.rules } : {}),
      });
    }
    return out;
  }

  async #check(p: LocalPackageConfig, signal: AbortSignal): Promise<LocalPackageStatus> {
    let file: Buffer;
    let algorithmId: string;
    let version: string;
    try {
      file = await readFile(p.file);
      // Structure and digests here; the signer is checked against the centre's keys before loading.
      ({ id: algorithmId, version } = openAlgorithmPackage(file).manifest);
    } catch (err) {
      return blank(p.file, 'unreadable', `${codeOf(err)}: ${errorMessage(err)}`);
    }
    const sha256 = sha256Hex(file);
    let filed: boolean;
    try {
      filed = await this.#client.packageFiled(sha256, signal);
    } catch (err) {
      return { ...blank(p.file, 'unknown', errorMessage(err)), algorithmId, version, sha256 };
    }
    if (!filed)
      return {
        file: p.file,
        algorithmId,
        version,
        sha256,
        state: 'not-filed',
        reason: `CS_ERR_INFERENCE_LOCAL_NOT_FILED: ${algorithmId} ${version} (sha256 ${sha256.slice(0, 12)}…) must be uploaded and filed at the centre before this gateway runs it`,
      };
    await placeInCache(p.file, this.#cache.pathOf(sha256));
    return { file: p.file, algorithmId, version, sha256, state: 'filed', reason: null };
  }
}

function blank(file: string, state: LocalPackageStatus['state'], reason: string | null): LocalPackageStatus {
  return { file, algorithmId: null, version: null, sha256: null, state, reason };
}

/** Copies the package into the content-addressed cache (atomically; kept if already there). */
async function placeInCache(file: string, target: string): Promise<void> {
  const present = await stat(target).then(
    (s) => s.isFile(),
    () => false,
  );
  if (present) return;
  await mkdir(dirname(target), { recursive: true });
  const tmp = join(dirname(target), `.${randomBytes(6).toString('hex')}.import`);
  try {
    await copyFile(file, tmp);
    await rename(tmp, target);
  } finally {
    await rm(tmp, { force: true });
  }
}
