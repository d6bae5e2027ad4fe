import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestHub, type TestHub } from '../testing/test-hub.ts';

const PASSWORD = 'open-to-roles-password-1';

describe('algorithm centre, deployments and video opened to their roles', () => {
  let t: TestHub;
  const tokens: Record<string, string> = {};

  beforeAll(async () => {
    t = await startTestHub();
    await t.api('PUT', '/v1/agencies/bdb', { name: '大数据局', kind: 'platform' });
    for (const [username, role] of [
      ['algo', 'algorithm-admin'],
      ['field', 'field-engineer'],
      ['op', 'agency-operator'],
    ] as const) {
      const created = await t.api('POST', '/v1/users', {
        username,
        password: PASSWORD,
        displayName: username,
        agencyId: 'bdb',
        roles: [{ role }],
      });
      expect(created.status).toBe(201);
      const login = await t.api<{ token: string }>(
        'POST',
        '/v1/auth/login',
        { username, password: PASSWORD },
        null,
      );
      tokens[username] = login.body.token;
    }
  });
  afterAll(async () => {
    await t?.stop();
  });

  const status = async (who: string, method: string, path: string, body?: unknown) =>
    (await t.api<{ code?: string }>(method, path, body, tokens[who])).status;

  it('lets an algorithm-centre admin run the centre and deployments, but not export the centre key', async () => {
    expect(await status('algo', 'GET', '/v1/algorithms')).toBe(200);
    expect(await status('algo', 'GET', '/v1/algorithm-applications')).toBe(200);
    expect(await status('algo', 'GET', '/v1/agencies')).toBe(200);
    expect(await status('algo', 'GET', '/v1/deployments')).toBe(200);
    expect(await status('algo', 'GET', '/v1/analytics/detection-counts?bucket=1h')).toBe(200);
    expect(await status('algo', 'POST', '/v1/algorithms/nope/versions/1.0.0/file', {})).toBe(404);
    expect(await status('algo', 'GET', '/v1/algorithm-signers/centre/key')).toBe(403);
    expect(await status('algo', 'GET', '/v1/video/devices')).toBe(403);
  });

  it('lets a field engineer watch video and read detections, but not admit devices or deploy', async () => {
    expect(await status('field', 'GET', '/v1/video/devices')).toBe(200);
    expect(await status('field', 'GET', '/v1/video/alarms')).toBe(200);
    expect(await status('field', 'GET', '/v1/analytics/detections')).toBe(200);
    expect(await status('field', 'POST', '/v1/video/devices', { deviceId: '34020000001320000001' })).toBe(
      403,
    );
    expect(await status('field', 'GET', '/v1/deployments')).toBe(403);
    expect(await status('field', 'GET', '/v1/algorithms')).toBe(403);
  });

  it('lets the console page fetch HTTP-FLV from the media relay (Content-Security-Policy)', async () => {
    const res = await fetch(`${t.httpUrl}/`, { headers: { accept: 'text/html' } });
    const relay = new URL(t.hub.video.relay.flvUrl('live', 'cam')).origin;
    const csp = res.headers.get('content-security-policy') ?? '';
    expect(csp).toContain(`connect-src 'self' ${relay}`);
    expect(csp).toContain(`media-src 'self' blob: ${relay}`);
  });

  it('keeps other roles out, with the role they need', async () => {
    const res = await t.api<{ code: string; details: { needed: string[] } }>(
      'GET',
      '/v1/algorithms',
      undefined,
      tokens.op,
    );
    expect(res.status).toBe(403);
    expect(res.body.code).toBe('CS_ERR_AUTH_FORBIDDEN');
    expect(res.body.details.needed).toContain('algorithm-admin');
  });
});
