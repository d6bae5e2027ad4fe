/** Every JPEG/PNG image of a folder, in name order, optionally looping: a camera stand-in. */
import type { Dirent } from 'node:fs';
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { CitysenseError, componentLogger, errorMessage, type Logger } from '@citysense/protocol';
import { SOURCE_EMPTY, SOURCE_NOT_FOUND, SOURCE_UNREACHABLE, sourceError } from './errors.ts';
import type { Frame, FrameSource, FrameSourceDescription, FrameSourceStats } from './frame.ts';
import { readImageFile } from './image-file.ts';
import { extensionOf, IMAGE_EXTENSIONS } from './spec.ts';

/** Options of `ImageFolderSource`. */
export interface ImageFolderOptions {
  dir: string;
  /** Start over after the last image until the consumer stops (default false). */
  loop?: boolean | undefined;
  /** Id put on frames; defaults to the folder path. */
  id?: string | undefined;
  logger?: Logger | undefined;
}

// Numeric collation: cameras name uploads img_2, img_10, and people expect that order.
const byName = new Intl.Collator('en', { numeric: true }).compare;

/** Names of the .jpg/.jpeg/.png files directly in `dir`, sorted by name (numbers compare by value). */
export async function listImages(dir: string): Promise<string[]> {
  let entries: Dirent[];
  try {
    entries = await readdir(dir, { withFileTypes: true });
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') {
      throw sourceError(SOURCE_NOT_FOUND, `image folder ${dir} does not exist`, { dir });
    }
    throw sourceError(SOURCE_UNREACHABLE, `cannot list image folder ${dir}: ${errorMessage(err)}`, { dir });
  }
  return entries
    .filter((e) => (e.isFile() || e.isSymbolicLink()) && IMAGE_EXTENSIONS.has(extensionOf(e.name)))
    .map((e) => e.name)
    .sort(byName);
}

/**
 * Yields each image as an encoded frame. The folder is listed again at the start of every
 * pass, so images added meanwhile are picked up; an unreadable or foreign file is skipped
 * with a warning rather than ending the stream.
 */
export class ImageFolderSource implements FrameSource {
  readonly #o: ImageFolderOptions;
  readonly #log: Logger;
  #delivered = 0;
  #restarts = 0;

  constructor(o: ImageFolderOptions) {
    this.#o = o;
    this.#log = componentLogger('frame-source', o.logger);
  }

  /** What this source reads. */
  describe(): FrameSourceDescription {
    const { dir, id, loop } = this.#o;
    return { id: id ?? dir, kind: 'image-folder', input: dir, live: false, loop: loop ?? false };
  }

  /** Counters; `restarts` counts completed passes of a looping folder. */
  stats(): FrameSourceStats {
    return { delivered: this.#delivered, dropped: 0, restarts: this.#restarts };
  }

  /** The folder's images in name order, once or round and round. */
  async *frames(signal?: AbortSignal): AsyncGenerator<Frame, void, undefined> {
    const { dir } = this.#o;
    const id = this.describe().id;
    let index = 0;
    for (;;) {
      let yielded = 0;
      for (const name of await listImages(dir)) {
        if (signal?.aborted) return;
        const path = join(dir, name);
        let data: Buffer;
        try {
          data = await readImageFile(path);
        } catch (err) {
          if (!(err instanceof CitysenseError)) throw err;
          this.#log.warn({ path, code: err.code, err: err.message }, 'skipping image');
          continue;
        }
        if (signal?.aborted) return;
        yielded++;
        this.#delivered++;
        yield { source: id, index: index++, time: Date.now(), image: { kind: 'encoded', data }, file: path };
      }
      // An empty pass would make a looping source spin forever; say so instead.
      if (yielded === 0) {
        throw sourceError(SOURCE_EMPTY, `image folder ${dir} holds no readable .jpg, .jpeg or .png file`, {
          dir,
        });
      }
      if (!this.#o.loop) return;
      this.#restarts++;
    }
  }
}
