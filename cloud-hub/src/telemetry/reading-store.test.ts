import { DataType, hasCode, QualityCode } from '@citysense/protocol';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Database } from '../storage/database.ts';
import { openEmbeddedDatabase } from '../storage/embedded.ts';
import { StorageMaintenance } from '../storage/maintenance.ts';
import { migrate } from '../storage/migrate.ts';
import { openServerDatabase } from '../storage/server.ts';
import {
  postgresSuiteTitle,
  shouldSkipPostgres,
  startTestPostgres,
  type TestPostgres,
} from '../storage/test-postgres.ts';
import { type ReadingRows, ReadingStore } from './reading-store.ts';

const MINUTE = 60_000;
const DAY = 86_400_000;

/** Rejection with a CitysenseError carrying `code`. */
async function expectCode(promise: Promise<unknown>, code: string): Promise<void> {
  const err = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(hasCode(err, code), `expected ${code}, got ${String(err)}`).toBe(true);
}

/** Column arrays from row objects. */
function rows(
  list: Array<{ t: number; id: number; v?: number | null; s?: string | null; q?: number }>,
): ReadingRows {
  return {
    time: list.map((r) => r.t),
    seriesId: list.map((r) => r.id),
    value: list.map((r) => r.v ?? null),
    textValue: list.map((r) => r.s ?? null),
    quality: list.map((r) => r.q ?? QualityCode.good),
  };
}

/** The same behaviour on every engine: embedded TimescaleDB and plain PostgreSQL. */
function readingStoreContract(open: () => Promise<{ db: Database; close: () => Promise<void> }>): void {
  let db: Database;
  let close: () => Promise<void>;
  let store: ReadingStore;
  let maintenance: StorageMaintenance;
  // Two hours ago on a whole hour: inside the aggregate refresh window, every bucket size aligned.
  const base = Math.floor((Date.now() - 2 * 3_600_000) / 3_600_000) * 3_600_000;

  beforeAll(async () => {
    ({ db, close } = await open());
    await migrate(db);
    store = new ReadingStore(db);
    maintenance = new StorageMaintenance(db);
  });
  afterAll(async () => {
    await close();
  });

  describe('series', () => {
    it('gives each metric one stable id, in the order asked, cached across calls', async () => {
      const pm = { node: 'sn', device: 'air', metric: 'PM2.5', datatype: DataType.Double, unit: 'ug/m3' };
      const uptime = { node: 'sn', device: '', metric: 'Uptime', datatype: DataType.Int64 };
      const keys = [pm, uptime, { ...pm, unit: undefined }];
      const ids = await store.resolveSeries(keys);
      expect(new Set(ids).size).toBe(2);
      expect(ids[0]).toBe(ids[2]);
      expect(await store.resolveSeries([uptime, pm])).toEqual([ids[1], ids[0]]);
      // Another store (another hub) sees the same ids.
      expect(await new ReadingStore(db).resolveSeries(keys)).toEqual(ids);
      const unit = await db.query<{ unit: string }>('SELECT unit FROM series WHERE id = $1', [ids[0]]);
      expect(unit.rows[0]?.unit).toBe('ug/m3');
    });

    it('creates the same series once when hubs race for it', async () => {
      const key = { node: 'race', device: 'd', metric: 'm', datatype: DataType.Float };
      const results = await Promise.all(
        Array.from({ length: 4 }, () => new ReadingStore(db).resolveSeries([key])),
      );
      expect(new Set(results.flat()).size).toBe(1);
    });

    it('follows a datatype change announced by a new birth', async () => {
      const [id] = await store.resolveSeries([
        { node: 'dt', device: '', metric: 'm', datatype: DataType.Int32 },
      ]);
      const [again] = await store.resolveSeries([
        { node: 'dt', device: '', metric: 'm', datatype: DataType.Double },
      ]);
      expect(again).toBe(id);
      const res = await db.query<{ datatype: number }>('SELECT datatype FROM series WHERE id = $1', [id]);
      expect(res.rows[0]?.datatype).toBe(DataType.Double);
    });
  });

  describe('raw readings', () => {
    let ids: Record<string, number>;
    beforeAll(async () => {
      const [temp = 0, on = 0, label = 0, count = 0] = await store.resolveSeries([
        { node: 'raw', device: 'dev', metric: 'temp', datatype: DataType.Double },
        { node: 'raw', device: '', metric: 'on', datatype: DataType.Boolean },
        { node: 'raw', device: 'dev', metric: 'label', datatype: DataType.String },
        { node: 'raw', device: 'dev', metric: 'count', datatype: DataType.Int32 },
      ]);
      ids = { temp, on, label, count };
    });

    it('stores a replayed batch once, including duplicates inside one batch', async () => {
      const batch = rows([
        { t: base + 123, id: ids.temp ?? 0, v: 21.5 },
        { t: base + 123, id: ids.temp ?? 0, v: 99 },
        { t: base + 1000, id: ids.temp ?? 0, v: 22.25, q: QualityCode.uncertain },
      ]);
      expect(await store.insertReadings(batch)).toBe(2);
      expect(await store.insertReadings(batch)).toBe(0);
      const read = await store.queryReadings({ node: 'raw', metric: 'temp', from: base, to: base + MINUTE });
      expect(read).toEqual([
        { time: new Date(base + 123), node: 'raw', device: 'dev', metric: 'temp', value: 21.5, quality: 192 },
        {
          time: new Date(base + 1000),
          node: 'raw',
          device: 'dev',
          metric: 'temp',
          value: 22.25,
          quality: 64,
        },
      ]);
    });

    it('round-trips booleans, strings and integers with their types and millisecond times', async () => {
      const t = base + 2 * MINUTE;
      await store.insertReadings(
        rows([
          { t: t + 1, id: ids.on ?? 0, v: 1 },
          { t: t + 2, id: ids.on ?? 0, v: 0 },
          { t: t + 3, id: ids.label ?? 0, s: 'pole 7 – north' },
          { t: t + 4, id: ids.count ?? 0, v: -2_147_483_648 },
          { t: t + 5, id: ids.on ?? 0, v: null, q: QualityCode.bad },
        ]),
      );
      const read = await store.queryReadings({ node: 'raw', from: t, to: t + MINUTE });
      expect(read.map((r) => [r.time.getTime() - t, r.device, r.metric, r.value, r.quality])).toEqual([
        [1, '', 'on', true, 192],
        [2, '', 'on', false, 192],
        [3, 'dev', 'label', 'pole 7 – north', 192],
        [4, 'dev', 'count', -2_147_483_648, 192],
        [5, '', 'on', null, 0],
      ]);
    });

    it('filters by device, node-level metrics with device "", and honours the limit', async () => {
      const t = base + 2 * MINUTE;
      const nodeLevel = await store.queryReadings({ node: 'raw', device: '', from: t, to: t + MINUTE });
      expect(new Set(nodeLevel.map((r) => r.metric))).toEqual(new Set(['on']));
      const dev = await store.queryReadings({
        node: 'raw',
        device: 'dev',
        from: t,
        to: t + MINUTE,
        limit: 1,
      });
      expect(dev.map((r) => r.metric)).toEqual(['label']);
      expect(await store.queryReadings({ node: 'nobody', from: t, to: t + MINUTE })).toEqual([]);
    });

    it('treats `to` as exclusive and `from` as inclusive', async () => {
      const read = await store.queryReadings({
        node: 'raw',
        metric: 'temp',
        from: base + 123,
        to: base + 1000,
      });
      expect(read.map((r) => r.value)).toEqual([21.5]);
    });

    it('rejects a batch whose columns differ in length', async () => {
      const bad = rows([{ t: base, id: ids.temp ?? 0, v: 1 }]);
      bad.quality.push(192);
      await expectCode(store.insertReadings(bad), 'CS_ERR_READINGS_SHAPE');
    });
  });

  describe('bucketed readings', () => {
    let id: number;
    const node = 'agg';
    beforeAll(async () => {
      [id = 0] = await store.resolveSeries([{ node, device: 'd', metric: 'v', datatype: DataType.Double }]);
      // Three minutes, three readings each: 1,2,3 | 4,5,6 | 7,8,9
      await store.insertReadings(
        rows(Array.from({ length: 9 }, (_, i) => ({ t: base + i * 20_000, id, v: i + 1 }))),
      );
    });

    const expectMinutes = async (first: Record<string, unknown>) => {
      const minutes = await store.queryReadings({ node, from: base, to: base + 3 * MINUTE, bucket: '1m' });
      expect(minutes).toEqual([
        {
          bucket: new Date(base),
          node,
          device: 'd',
          metric: 'v',
          min: 1,
          max: 3,
          count: 3,
          avg: 2,
          last: 3,
          ...first,
        },
        {
          bucket: new Date(base + MINUTE),
          node,
          device: 'd',
          metric: 'v',
          avg: 5,
          min: 4,
          max: 6,
          count: 3,
          last: 6,
        },
        {
          bucket: new Date(base + 2 * MINUTE),
          node,
          device: 'd',
          metric: 'v',
          avg: 8,
          min: 7,
          max: 9,
          count: 3,
          last: 9,
        },
      ]);
    };

    it('aggregates rows not yet materialised (real-time aggregation)', async () => {
      await expectMinutes({});
    });

    it('gives the same aggregates after maintenance materialised them', async () => {
      expect((await maintenance.runOnce()).failed).toEqual([]);
      await expectMinutes({});
    });

    it('re-buckets minutes into wider buckets with exact averages', async () => {
      const five = await store.queryReadings({ node, from: base, to: base + 5 * MINUTE, bucket: '5m' });
      expect(five).toEqual([
        { bucket: new Date(base), node, device: 'd', metric: 'v', avg: 5, min: 1, max: 9, count: 9, last: 9 },
      ]);
      const two = await store.queryReadings({ node, from: base, to: base + 4 * MINUTE, bucket: 120 });
      expect(two.map((b) => [b.bucket.getTime() - base, b.avg, b.count, b.last])).toEqual([
        [0, 3.5, 6, 6],
        [2 * MINUTE, 8, 3, 9],
      ]);
    });

    it('widens a range to whole buckets', async () => {
      const [hour] = await store.queryReadings({
        node,
        from: base + 30_000,
        to: base + 90_000,
        bucket: '1h',
      });
      expect(hour).toMatchObject({ bucket: new Date(base), count: 9 });
    });

    it('includes late rows once maintenance has run', async () => {
      await store.insertReadings(rows([{ t: base + 50_000, id, v: 100 }]));
      await maintenance.runOnce();
      await expectMinutes({ count: 4, max: 100, avg: 26.5, last: 100 });
    });
  });

  describe('node health', () => {
    const node = 'healthy';
    beforeAll(async () => {
      const inserted = await store.insertHealth([
        { nodeId: node, time: base, cpuPercent: 10, spoolBytes: 500, droppedRecords: 0, uptimeS: 100 },
        {
          nodeId: node,
          time: base + 10_000,
          cpuPercent: 20,
          spoolBytes: 300,
          droppedRecords: 1,
          uptimeS: 110,
        },
        { nodeId: node, time: base + MINUTE, cpuPercent: 30, spoolBytes: 0, droppedRecords: 1, uptimeS: 160 },
        { nodeId: node, time: base + MINUTE, cpuPercent: 99 },
      ]);
      expect(inserted).toBe(3);
    });

    it('returns raw samples with unreported metrics as null', async () => {
      const raw = await store.queryHealth({ node, from: base, to: base + 2 * MINUTE });
      expect(raw).toHaveLength(3);
      expect(raw[0]).toEqual({
        time: new Date(base),
        node,
        cpuPercent: 10,
        memoryPercent: null,
        diskPercent: null,
        temperatureC: null,
        uptimeS: 100,
        spoolBytes: 500,
        spoolRecords: null,
        spoolAgeS: null,
        droppedRecords: 0,
        linkRttMs: null,
      });
    });

    it('averages load and keeps maxima of spool and drop counters per bucket, before and after maintenance', async () => {
      for (const pass of [false, true]) {
        if (pass) await maintenance.runOnce();
        const minutes = await store.queryHealth({ node, from: base, to: base + 2 * MINUTE, bucket: '1m' });
        expect(
          minutes.map((m) => [m.samples, m.cpuPercent, m.spoolBytes, m.droppedRecords, m.uptimeS]),
        ).toEqual([
          [2, 15, 500, 1, 110],
          [1, 30, 0, 1, 160],
        ]);
        const [hour] = await store.queryHealth({ node, from: base, to: base + 2 * MINUTE, bucket: '1h' });
        expect(hour).toMatchObject({ bucket: new Date(base), samples: 3, cpuPercent: 20, spoolBytes: 500 });
      }
    });
  });

  describe('query validation', () => {
    it('rejects an inverted range', async () => {
      await expectCode(store.queryReadings({ node: 'raw', from: base + 1, to: base }), 'CS_ERR_QUERY_RANGE');
      await expectCode(store.queryHealth({ node: 'raw', from: base + 1, to: base }), 'CS_ERR_QUERY_RANGE');
    });

    it('rejects a long raw range over several series but serves it for one series', async () => {
      await expectCode(
        store.queryReadings({ node: 'raw', from: base - 30 * DAY, to: base }),
        'CS_ERR_QUERY_RANGE',
      );
      const one = await store.queryReadings({
        node: 'raw',
        device: 'dev',
        metric: 'temp',
        from: 0,
        to: Date.now(),
      });
      expect(one.length).toBeGreaterThan(0);
    });

    it('rejects unknown buckets, bad limits and a missing node', async () => {
      await expectCode(
        store.queryReadings({ node: 'agg', from: base, to: base + MINUTE, bucket: 30 }),
        'CS_ERR_QUERY_BUCKET',
      );
      await expectCode(
        store.queryReadings({ node: 'agg', from: base, to: base + MINUTE, bucket: '2m' as '1m' }),
        'CS_ERR_QUERY_BUCKET',
      );
      await expectCode(
        store.queryReadings({ node: 'agg', from: base, to: base + MINUTE, limit: 0 }),
        'CS_ERR_QUERY_LIMIT',
      );
      await expectCode(
        store.queryReadings({ node: '', from: base, to: base + MINUTE }),
        'CS_ERR_QUERY_INVALID',
      );
      await expectCode(
        store.queryReadings({ node: 'agg', from: new Date(Number.NaN), to: base }),
        'CS_ERR_QUERY_RANGE',
      );
    });
  });
}

describe('ReadingStore on embedded TimescaleDB', () => {
  readingStoreContract(async () => {
    const db = await openEmbeddedDatabase(undefined);
    return { db, close: () => db.close() };
  });
});

describe.skipIf(shouldSkipPostgres())(postgresSuiteTitle('ReadingStore on plain PostgreSQL'), () => {
  readingStoreContract(async () => {
    const server: TestPostgres = await startTestPostgres();
    const db = await openServerDatabase(server.url);
    return {
      db,
      close: async () => {
        await db.close();
        await server.stop();
      },
    };
  });
});
