import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CitysenseError } from '@citysense/protocol';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { PACKAGE_DIGEST, PACKAGE_DOWNLOAD } from './errors.ts';
import { downloadPackage, type PackageDownloadRequest } from './package-download.ts';
import { type ServedPackage, TestAssignmentsHub } from './test-hub.ts';

describe('resumable package download', () => {
  const hub = new TestAssignmentsHub();
  const file = randomBytes(3 * 1024 * 1024 + 123);
  let served: ServedPackage;
  let dir: string;

  beforeAll(async () => {
    await hub.start();
    served = hub.serve('blob', '1.0.0', file);
  });
  afterAll(() => hub.close());
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'cs-download-'));
  });
  afterEach(async () => {
    hub.reset();
    await rm(dir, { recursive: true, force: true });
  });

  function request(over: Partial<PackageDownloadRequest> = {}): PackageDownloadRequest {
    const auth = Buffer.from(`${hub.nodeId}:${hub.password}`).toString('base64');
    return {
      url: `${hub.url}${served.path}`,
      headers: { authorization: `Basic ${auth}` },
      partPath: join(dir, `${served.sha256}.part`),
      finalPath: join(dir, `${served.sha256}.csalgo`),
      sha256: served.sha256,
      bytes: served.bytes,
      signal: new AbortController().signal,
      ...over,
    };
  }

  async function fails(p: Promise<unknown>): Promise<CitysenseError> {
    const err = await p.then(
      () => null,
      (e: unknown) => e,
    );
    if (!(err instanceof CitysenseError)) throw new Error(`expected a CitysenseError, got ${String(err)}`);
    return err;
  }

  it('resumes from the part with a Range request after the connection is cut', async () => {
    const req = request();
    hub.cutNextDownloadAfter = 1_000_000;
    const cut = await fails(downloadPackage(req));
    expect(cut.code).toBe(PACKAGE_DOWNLOAD);
    const kept = (await stat(req.partPath)).size;
    expect(kept).toBeGreaterThan(0);
    expect(kept).toBeLessThanOrEqual(1_000_000);

    const progress: number[] = [];
    const result = await downloadPackage({ ...req, onProgress: (n) => progress.push(n) });
    expect(hub.downloads.map((d) => [d.range, d.status])).toEqual([
      [undefined, 200],
      [`bytes=${kept}-`, 206],
    ]);
    expect(hub.downloads[1]?.ifRange).toBe(`"${served.sha256}"`);
    expect(result).toMatchObject({ resumedFrom: kept, fetched: file.length - kept, httpStatus: 206 });
    expect((await readFile(req.finalPath)).equals(file)).toBe(true);
    await expect(stat(req.partPath)).rejects.toThrow();
    // Progress counts the resumed bytes too, and ends at the whole file.
    expect(progress[0]).toBeGreaterThan(kept);
    expect(progress.at(-1)).toBe(file.length);
  });

  it('starts over when the hub answers 200 to a Range request', async () => {
    const req = request();
    await writeFile(req.partPath, file.subarray(0, 500_000));
    hub.ignoreRange = true;
    const result = await downloadPackage(req);
    expect(hub.downloads[0]?.range).toBe('bytes=500000-');
    expect(result).toMatchObject({ resumedFrom: 0, fetched: file.length, httpStatus: 200 });
    expect((await readFile(req.finalPath)).equals(file)).toBe(true);
  });

  it('deletes a download whose SHA-256 is not the assigned one, and the next attempt succeeds', async () => {
    const req = request();
    // A part left by something else: resuming it makes a file with the wrong digest.
    await writeFile(req.partPath, randomBytes(200_000));
    const err = await fails(downloadPackage(req));
    expect(err.code).toBe(PACKAGE_DIGEST);
    await expect(stat(req.partPath)).rejects.toThrow();
    await expect(stat(req.finalPath)).rejects.toThrow();
    await downloadPackage(req);
    expect((await readFile(req.finalPath)).equals(file)).toBe(true);
  });

  it("passes the hub's refusal code through and keeps nothing", async () => {
    const req = request();
    hub.refuseDownloads = { status: 403, code: 'CS_ERR_ALGO_NOT_GRANTED' };
    const err = await fails(downloadPackage(req));
    expect(err.code).toBe('CS_ERR_ALGO_NOT_GRANTED');
    expect(err.statusCode).toBe(403);
    await expect(stat(req.finalPath)).rejects.toThrow();
  });
});
