/** One still image file (JPEG or PNG) as a one-frame source. */
import { readFile } from 'node:fs/promises';
import { componentLogger, errorMessage, type Logger } from '@citysense/protocol';
import { SOURCE_DECODE, SOURCE_NOT_FOUND, SOURCE_UNREACHABLE, sourceError } from './errors.ts';
import type { Frame, FrameSource, FrameSourceDescription, FrameSourceStats } from './frame.ts';

/** Image formats the image sources accept, told by their first bytes. */
export type ImageFormat = 'jpeg' | 'png';

const PNG_SIGNATURE = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];

/** The format of encoded image bytes, or undefined when they are neither JPEG nor PNG. */
export function sniffImageFormat(data: Uint8Array): ImageFormat | undefined {
  if (data.length >= 3 && data[0] === 0xff && data[1] === 0xd8 && data[2] === 0xff) return 'jpeg';
  if (data.length >= PNG_SIGNATURE.length && PNG_SIGNATURE.every((b, i) => data[i] === b)) return 'png';
  return undefined;
}

/** Reads an image file and checks it is JPEG or PNG; coded errors for missing or foreign files. */
export async function readImageFile(path: string): Promise<Buffer> {
  let data: Buffer;
  try {
    data = await readFile(path);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') {
      throw sourceError(SOURCE_NOT_FOUND, `image file ${path} does not exist`, { path });
    }
    throw sourceError(SOURCE_UNREACHABLE, `cannot read image file ${path}: ${errorMessage(err)}`, { path });
  }
  if (!sniffImageFormat(data)) {
    throw sourceError(SOURCE_DECODE, `${path} is not a JPEG or PNG image`, { path });
  }
  return data;
}

/** Options of `ImageFileSource`. */
export interface ImageFileOptions {
  path: string;
  /** Id put on the frame; defaults to the path. */
  id?: string | undefined;
  logger?: Logger | undefined;
}

/** Yields one encoded frame: the bytes of a JPEG or PNG file, read afresh on each `frames()` call. */
export class ImageFileSource implements FrameSource {
  readonly #o: ImageFileOptions;
  readonly #log: Logger;
  #delivered = 0;

  constructor(o: ImageFileOptions) {
    this.#o = o;
    this.#log = componentLogger('frame-source', o.logger);
  }

  /** What this source reads. */
  describe(): FrameSourceDescription {
    return { id: this.#o.id ?? this.#o.path, kind: 'image-file', input: this.#o.path, live: false };
  }

  /** Counters; a still image never drops or restarts. */
  stats(): FrameSourceStats {
    return { delivered: this.#delivered, dropped: 0, restarts: 0 };
  }

  /** The single frame of the file. */
  async *frames(signal?: AbortSignal): AsyncGenerator<Frame, void, undefined> {
    if (signal?.aborted) return;
    const data = await readImageFile(this.#o.path);
    if (signal?.aborted) return;
    this.#log.debug({ path: this.#o.path, bytes: data.length }, 'read image');
    this.#delivered++;
    yield {
      source: this.describe().id,
      index: 0,
      time: Date.now(),
      image: { kind: 'encoded', data },
      file: this.#o.path,
    };
  }
}
