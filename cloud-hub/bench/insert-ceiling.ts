/**
 * The raw insert ceiling of a database: `ReadingStore.insertReadings` (one
 * `INSERT … SELECT FROM unnest(…)` per batch) with every array built before the
 * clock starts. The ingest benchmark divides its end-to-end rate by this.
 */
import { randomUUID } from 'node:crypto';
import { DataType, QualityCode } from '@citysense/protocol';
import type { Database } from '../src/storage/database.ts';
import { type ReadingRows, ReadingStore } from '../src/telemetry/reading-store.ts';

/** Options of `measureInsertCeiling`. */
export interface InsertCeilingOptions {
  /** Rows per statement; default 5,000. */
  batchRows?: number;
  /** Distinct series the rows are spread over; default 100. */
  series?: number;
  /** Rows inserted, untimed, before the clock starts (WASM and plan caches warm up); default rows / 5. */
  warmupRows?: number;
}

/** The measured ceiling. */
export interface InsertCeiling {
  rowsPerSecond: number;
  rows: number;
  seconds: number;
}

/** Inserts `rows` readings into fresh series of a migrated database and reports rows/s. */
export async function measureInsertCeiling(
  db: Database,
  rows: number,
  options: InsertCeilingOptions = {},
): Promise<InsertCeiling> {
  const batchRows = options.batchRows ?? 5_000;
  const warmupRows = options.warmupRows ?? Math.floor(rows / 5);
  const seriesCount = options.series ?? 100;
  const store = new ReadingStore(db);
  // A node id no agent uses, so the rows never mix with real data or earlier runs.
  const node = `bench-ceiling-${randomUUID()}`;
  const ids = await store.resolveSeries(
    Array.from({ length: seriesCount }, (_, i) => ({
      node,
      device: '',
      metric: `m${i}`,
      datatype: DataType.Double,
    })),
  );

  // Recent timestamps (last day) land in uncompressed chunks like live ingest; 1 ms apart per row.
  const start = Date.now() - 86_400_000;
  const batches: ReadingRows[] = [];
  const total = warmupRows + rows;
  for (let offset = 0; offset < total; offset += batchRows) {
    const n = Math.min(batchRows, total - offset);
    const batch: ReadingRows = { time: [], seriesId: [], value: [], textValue: [], quality: [] };
    for (let i = 0; i < n; i++) {
      const row = offset + i;
      batch.time.push(start + row);
      batch.seriesId.push(ids[row % ids.length] ?? 0);
      batch.value.push(row % 1000);
      batch.textValue.push(null);
      batch.quality.push(QualityCode.good);
    }
    batches.push(batch);
  }

  const warmupBatches = Math.ceil(warmupRows / batchRows);
  for (const batch of batches.slice(0, warmupBatches)) await store.insertReadings(batch);
  const started = performance.now();
  let inserted = 0;
  for (const batch of batches.slice(warmupBatches)) inserted += await store.insertReadings(batch);
  const seconds = (performance.now() - started) / 1000;
  return { rowsPerSecond: inserted / seconds, rows: inserted, seconds };
}
