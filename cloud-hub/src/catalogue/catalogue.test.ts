import { DataType, type VideoAnalyticsFrame } from '@citysense/protocol';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AnalyticsStore } from '../analytics/analytics-store.ts';
import type { AuditEntry } from '../audit/audit-log.ts';
import { ReadingStore } from '../telemetry/reading-store.ts';
import { startTestHub, type TestHub } from '../testing/test-hub.ts';

type ErrorBody = { code: string; message: string };
type Share = { id: string; status: string; deviceCode: string; ownerAgency: string; applicantAgency: string };
type Application = { id: string; status: string; form: string };
type Device = { device: string; kind: string; longitude: number; latitude: number };

const PASSWORD = 'correct horse battery';
const MINUTE = 60_000;
const QUARTER = 15 * MINUTE;
const HOUR = 60 * MINUTE;
/** Two whole 15-minute buckets of readings in one hour, two hours ago. */
const T0 = Math.floor((Date.now() - 2 * HOUR) / HOUR) * HOUR;
const RANGE = `from=${T0}&to=${T0 + 2 * QUARTER}`;

describe('device sharing and the sensing data catalogue', () => {
  let t: TestHub;
  const tokens: Record<string, string> = {};
  const codes: Record<'a1' | 'a2' | 'cam' | 'b1', string> = { a1: '', a2: '', cam: '', b1: '' };
  const positions = { a1: [116.39731, 39.90872], a2: [116.41234, 39.91567], cam: [116.40452, 39.91218] };

  const as = <T>(user: string, method: string, path: string, body?: unknown) =>
    t.api<T>(method, path, body, tokens[user] ?? t.adminToken);
  const audit = async (query: string) =>
    (await t.api<{ entries: AuditEntry[] }>('GET', `/v1/audit?${query}`)).body.entries;
  const register = async (kind: string, ownerAgency: string, [longitude, latitude]: number[]) => {
    const res = await t.api<{ code: string }>('POST', '/v1/ledger/devices', {
      kind,
      ownerAgency,
      longitude,
      latitude,
    });
    expect(res.status, JSON.stringify(res.body)).toBe(201);
    return res.body.code;
  };
  const share = async (user: string, device: string) => {
    const res = await as<Share>(user, 'POST', '/v1/catalogue/shares', { device, purpose: 'flood response' });
    expect(res.status, JSON.stringify(res.body)).toBe(201);
    return res.body;
  };
  const grant = async (user: string, resource: string, form: string, decider: string) => {
    const applied = await as<Application>(user, 'POST', '/v1/catalogue/applications', {
      resource,
      form,
      purpose: 'air quality dashboard',
    });
    expect(applied.status, JSON.stringify(applied.body)).toBe(201);
    const decided = await as<Application>(
      decider,
      'POST',
      `/v1/catalogue/applications/${applied.body.id}/decision`,
      {
        decision: 'grant',
      },
    );
    expect(decided.status, JSON.stringify(decided.body)).toBe(200);
    return decided.body;
  };

  beforeAll(async () => {
    t = await startTestHub();
    for (const [id, name, kind] of [
      ['bdb', 'Big-data bureau', 'platform'],
      ['police', 'Public security bureau', 'bureau'],
      ['haidian', 'Haidian district', 'district'],
      ['chaoyang', 'Chaoyang district', 'district'],
    ])
      expect((await t.api('PUT', `/v1/agencies/${id}`, { name, kind })).status).toBe(201);
    for (const [username, agencyId, role] of [
      ['pa', 'bdb', 'platform-admin'],
      ['op-police', 'police', 'agency-operator'],
      ['op-haidian', 'haidian', 'agency-operator'],
      ['op-chaoyang', 'chaoyang', 'agency-operator'],
    ] as const) {
      const created = await t.api('POST', '/v1/users', {
        username,
        displayName: username,
        agencyId,
        password: PASSWORD,
        roles: [{ role }],
      });
      expect(created.status, JSON.stringify(created.body)).toBe(201);
      const login = await t.api<{ token: string }>(
        'POST',
        '/v1/auth/login',
        { username, password: PASSWORD },
        null,
      );
      tokens[username] = login.body.token;
    }
    codes.a1 = await register('air-quality', 'police', positions.a1);
    codes.a2 = await register('air-quality', 'police', positions.a2);
    codes.cam = await register('camera', 'police', positions.cam);
    codes.b1 = await register('air-quality', 'haidian', [116.3, 39.95]);

    // Readings as the runtime stores them: the Sparkplug device id is the ledger code.
    const readings = new ReadingStore(t.hub.db);
    const series = await readings.resolveSeries([
      { node: 'gw-police-1', device: codes.a1, metric: 'pm25', datatype: DataType.Double },
      { node: 'gw-police-2', device: codes.a2, metric: 'pm25', datatype: DataType.Double },
      { node: 'gw-haidian', device: codes.b1, metric: 'pm25', datatype: DataType.Double },
    ]);
    const batch = {
      time: [] as number[],
      seriesId: [] as number[],
      value: [] as number[],
      textValue: [] as null[],
      quality: [] as number[],
    };
    for (let m = 0; m < 30; m++)
      for (const [i, id] of series.entries()) {
        batch.time.push(T0 + m * MINUTE);
        batch.seriesId.push(id);
        // a1: 10..39, a2: 110..139, b1: 1000..
        batch.value.push(([10, 110, 1000][i] ?? 0) + m);
        batch.textValue.push(null);
        batch.quality.push(192);
      }
    expect(await readings.insertReadings(batch)).toBe(90);

    // Video analytics as the runtime stores them: the video source is the camera's ledger code.
    const frame = (at: number, labels: string[]): VideoAnalyticsFrame => ({
      utcTimeMs: at,
      source: codes.cam,
      algorithmId: 'yolox-nano',
      algorithmVersion: '1.0.0',
      frameWidth: 640,
      frameHeight: 480,
      inferMs: 12,
      objects: labels.map((label, i) => ({
        label,
        likelihood: 0.9,
        classId: label === 'person' ? 0 : 2,
        objectId: i + 1,
        box: { left: 0.1 * i, top: 0.2, right: 0.1 * i + 0.1, bottom: 0.6 },
      })),
    });
    await new AnalyticsStore(t.hub.db).insertFrames([
      { nodeId: 'cam-node', frame: frame(T0 + MINUTE, ['person', 'person', 'car']) },
      { nodeId: 'cam-node', frame: frame(T0 + 2 * MINUTE, ['person']) },
      { nodeId: 'cam-node', frame: frame(T0 + QUARTER + MINUTE, ['person', 'car']) },
    ]);

    const resources = [
      {
        id: 'air-quality.pm25',
        title: 'PM2.5 of police air-quality sensors',
        deviceKind: 'air-quality',
        dataType: 'reading',
        item: 'pm25',
        ownerAgency: 'police',
        grade: 2,
        category: 'environment',
        forms: ['raw', 'desensitised', 'analysis'],
      },
      {
        id: 'camera.person',
        title: 'People seen by police cameras',
        deviceKind: 'camera',
        dataType: 'detection',
        item: 'person',
        ownerAgency: 'police',
        grade: 3,
        category: 'public-safety',
        forms: ['desensitised', 'analysis'],
      },
    ];
    for (const r of resources) {
      const res = await as('pa', 'POST', '/v1/catalogue/resources', r);
      expect(res.status, JSON.stringify(res.body)).toBe(201);
    }
  });
  afterAll(async () => t?.stop());

  it("refuses B reading A's device without a share or grant, coded and audited", async () => {
    const res = await as<ErrorBody>(
      'op-haidian',
      'GET',
      `/v1/catalogue/data/readings?device=${codes.a1}&${RANGE}`,
    );
    expect([res.status, res.body.code]).toEqual([403, 'CS_ERR_DATA_NOT_GRANTED']);
    const byResource = await as<ErrorBody>(
      'op-haidian',
      'GET',
      `/v1/catalogue/data/detections?resource=camera.person&${RANGE}`,
    );
    expect([byResource.status, byResource.body.code]).toEqual([403, 'CS_ERR_DATA_NOT_GRANTED']);
    // The admin data APIs stay closed to agency users.
    const direct = await as<ErrorBody>('op-haidian', 'GET', `/v1/readings?node=gw-police-1&${RANGE}`);
    expect([direct.status, direct.body.code]).toEqual([403, 'CS_ERR_AUTH_FORBIDDEN']);

    const refused = await audit('action=catalogue.data.refused&actor=op-haidian');
    expect(refused.map((e) => [e.targetId, e.outcome, e.reason])).toEqual([
      [codes.a1, 'refused', 'CS_ERR_DATA_NOT_GRANTED'],
      ['camera.person', 'refused', 'CS_ERR_DATA_NOT_GRANTED'],
    ]);
    expect(refused[0]?.actor.agencyId).toBe('haidian');
  });

  it('gives B raw read access to the one shared device once A approves', async () => {
    const pending = await share('op-haidian', codes.a1);
    expect(pending).toMatchObject({ status: 'pending', ownerAgency: 'police', applicantAgency: 'haidian' });
    const early = await as<ErrorBody>(
      'op-haidian',
      'GET',
      `/v1/catalogue/data/readings?device=${codes.a1}&${RANGE}`,
    );
    expect(early.body.code).toBe('CS_ERR_DATA_NOT_GRANTED');
    // The applicant cannot approve its own share.
    const self = await as<ErrorBody>('op-haidian', 'POST', `/v1/catalogue/shares/${pending.id}/decision`, {
      decision: 'approve',
    });
    expect([self.status, self.body.code]).toEqual([403, 'CS_ERR_AUTH_FORBIDDEN']);
    const approved = await as<Share>('op-police', 'POST', `/v1/catalogue/shares/${pending.id}/decision`, {
      decision: 'approve',
      comment: 'ok for flood season',
    });
    expect([approved.status, approved.body.status]).toEqual([200, 'approved']);

    const res = await as<{
      form: string;
      devices: Device[];
      readings: Array<{ device: string; node: string; value: number; time: string }>;
    }>('op-haidian', 'GET', `/v1/catalogue/data/readings?device=${codes.a1}&${RANGE}`);
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    expect(res.body.form).toBe('raw');
    expect(res.body.readings).toHaveLength(30);
    expect(res.body.readings[0]).toMatchObject({
      device: codes.a1,
      node: 'gw-police-1',
      value: 10,
      time: new Date(T0).toISOString(),
    });
    expect(res.body.devices).toEqual([
      { device: codes.a1, kind: 'air-quality', longitude: positions.a1[0], latitude: positions.a1[1] },
    ]);

    // That device only: A's other sensor and camera stay closed.
    for (const [path, code] of [
      [`/v1/catalogue/data/readings?device=${codes.a2}&${RANGE}`, codes.a2],
      [`/v1/catalogue/data/detections?device=${codes.cam}&${RANGE}`, codes.cam],
    ]) {
      const other = await as<ErrorBody>('op-haidian', 'GET', path ?? '');
      expect([other.status, other.body.code], code).toEqual([403, 'CS_ERR_DATA_NOT_GRANTED']);
    }
    // The owner reads its own devices raw without asking anyone.
    const own = await as<{ form: string; detections: Array<{ box: unknown; device: string }> }>(
      'op-police',
      'GET',
      `/v1/catalogue/data/detections?device=${codes.cam}&${RANGE}`,
    );
    expect([own.status, own.body.form, own.body.detections.length]).toEqual([200, 'raw', 6]);
    expect(own.body.detections[0]?.box).toEqual({
      left: 0,
      top: expect.closeTo(0.2, 5),
      right: expect.closeTo(0.1, 5),
      bottom: expect.closeTo(0.6, 5),
    });

    const trail = await audit(`action=catalogue.share.*&target=${pending.id}`);
    expect(trail.map((e) => [e.action, e.actor.username])).toEqual([
      ['catalogue.share.apply', 'op-haidian'],
      ['catalogue.share.approve', 'op-police'],
    ]);
    expect(trail[1]?.before).toMatchObject({ status: 'pending' });
    expect(trail[1]?.after).toMatchObject({ status: 'approved', decidedBy: 'op-police' });

    // Revoked: closed again.
    await as('op-police', 'POST', `/v1/catalogue/shares/${pending.id}/decision`, { decision: 'revoke' });
    const after = await as<ErrorBody>(
      'op-haidian',
      'GET',
      `/v1/catalogue/data/readings?device=${codes.a1}&${RANGE}`,
    );
    expect(after.body.code).toBe('CS_ERR_DATA_NOT_GRANTED');
  });

  it('delivers a desensitised grant only: pseudonyms, coarse positions, 15-minute buckets, no boxes', async () => {
    await grant('op-chaoyang', 'air-quality.pm25', 'desensitised', 'op-police');
    type Desensitised = {
      form: string;
      bucket: string;
      devices: Device[];
      readings: Array<{ bucket: string; device: string; metric: string; avg: number; count: number }>;
    };
    const res = await as<Desensitised>(
      'op-chaoyang',
      'GET',
      `/v1/catalogue/data/readings?resource=air-quality.pm25&${RANGE}`,
    );
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    expect([res.body.form, res.body.bucket]).toEqual(['desensitised', '15m']);
    const text = JSON.stringify(res.body);
    for (const secret of [codes.a1, codes.a2, 'gw-police-1', 'gw-police-2', String(positions.a1[0])])
      expect(text).not.toContain(secret);
    expect(res.body.devices).toHaveLength(2);
    expect(res.body.devices.map((d) => [d.longitude, d.latitude]).sort()).toEqual([
      [116.4, 39.91],
      [116.41, 39.92],
    ]);
    for (const d of res.body.devices) expect(d.device).toMatch(/^anon-[0-9a-f]{16}$/);
    // Haidian's own sensor is not part of police's resource.
    expect(res.body.readings).toHaveLength(4);
    for (const r of res.body.readings) {
      expect((Date.parse(r.bucket) - T0) % QUARTER).toBe(0);
      expect(r.count).toBe(15);
    }
    const means = res.body.readings.map((r) => r.avg).sort((a, b) => a - b);
    expect(means).toEqual([17, 32, 117, 132]);
    // Pseudonyms are stable from one request to the next.
    const again = await as<Desensitised>(
      'op-chaoyang',
      'GET',
      `/v1/catalogue/data/readings?resource=air-quality.pm25&${RANGE}`,
    );
    expect(again.body.devices.map((d) => d.device).sort()).toEqual(
      res.body.devices.map((d) => d.device).sort(),
    );

    // Only the granted form: raw is refused, and so is reading a device directly.
    const raw = await as<ErrorBody>(
      'op-chaoyang',
      'GET',
      `/v1/catalogue/data/readings?resource=air-quality.pm25&form=raw&${RANGE}`,
    );
    expect([raw.status, raw.body.code]).toEqual([403, 'CS_ERR_DATA_NOT_GRANTED']);
    const device = await as<ErrorBody>(
      'op-chaoyang',
      'GET',
      `/v1/catalogue/data/readings?device=${codes.a1}&${RANGE}`,
    );
    expect(device.body.code).toBe('CS_ERR_DATA_NOT_GRANTED');

    // Detections: labels and counts per 15 minutes, no boxes, no object ids.
    await grant('op-chaoyang', 'camera.person', 'desensitised', 'op-police');
    const seen = await as<{ form: string; devices: Device[]; counts: Array<Record<string, unknown>> }>(
      'op-chaoyang',
      'GET',
      `/v1/catalogue/data/detections?resource=camera.person&${RANGE}`,
    );
    expect(seen.status, JSON.stringify(seen.body)).toBe(200);
    expect(JSON.stringify(seen.body)).not.toMatch(/box|objectId|cam-node|likelihood/);
    expect(JSON.stringify(seen.body)).not.toContain(codes.cam);
    expect(seen.body.devices).toEqual([
      { device: expect.stringMatching(/^anon-/), kind: 'camera', longitude: 116.4, latitude: 39.91 },
    ]);
    expect(seen.body.counts.map((c) => [c.bucket, c.label, c.objects, c.frames, c.peak])).toEqual([
      [new Date(T0).toISOString(), 'person', 3, 2, 2],
      [new Date(T0 + QUARTER).toISOString(), 'person', 1, 1, 1],
    ]);
  });

  it('delivers an analysis grant as aggregates only', async () => {
    await grant('op-haidian', 'air-quality.pm25', 'analysis', 'op-police');
    const res = await as<{ form: string; aggregates: Array<Record<string, unknown>> }>(
      'op-haidian',
      'GET',
      `/v1/catalogue/data/readings?resource=air-quality.pm25&bucket=15m&${RANGE}`,
    );
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    expect(Object.keys(res.body).sort()).toEqual(['aggregates', 'bucket', 'form', 'resource']);
    expect(res.body.form).toBe('analysis');
    expect(res.body.aggregates).toEqual([
      { bucket: new Date(T0).toISOString(), metric: 'pm25', mean: 67, count: 30, devices: 2 },
      { bucket: new Date(T0 + QUARTER).toISOString(), metric: 'pm25', mean: 82, count: 30, devices: 2 },
    ]);
    const hourly = await as<{ aggregates: Array<{ count: number }> }>(
      'op-haidian',
      'GET',
      `/v1/catalogue/data/readings?resource=air-quality.pm25&${RANGE}`,
    );
    expect(hourly.body.aggregates.map((a) => a.count)).toEqual([60]);
    for (const form of ['raw', 'desensitised']) {
      const more = await as<ErrorBody>(
        'op-haidian',
        'GET',
        `/v1/catalogue/data/readings?resource=air-quality.pm25&form=${form}&${RANGE}`,
      );
      expect([more.status, more.body.code]).toEqual([403, 'CS_ERR_DATA_NOT_GRANTED']);
    }
    // Withdrawing a form from the catalogue stops its delivery, grants or not.
    const patched = await as('pa', 'PATCH', '/v1/catalogue/resources/air-quality.pm25', {
      forms: ['raw', 'desensitised'],
    });
    expect(patched.status).toBe(200);
    const withdrawn = await as<ErrorBody>(
      'op-haidian',
      'GET',
      `/v1/catalogue/data/readings?resource=air-quality.pm25&${RANGE}`,
    );
    expect(withdrawn.body.code).toBe('CS_ERR_DATA_NOT_GRANTED');
    await as('pa', 'PATCH', '/v1/catalogue/resources/air-quality.pm25', {
      forms: ['raw', 'desensitised', 'analysis'],
    });
  });

  it('resolves concurrent decisions to one outcome', async () => {
    const pending = await share('op-chaoyang', codes.a2);
    const answers = await Promise.all(
      ['approve', 'refuse', 'approve', 'refuse', 'approve', 'refuse'].map((decision, i) =>
        as<Share & ErrorBody>(
          i % 2 ? 'pa' : 'op-police',
          'POST',
          `/v1/catalogue/shares/${pending.id}/decision`,
          {
            decision,
          },
        ),
      ),
    );
    const won = answers.filter((a) => a.status === 200);
    expect(won).toHaveLength(1);
    expect(answers.filter((a) => a.status === 409).map((a) => a.body.code)).toEqual(
      Array(5).fill('CS_ERR_CATALOGUE_DECIDED'),
    );
    const final = await as<Share>('op-chaoyang', 'GET', `/v1/catalogue/shares/${pending.id}`);
    expect(final.body.status).toBe(won[0]?.body.status);

    const applied = await as<Application>('op-chaoyang', 'POST', '/v1/catalogue/applications', {
      resource: 'camera.person',
      form: 'analysis',
      purpose: 'crowd levels',
    });
    const decisions = await Promise.all(
      ['grant', 'refuse', 'grant', 'refuse'].map((decision) =>
        as<Application>('op-police', 'POST', `/v1/catalogue/applications/${applied.body.id}/decision`, {
          decision,
        }),
      ),
    );
    expect(decisions.map((d) => d.status).sort()).toEqual([200, 409, 409, 409]);
    const decisionsAudited = await audit(`target=${applied.body.id}&action=catalogue.application.*`);
    expect(decisionsAudited).toHaveLength(2);
  });

  it('answers bad input with coded 400s', async () => {
    const cases: Array<[string, string, string, unknown, string]> = [
      [
        'op-haidian',
        'POST',
        '/v1/catalogue/shares',
        { device: '123', purpose: 'flood response' },
        'CS_ERR_VALIDATION',
      ],
      ['op-haidian', 'POST', '/v1/catalogue/shares', { device: codes.a1 }, 'CS_ERR_VALIDATION'],
      [
        'op-haidian',
        'POST',
        '/v1/catalogue/shares',
        { device: codes.a1, purpose: 'x', extra: 1 },
        'CS_ERR_VALIDATION',
      ],
      ['pa', 'POST', '/v1/catalogue/resources', { id: 'Bad Id', title: 't' }, 'CS_ERR_VALIDATION'],
      [
        'pa',
        'POST',
        '/v1/catalogue/resources',
        {
          id: 'camera.face',
          title: 'faces',
          deviceKind: 'camera',
          dataType: 'detection',
          item: 'face',
          grade: 4,
          category: 'public-safety',
          forms: ['raw'],
        },
        'CS_ERR_CATALOGUE_FORM',
      ],
      [
        'pa',
        'POST',
        '/v1/catalogue/resources',
        {
          id: 'noise.db',
          title: 'noise',
          deviceKind: 'noise',
          dataType: 'reading',
          item: 'db',
          grade: 5,
          category: 'environment',
          forms: ['analysis'],
        },
        'CS_ERR_VALIDATION',
      ],
      [
        'pa',
        'PATCH',
        '/v1/catalogue/resources/camera.person',
        { rule: { positionStepDeg: 0 } },
        'CS_ERR_VALIDATION',
      ],
      [
        'op-haidian',
        'POST',
        '/v1/catalogue/applications',
        { resource: 'camera.person', form: 'everything', purpose: 'crowd levels' },
        'CS_ERR_VALIDATION',
      ],
      [
        'op-haidian',
        'POST',
        '/v1/catalogue/applications',
        { resource: 'camera.person', form: 'raw', purpose: 'crowd levels' },
        'CS_ERR_CATALOGUE_FORM',
      ],
      [
        'op-haidian',
        'POST',
        '/v1/catalogue/shares/not-a-uuid/decision',
        { decision: 'approve' },
        'CS_ERR_VALIDATION',
      ],
      ['op-haidian', 'GET', `/v1/catalogue/data/readings?${RANGE}`, undefined, 'CS_ERR_CATALOGUE_QUERY'],
      [
        'op-haidian',
        'GET',
        `/v1/catalogue/data/readings?resource=camera.person&${RANGE}`,
        undefined,
        'CS_ERR_CATALOGUE_DATA_TYPE',
      ],
      [
        'op-haidian',
        'GET',
        '/v1/catalogue/data/readings?resource=air-quality.pm25&from=yesterday',
        undefined,
        'CS_ERR_QUERY_TIME',
      ],
      [
        'op-haidian',
        'GET',
        `/v1/catalogue/data/readings?resource=air-quality.pm25&bucket=1m&${RANGE}`,
        undefined,
        'CS_ERR_VALIDATION',
      ],
    ];
    for (const [user, method, path, body, code] of cases) {
      const res = await as<ErrorBody>(user, method, path, body);
      expect([res.status, res.body.code], `${method} ${path} ${JSON.stringify(body)}`).toEqual([400, code]);
    }
    const notAdmin = await as<ErrorBody>('op-police', 'POST', '/v1/catalogue/resources', {
      id: 'noise.db',
      title: 'noise',
      deviceKind: 'noise',
      dataType: 'reading',
      item: 'db',
      grade: 1,
      category: 'environment',
      forms: ['raw'],
    });
    expect([notAdmin.status, notAdmin.body.code]).toEqual([403, 'CS_ERR_AUTH_FORBIDDEN']);
    const twice = await as<ErrorBody>('op-haidian', 'POST', '/v1/catalogue/shares', {
      device: codes.b1,
      purpose: 'my own sensor',
    });
    expect([twice.status, twice.body.code]).toEqual([409, 'CS_ERR_CATALOGUE_OWN_DEVICE']);
  });
});
