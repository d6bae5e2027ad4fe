import { cp, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  type AdaptationReport,
  type AdaptationTester,
  keyFingerprint,
  packAlgorithm,
} from '@citysense/algorithms';
import { generateSigningKey, parseSigningKey, type SigningKey, sha256Hex } from '@citysense/protocol';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { startTestHub, type TestHub } from '../testing/test-hub.ts';
import { AlgorithmCentre } from './algorithm-centre.ts';
import { centreKeyPath } from './centre-key.ts';

const REFERENCE = fileURLToPath(new URL('../../../algorithms/packages/yolox-nano', import.meta.url));
const MAX_PACKAGE_BYTES = 8 * 1024 * 1024;
const FAILS_ADAPTATION = '1.1.0';

type ErrorBody = { code: string; message: string; details?: Record<string, unknown> };
type VersionBody = { algorithmId: string; version: string; state: string; sha256: string; bytes: number };
type Reply<T> = { status: number; body: T; headers: Headers };

describe('algorithm centre', () => {
  let t: TestHub;
  let srcDir: string;
  let httpUrl: string;
  let adminToken: string;
  let centreKey: SigningKey;
  const packed = new Map<string, Buffer>();

  const call = async <T>(
    method: string,
    path: string,
    options: {
      json?: unknown;
      body?: RequestInit['body'];
      headers?: Record<string, string>;
      auth?: string | null;
    } = {},
  ): Promise<Reply<T>> => {
    const headers: Record<string, string> = { ...options.headers };
    const auth = options.auth === undefined ? `Bearer ${adminToken}` : options.auth;
    if (auth) headers.authorization = auth;
    let body = options.body;
    if (options.json !== undefined) {
      headers['content-type'] = 'application/json';
      body = JSON.stringify(options.json);
    }
    const res = await fetch(`${httpUrl}${path}`, { method, headers, body });
    const text = await res.text();
    let parsed: unknown = text;
    try {
      parsed = text ? JSON.parse(text) : undefined;
    } catch {
      // a package download: keep the text
    }
    return { status: res.status, body: parsed as T, headers: res.headers };
  };
  const basic = (nodeId: string, password: string) =>
    `Basic ${Buffer.from(`${nodeId}:${password}`).toString('base64')}`;
  const download = async (path: string, auth: string, headers: Record<string, string> = {}) => {
    const res = await fetch(`${httpUrl}${path}`, { headers: { authorization: auth, ...headers } });
    return { status: res.status, headers: res.headers, bytes: Buffer.from(await res.arrayBuffer()) };
  };

  /**
   * Packs the reference YOLOX-nano folder as `version`, signed with `key` (the centre's by default).
   * Version FAILS_ADAPTATION expects a giraffe on the stop-sign image, which the real test cannot find.
   */
  const pack = async (version: string, key: SigningKey = centreKey): Promise<Buffer> => {
    const cacheKey = `${version}/${key.publicKey}`;
    const cached = packed.get(cacheKey);
    if (cached) return cached;
    const manifest = JSON.parse(await readFile(join(REFERENCE, 'manifest.json'), 'utf8')) as object;
    const tests =
      version === FAILS_ADAPTATION
        ? { tests: [{ image: 'samples/000000000724.jpg', expect: [{ label: 'giraffe', minCount: 1 }] }] }
        : {};
    await writeFile(join(srcDir, 'manifest.json'), JSON.stringify({ ...manifest, ...tests, version }));
    const { file } = await packAlgorithm(srcDir, key);
    packed.set(cacheKey, file);
    return file;
  };
  const uploadRaw = (file: Buffer | Uint8Array) =>
    call<VersionBody & ErrorBody>('POST', '/v1/algorithms/packages', {
      body: file,
      headers: { 'content-type': 'application/octet-stream' },
    });
  const uploadForm = (file: Buffer, field = 'file') => {
    const form = new FormData();
    form.append('note', 'from the web console');
    form.append(field, new Blob([file]), 'yolox-nano.csalgo');
    return call<VersionBody & ErrorBody>('POST', '/v1/algorithms/packages', { body: form });
  };
  const uploads = async () => readdir(join(t.dataDir, 'artifacts', 'tmp'));
  const move = (id: string, version: string, action: string, note?: string) =>
    call<VersionBody & ErrorBody>('POST', `/v1/algorithms/${id}/versions/${version}/${action}`, {
      json: note === undefined ? {} : { note },
    });
  const enroll = async (name: string) => {
    const node = await t.enroll(name);
    return { nodeId: node.nodeId, auth: basic(node.nodeId, node.password) };
  };

  beforeAll(async () => {
    t = await startTestHub({ algorithmMaxPackageBytes: MAX_PACKAGE_BYTES });
    httpUrl = t.httpUrl;
    adminToken = t.adminToken;
    centreKey = parseSigningKey(await readFile(centreKeyPath(t.dataDir), 'utf8'));
    srcDir = await mkdtemp(join(tmpdir(), 'citysense-algo-src-'));
    await cp(REFERENCE, srcDir, { recursive: true });
  });
  afterAll(async () => {
    await t?.stop();
    await rm(srcDir, { recursive: true, force: true });
  });

  it('keeps its own signing key in the data dir and trusts it as signer "centre"', async () => {
    const mode = (await stat(centreKeyPath(t.dataDir))).mode & 0o777;
    expect(mode).toBe(0o600);
    expect(centreKey.algorithm).toBe('ed25519');
    const signers = await call<Array<{ name: string; fingerprint: string; builtin: boolean }>>(
      'GET',
      '/v1/algorithm-signers',
    );
    expect(signers.body[0]).toMatchObject({
      name: 'centre',
      builtin: true,
      fingerprint: keyFingerprint(centreKey.publicKey),
    });
    const exported = await call<SigningKey>('GET', '/v1/algorithm-signers/centre/key');
    expect(exported.status).toBe(200);
    expect(exported.headers.get('cache-control')).toBe('no-store');
    expect(parseSigningKey(JSON.stringify(exported.body))).toEqual(centreKey);
    const anonymous = await call<ErrorBody>('GET', '/v1/algorithm-signers/centre/key', { auth: null });
    expect([anonymous.status, anonymous.body.code]).toEqual([401, 'CS_ERR_AUTH_REQUIRED']);
    const removeCentre = await call<ErrorBody>('DELETE', '/v1/algorithm-signers/centre');
    expect([removeCentre.status, removeCentre.body.code]).toEqual([409, 'CS_ERR_ALGO_SIGNER_BUILTIN']);
  });

  it('accepts packages from added signers only while they are trusted', async () => {
    const partner = generateSigningKey('sm2-sm3');
    const added = await call<{ fingerprint: string }>('POST', '/v1/algorithm-signers', {
      json: { name: 'partner-lab', algorithm: 'sm2-sm3', publicKey: partner.publicKey },
    });
    expect(added.status).toBe(201);
    expect(added.body.fingerprint).toBe(keyFingerprint(partner.publicKey));
    const again = await call<ErrorBody>('POST', '/v1/algorithm-signers', {
      json: { name: 'partner-lab-2', algorithm: 'sm2-sm3', publicKey: partner.publicKey },
    });
    expect([again.status, again.body.code]).toEqual([409, 'CS_ERR_ALGO_SIGNER_EXISTS']);
    const badKey = await call<ErrorBody>('POST', '/v1/algorithm-signers', {
      json: { name: 'broken', algorithm: 'ed25519', publicKey: 'x'.repeat(64) },
    });
    expect([badKey.status, badKey.body.code]).toEqual([400, 'CS_ERR_ALGO_SIGNER_KEY']);

    const bySm2 = await uploadRaw(await pack('0.9.0', partner));
    expect(bySm2.status).toBe(201);
    expect(await call('DELETE', '/v1/algorithm-signers/partner-lab').then((r) => r.status)).toBe(204);
    const refused = await uploadRaw(await pack('0.9.1', partner));
    expect([refused.status, refused.body.code]).toEqual([403, 'CS_ERR_ALGO_UNTRUSTED_KEY']);
    expect(await uploads()).toEqual([]);
  });

  it('stores uploads raw or as a form, as drafts, once per version', async () => {
    const file = await pack('1.0.0');
    const first = await uploadRaw(file);
    expect(first.status).toBe(201);
    expect(first.body).toMatchObject({
      algorithmId: 'yolox-nano',
      version: '1.0.0',
      state: 'draft',
      sha256: sha256Hex(file),
      bytes: file.length,
    });
    const stored = await readFile(join(t.dataDir, 'artifacts', 'algorithms', `${sha256Hex(file)}.csalgo`));
    expect(stored.equals(file)).toBe(true);

    const repeat = await uploadForm(file);
    expect([repeat.status, repeat.body.state]).toEqual([200, 'draft']);

    const viaForm = await uploadForm(await pack(FAILS_ADAPTATION));
    expect([viaForm.status, viaForm.body.version]).toEqual([201, FAILS_ADAPTATION]);

    // Same id and version, other bytes (another trusted signer): versions are immutable.
    const other = generateSigningKey('ed25519');
    await call('POST', '/v1/algorithm-signers', {
      json: { name: 'second-key', algorithm: 'ed25519', publicKey: other.publicKey },
    });
    const clash = await uploadRaw(await pack('1.0.0', other));
    expect([clash.status, clash.body.code]).toEqual([409, 'CS_ERR_ALGO_VERSION_EXISTS']);

    const list = await call<Array<{ id: string; versions: VersionBody[] }>>('GET', '/v1/algorithms');
    expect(list.body.find((a) => a.id === 'yolox-nano')?.versions.map((v) => [v.version, v.state])).toEqual([
      [FAILS_ADAPTATION, 'draft'],
      ['1.0.0', 'draft'],
      ['0.9.0', 'draft'],
    ]);
    expect(await uploads()).toEqual([]);
  });

  it('refuses untrusted, tampered, garbage and oversized uploads with codes and keeps serving', async () => {
    const stranger = await uploadRaw(await pack('2.0.0', generateSigningKey('ed25519')));
    expect([stranger.status, stranger.body.code]).toEqual([403, 'CS_ERR_ALGO_UNTRUSTED_KEY']);

    const tampered = Buffer.from(await pack('2.0.0'));
    const at = tampered.length - 200_000; // inside the sample images, after the manifest
    tampered[at] = (tampered[at] ?? 0) ^ 0xff;
    const bad = await uploadRaw(tampered);
    expect([bad.status, bad.body.code]).toEqual([400, 'CS_ERR_ALGO_PART_DIGEST']);

    const garbage = await uploadRaw(Buffer.from('definitely not a tar archive'));
    expect([garbage.status, garbage.body.code]).toEqual([400, 'CS_ERR_ALGO_PACKAGE_CORRUPT']);
    const empty = await uploadRaw(Buffer.alloc(0));
    expect([empty.status, empty.body.code]).toEqual([400, 'CS_ERR_ALGO_PACKAGE_CORRUPT']);
    const json = await call<ErrorBody>('POST', '/v1/algorithms/packages', { json: { file: 'x' } });
    expect([json.status, json.body.code]).toEqual([415, 'CS_ERR_ALGO_UPLOAD_TYPE']);
    const wrongField = await uploadForm(await pack('2.0.0'), 'model');
    expect([wrongField.status, wrongField.body.code]).toEqual([400, 'CS_ERR_ALGO_UPLOAD_INVALID']);

    const huge = Buffer.alloc(MAX_PACKAGE_BYTES + 1024 * 1024, 7);
    const declared = await uploadRaw(huge);
    expect([declared.status, declared.body.code]).toEqual([413, 'CS_ERR_ALGO_PACKAGE_TOO_LARGE']);
    const hugeForm = await uploadForm(huge);
    expect([hugeForm.status, hugeForm.body.code]).toEqual([413, 'CS_ERR_ALGO_PACKAGE_TOO_LARGE']);
    // Without Content-Length the limit is found while streaming, raw or in a form.
    const streamUpload = async (contentType: string, chunks: Uint8Array[]) => {
      const res = await fetch(`${httpUrl}/v1/algorithms/packages`, {
        method: 'POST',
        headers: { authorization: `Bearer ${adminToken}`, 'content-type': contentType },
        body: new ReadableStream({
          pull(controller) {
            const next = chunks.shift();
            if (next) controller.enqueue(next);
            else controller.close();
          },
        }),
        duplex: 'half',
      } as RequestInit);
      return { status: res.status, body: (await res.json()) as ErrorBody };
    };
    const megabytes = (n: number) => Array.from({ length: n }, () => new Uint8Array(1024 * 1024).fill(7));
    const streamed = await streamUpload('application/octet-stream', megabytes(9));
    expect([streamed.status, streamed.body.code]).toEqual([413, 'CS_ERR_ALGO_PACKAGE_TOO_LARGE']);
    const boundary = 'citysense-test-boundary';
    const formStream = await streamUpload(`multipart/form-data; boundary=${boundary}`, [
      Buffer.from(
        `--${boundary}\r\ncontent-disposition: form-data; name="file"; filename="big.csalgo"\r\n` +
          'content-type: application/octet-stream\r\n\r\n',
      ),
      ...megabytes(9),
      Buffer.from(`\r\n--${boundary}--\r\n`),
    ]);
    expect([formStream.status, formStream.body.code]).toEqual([413, 'CS_ERR_ALGO_PACKAGE_TOO_LARGE']);
    const cutShort = await streamUpload(`multipart/form-data; boundary=${boundary}`, [
      Buffer.from(`--${boundary}\r\ncontent-disposition: form-data; name="file"; filename="x"\r\n\r\nabc`),
    ]);
    expect(cutShort.status).toBe(400);

    // A client that gives up half-way leaves nothing behind.
    const abort = new AbortController();
    let sent = 0;
    const abandoned = fetch(`${httpUrl}/v1/algorithms/packages`, {
      method: 'POST',
      headers: { authorization: `Bearer ${adminToken}`, 'content-type': 'application/octet-stream' },
      body: new ReadableStream({
        async pull(controller) {
          if (sent++ < 2) controller.enqueue(new Uint8Array(256 * 1024));
          else await new Promise(() => undefined); // stall until aborted
        },
      }),
      duplex: 'half',
      signal: abort.signal,
    } as RequestInit).catch((err: unknown) => err);
    await vi.waitFor(async () => expect(await uploads()).toHaveLength(1), { timeout: 10_000 });
    abort.abort();
    await abandoned;
    await vi.waitFor(async () => expect(await uploads()).toEqual([]), { timeout: 10_000 });

    expect(await uploads()).toEqual([]);
    const versions = await call<{ versions: VersionBody[] }>('GET', '/v1/algorithms/yolox-nano');
    expect(versions.body.versions.map((v) => v.version)).not.toContain('2.0.0');
    expect((await fetch(`${httpUrl}/health`)).status).toBe(200);
    const good = await uploadRaw(await pack('2.0.0'));
    expect(good.status).toBe(201);
  });

  it('takes a version from draft to retired, refusing wrong transitions with the current state', async () => {
    const bare = await call<ErrorBody>('POST', '/v1/algorithms/yolox-nano/versions/1.0.0/publish');
    expect([bare.status, bare.body.code]).toEqual([409, 'CS_ERR_ALGO_STATE']);
    const early = await move('yolox-nano', '1.0.0', 'publish');
    expect([early.status, early.body.code]).toEqual([409, 'CS_ERR_ALGO_STATE']);
    expect(early.body.message).toContain('draft');
    expect((await move('yolox-nano', '1.0.0', 'file')).status).toBe(409);

    // The hub's own tester: runAdaptationTest, YOLOX-nano in ONNX Runtime on the package's sample images.
    const validated = await call<VersionBody & { report: AdaptationReport }>(
      'POST',
      '/v1/algorithms/yolox-nano/versions/1.0.0/validate',
    );
    expect(validated.status).toBe(200);
    expect(validated.body.state).toBe('validated');
    expect(validated.body.report.passed).toBe(true);
    expect(validated.body.report.runtime).toMatch(/^onnxruntime-node /);
    expect(validated.body.report.graph?.inputs[0]?.shape).toEqual([1, 3, 416, 416]);
    expect(validated.body.report.tests[1]?.objects.filter((o) => o.label === 'stop sign')).toHaveLength(1);
    const twice = await call<ErrorBody>('POST', '/v1/algorithms/yolox-nano/versions/1.0.0/validate');
    expect([twice.status, twice.body.code]).toEqual([409, 'CS_ERR_ALGO_STATE']);
    expect(twice.body.message).toContain('validated');

    expect((await move('yolox-nano', '1.0.0', 'retire')).status).toBe(409);
    const filed = await move('yolox-nano', '1.0.0', 'file', '备案号 BJ-ALGO-2025-0042');
    expect([filed.status, filed.body.state]).toEqual([200, 'filed']);
    expect((await move('yolox-nano', '1.0.0', 'publish')).body.state).toBe('published');
    const again = await move('yolox-nano', '1.0.0', 'publish');
    expect(again.status).toBe(409);
    expect(again.body.message).toContain('published');

    const detail = await call<{
      manifest: { id: string; parts: object };
      report: AdaptationReport;
      history: Array<{
        action: string;
        fromState: string | null;
        toState: string;
        actor: string;
        note: string;
      }>;
    }>('GET', '/v1/algorithms/yolox-nano/versions/1.0.0');
    expect(detail.body.manifest.id).toBe('yolox-nano');
    expect(Object.keys(detail.body.manifest.parts)).toContain('yolox_nano.onnx');
    expect(detail.body.report.passed).toBe(true);
    expect(detail.body.history.map((h) => [h.action, h.fromState, h.toState, h.actor])).toEqual([
      ['upload', null, 'draft', 'admin'],
      ['validate', 'draft', 'validated', 'admin'],
      ['file', 'validated', 'filed', 'admin'],
      ['publish', 'filed', 'published', 'admin'],
    ]);
    expect(detail.body.history[2]?.note).toBe('备案号 BJ-ALGO-2025-0042');
    const unknown = await call<ErrorBody>('GET', '/v1/algorithms/yolox-nano/versions/9.9.9');
    expect([unknown.status, unknown.body.code]).toEqual([404, 'CS_ERR_ALGO_VERSION_UNKNOWN']);
  });

  it('stores a failing adaptation report and leaves the version a draft', async () => {
    const failed = await call<VersionBody & { report: AdaptationReport }>(
      'POST',
      `/v1/algorithms/yolox-nano/versions/${FAILS_ADAPTATION}/validate`,
    );
    expect(failed.status).toBe(200);
    expect([failed.body.state, failed.body.report.passed]).toEqual(['draft', false]);
    expect(failed.body.report.tests[0]?.expectations[0]).toMatchObject({ label: 'giraffe', passed: false });

    const detail = await call<{ state: string; report: AdaptationReport; history: Array<{ note: string }> }>(
      'GET',
      `/v1/algorithms/yolox-nano/versions/${FAILS_ADAPTATION}`,
    );
    expect(detail.body.state).toBe('draft');
    expect(detail.body.report.passed).toBe(false);
    expect(detail.body.history.at(-1)?.note).toContain('adaptation test failed');
    expect((await move('yolox-nano', FAILS_ADAPTATION, 'file')).status).toBe(409);
  });

  it('runs one adaptation test at a time through an injected tester, and records one that throws', async () => {
    let running = 0;
    let maxConcurrent = 0;
    let calls = 0;
    // A test double of the injected tester: fails or throws, and notes how many run at once.
    const tester: AdaptationTester = async (pkg) => {
      calls++;
      running++;
      maxConcurrent = Math.max(maxConcurrent, running);
      await new Promise((r) => setImmediate(r));
      running--;
      if (calls === 4) throw new Error('onnxruntime could not load the graph');
      return {
        passed: false,
        checkedAt: new Date().toISOString(),
        runtime: 'test double',
        graph: null,
        tests: pkg.manifest.tests.map((x) => ({
          image: x.image,
          passed: false,
          objects: [],
          inferMs: 0,
          expectations: [],
        })),
        durationMs: 0,
      };
    };
    // A second centre on the same database and data dir, as another hub replica would be.
    const centre = new AlgorithmCentre({
      db: t.hub.db,
      dataDir: t.dataDir,
      artifactDir: join(t.dataDir, 'artifacts'),
      maxPackageBytes: MAX_PACKAGE_BYTES,
      keyAlgorithm: 'ed25519',
      tester,
    });
    await centre.start();
    try {
      const results = await Promise.all(
        [FAILS_ADAPTATION, '2.0.0', FAILS_ADAPTATION, '2.0.0'].map((v) =>
          centre.validate('yolox-nano', v, 'admin'),
        ),
      );
      expect(maxConcurrent).toBe(1);
      expect(results.map((r) => [r.version.state, r.report.passed])).toEqual(
        Array.from({ length: 4 }, () => ['draft', false]),
      );
      expect(results[3]?.report.error?.message).toContain('could not load the graph');
      const noTester = new AlgorithmCentre({
        db: t.hub.db,
        dataDir: t.dataDir,
        artifactDir: join(t.dataDir, 'artifacts'),
        maxPackageBytes: MAX_PACKAGE_BYTES,
        keyAlgorithm: 'ed25519',
      });
      await expect(noTester.validate('yolox-nano', '2.0.0', 'admin')).rejects.toMatchObject({
        code: 'CS_ERR_ALGO_TESTER_UNAVAILABLE',
      });
    } finally {
      await centre.stop();
    }
  });

  it('re-checks the signer before testing: a package of a signer no longer trusted is refused', async () => {
    const stale = await call<ErrorBody>('POST', '/v1/algorithms/yolox-nano/versions/0.9.0/validate');
    expect([stale.status, stale.body.code]).toEqual([403, 'CS_ERR_ALGO_UNTRUSTED_KEY']);
  });

  it('lets a node download only published versions its agency granted it, byte for byte and resumable', async () => {
    const file = await pack('1.0.0');
    const granted = await enroll('pole-algo-1');
    const other = await enroll('pole-algo-2');
    const path = '/v1/algorithms/yolox-nano/versions/1.0.0/package';

    expect(
      (await call('POST', '/v1/agencies', { json: { id: 'traffic-police', name: '交管局' } })).status,
    ).toBe(201);
    const dup = await call<ErrorBody>('POST', '/v1/agencies', { json: { id: 'traffic-police', name: 'x' } });
    expect([dup.status, dup.body.code]).toEqual([409, 'CS_ERR_ALGO_AGENCY_EXISTS']);
    const members = await call<{ nodes: string[] }>('PUT', '/v1/agencies/traffic-police/nodes', {
      json: { nodeIds: [granted.nodeId, other.nodeId] },
    });
    expect(members.body.nodes).toEqual([granted.nodeId, other.nodeId].sort());
    const ghost = await call<ErrorBody>('PUT', '/v1/agencies/traffic-police/nodes', {
      json: { nodeIds: ['no-such-node'] },
    });
    expect([ghost.status, ghost.body.code]).toEqual([400, 'CS_ERR_ALGO_NODE_UNKNOWN']);

    // The agency cannot pass on what it does not hold.
    const premature = await call<ErrorBody>('POST', '/v1/agencies/traffic-police/node-grants', {
      json: { algorithmId: 'yolox-nano', nodeIds: [granted.nodeId] },
    });
    expect([premature.status, premature.body.code]).toEqual([403, 'CS_ERR_ALGO_NOT_GRANTED']);

    const applied = await call<{ id: string; state: string }>(
      'POST',
      '/v1/agencies/traffic-police/applications',
      {
        json: { algorithmId: 'yolox-nano', purpose: 'count vehicles at junctions' },
      },
    );
    expect([applied.status, applied.body.state]).toEqual([201, 'pending']);
    const pending = await call<Array<{ id: string }>>('GET', '/v1/algorithm-applications?state=pending');
    expect(pending.body.map((a) => a.id)).toContain(applied.body.id);
    const noReason = await call<ErrorBody>('POST', `/v1/algorithm-applications/${applied.body.id}/reject`, {
      json: {},
    });
    expect(noReason.status).toBe(400);
    const approved = await call<{ state: string }>(
      'POST',
      `/v1/algorithm-applications/${applied.body.id}/approve`,
      { json: { reason: 'within the agency remit' } },
    );
    expect(approved.body.state).toBe('approved');
    const decidedTwice = await call<ErrorBody>(
      'POST',
      `/v1/algorithm-applications/${applied.body.id}/reject`,
      {
        json: { reason: 'changed my mind' },
      },
    );
    expect([decidedTwice.status, decidedTwice.body.code]).toEqual([409, 'CS_ERR_ALGO_APPLICATION_STATE']);

    const outsider = await call<ErrorBody>('POST', '/v1/agencies/traffic-police/node-grants', {
      json: { algorithmId: 'yolox-nano', nodeIds: [granted.nodeId, 'gw-elsewhere'] },
    });
    expect([outsider.status, outsider.body.code]).toEqual([400, 'CS_ERR_ALGO_NODE_NOT_MEMBER']);
    const nodeGrant = await call<{ nodeGrants: unknown }>('POST', '/v1/agencies/traffic-police/node-grants', {
      json: { algorithmId: 'yolox-nano', nodeIds: [granted.nodeId] },
    });
    expect(nodeGrant.body.nodeGrants).toEqual([{ algorithmId: 'yolox-nano', nodeIds: [granted.nodeId] }]);

    const refused = await download(path, other.auth);
    expect(refused.status).toBe(403);
    expect((JSON.parse(refused.bytes.toString()) as ErrorBody).code).toBe('CS_ERR_ALGO_NOT_GRANTED');
    const wrongPassword = await download(path, basic(granted.nodeId, 'not-the-password'));
    expect(wrongPassword.status).toBe(401);
    const nodeOnAdminRoute = await call<ErrorBody>('GET', '/v1/algorithms', { auth: granted.auth });
    expect(nodeOnAdminRoute.status).toBe(401);
    const draft = await download(
      `/v1/algorithms/yolox-nano/versions/${FAILS_ADAPTATION}/package`,
      granted.auth,
    );
    expect(draft.status).toBe(403);
    expect((await download('/v1/algorithms/yolox-nano/versions/7.0.0/package', granted.auth)).status).toBe(
      404,
    );

    const whole = await download(path, granted.auth);
    expect(whole.status).toBe(200);
    expect(whole.bytes.equals(file)).toBe(true);
    expect(whole.headers.get('etag')).toBe(`"${sha256Hex(file)}"`);
    expect(whole.headers.get('content-length')).toBe(String(file.length));
    expect(whole.headers.get('accept-ranges')).toBe('bytes');

    const offset = 1_000_000;
    const tail = await download(path, granted.auth, { range: `bytes=${offset}-` });
    expect(tail.status).toBe(206);
    expect(tail.headers.get('content-range')).toBe(`bytes ${offset}-${file.length - 1}/${file.length}`);
    expect(tail.bytes.equals(file.subarray(offset))).toBe(true);
    const middle = await download(path, granted.auth, { range: 'bytes=512-1535' });
    expect([middle.status, middle.bytes.length]).toEqual([206, 1024]);
    expect(middle.bytes.equals(file.subarray(512, 1536))).toBe(true);
    const beyond = await download(path, granted.auth, { range: `bytes=${file.length}-` });
    expect(beyond.status).toBe(416);
    expect(beyond.headers.get('content-range')).toBe(`bytes */${file.length}`);
    const stale = await download(path, granted.auth, { range: 'bytes=10-', 'if-range': '"old"' });
    expect([stale.status, stale.bytes.length]).toEqual([200, file.length]);
    const cached = await download(path, granted.auth, { 'if-none-match': `"${sha256Hex(file)}"` });
    expect(cached.status).toBe(304);
    const head = await fetch(`${httpUrl}${path}`, {
      method: 'HEAD',
      headers: { authorization: granted.auth },
    });
    expect([head.status, head.headers.get('content-length')]).toEqual([200, String(file.length)]);
    const byAdmin = await download(
      `/v1/algorithms/yolox-nano/versions/${FAILS_ADAPTATION}/package`,
      `Bearer ${adminToken}`,
    );
    expect([byAdmin.status, byAdmin.bytes.equals(await pack(FAILS_ADAPTATION))]).toEqual([200, true]);

    // Revoking the agency's grant cuts the node off.
    expect((await call('DELETE', '/v1/agencies/traffic-police/grants/yolox-nano')).status).toBe(204);
    expect((await download(path, granted.auth)).status).toBe(403);
    const agency = await call<{ grants: string[]; nodeGrants: unknown[] }>(
      'GET',
      '/v1/agencies/traffic-police',
    );
    expect(agency.body).toMatchObject({ grants: [], nodeGrants: [] });
  });

  it('tells a gateway whether a package is filed at the centre', async () => {
    const status = (sha: string, auth: string) =>
      call<{ known: boolean; state: string | null; filed: boolean }>(
        'GET',
        `/v1/algorithm-packages/${sha}/status`,
        { auth },
      );
    const node = await enroll('pole-algo-3');
    const published = await status(sha256Hex(await pack('1.0.0')), node.auth);
    expect(published.body).toMatchObject({ known: true, state: 'published', filed: true });
    const draft = await status(sha256Hex(await pack(FAILS_ADAPTATION)), node.auth);
    expect(draft.body).toMatchObject({ known: true, state: 'draft', filed: false });
    const unknown = await status('0'.repeat(64), node.auth);
    expect(unknown.body).toMatchObject({ known: false, state: null, filed: false });
    expect((await status('0'.repeat(64), basic(node.nodeId, 'wrong'))).status).toBe(401);

    expect((await move('yolox-nano', '1.0.0', 'retire', 'superseded')).body.state).toBe('retired');
    expect((await status(sha256Hex(await pack('1.0.0')), node.auth)).body.filed).toBe(false);
  });

  it('keeps a replaced centre key trusted, so the packages it signed still validate', async () => {
    const otherDir = await mkdtemp(join(tmpdir(), 'citysense-algo-replica-'));
    const replicaOf = (dataDir: string) =>
      new AlgorithmCentre({
        db: t.hub.db,
        dataDir,
        artifactDir: join(t.dataDir, 'artifacts'),
        maxPackageBytes: MAX_PACKAGE_BYTES,
        keyAlgorithm: 'ed25519',
      });
    try {
      // A hub with its own data dir on the same database brings another centre key...
      const replica = replicaOf(otherDir);
      await replica.start();
      const replicaKey = replica.centreKey.publicKey;
      await replica.stop();
      const signers = await call<Array<{ name: string; fingerprint: string; builtin: boolean }>>(
        'GET',
        '/v1/algorithm-signers',
      );
      const centre = signers.body.find((x) => x.name === 'centre');
      expect(centre?.fingerprint).toBe(keyFingerprint(replicaKey));
      const kept = signers.body.find((x) => x.fingerprint === keyFingerprint(centreKey.publicKey));
      expect(kept).toMatchObject({ name: expect.stringMatching(/^centre-previous-/), builtin: false });
      // ...and packages signed with ours are still accepted.
      expect((await uploadRaw(await pack('3.0.0'))).status).toBe(201);
    } finally {
      // This hub's key becomes `centre` again.
      const original = replicaOf(t.dataDir);
      await original.start();
      await original.stop();
      await rm(otherDir, { recursive: true, force: true });
    }
    const signers = await call<Array<{ name: string; fingerprint: string }>>('GET', '/v1/algorithm-signers');
    expect(signers.body[0]).toMatchObject({
      name: 'centre',
      fingerprint: keyFingerprint(centreKey.publicKey),
    });
  });

  it('documents every algorithm route in OpenAPI', async () => {
    const doc = await call<{ paths: Record<string, Record<string, { requestBody?: unknown }>> }>(
      'GET',
      '/docs/json',
    );
    const paths = Object.keys(doc.body.paths);
    for (const p of [
      '/v1/algorithms/packages',
      '/v1/algorithms/{id}/versions/{version}/package',
      '/v1/agencies/{agency}/node-grants',
      '/v1/algorithm-packages/{sha256}/status',
      '/v1/algorithm-signers/centre/key',
    ])
      expect(paths).toContain(p);
    expect(doc.body.paths['/v1/algorithms/packages']?.post?.requestBody).toMatchObject({
      content: { 'application/octet-stream': {}, 'multipart/form-data': {} },
    });
  });
});
