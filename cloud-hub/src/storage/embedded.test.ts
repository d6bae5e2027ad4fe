import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DataType } from '@citysense/protocol';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ReadingStore } from '../telemetry/reading-store.ts';
import type { Database } from './database.ts';
import { EMBEDDED_ENGINE } from './embedded.ts';
import { type MaintenanceReport, StorageMaintenance } from './maintenance.ts';
import { migrate } from './migrate.ts';
import { openDatabase } from './open.ts';

const MINUTE = 60_000;
const DAY = 86_400_000;
/** Compression, retention and aggregate-refresh jobs the migrations create. */
const POLICY_JOBS = 13;

describe('embedded TimescaleDB in a data directory', () => {
  let dataDir: string;
  let db: Database;

  beforeAll(async () => {
    dataDir = await mkdtemp(join(tmpdir(), 'citysense-embedded-'));
    db = await openDatabase({ dataDir });
  });
  afterAll(async () => {
    await db.close();
    await rm(dataDir, { recursive: true, force: true });
  });

  it('reports TimescaleDB features', () => {
    expect(db.features.timescale).toBe(true);
    expect(db.features.engine).toBe(EMBEDDED_ENGINE);
    expect(db.features.version).toMatch(/TimescaleDB \d/);
  });

  it('migrates into hypertables with compression, retention and real-time continuous aggregates', async () => {
    const result = await migrate(db);
    expect(result.applied).toContain('telemetry/0020_telemetry.sql');

    const hypertables = await db.query<{ name: string; compression: boolean }>(
      `SELECT hypertable_name AS name, compression_enabled AS compression
         FROM timescaledb_information.hypertables WHERE hypertable_schema = 'public' ORDER BY 1`,
    );
    expect(hypertables.rows).toEqual([
      { name: 'analytics_frames', compression: true },
      { name: 'detections', compression: true },
      { name: 'edge_alerts', compression: false },
      { name: 'node_health', compression: true },
      { name: 'readings', compression: true },
      { name: 'video_alarms', compression: false },
      { name: 'video_device_events', compression: false },
    ]);

    const jobs = await db.query<{ proc: string; target: string }>(
      `SELECT j.proc_name AS proc, coalesce(c.view_name, j.hypertable_name) AS target
         FROM timescaledb_information.jobs j
         LEFT JOIN timescaledb_information.continuous_aggregates c
           ON c.materialization_hypertable_name = j.hypertable_name
        WHERE j.proc_name LIKE 'policy_%' AND j.proc_name <> 'policy_job_stat_history_retention'
        ORDER BY 2, 1`,
    );
    expect(jobs.rows).toEqual([
      { proc: 'policy_compression', target: 'analytics_frames' },
      { proc: 'policy_retention', target: 'analytics_frames' },
      { proc: 'policy_compression', target: 'detections' },
      { proc: 'policy_retention', target: 'detections' },
      { proc: 'policy_retention', target: 'edge_alerts' },
      { proc: 'policy_compression', target: 'node_health' },
      { proc: 'policy_retention', target: 'node_health' },
      { proc: 'policy_refresh_continuous_aggregate', target: 'node_health_1m' },
      { proc: 'policy_compression', target: 'readings' },
      { proc: 'policy_retention', target: 'readings' },
      { proc: 'policy_refresh_continuous_aggregate', target: 'readings_1m' },
      { proc: 'policy_retention', target: 'video_alarms' },
      { proc: 'policy_retention', target: 'video_device_events' },
    ]);

    const retention = await db.query<{ table: string; days: number }>(
      `SELECT hypertable_name AS table, extract(day FROM (config->>'drop_after')::interval)::int AS days
         FROM timescaledb_information.jobs WHERE proc_name = 'policy_retention' ORDER BY 1`,
    );
    expect(retention.rows).toEqual([
      { table: 'analytics_frames', days: 90 },
      { table: 'detections', days: 90 },
      { table: 'edge_alerts', days: 365 },
      { table: 'node_health', days: 90 },
      { table: 'readings', days: 365 },
      { table: 'video_alarms', days: 365 },
      { table: 'video_device_events', days: 365 },
    ]);

    const caggs = await db.query<{ name: string; materialized_only: boolean }>(
      `SELECT view_name AS name, materialized_only FROM timescaledb_information.continuous_aggregates ORDER BY 1`,
    );
    expect(caggs.rows).toEqual([
      { name: 'node_health_1m', materialized_only: false },
      { name: 'readings_1m', materialized_only: false },
    ]);
  });

  it('keeps data and applies nothing when the same directory is opened again', async () => {
    const store = new ReadingStore(db);
    const [id] = await store.resolveSeries([
      { node: 'persist', device: '', metric: 'm', datatype: DataType.Double },
    ]);
    const t = Date.now() - MINUTE;
    await store.insertReadings({
      time: [t],
      seriesId: [id ?? 0],
      value: [42],
      textValue: [null],
      quality: [192],
    });
    await db.close();

    db = await openDatabase({ dataDir });
    expect(await migrate(db)).toEqual({ applied: [], version: expect.any(Number) });
    const reopened = new ReadingStore(db);
    // Writes into a hypertable with a continuous aggregate and every policy job must
    // still work after a reopen (the TimescaleDB library is not preloaded by PGlite).
    const inserted = await reopened.insertReadings({
      time: [t + 1000],
      seriesId: [id ?? 0],
      value: [43],
      textValue: [null],
      quality: [192],
    });
    expect(inserted).toBe(1);
    const rows = await reopened.queryReadings({ node: 'persist', from: t - MINUTE, to: t + MINUTE });
    expect(rows.map((r) => r.value)).toEqual([42, 43]);
    const report = await new StorageMaintenance(db).runOnce();
    expect(report).toEqual({ ran: expect.any(Array), failed: [] });
    expect(report.ran).toHaveLength(POLICY_JOBS);
  });
});

describe('storage maintenance on embedded TimescaleDB', () => {
  let db: Database;
  let store: ReadingStore;
  let maintenance: StorageMaintenance;
  let seriesId: number;

  beforeAll(async () => {
    db = await openDatabase({});
    await migrate(db);
    store = new ReadingStore(db);
    maintenance = new StorageMaintenance(db);
    [seriesId = 0] = await store.resolveSeries([
      { node: 'maint', device: '', metric: 'm', datatype: DataType.Double },
    ]);
  });
  afterAll(async () => {
    await maintenance.stop();
    await db.close();
  });

  const insertAt = (times: number[], value: number) =>
    store.insertReadings({
      time: times,
      seriesId: times.map(() => seriesId),
      value: times.map(() => value),
      textValue: times.map(() => null),
      quality: times.map(() => 192),
    });

  it('runs every policy job: old chunks compressed, expired chunks dropped, aggregate materialised', async () => {
    const now = Date.now();
    await insertAt([now - 400 * DAY, now - 10 * DAY, now - 10 * DAY + 1000, now - 30 * MINUTE], 1);

    const report = await maintenance.runOnce();
    expect(report.failed).toEqual([]);
    expect(report.ran).toHaveLength(POLICY_JOBS);

    const chunks = await db.query<{ compressed: boolean; newest: Date }>(
      `SELECT is_compressed AS compressed, range_end AS newest FROM timescaledb_information.chunks
        WHERE hypertable_name = 'readings' ORDER BY range_start`,
    );
    // The 400-day-old chunk is gone (retention 365 d); the 10-day-old one is compressed (after 7 d).
    expect(chunks.rows.map((c) => c.compressed)).toEqual([true, false]);

    const raw = await store.queryReadings({ node: 'maint', from: now - 11 * DAY, to: now, limit: 10 });
    expect(raw).toHaveLength(3);

    const materialised = await db.query<{ n: number }>(
      `SELECT count(*)::int AS n FROM _timescaledb_internal.${await materializationTable(db, 'readings_1m')}`,
    );
    expect(materialised.rows[0]?.n).toBeGreaterThan(0);
  });

  it('keeps replays idempotent on compressed chunks', async () => {
    const t = Date.now() - 10 * DAY;
    const rows = await store.queryReadings({ node: 'maint', from: t - DAY, to: t + DAY });
    const first = rows[0];
    expect(first).toBeDefined();
    const time = first?.time.getTime() ?? 0;
    expect(await insertAt([time], 1)).toBe(0);
  });

  it('brings late rows below the refresh watermark into the aggregate', async () => {
    const minute = Math.floor((Date.now() - 20 * MINUTE) / MINUTE) * MINUTE;
    await insertAt([minute], 10);
    await maintenance.runOnce();
    await insertAt([minute + 30_000], 20);
    await maintenance.runOnce();
    const [bucket] = await store.queryReadings({
      node: 'maint',
      from: minute,
      to: minute + MINUTE,
      bucket: '1m',
    });
    expect(bucket).toMatchObject({ count: 2, avg: 15, last: 20 });
  });

  it('runs due jobs on its timer, each no more often than its schedule interval', async () => {
    const reports: MaintenanceReport[] = [];
    let twoPasses: () => void = () => undefined;
    const passed = new Promise<void>((resolve) => {
      twoPasses = resolve;
    });
    const timed = new StorageMaintenance(db, {
      intervalMs: 10,
      onPass: (r) => {
        reports.push(r);
        if (reports.length === 2) twoPasses();
      },
    });
    await timed.start();
    await timed.start();
    await passed;
    await timed.stop();
    await timed.stop();
    expect(reports[0]).toEqual({ ran: expect.any(Array), failed: [] });
    expect(reports[0]?.ran).toHaveLength(POLICY_JOBS);
    // 10 ms later nothing is due: the shortest schedule (aggregate refresh) is one minute.
    expect(reports[1]).toEqual({ ran: [], failed: [] });
  });
});

async function materializationTable(db: Database, view: string): Promise<string> {
  const res = await db.query<{ name: string }>(
    `SELECT materialization_hypertable_name AS name FROM timescaledb_information.continuous_aggregates WHERE view_name = $1`,
    [view],
  );
  return res.rows[0]?.name ?? 'missing';
}
