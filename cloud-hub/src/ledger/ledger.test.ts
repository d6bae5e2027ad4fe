import { parseGbId } from '@citysense/protocol';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestHub, type TestHub } from '../testing/test-hub.ts';
import type { ImportReport, VerifyReport } from './ledger-service.ts';
import type { LedgerDevice, NearbyDevice } from './ledger-store.ts';

type ErrorBody = { code: string; message: string; details?: unknown };
type Created = Omit<LedgerDevice, 'duplicates'> & { duplicates: NearbyDevice[] };

/** Metres → degrees of latitude. */
const north = (m: number) => m / 111_195;

describe('sensor ledger', () => {
  let t: TestHub;
  beforeAll(async () => {
    t = await startTestHub();
  });
  afterAll(async () => t?.stop());

  const register = (body: Record<string, unknown>) => t.api<Created>('POST', '/v1/ledger/devices', body);
  const move = (code: string, to: string, from?: string) =>
    t.api<LedgerDevice & ErrorBody>('POST', `/v1/ledger/devices/${code}/transitions`, { to, from });
  /** Takes a proposed device through a joint review (admin token: every role) and live. */
  const activate = async (code: string) => {
    const { body: device } = await t.api<LedgerDevice>('GET', `/v1/ledger/devices/${code}`);
    const project = await t.api<{ id: string }>('POST', '/v1/review/projects', {
      name: `build ${code}`,
      purpose: 'ledger test',
      agencyId: device.ownerAgency,
      devices: [{ code }],
    });
    expect(project.status).toBe(201);
    const path = `/v1/review/projects/${project.body.id}`;
    expect((await t.api('POST', `${path}/submit`)).status).toBe(200);
    const routed = await t.api<{ categories: Array<{ category: string }> }>('POST', `${path}/route`, {});
    for (const { category } of routed.body.categories)
      expect((await t.api('POST', `${path}/decisions`, { category, decision: 'approve' })).status).toBe(200);
    for (const to of ['installed', 'active']) expect((await move(code, to)).status).toBe(200);
  };
  const camera = (lat: number, extra: Record<string, unknown> = {}) => ({
    kind: 'camera',
    model: 'DS-2CD3T47',
    vendor: 'Hikvision',
    ownerAgency: 'police-dongcheng',
    poleId: 'pole-0001',
    longitude: 116.4,
    latitude: lat,
    gb35114Level: 'B',
    network: 'fibre',
    dataItems: ['video', 'plate'],
    ...extra,
  });
  const importCsv = async (csv: string, query = '') => {
    const res = await fetch(`${t.httpUrl}/v1/ledger/import${query}`, {
      method: 'POST',
      headers: { authorization: `Bearer ${t.adminToken}`, 'content-type': 'text/csv' },
      body: csv,
    });
    return { status: res.status, body: (await res.json()) as ImportReport & ErrorBody };
  };

  it('registers, flags a duplicate build, takes a justification and activates with timestamps', async () => {
    const first = await register(camera(39.9));
    expect(first.status).toBe(201);
    const id = parseGbId(first.body.code);
    expect([id.centre, id.type, id.typeName, id.network]).toEqual(['34020000', '132', 'IPC', '0']);
    expect(first.body).toMatchObject({ state: 'proposed', duplicates: [], gb35114Level: 'B' });
    await activate(first.body.code);

    const second = await register(camera(39.9 + north(20), { ownerAgency: 'traffic-bureau' }));
    expect(second.status).toBe(201);
    expect(second.body.duplicates.map((d) => d.code)).toEqual([first.body.code]);
    expect(second.body.duplicates[0]?.distanceM).toBeCloseTo(20, 0);
    expect(parseGbId(second.body.code).serial).toBe(
      String(Number(parseGbId(first.body.code).serial) + 1).padStart(6, '0'),
    );
    // Beyond 50 m: not a duplicate.
    const far = await register(camera(39.9 + north(80)));
    expect(far.body.duplicates).toEqual([]);

    const blocked = await move(second.body.code, 'in-review');
    expect([blocked.status, blocked.body.code]).toEqual([409, 'CS_ERR_LEDGER_DUPLICATE']);
    const dup = await t.api<{ duplicates: NearbyDevice[]; radiusM: number; flagged: string[] }>(
      'GET',
      `/v1/ledger/devices/${second.body.code}/duplicates`,
    );
    expect(dup.body.radiusM).toBe(50);
    expect(dup.body.flagged).toEqual([first.body.code]);
    expect(dup.body.duplicates[0]).toMatchObject({ code: first.body.code, ownerAgency: 'police-dongcheng' });

    const justified = await t.api<LedgerDevice>('POST', `/v1/ledger/devices/${second.body.code}/resolution`, {
      justify: 'covers the bus lane the existing camera cannot see',
    });
    expect(justified.body).toMatchObject({ resolution: 'justify', state: 'proposed' });
    await activate(second.body.code);
    const device = await t.api<LedgerDevice>('GET', `/v1/ledger/devices/${second.body.code}`);
    expect(device.body.state).toBe('active');
    const times = ['proposed', 'in-review', 'approved', 'installed', 'active'].map((s) =>
      Date.parse(device.body.stateTimes[s as 'active'] ?? ''),
    );
    expect(times.every((x) => Number.isFinite(x))).toBe(true);
    expect([...times].sort((a, b) => a - b)).toEqual(times);

    // Reuse instead: link to the existing device.
    const third = await register(camera(39.9 - north(10)));
    expect(third.body.duplicates.map((d) => d.code).sort()).toEqual(
      [first.body.code, second.body.code].sort(),
    );
    const reused = await t.api<LedgerDevice>('POST', `/v1/ledger/devices/${third.body.code}/resolution`, {
      reuse: first.body.code,
    });
    expect(reused.body).toMatchObject({ resolution: 'reuse', reuseOf: first.body.code });
  });

  it('gives sensors the same code structure and validates positions and fields', async () => {
    const air = await register({
      kind: 'air-quality',
      ownerAgency: 'eco-bureau',
      longitude: 116.3,
      latitude: 39.8,
      dataItems: ['pm25', 'pm10'],
    });
    expect(air.status).toBe(201);
    expect(parseGbId(air.body.code)).toMatchObject({ type: '180', category: 'peripheral' });
    const gw = await register({
      kind: 'gateway',
      ownerAgency: 'city-mgmt',
      longitude: 116.3,
      latitude: 39.8,
      centre: '11010500',
    });
    expect(parseGbId(gw.body.code)).toMatchObject({ centre: '11010500', type: '119' });
    const given = await register(camera(30.1, { code: '34020000001310000777', state: 'active' }));
    expect(given.body).toMatchObject({ code: '34020000001310000777', state: 'active' });
    const again = await register(camera(30.1, { code: '34020000001310000777' }));
    expect([again.status, (again.body as unknown as ErrorBody).code]).toEqual([
      409,
      'CS_ERR_LEDGER_DEVICE_EXISTS',
    ]);

    const badLon = await t.api<ErrorBody>('POST', '/v1/ledger/devices', camera(39.9, { longitude: 181 }));
    expect([badLon.status, badLon.body.code]).toEqual([400, 'CS_ERR_VALIDATION']);
    const badLevel = await t.api<ErrorBody>('POST', '/v1/ledger/devices', {
      kind: 'noise',
      ownerAgency: 'eco-bureau',
      longitude: 116.3,
      latitude: 39.8,
      gb35114Level: 'A',
    });
    expect([badLevel.status, badLevel.body.code]).toEqual([400, 'CS_ERR_LEDGER_FIELD']);
    const badType = await t.api<ErrorBody>(
      'POST',
      '/v1/ledger/devices',
      camera(39.9, { code: '34020000001800000001' }),
    );
    expect([badType.status, badType.body.code]).toEqual([400, 'CS_ERR_LEDGER_CODE']);
  });

  it('refuses a transition off the lifecycle with a code, and concurrent moves have one winner', async () => {
    const { body: d } = await register(camera(31.2));
    const skip = await move(d.code, 'active');
    expect([skip.status, skip.body.code]).toEqual([409, 'CS_ERR_LEDGER_TRANSITION']);
    expect(skip.body.message).toContain('from proposed it can go to in-review or retired');
    const wrongFrom = await move(d.code, 'in-review', 'approved');
    expect(wrongFrom.body.code).toBe('CS_ERR_LEDGER_TRANSITION');

    const racers = await Promise.all(Array.from({ length: 8 }, () => move(d.code, 'in-review')));
    expect(racers.filter((r) => r.status === 200)).toHaveLength(1);
    expect(racers.filter((r) => r.status === 409 && r.body.code === 'CS_ERR_LEDGER_TRANSITION')).toHaveLength(
      7,
    );
    const split = await Promise.all([move(d.code, 'approved'), move(d.code, 'proposed')]);
    expect(split.map((r) => r.status).sort()).toEqual([200, 409]);
    const feed = await t.api<{ changes: Array<{ action: string; deviceCode: string }> }>(
      'GET',
      `/v1/ledger/changes?since=${d.changeSeq}`,
    );
    expect(
      feed.body.changes.filter((c) => c.deviceCode === d.code && c.action === 'device.transition'),
    ).toHaveLength(2);
  });

  it('serves an incremental change feed after a seq', async () => {
    const start = await t.api<{ next: number }>('GET', '/v1/ledger/changes?since=0&limit=10000');
    const { body: d } = await register(camera(22.5));
    await move(d.code, 'in-review');
    // No approved project lists it: the ledger refuses the approval with a code.
    const unreviewed = await move(d.code, 'approved');
    expect([unreviewed.status, unreviewed.body.code]).toEqual([409, 'CS_ERR_LEDGER_NOT_REVIEWED']);
    await move(d.code, 'proposed');
    const feed = await t.api<{
      changes: Array<{
        seq: number;
        action: string;
        time: string;
        device: LedgerDevice;
        detail: { from?: string; to?: string };
        actor: { kind: string };
      }>;
      next: number;
    }>('GET', `/v1/ledger/changes?since=${start.body.next}`);
    expect(feed.body.changes.map((c) => [c.seq, c.action, c.device.state])).toEqual([
      [start.body.next + 1, 'device.registered', 'proposed'],
      [start.body.next + 2, 'device.transition', 'in-review'],
      [start.body.next + 3, 'device.transition', 'proposed'],
    ]);
    expect(feed.body.changes[2]?.detail).toEqual({ from: 'in-review', to: 'proposed' });
    expect(feed.body.changes[0]?.actor).toEqual({ kind: 'admin', id: 'admin' });
    expect(feed.body.next).toBe(start.body.next + 3);
    const empty = await t.api<{ changes: unknown[]; next: number }>(
      'GET',
      `/v1/ledger/changes?since=${feed.body.next}`,
    );
    expect(empty.body).toEqual({ changes: [], next: feed.body.next });
    // The device's own history: the same moves, read by device (console detail page).
    const history = await t.api<Array<{ action: string; state: string; detail: { to?: string } }>>(
      'GET',
      `/v1/ledger/devices/${d.code}/history`,
    );
    expect(history.body.map((h) => [h.action, h.state, h.detail.to ?? null])).toEqual([
      ['device.registered', 'proposed', null],
      ['device.transition', 'in-review', 'in-review'],
      ['device.transition', 'proposed', 'proposed'],
    ]);
    // Text search over code, model, vendor and pole.
    const found = await t.api<LedgerDevice[]>('GET', `/v1/ledger/devices?q=${d.code.slice(-8)}`);
    expect(found.body.map((x) => x.code)).toEqual([d.code]);
    const byVendor = await t.api<LedgerDevice[]>('GET', '/v1/ledger/devices?q=hikvision&limit=10000');
    expect(byVendor.body.length).toBeGreaterThan(0);
    expect(byVendor.body.every((x) => x.vendor === 'Hikvision')).toBe(true);
  });

  it('verifies the chain and names the first broken link after direct database edits', async () => {
    const ok = await t.api<VerifyReport>('GET', '/v1/ledger/verify');
    expect(ok.body).toMatchObject({ ok: true, firstBroken: null });
    expect(ok.body.entries).toBeGreaterThan(10);
    const chain = await t.api<{
      format: string;
      entries: Array<{ seq: number; deviceCode: string; content: string; prevHash: string; hash: string }>;
      head: { seq: number };
    }>('GET', '/v1/ledger/chain?since=0&limit=5');
    expect(chain.body.format).toBe('citysense.ledger.chain/1');
    expect(chain.body.entries[1]?.prevHash).toBe(chain.body.entries[0]?.hash);
    const db = t.hub.db;
    const victim = chain.body.entries[2];
    if (!victim) throw new Error('no entry 3');

    // 1. The content of a filed entry is edited.
    const edited = victim.content.replace('police-dongcheng', 'someone-else');
    expect(edited).not.toBe(victim.content);
    await db.query('UPDATE ledger_chain SET content = $2 WHERE seq = $1', [victim.seq, edited]);
    let v = await t.api<VerifyReport>('GET', '/v1/ledger/verify');
    expect(v.body.ok).toBe(false);
    expect(v.body.firstBroken).toMatchObject({ seq: victim.seq, reason: 'content-changed' });
    await db.query('UPDATE ledger_chain SET content = $2 WHERE seq = $1', [victim.seq, victim.content]);

    // 2. A device row is edited behind the ledger's back.
    const { body: device } = await t.api<LedgerDevice>('GET', `/v1/ledger/devices/${victim.deviceCode}`);
    await db.query('UPDATE ledger_devices SET owner_agency = $2 WHERE code = $1', [
      device.code,
      'someone-else',
    ]);
    v = await t.api<VerifyReport>('GET', '/v1/ledger/verify');
    expect(v.body.firstBroken).toMatchObject({
      seq: device.changeSeq,
      reason: 'device-changed',
      deviceCode: device.code,
    });
    await db.query('UPDATE ledger_devices SET owner_agency = $2 WHERE code = $1', [
      device.code,
      device.ownerAgency,
    ]);

    // 3. A re-hashed entry no longer carries the centre's signature, and breaks the next link.
    await db.query("UPDATE ledger_chain SET hash = repeat('a', 64) WHERE seq = $1", [victim.seq]);
    v = await t.api<VerifyReport>('GET', '/v1/ledger/verify');
    expect(v.body.firstBroken).toMatchObject({ seq: victim.seq, reason: 'content-changed' });
    expect(v.body.problems).toContainEqual(
      expect.objectContaining({ seq: victim.seq + 1, reason: 'link-broken' }),
    );
    await db.query('UPDATE ledger_chain SET hash = $2 WHERE seq = $1', [victim.seq, victim.hash]);
    expect((await t.api<VerifyReport>('GET', '/v1/ledger/verify')).body.ok).toBe(true);

    // 4. An entry is deleted: a gap in the sequence.
    await db.exec(
      `CREATE TEMP TABLE saved_entry AS SELECT * FROM ledger_chain WHERE seq = ${victim.seq + 1}`,
    );
    await db.query('DELETE FROM ledger_chain WHERE seq = $1', [victim.seq + 1]);
    v = await t.api<VerifyReport>('GET', '/v1/ledger/verify');
    expect(v.body.firstBroken).toMatchObject({ seq: victim.seq + 2, reason: 'seq-gap' });
    expect(v.body.firstBroken?.message).toContain(`entries ${victim.seq + 1}–${victim.seq + 1} are missing`);
    await db.exec('INSERT INTO ledger_chain SELECT * FROM saved_entry; DROP TABLE saved_entry');

    // 5. A device row is deleted.
    await db.exec(
      `CREATE TEMP TABLE saved_device AS SELECT * FROM ledger_devices WHERE code = '${device.code}'`,
    );
    await db.query('DELETE FROM ledger_devices WHERE code = $1', [device.code]);
    v = await t.api<VerifyReport>('GET', '/v1/ledger/verify');
    expect(v.body.firstBroken).toMatchObject({ reason: 'device-deleted', deviceCode: device.code });
    await db.exec('INSERT INTO ledger_devices SELECT * FROM saved_device; DROP TABLE saved_device');
    expect((await t.api<VerifyReport>('GET', '/v1/ledger/verify')).body.ok).toBe(true);
  });

  it('imports 10,000 CSV rows: good rows applied, bad rows reported by row and column', async () => {
    const header =
      'kind,model,vendor,ownerAgency,poleId,longitude,latitude,installedOn,gb35114Level,network,dataItems';
    const lines = [header];
    const bad = new Map<number, string>();
    for (let i = 0; i < 10_000; i++) {
      const line = i + 2;
      const lon = (100 + (i % 100) * 0.01).toFixed(5);
      const lat = (25 + Math.floor(i / 100) * 0.01).toFixed(5);
      if (i % 1000 === 17) {
        bad.set(line, 'latitude');
        lines.push(`noise,N1,Acme,eco,pole-${i},${lon},95.5,,,,noise_db`);
      } else if (i % 1000 === 400) {
        bad.set(line, 'kind');
        lines.push(`telescope,T,Acme,eco,pole-${i},${lon},${lat},,,,`);
      } else if (i === 5555) {
        bad.set(line, '');
        lines.push(`noise,N1,Acme,eco,pole-${i},${lon}`);
      } else if (i === 7777) {
        bad.set(line, 'gb35114Level');
        lines.push(`noise,N1,Acme,eco,pole-${i},${lon},${lat},,B,,`);
      } else if (i === 8888) {
        bad.set(line, 'installedOn');
        lines.push(`noise,N1,Acme,eco,pole-${i},${lon},${lat},yesterday,,,`);
      } else
        lines.push(
          `${i % 2 ? 'noise' : 'water-level'},"Model ""${i}""",Acme,eco,pole-${i},${lon},${lat},2024-05-01,,NB-IoT,level_m;battery`,
        );
    }
    const before = await t.api<{ next: number }>('GET', '/v1/ledger/changes?since=0&limit=1');
    const res = await importCsv(`${lines.join('\r\n')}\r\n`);
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({
      rows: 10_000,
      applied: 10_000 - bad.size,
      failed: bad.size,
      errorsTruncated: false,
    });
    expect(res.body.errors.map((e) => [e.row, e.column])).toEqual([...bad.entries()]);
    expect(res.body.errors.find((e) => e.column === '')?.code).toBe('CS_ERR_LEDGER_CSV_ROW');
    expect(res.body.errors.find((e) => e.column === 'gb35114Level')?.code).toBe('CS_ERR_LEDGER_FIELD');

    const sample = await t.api<LedgerDevice[]>('GET', '/v1/ledger/devices?kind=water-level&limit=1');
    expect(sample.body[0]).toMatchObject({
      model: 'Model "0"',
      dataItems: ['level_m', 'battery'],
      installedOn: '2024-05-01',
    });
    const verify = await t.api<VerifyReport>('GET', '/v1/ledger/verify');
    expect(verify.body.ok).toBe(true);
    expect(verify.body.head.seq).toBeGreaterThanOrEqual(before.body.next + 10_000 - bad.size);

    const header400 = await importCsv('kind,colour\nnoise,red\n');
    expect([header400.status, header400.body.code]).toEqual([400, 'CS_ERR_LEDGER_CSV_HEADER']);
    const offset = await importCsv('kind,ownerAgency,longitude,latitude\nnoise,eco,1,100\n', '?rowOffset=40');
    expect(offset.body.errors[0]).toMatchObject({ row: 42, column: 'latitude' });
  }, 60_000);

  it('registers a JSON batch with a per-item report', async () => {
    const res = await t.api<ImportReport>('POST', '/v1/ledger/devices/bulk', [
      { kind: 'manhole', ownerAgency: 'water', longitude: 116, latitude: 40 },
      { kind: 'manhole', ownerAgency: 'water', longitude: 116 },
      { kind: 'lamp', ownerAgency: 'city-mgmt', longitude: 116, latitude: 40, colour: 'red' },
    ]);
    expect(res.body).toMatchObject({ rows: 3, applied: 1, failed: 2 });
    expect(res.body.errors.map((e) => [e.row, e.column])).toEqual([
      [2, 'latitude'],
      [3, 'colour'],
    ]);
  });

  it('answers 401 without a token', async () => {
    const res = await t.api<ErrorBody>('GET', '/v1/ledger/devices', undefined, null);
    expect(res.status).toBe(401);
  });
});
