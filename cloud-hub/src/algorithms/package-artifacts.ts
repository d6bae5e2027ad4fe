import { createHash, randomUUID } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { mkdir, open, readdir, rename, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { type Readable, Transform, type TransformCallback } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { PACKAGE_EXTENSION } from '@citysense/algorithms';
import { CitysenseError, errorMessage, type Logger } from '@citysense/protocol';

/** An upload written to a temporary file. */
export interface ReceivedUpload {
  /** Temporary file; `commit` moves it, `discard` removes it. */
  tmpPath: string;
  sha256: string;
  bytes: number;
}

/** Error thrown when an upload exceeds the configured limit. */
export function packageTooLarge(maxBytes: number): CitysenseError {
  return new CitysenseError(
    'CS_ERR_ALGO_PACKAGE_TOO_LARGE',
    `package is larger than the limit of ${maxBytes} bytes (hub option algorithmMaxPackageBytes)`,
    413,
    { maxBytes },
  );
}

/**
 * Where a kind of uploaded file lives and how its errors are coded. Algorithm packages
 * are the default; OTA artifacts (cloud-hub/src/ota) use the same store with their own.
 */
export interface ArtifactLayout {
  /** Folder under the artifact dir. */
  folder: string;
  /** File extension, with the dot. */
  extension: string;
  /** What a file is, in messages ("package", "artifact"). */
  noun: string;
  /** The error of an upload over the limit. */
  tooLarge: (maxBytes: number) => CitysenseError;
  /** Codes of an upload cut short, a store failure and a missing file. */
  codes: { aborted: string; failed: string; missing: string };
}

/** The layout of algorithm packages: `<artifactDir>/algorithms/<sha256>.csalgo`. */
export const PACKAGE_LAYOUT: ArtifactLayout = {
  folder: 'algorithms',
  extension: PACKAGE_EXTENSION,
  noun: 'package',
  tooLarge: packageTooLarge,
  codes: {
    aborted: 'CS_ERR_ALGO_UPLOAD_ABORTED',
    failed: 'CS_ERR_ALGO_UPLOAD_FAILED',
    missing: 'CS_ERR_ALGO_ARTIFACT_MISSING',
  },
};

/** Counts and hashes what flows through; fails once more than `maxBytes` have passed. */
class UploadMeter extends Transform {
  readonly hash = createHash('sha256');
  bytes = 0;
  readonly #maxBytes: number;
  readonly #tooLarge: (maxBytes: number) => CitysenseError;

  constructor(maxBytes: number, tooLarge: (maxBytes: number) => CitysenseError) {
    super();
    this.#maxBytes = maxBytes;
    this.#tooLarge = tooLarge;
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    this.bytes += chunk.length;
    if (this.bytes > this.#maxBytes) {
      callback(this.#tooLarge(this.#maxBytes));
      return;
    }
    this.hash.update(chunk);
    callback(null, chunk);
  }
}

/**
 * Package files on disk: `<artifactDir>/algorithms/<sha256>.csalgo` (or another
 * `ArtifactLayout`), written by streaming an upload into `<artifactDir>/tmp` and
 * renaming it into place once checked, so that a reader never sees a partial package.
 */
export class PackageArtifacts {
  readonly #packagesDir: string;
  readonly #tmpDir: string;
  readonly #log: Logger;
  readonly #layout: ArtifactLayout;

  constructor(artifactDir: string, logger: Logger, layout: ArtifactLayout = PACKAGE_LAYOUT) {
    this.#packagesDir = join(artifactDir, layout.folder);
    this.#tmpDir = join(artifactDir, 'tmp');
    this.#log = logger;
    this.#layout = layout;
  }

  /** Creates the folders and removes uploads left behind by a crash. */
  async prepare(): Promise<void> {
    await mkdir(this.#packagesDir, { recursive: true });
    await mkdir(this.#tmpDir, { recursive: true });
    // Each layout has its own prefix: two stores share the tmp folder and may start while the other uploads.
    const stale = (await readdir(this.#tmpDir)).filter((f) => f.startsWith(this.#uploadPrefix));
    for (const file of stale) await rm(join(this.#tmpDir, file), { force: true });
    if (stale.length > 0) this.#log.info({ files: stale.length }, 'removed unfinished uploads');
  }

  /** Where the package with `sha256` is stored. */
  pathOf(sha256: string): string {
    return join(this.#packagesDir, `${sha256}${this.#layout.extension}`);
  }

  get #uploadPrefix(): string {
    return this.#layout === PACKAGE_LAYOUT ? 'upload-' : `upload-${this.#layout.folder}-`;
  }

  /**
   * Streams `source` into a temporary file while hashing it. Refuses more than
   * `maxBytes` (CS_ERR_ALGO_PACKAGE_TOO_LARGE) and a source that ends early
   * (CS_ERR_ALGO_UPLOAD_ABORTED). The source is never destroyed: when the upload is
   * refused, the rest of it is read and dropped so that the client gets the answer
   * instead of a reset connection.
   */
  async receive(source: Readable, maxBytes: number): Promise<ReceivedUpload> {
    const { codes, noun } = this.#layout;
    const tmpPath = join(this.#tmpDir, `${this.#uploadPrefix}${randomUUID()}.part`);
    const meter = new UploadMeter(maxBytes, this.#layout.tooLarge);
    const onClose = () => {
      if (!source.readableEnded)
        meter.destroy(
          new CitysenseError(codes.aborted, `the upload ended before the whole ${noun} arrived`, 400),
        );
    };
    const onError = (err: Error) =>
      meter.destroy(new CitysenseError(codes.aborted, `upload failed: ${errorMessage(err)}`, 400));
    source.once('close', onClose);
    source.once('error', onError);
    source.pipe(meter);
    try {
      await pipeline(meter, createWriteStream(tmpPath, { flags: 'wx', mode: 0o600 }));
      // The rename that follows must not publish a file whose bytes are still in the page cache only.
      const handle = await open(tmpPath, 'r');
      try {
        await handle.sync();
      } finally {
        await handle.close();
      }
      return { tmpPath, sha256: meter.hash.digest('hex'), bytes: meter.bytes };
    } catch (err) {
      source.unpipe(meter);
      if (!source.destroyed) source.resume();
      await rm(tmpPath, { force: true });
      if (err instanceof CitysenseError) throw err;
      throw new CitysenseError(codes.failed, `could not store the upload: ${errorMessage(err)}`, 500);
    } finally {
      source.off('close', onClose);
      source.off('error', onError);
    }
  }

  /** Moves a checked upload into place (atomic rename on the same file system). */
  async commit(upload: ReceivedUpload): Promise<string> {
    const path = this.pathOf(upload.sha256);
    await rename(upload.tmpPath, path);
    return path;
  }

  /** Removes a temporary upload; never throws. */
  async discard(upload: ReceivedUpload): Promise<void> {
    await rm(upload.tmpPath, { force: true }).catch((err: unknown) =>
      this.#log.warn({ err: errorMessage(err), file: upload.tmpPath }, 'could not remove a temporary upload'),
    );
  }

  /** Removes a stored package that no version refers to. */
  async remove(sha256: string): Promise<void> {
    await rm(this.pathOf(sha256), { force: true });
  }

  /** Size of the stored package; throws CS_ERR_ALGO_ARTIFACT_MISSING (or the layout's code) when the file is gone. */
  async size(sha256: string): Promise<number> {
    const path = this.pathOf(sha256);
    const { noun, extension } = this.#layout;
    const s = await stat(path).catch((err: unknown) => {
      this.#log.error({ err: errorMessage(err), file: path }, `stored ${noun} file is missing`);
      throw new CitysenseError(
        this.#layout.codes.missing,
        `the ${noun} file ${sha256}${extension} is missing from the artifact dir: restore it from a backup or upload the ${noun} again`,
        500,
      );
    });
    return s.size;
  }
}
