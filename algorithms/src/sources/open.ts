/** Picks the frame source for a spec string from config or the command line. */
import { open, stat } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { errorMessage, type Logger } from '@citysense/protocol';
import { SOURCE_NOT_FOUND, SOURCE_UNREACHABLE, sourceError } from './errors.ts';
import { type FfmpegStreamOptions, FfmpegStreamSource } from './ffmpeg-stream.ts';
import type { FrameSource } from './frame.ts';
import { ImageFileSource, sniffImageFormat } from './image-file.ts';
import { ImageFolderSource } from './image-folder.ts';
import { extensionOf, schemeOf, VIDEO_EXTENSIONS } from './spec.ts';

/** Options for whichever source a spec turns out to need; each source ignores the rest. */
export interface OpenFrameSourceOptions extends Omit<FfmpegStreamOptions, 'input'> {
  /** Folder sources: start over after the last image. */
  loop?: boolean | undefined;
  logger?: Logger | undefined;
}

/**
 * A source for `spec`: a URL with a scheme or a path with a video extension → ffmpeg;
 * a folder → image folder; a JPEG/PNG file → image file; any other file → ffmpeg.
 */
export async function openFrameSource(
  spec: string,
  options: OpenFrameSourceOptions = {},
): Promise<FrameSource> {
  const scheme = schemeOf(spec);
  if (scheme === 'file') return openFrameSource(fileURLToPath(spec), options);
  if (scheme !== undefined || VIDEO_EXTENSIONS.has(extensionOf(spec))) {
    return new FfmpegStreamSource({ ...options, input: spec });
  }
  const { loop, id, logger } = options;
  let isDirectory: boolean;
  try {
    isDirectory = (await stat(spec)).isDirectory();
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') {
      throw sourceError(SOURCE_NOT_FOUND, `frame source ${spec} does not exist; give a file, folder or URL`, {
        spec,
      });
    }
    throw sourceError(SOURCE_UNREACHABLE, `cannot open frame source ${spec}: ${errorMessage(err)}`, { spec });
  }
  if (isDirectory) return new ImageFolderSource({ dir: spec, loop, id, logger });
  // Content decides, not the name: a camera's snapshot.cgi saved to disk is still a JPEG.
  let head: Uint8Array;
  try {
    head = await readHead(spec, 8);
  } catch (err) {
    throw sourceError(SOURCE_UNREACHABLE, `cannot read frame source ${spec}: ${errorMessage(err)}`, { spec });
  }
  if (sniffImageFormat(head)) return new ImageFileSource({ path: spec, id, logger });
  return new FfmpegStreamSource({ ...options, input: spec });
}

async function readHead(path: string, bytes: number): Promise<Uint8Array> {
  const handle = await open(path, 'r');
  try {
    const { buffer, bytesRead } = await handle.read(new Uint8Array(bytes), 0, bytes, 0);
    return buffer.subarray(0, bytesRead);
  } finally {
    await handle.close();
  }
}
