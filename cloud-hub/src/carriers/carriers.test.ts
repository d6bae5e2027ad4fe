import { generateEd25519, signEd25519 } from '@citysense/protocol';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AuditEntry } from '../audit/audit-log.ts';
import { startTestHub, type TestHub } from '../testing/test-hub.ts';
import type { CarrierApplication, CarrierPole, Mounted } from './carrier-store.ts';

type ErrorBody = { code: string; message: string };
type Feature = {
  type: 'Feature';
  id: string;
  geometry: { type: 'Point'; coordinates: number[] };
  properties: Omit<CarrierPole, 'longitude' | 'latitude'> & { mounted?: Mounted };
};
type Collection = { type: 'FeatureCollection'; features: Feature[] };
type Report = {
  rows: number;
  applied: number;
  failed: number;
  errors: Array<{ row: number; code: string; column: string }>;
};

const PASSWORD = 'correct horse battery';

describe('carriers (Art. 46): catalogue, mount applications, capacity', () => {
  let t: TestHub;
  const tokens: Record<string, string> = {};
  const as = (who: string) => tokens[who] ?? '';

  const pole = (id: string, lon: number, lat: number, extra: Record<string, unknown> = {}) => ({
    id,
    kind: 'lamp',
    ownerAgency: 'lamps',
    longitude: lon,
    latitude: lat,
    road: 'Chang’an Avenue',
    powerStatus: 'ok',
    powerBudgetW: 100,
    networkKind: 'fibre',
    networkStatus: 'up',
    slots: 2,
    ...extra,
  });
  const createPole = async (body: Record<string, unknown>) => {
    const res = await t.api<Feature>('POST', '/v1/carriers', body, as('lampop'));
    expect(res.status, JSON.stringify(res.body)).toBe(201);
    return res.body;
  };
  const registerDevice = async (ownerAgency: string, lon: number, lat: number, poleId?: string) => {
    const res = await t.api<{ code: string }>('POST', '/v1/ledger/devices', {
      kind: 'air-quality',
      ownerAgency,
      longitude: lon,
      latitude: lat,
      ...(poleId ? { poleId } : {}),
    });
    expect(res.status, JSON.stringify(res.body)).toBe(201);
    return res.body.code;
  };
  const apply = async (poleId: string, deviceCode: string, powerW = 30, slots = 1, who = 'policeop') => {
    const res = await t.api<CarrierApplication>(
      'POST',
      '/v1/carriers/applications',
      { kind: 'mount', poleId, deviceCode, powerW, slots, purpose: 'air quality on the avenue' },
      as(who),
    );
    expect(res.status, JSON.stringify(res.body)).toBe(201);
    return res.body;
  };
  const decide = (id: string, body: Record<string, unknown>, who = 'lampop') =>
    t.api<CarrierApplication & ErrorBody>('POST', `/v1/carriers/applications/${id}/decision`, body, as(who));
  const getPole = async (id: string, who = 'viewer') => {
    const res = await t.api<Feature>('GET', `/v1/carriers/${id}`, undefined, as(who));
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    return res.body;
  };
  const ids = async (query: string) => {
    const res = await t.api<Collection>('GET', `/v1/carriers?${query}`, undefined, as('viewer'));
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    return res.body.features.map((f) => f.id);
  };

  beforeAll(async () => {
    t = await startTestHub();
    for (const [id, name, kind] of [
      ['bdb', 'Big-data bureau', 'platform'],
      ['lamps', 'Street lighting bureau', 'bureau'],
      ['police', 'Public security bureau', 'bureau'],
      ['eco', 'Ecology bureau', 'bureau'],
    ])
      expect((await t.api('PUT', `/v1/agencies/${id}`, { name, kind })).status).toBe(201);
    for (const [username, agencyId, roles] of [
      ['lampop', 'lamps', [{ role: 'agency-operator' }]],
      ['policeop', 'police', [{ role: 'agency-operator' }]],
      ['ecoop', 'eco', [{ role: 'agency-operator' }]],
      ['viewer', 'eco', []],
    ] as const) {
      const res = await t.api('POST', '/v1/users', {
        username,
        displayName: username,
        agencyId,
        password: PASSWORD,
        roles,
      });
      expect(res.status, JSON.stringify(res.body)).toBe(201);
      const login = await t.api<{ token: string }>(
        'POST',
        '/v1/auth/login',
        { username, password: PASSWORD },
        null,
      );
      tokens[username] = login.body.token;
    }
  });
  afterAll(async () => t?.stop());

  it('lets the owner publish poles as an RFC 7946 GeoJSON catalogue any signed-in user reads', async () => {
    const created = await createPole(pole('HD-L-0001', 116.3975, 39.9087, { address: 'Tiananmen West' }));
    expect(created.geometry).toEqual({ type: 'Point', coordinates: [116.3975, 39.9087] });
    expect(created.properties).toMatchObject({ freeSlots: 2, freePowerW: 100, ownerAgency: 'lamps' });

    const refused = await t.api<ErrorBody>(
      'POST',
      '/v1/carriers',
      pole('HD-L-0002', 116.39, 39.9),
      as('policeop'),
    );
    expect(refused.status).toBe(403);
    expect(refused.body.code).toBe('CS_ERR_AUTH_FORBIDDEN');

    const res = await fetch(`${t.httpUrl}/v1/carriers?owner=lamps`, {
      headers: { authorization: `Bearer ${as('viewer')}` },
    });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^application\/geo\+json/);
    const fc = (await res.json()) as Collection;
    expect(fc.type).toBe('FeatureCollection');
    const f = fc.features.find((x) => x.id === 'HD-L-0001');
    expect(f?.type).toBe('Feature');
    expect(f?.geometry.type).toBe('Point');
    const [lon, lat] = f?.geometry.coordinates ?? [];
    expect([lon, lat]).toEqual([116.3975, 39.9087]); // [longitude, latitude], RFC 7946 §3.1.1
    expect(f?.properties).toMatchObject({ kind: 'lamp', powerStatus: 'ok', networkKind: 'fibre', slots: 2 });

    const unsigned = await t.api<ErrorBody>('GET', '/v1/carriers', undefined, null);
    expect(unsigned.status).toBe(401);
  });

  it('filters the catalogue by bbox, near + radius and free capacity', async () => {
    // A square in Chaoyang kept for this test: a, b ~85 m apart, c 3 km off, d in Shanghai.
    await createPole(pole('F-A', 116.46, 39.92, { slots: 4, powerBudgetW: 200 }));
    await createPole(pole('F-B', 116.461, 39.92, { slots: 0, powerBudgetW: 300, kind: 'traffic' }));
    await createPole(pole('F-C', 116.495, 39.92, { slots: 2, powerBudgetW: 50 }));
    await createPole(pole('F-D', 121.47, 31.23, { slots: 8, powerBudgetW: 500 }));

    expect(await ids('bbox=116.455,39.915,116.465,39.925')).toEqual(['F-A', 'F-B']);
    expect(await ids('bbox=116.455,39.915,116.5,39.925&kind=traffic')).toEqual(['F-B']);
    expect(await ids('near=116.46,39.92&radius=100')).toEqual(['F-A', 'F-B']); // nearest first
    expect(await ids('near=116.46,39.92&radius=50')).toEqual(['F-A']);
    const near = await t.api<Collection>(
      'GET',
      '/v1/carriers?near=116.46,39.92&radius=100',
      undefined,
      as('viewer'),
    );
    expect(near.body.features[1]?.properties.distanceM).toBeGreaterThan(80);
    expect(near.body.features[1]?.properties.distanceM).toBeLessThan(90);

    const box = 'bbox=116.455,39.915,116.5,39.925';
    expect(await ids(`${box}&minFreeSlots=1`)).toEqual(['F-A', 'F-C']);
    expect(await ids(`${box}&freeSlots>=3`)).toEqual(['F-A']);
    expect(await ids(`${box}&minFreePowerW=100`)).toEqual(['F-A', 'F-B']);
    expect(await ids(`${box}&freeSlots>=1&freePowerW>=100`)).toEqual(['F-A']);
    expect(await ids('near=121.47,31.23&radius=1000')).toEqual(['F-D']);
  });

  it('approves another agency’s mount application, booking slots and power, with history and audit', async () => {
    await createPole(pole('M-1', 116.41, 39.91, { slots: 2, powerBudgetW: 100 }));
    const code = await registerDevice('police', 116.41, 39.91);
    const application = await apply('M-1', code, 30, 1);
    expect(application).toMatchObject({ state: 'pending', ownerAgency: 'lamps', applicantAgency: 'police' });

    const seenByOwner = await t.api<CarrierApplication[]>(
      'GET',
      '/v1/carriers/applications',
      undefined,
      as('lampop'),
    );
    expect(seenByOwner.body.map((a) => a.id)).toContain(application.id);
    const seenByOther = await t.api<CarrierApplication[]>(
      'GET',
      '/v1/carriers/applications',
      undefined,
      as('ecoop'),
    );
    expect(seenByOther.body.map((a) => a.id)).not.toContain(application.id);

    const approved = await decide(application.id, { decision: 'approve', comment: 'bracket B is free' });
    expect(approved.status, JSON.stringify(approved.body)).toBe(200);
    expect(approved.body.state).toBe('approved');
    expect(approved.body.history.map((h) => h.action)).toEqual(['submitted', 'approved']);
    expect(approved.body.history[1]).toMatchObject({
      actor: 'lampop',
      actorAgency: 'lamps',
      comment: 'bracket B is free',
    });

    const after = await getPole('M-1');
    expect(after.properties).toMatchObject({ freeSlots: 1, slotsUsed: 1, freePowerW: 70, powerUsedW: 30 });
    expect(after.properties.mounted?.devices).toEqual([
      expect.objectContaining({
        code,
        agencyId: 'police',
        mountId: approved.body.mountId,
        slots: 1,
        powerW: 30,
      }),
    ]);

    const again = await decide(application.id, { decision: 'refuse' });
    expect(again.status).toBe(409);
    expect(again.body.code).toBe('CS_ERR_CARRIER_DECIDED');

    const audit = await t.api<{ entries: AuditEntry[] }>(
      'GET',
      `/v1/audit?action=carrier.application.approve&target=${application.id}`,
    );
    expect(audit.body.entries).toHaveLength(1);
    expect(audit.body.entries[0]?.before).toMatchObject({ state: 'pending' });
    expect(audit.body.entries[0]?.after).toMatchObject({ state: 'approved' });
    expect(audit.body.entries[0]?.actor.username).toBe('lampop');
  });

  it('resolves two concurrent approvals on a pole with one free slot to one booking', async () => {
    await createPole(pole('C-1', 116.42, 39.91, { slots: 1, powerBudgetW: 100 }));
    const first = await apply('C-1', await registerDevice('police', 116.42, 39.91));
    const second = await apply('C-1', await registerDevice('police', 116.42, 39.91));

    const answers = await Promise.all([
      decide(first.id, { decision: 'approve' }),
      decide(second.id, { decision: 'approve' }),
    ]);
    expect(answers.map((a) => a.status).sort()).toEqual([200, 409]);
    const loser = answers.find((a) => a.status === 409);
    expect(loser?.body.code).toBe('CS_ERR_CARRIER_FULL');

    const after = await getPole('C-1');
    expect(after.properties).toMatchObject({ freeSlots: 0, slotsUsed: 1, freePowerW: 70 });
    expect(after.properties.mounted?.devices).toHaveLength(1);
    const states = await Promise.all(
      [first.id, second.id].map(async (id) => {
        const res = await t.api<CarrierApplication>(
          'GET',
          `/v1/carriers/applications/${id}`,
          undefined,
          as('policeop'),
        );
        return res.body.state;
      }),
    );
    expect(states.sort()).toEqual(['approved', 'pending']);
  });

  it('refuses a decision from anyone but the carrier owner, and audits the refusal', async () => {
    await createPole(pole('R-1', 116.43, 39.91));
    const application = await apply('R-1', await registerDevice('police', 116.43, 39.91));
    for (const who of ['ecoop', 'policeop', 'viewer']) {
      const res = await decide(application.id, { decision: 'approve' }, who);
      expect(res.status).toBe(403);
      expect(res.body.code).toBe('CS_ERR_AUTH_FORBIDDEN');
    }
    const audit = await t.api<{ entries: AuditEntry[] }>('GET', '/v1/audit?action=auth.refused&actor=ecoop');
    expect(audit.body.entries.map((e) => e.targetId)).toContain(
      'POST /v1/carriers/applications/:id/decision',
    );
    expect((await getPole('R-1')).properties.freeSlots).toBe(2);

    const refused = await decide(application.id, {
      decision: 'refuse',
      comment: 'pole is due for replacement',
    });
    expect(refused.body).toMatchObject({ state: 'refused', comment: 'pole is due for replacement' });
  });

  it('approves a new-pole request on the pole the owner puts up', async () => {
    const code = await registerDevice('police', 116.44, 39.93);
    const res = await t.api<CarrierApplication>(
      'POST',
      '/v1/carriers/applications',
      {
        kind: 'new-pole',
        ownerAgency: 'lamps',
        longitude: 116.44,
        latitude: 39.93,
        deviceCode: code,
        powerW: 40,
      },
      as('policeop'),
    );
    expect(res.status, JSON.stringify(res.body)).toBe(201);
    const missing = await decide(res.body.id, { decision: 'approve' });
    expect(missing.body.code).toBe('CS_ERR_CARRIER_POLE_REQUIRED');
    await createPole(pole('N-1', 116.44, 39.93));
    const approved = await decide(res.body.id, { decision: 'approve', poleId: 'N-1' });
    expect(approved.body).toMatchObject({ state: 'approved', poleId: 'N-1' });
    expect((await getPole('N-1')).properties).toMatchObject({ freeSlots: 1, freePowerW: 60 });
  });

  it('answers bad input with coded 400s', async () => {
    const lat91 = await t.api<ErrorBody>('POST', '/v1/carriers', pole('BAD-1', 116.4, 91), as('lampop'));
    expect(lat91.status).toBe(400);
    expect(lat91.body.code).toBe('CS_ERR_VALIDATION');
    for (const query of [
      'bbox=garbage',
      'bbox=1,2,3',
      'bbox=116,40,117,39',
      'bbox=116,39,190,40',
      'near=116.4,39.9',
      'near=116.4&radius=10',
    ]) {
      const res = await t.api<ErrorBody>('GET', `/v1/carriers?${query}`, undefined, as('viewer'));
      expect(res.status, query).toBe(400);
      expect(res.body.code, query).toBe('CS_ERR_CARRIER_QUERY');
    }
    const radius = await t.api<ErrorBody>(
      'GET',
      '/v1/carriers?near=116.4,39.9&radius=-5',
      undefined,
      as('viewer'),
    );
    expect(radius.body.code).toBe('CS_ERR_VALIDATION');
    const noDevice = await t.api<ErrorBody>(
      'POST',
      '/v1/carriers/applications',
      { kind: 'mount', poleId: 'HD-L-0001', deviceCode: '99999999999999999999', powerW: 1 },
      as('policeop'),
    );
    expect(noDevice.body.code).toBe('CS_ERR_CARRIER_DEVICE_UNKNOWN');
  });

  it('imports poles in bulk with a row-by-row report', async () => {
    const res = await t.api<Report>(
      'POST',
      '/v1/carriers/bulk',
      [
        pole('B-1', 116.45, 39.95),
        pole('B-2', 116.45, 91),
        pole('B-3', 116.45, 39.951, { ownerAgency: 'police' }),
        pole('B-1', 116.45, 39.95),
        pole('B-4', 116.452, 39.95, { kind: 'traffic' }),
      ],
      as('lampop'),
    );
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    expect(res.body).toMatchObject({ rows: 5, applied: 2, failed: 3 });
    expect(res.body.errors.map((e) => [e.row, e.column, e.code])).toEqual([
      [2, 'latitude', 'CS_ERR_CARRIER_FIELD'],
      [3, 'ownerAgency', 'CS_ERR_AUTH_FORBIDDEN'],
      [4, 'id', 'CS_ERR_CARRIER_DUPLICATE'],
    ]);
    expect(await ids('bbox=116.44,39.94,116.46,39.96')).toEqual(['B-1', 'B-4']);
  });

  it('lists ledger devices and enrolled gateways that name the pole as mounted', async () => {
    await createPole(pole('G-1', 116.47, 39.93, { slots: 3 }));
    const code = await registerDevice('eco', 116.47, 39.93, 'G-1');

    const keys = generateEd25519();
    const created = await t.api<{ token: string }>('POST', '/v1/enrollment-tokens', { name: 'gw-g1' });
    const token = created.body.token;
    const enrolled = await t.api(
      'POST',
      '/v1/nodes/enroll',
      {
        token,
        publicKey: keys.publicKey,
        signature: signEd25519(keys.privateKey, `${token}\n${keys.publicKey}`),
        poleId: 'G-1',
        location: { lon: 116.47, lat: 39.93 },
      },
      null,
    );
    expect(enrolled.status, JSON.stringify(enrolled.body)).toBe(201);

    const after = await getPole('G-1');
    expect(after.properties.mounted?.devices).toEqual([
      expect.objectContaining({ code, agencyId: 'eco', ledgerPoleId: 'G-1', mountId: null, slots: 1 }),
    ]);
    expect(after.properties.mounted?.gateways).toEqual([expect.objectContaining({ nodeId: 'gw-g1' })]);
    // An unbooked device still hangs there: it takes a slot.
    expect(after.properties).toMatchObject({ unbookedDevices: 1, freeSlots: 2, gateways: 1 });

    // Booking that same device replaces its unbooked slot instead of counting it twice.
    const application = await apply('G-1', code, 20, 1, 'ecoop');
    expect((await decide(application.id, { decision: 'approve' })).status).toBe(200);
    expect((await getPole('G-1')).properties).toMatchObject({
      unbookedDevices: 0,
      freeSlots: 2,
      freePowerW: 80,
    });

    const inUse = await t.api<ErrorBody>('DELETE', '/v1/carriers/G-1', undefined, as('lampop'));
    expect(inUse.status).toBe(409);
    expect(inUse.body.code).toBe('CS_ERR_CARRIER_IN_USE');
  });
});
