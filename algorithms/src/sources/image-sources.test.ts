import { copyFile, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SOURCE_DECODE, SOURCE_EMPTY, SOURCE_NOT_FOUND } from './errors.ts';
import type { Frame } from './frame.ts';
import { ImageFileSource } from './image-file.ts';
import { ImageFolderSource } from './image-folder.ts';
import { collect, makePng } from './test-fixtures.ts';

const SAMPLES = fileURLToPath(new URL('../../packages/yolox-nano/samples', import.meta.url));
const JPEG = join(SAMPLES, '000000000139.jpg');
let dir: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'cs-images-'));
});

afterAll(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
});

function encoded(frame: Frame | undefined): Buffer {
  if (frame?.image.kind !== 'encoded') throw new Error('expected an encoded frame');
  return frame.image.data;
}

describe('ImageFileSource', () => {
  it('yields the file as one encoded frame', async () => {
    const source = new ImageFileSource({ path: JPEG, id: 'cam-1' });
    const frames = await collect(source);
    expect(frames).toHaveLength(1);
    expect(frames[0]).toMatchObject({ source: 'cam-1', index: 0 });
    expect([...encoded(frames[0]).subarray(0, 3)]).toEqual([0xff, 0xd8, 0xff]);
    expect(source.stats().delivered).toBe(1);
  });

  it('gives coded errors for a missing file and for a file that is no image', async () => {
    await expect(collect(new ImageFileSource({ path: join(dir, 'nope.jpg') }))).rejects.toMatchObject({
      code: SOURCE_NOT_FOUND,
    });
    const text = join(dir, 'notes.jpg');
    await writeFile(text, 'not an image');
    await expect(collect(new ImageFileSource({ path: text }))).rejects.toMatchObject({ code: SOURCE_DECODE });
  });
});

describe('ImageFolderSource', () => {
  let folder: string;

  beforeAll(async () => {
    folder = join(dir, 'folder');
    await mkdir(join(folder, 'sub.jpg'), { recursive: true }); // a folder, not an image
    await copyFile(JPEG, join(folder, 'img10.jpg'));
    await copyFile(join(SAMPLES, '000000000724.jpg'), join(folder, 'img2.JPEG'));
    await makePng(folder, 'img3.png');
    await writeFile(join(folder, 'img4.jpg'), 'truncated upload');
    await writeFile(join(folder, 'readme.txt'), 'skip me');
  });

  /** Which of the folder's images each frame carries, by content. */
  async function names(frames: Frame[]): Promise<string[]> {
    const files = ['img2.JPEG', 'img3.png', 'img10.jpg'];
    const contents = await Promise.all(files.map((f) => readFile(join(folder, f))));
    return frames.map((f) => files[contents.findIndex((c) => c.equals(encoded(f)))] ?? 'unknown');
  }

  it('yields every image in name order, skipping other and unreadable files', async () => {
    const frames = await collect(new ImageFolderSource({ dir: folder }));
    // Numbers compare by value (img2 < img3 < img10); img4.jpg is not a JPEG and is skipped.
    expect(await names(frames)).toEqual(['img2.JPEG', 'img3.png', 'img10.jpg']);
    expect(frames.map((f) => f.index)).toEqual([0, 1, 2]);
  });

  it('loops until the consumer stops', async () => {
    const source = new ImageFolderSource({ dir: folder, loop: true });
    const frames = await collect(source, 7);
    expect(await names(frames)).toEqual([
      'img2.JPEG',
      'img3.png',
      'img10.jpg',
      'img2.JPEG',
      'img3.png',
      'img10.jpg',
      'img2.JPEG',
    ]);
    expect(frames.map((f) => f.index)).toEqual([0, 1, 2, 3, 4, 5, 6]);
    expect(source.stats()).toMatchObject({ delivered: 7, restarts: 2 });
  });

  it('stops when the signal aborts', async () => {
    const abort = new AbortController();
    let count = 0;
    for await (const _frame of new ImageFolderSource({ dir: folder, loop: true }).frames(abort.signal)) {
      if (++count === 2) abort.abort();
    }
    expect(count).toBe(2);
  });

  it('reports a folder without images, and a missing folder', async () => {
    const empty = join(dir, 'empty');
    await mkdir(empty);
    await writeFile(join(empty, 'a.txt'), 'x');
    await expect(collect(new ImageFolderSource({ dir: empty, loop: true }))).rejects.toMatchObject({
      code: SOURCE_EMPTY,
    });
    await expect(collect(new ImageFolderSource({ dir: join(dir, 'missing') }))).rejects.toMatchObject({
      code: SOURCE_NOT_FOUND,
    });
  });
});
