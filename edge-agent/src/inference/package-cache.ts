/**
 * The node's package cache, `<stateDir>/models/`: `<sha256>.csalgo` files, `<sha256>.part`
 * downloads in progress, and `index.json` naming the current and previous version of each
 * algorithm. Those two are kept (a rollback needs no download); older ones are deleted.
 */
import { mkdir, readdir, readFile, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { errorMessage, type Logger } from '@citysense/protocol';
import { type Static, Type } from '@sinclair/typebox';
import { Value } from '@sinclair/typebox/value';
import { readFileIfExists, writeFileAtomic } from '../state-file.ts';
import { DownloadSlots } from './download-slots.ts';
import { downloadPackage, type PackageDownloadResult } from './package-download.ts';

/** One cached version of an algorithm. */
const CachedVersion = Type.Object({
  version: Type.String(),
  sha256: Type.String({ pattern: '^[0-9a-f]{64}$' }),
});
/** One cached version of an algorithm. */
export type CachedVersion = Static<typeof CachedVersion>;

const CacheIndex = Type.Object({
  version: Type.Literal(1),
  /** algorithm id → [current, previous]. */
  algorithms: Type.Record(Type.String(), Type.Array(CachedVersion)),
});
type CacheIndex = Static<typeof CacheIndex>;

/** Versions kept per algorithm: the current and the previous one. */
const KEEP_PER_ALGORITHM = 2;
const INDEX_FILE = 'index.json';
const PACKAGE_SUFFIX = '.csalgo';
const PART_SUFFIX = '.part';

/** Options of the cache. */
export interface PackageCacheOptions {
  /** The `models` directory. */
  dir: string;
  maxParallelDownloads: number;
  logger: Logger;
}

/** A package to have in the cache. */
export interface PackageWanted {
  sha256: string;
  bytes: number;
  url: string;
  headers: Record<string, string>;
}

/** Hooks of one `ensure` call. */
export interface EnsureHooks {
  /** A download slot was granted and bytes are about to flow. */
  onDownloadStart?: (() => void) | undefined;
  onProgress?: ((received: number, total: number) => void) | undefined;
  signal: AbortSignal;
}

/** What `ensure` did. */
export type EnsureResult =
  | { path: string; cached: true }
  | ({ path: string; cached: false } & PackageDownloadResult);

/** Content-addressed package files with per-algorithm retention. */
export class PackageCache {
  readonly #o: PackageCacheOptions;
  readonly #slots: DownloadSlots;
  /** One download per file even when two deployments want the same package. */
  readonly #inflight = new Map<string, Promise<EnsureResult>>();
  #index: CacheIndex = { version: 1, algorithms: {} };
  #indexWrite: Promise<void> = Promise.resolve();

  constructor(o: PackageCacheOptions) {
    this.#o = o;
    this.#slots = new DownloadSlots(o.maxParallelDownloads);
  }

  /** Creates the directory and reads the index; a damaged index is logged and started afresh. */
  async open(): Promise<void> {
    await mkdir(this.#o.dir, { recursive: true });
    const text = await readFileIfExists(join(this.#o.dir, INDEX_FILE));
    if (text === null) return;
    try {
      const value: unknown = JSON.parse(text);
      if (Value.Check(CacheIndex, value)) this.#index = value;
      else throw new Error('not a cache index');
    } catch (err) {
      this.#o.logger.warn({ err: errorMessage(err) }, 'model cache index unreadable; starting a new one');
    }
  }

  /** The file of a package. */
  pathOf(sha256: string): string {
    return join(this.#o.dir, `${sha256}${PACKAGE_SUFFIX}`);
  }

  /** The download in progress of a package. */
  partPathOf(sha256: string): string {
    return join(this.#o.dir, `${sha256}${PART_SUFFIX}`);
  }

  /** The current and previous version of each algorithm. */
  versions(): Readonly<Record<string, readonly CachedVersion[]>> {
    return this.#index.algorithms;
  }

  /** True when the package is one the index keeps (a known-good current or previous version). */
  isKept(sha256: string): boolean {
    return Object.values(this.#index.algorithms).some((list) => list.some((v) => v.sha256 === sha256));
  }

  /**
   * Makes the package present: at once when cached, else one download attempt (resuming a
   * `.part`) once a download slot is free. Errors are those of `downloadPackage`.
   */
  ensure(wanted: PackageWanted, hooks: EnsureHooks): Promise<EnsureResult> {
    const running = this.#inflight.get(wanted.sha256);
    if (running) return running;
    const attempt = this.#ensure(wanted, hooks).finally(() => this.#inflight.delete(wanted.sha256));
    this.#inflight.set(wanted.sha256, attempt);
    return attempt;
  }

  /** Reads a cached package file. */
  read(sha256: string): Promise<Buffer> {
    return readFile(this.pathOf(sha256));
  }

  /** Deletes a package (failed verification or load) unless the index keeps it. */
  async discard(sha256: string): Promise<void> {
    await rm(this.partPathOf(sha256), { force: true });
    if (!this.isKept(sha256)) await rm(this.pathOf(sha256), { force: true });
  }

  /** Deletes a package file whatever the index says (it failed its digest check on disk). */
  async evict(sha256: string): Promise<void> {
    for (const list of Object.values(this.#index.algorithms)) {
      const i = list.findIndex((v) => v.sha256 === sha256);
      if (i >= 0) list.splice(i, 1);
    }
    await this.#saveIndex();
    await rm(this.pathOf(sha256), { force: true });
  }

  /**
   * Records `version` as the current one of `algorithmId`, the former current one as
   * previous, and deletes every older version's file (unless another algorithm or an
   * assignment in `inUse` still needs it).
   */
  async markActive(algorithmId: string, version: CachedVersion, inUse: ReadonlySet<string>): Promise<void> {
    const list = [
      version,
      ...(this.#index.algorithms[algorithmId] ?? []).filter((v) => v.sha256 !== version.sha256),
    ];
    const dropped = list.splice(KEEP_PER_ALGORITHM);
    this.#index.algorithms[algorithmId] = list;
    await this.#saveIndex();
    for (const old of dropped) {
      if (this.isKept(old.sha256) || inUse.has(old.sha256)) continue;
      this.#o.logger.info({ algorithm: algorithmId, version: old.version }, 'deleting old model package');
      await rm(this.pathOf(old.sha256), { force: true });
    }
  }

  /**
   * Deletes downloads nobody wants any more: `.part` files and unindexed packages whose
   * SHA-256 is not in `wanted` (assignments withdrawn while downloading or after failing).
   */
  async prune(wanted: ReadonlySet<string>): Promise<void> {
    let names: string[];
    try {
      names = await readdir(this.#o.dir);
    } catch (err) {
      this.#o.logger.warn({ err: errorMessage(err) }, 'cannot list the model cache');
      return;
    }
    for (const name of names) {
      const suffix = name.endsWith(PART_SUFFIX)
        ? PART_SUFFIX
        : name.endsWith(PACKAGE_SUFFIX)
          ? PACKAGE_SUFFIX
          : null;
      if (!suffix) continue;
      const sha256 = name.slice(0, -suffix.length);
      if (wanted.has(sha256) || this.#inflight.has(sha256)) continue;
      if (suffix === PACKAGE_SUFFIX && this.isKept(sha256)) continue;
      this.#o.logger.info({ file: name }, 'deleting unwanted model download');
      await rm(join(this.#o.dir, name), { force: true });
    }
  }

  async #ensure(wanted: PackageWanted, hooks: EnsureHooks): Promise<EnsureResult> {
    const path = this.pathOf(wanted.sha256);
    if (await exists(path)) return { path, cached: true };
    const release = await this.#slots.acquire(hooks.signal);
    try {
      hooks.onDownloadStart?.();
      const result = await downloadPackage({
        url: wanted.url,
        headers: wanted.headers,
        partPath: this.partPathOf(wanted.sha256),
        finalPath: path,
        sha256: wanted.sha256,
        bytes: wanted.bytes,
        onProgress: hooks.onProgress,
        signal: hooks.signal,
      });
      return { path, cached: false, ...result };
    } finally {
      release();
    }
  }

  #saveIndex(): Promise<void> {
    const text = `${JSON.stringify(this.#index, null, 2)}\n`;
    this.#indexWrite = this.#indexWrite
      .catch(() => undefined)
      .then(() => writeFileAtomic(join(this.#o.dir, INDEX_FILE), text, 0o644));
    return this.#indexWrite;
  }
}

async function exists(path: string): Promise<boolean> {
  try {
    return (await stat(path)).isFile();
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw err;
  }
}
