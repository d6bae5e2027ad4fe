import { generateEd25519, signEd25519 } from '@citysense/protocol';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestHub, type TestHub } from '../testing/test-hub.ts';

type ErrorBody = { code: string; message: string };

describe('enrolment and the node registry', () => {
  let t: TestHub;
  beforeAll(async () => {
    t = await startTestHub();
  });
  afterAll(async () => t?.stop());

  const enrollBody = (token: string) => {
    const keys = generateEd25519();
    return {
      token,
      publicKey: keys.publicKey,
      signature: signEd25519(keys.privateKey, `${token}\n${keys.publicKey}`),
      agentVersion: '0.1.0',
    };
  };

  it('enrols a node once with a one-time token and refuses a replay', async () => {
    const created = await t.api<{ token: string; name: string }>('POST', '/v1/enrollment-tokens', {
      name: 'pole-A12',
      expires: '1h',
    });
    expect(created.status).toBe(201);
    const first = await t.api<{ nodeId: string; mqtt: { username: string; password: string; url: string } }>(
      'POST',
      '/v1/nodes/enroll',
      enrollBody(created.body.token),
      null,
    );
    expect(first.status).toBe(201);
    expect(first.body.nodeId).toBe('pole-A12');
    expect(first.body.mqtt.username).toBe('pole-A12');
    expect(first.body.mqtt.url).toMatch(/^mqtt:\/\/127\.0\.0\.1:\d+$/);

    const replay = await t.api<ErrorBody>('POST', '/v1/nodes/enroll', enrollBody(created.body.token), null);
    expect(replay.status).toBe(409);
    expect(replay.body.code).toBe('CS_ERR_TOKEN_USED');
    const nodes = await t.api<Array<{ id: string; status: string }>>('GET', '/v1/nodes');
    expect(nodes.body.filter((n) => n.id === 'pole-A12')).toHaveLength(1);
    expect(nodes.body.find((n) => n.id === 'pole-A12')?.status).toBe('offline');
  });

  it('refuses unknown and expired tokens and bad signatures with codes', async () => {
    const unknown = await t.api<ErrorBody>(
      'POST',
      '/v1/nodes/enroll',
      enrollBody('cst_not-a-real-token'),
      null,
    );
    expect([unknown.status, unknown.body.code]).toEqual([401, 'CS_ERR_TOKEN_UNKNOWN']);

    const short = await t.api<{ token: string }>('POST', '/v1/enrollment-tokens', { expires: '1s' });
    await new Promise((r) => setTimeout(r, 1100));
    const expired = await t.api<ErrorBody>('POST', '/v1/nodes/enroll', enrollBody(short.body.token), null);
    expect([expired.status, expired.body.code]).toEqual([401, 'CS_ERR_TOKEN_EXPIRED']);

    const fresh = await t.api<{ token: string }>('POST', '/v1/enrollment-tokens', {});
    const forged = { ...enrollBody(fresh.body.token), signature: Buffer.alloc(64).toString('base64') };
    const bad = await t.api<ErrorBody>('POST', '/v1/nodes/enroll', forged, null);
    expect([bad.status, bad.body.code]).toEqual([400, 'CS_ERR_ENROLL_SIGNATURE']);
    // The token survives a refused attempt: the real box can still enrol with it.
    expect((await t.api('POST', '/v1/nodes/enroll', enrollBody(fresh.body.token), null)).status).toBe(201);
  });

  it('validates bodies and requires the admin token', async () => {
    const garbage = await t.api<ErrorBody>('POST', '/v1/nodes/enroll', '{"token": 5', null);
    expect(garbage.status).toBe(400);
    const wrongShape = await t.api<ErrorBody>('POST', '/v1/nodes/enroll', { token: 'x' }, null);
    expect([wrongShape.status, wrongShape.body.code]).toEqual([400, 'CS_ERR_VALIDATION']);
    const badExpiry = await t.api<ErrorBody>('POST', '/v1/enrollment-tokens', { expires: 'forever' });
    expect([badExpiry.status, badExpiry.body.code]).toEqual([400, 'CS_ERR_DURATION_INVALID']);
    const noAuth = await t.api<ErrorBody>('GET', '/v1/nodes', undefined, null);
    expect([noAuth.status, noAuth.body.code]).toEqual([401, 'CS_ERR_AUTH_REQUIRED']);
    const wrongAuth = await t.api<ErrorBody>('GET', '/v1/nodes', undefined, 'nope-nope-nope-nope');
    expect([wrongAuth.status, wrongAuth.body.code]).toEqual([401, 'CS_ERR_AUTH_INVALID']);
    const missing = await t.api<ErrorBody>('GET', '/v1/nodes/does-not-exist');
    expect([missing.status, missing.body.code]).toEqual([404, 'CS_ERR_NODE_UNKNOWN']);
  });

  it('serves OpenAPI, health and metrics', async () => {
    const spec = await t.api<{ openapi: string; paths: Record<string, unknown> }>(
      'GET',
      '/docs/json',
      undefined,
      null,
    );
    expect(spec.body.openapi).toMatch(/^3\./);
    expect(Object.keys(spec.body.paths)).toEqual(
      expect.arrayContaining(['/v1/nodes/enroll', '/v1/readings', '/v1/nodes/{id}/health']),
    );
    const health = await t.api<{ status: string; database: { timescale: boolean } }>(
      'GET',
      '/health',
      undefined,
      null,
    );
    expect(health.body).toMatchObject({ status: 'ok', database: { timescale: true } });
    const metrics = await fetch(`${t.httpUrl}/metrics`).then((r) => r.text());
    expect(metrics).toContain('citysense_readings_committed_total');
  });

  it('replaces a box: the new one takes over the node id, the old credentials stop working', async () => {
    const node = await t.enroll('pole-R1');
    const replacement = await t.api<{ token: string; replacesNode: string }>(
      'POST',
      '/v1/nodes/pole-R1/replace',
      {},
    );
    expect(replacement.body.replacesNode).toBe('pole-R1');
    const res = await t.api<{ nodeId: string; replaced: boolean; mqtt: { password: string } }>(
      'POST',
      '/v1/nodes/enroll',
      enrollBody(replacement.body.token),
      null,
    );
    expect(res.body).toMatchObject({ nodeId: 'pole-R1', replaced: true });
    expect(res.body.mqtt.password).not.toBe(node.password);
    const del = await t.api('DELETE', '/v1/nodes/pole-R1');
    expect(del.status).toBe(204);
    const list = await t.api<Array<{ id: string }>>('GET', '/v1/nodes');
    expect(list.body.map((n) => n.id)).not.toContain('pole-R1');
  });
});
