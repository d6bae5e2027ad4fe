/**
 * Telemetry storage: the series dictionary, bulk inserts of readings and node
 * health (one `INSERT … SELECT FROM unnest(…)` per batch, idempotent through
 * `ON CONFLICT DO NOTHING`), and raw or bucketed reads. Runs the same SQL on
 * embedded TimescaleDB, a TimescaleDB server and plain PostgreSQL; only the
 * source of bucketed reads differs (continuous aggregate vs. raw rows).
 */
import { CitysenseError, componentLogger, DataType, type Logger } from '@citysense/protocol';
import type { Database } from '../storage/database.ts';

/** Identity of one metric stream: Sparkplug edge node, device ('' = node-level) and metric name. */
export interface SeriesKey {
  node: string;
  /** Device id; '' for a node-level metric. */
  device: string;
  metric: string;
  /** Sparkplug datatype code (Sparkplug 3.0 §6.4.16). */
  datatype: number;
  unit?: string | undefined;
}

/** A batch of readings as column arrays of equal length (cheap to build, one statement to insert). */
export interface ReadingRows {
  /** Milliseconds since the epoch. */
  time: number[];
  seriesId: number[];
  /** Numbers, booleans as 0/1; null for strings and null values. */
  value: (number | null)[];
  /** Strings; null otherwise. */
  textValue: (string | null)[];
  /** 192 good, 64 uncertain, 0 bad. */
  quality: number[];
}

/** Node health metrics, all optional. */
export interface HealthMetrics {
  cpuPercent?: number | null;
  memoryPercent?: number | null;
  diskPercent?: number | null;
  temperatureC?: number | null;
  uptimeS?: number | null;
  spoolBytes?: number | null;
  spoolRecords?: number | null;
  spoolAgeS?: number | null;
  droppedRecords?: number | null;
  linkRttMs?: number | null;
}

/** One node health sample to insert. */
export interface HealthSample extends HealthMetrics {
  /** Milliseconds since the epoch. */
  time: number;
  nodeId: string;
}

/** Bucket width of an aggregated read: a label or seconds (a positive multiple of 60). */
export type Bucket = '1m' | '5m' | '15m' | '1h' | '1d' | number;

/** A time range; `from` inclusive, `to` exclusive. Dates or milliseconds since the epoch. */
export interface TimeRange {
  from: Date | number;
  to: Date | number;
}

/** Which readings to read. */
export interface ReadingQuery extends TimeRange {
  node: string;
  /** Omitted: every device and the node itself; '' only node-level metrics. */
  device?: string | undefined;
  /** Omitted: every metric. */
  metric?: string | undefined;
  /** Omitted: raw readings. */
  bucket?: Bucket | undefined;
  /** Maximum rows; default 10,000. */
  limit?: number | undefined;
}

/** Which node health to read. */
export interface HealthQuery extends TimeRange {
  node: string;
  /** Omitted: raw samples. */
  bucket?: Bucket | undefined;
  /** Maximum rows; default 10,000. */
  limit?: number | undefined;
}

/** A stored value typed back by the series' datatype. */
export type ReadingValue = number | boolean | string | null;

/** One raw reading. */
export interface ReadingRow {
  time: Date;
  node: string;
  device: string;
  metric: string;
  value: ReadingValue;
  quality: number;
}

/** One aggregated bucket of a series. `avg/min/max/last` are null for string series. */
export interface ReadingBucketRow {
  /** Start of the bucket. */
  bucket: Date;
  node: string;
  device: string;
  metric: string;
  avg: number | null;
  min: number | null;
  max: number | null;
  /** Readings in the bucket. */
  count: number;
  /** Value of the latest reading in the bucket. */
  last: number | null;
}

/** Node health metrics as read back (null when not reported). */
export type HealthValues = { [K in keyof HealthMetrics]-?: number | null };

/** One raw node health sample. */
export interface HealthRow extends HealthValues {
  time: Date;
  node: string;
}

/** One bucket of node health: averages, and maxima for uptime, spool and drop counters. */
export interface HealthBucketRow extends HealthValues {
  bucket: Date;
  node: string;
  /** Samples in the bucket. */
  samples: number;
}

/** Limits of `ReadingStore` reads. */
export interface ReadingStoreOptions {
  /** Longest raw (unbucketed) range over several series; default 7 days. One series has no range limit. */
  maxRawRangeMs?: number;
  /** Longest bucketed range; default 400 days. */
  maxBucketedRangeMs?: number;
  /** Default row limit; default 10,000. */
  defaultLimit?: number;
  /** Largest accepted limit; default 100,000. */
  maxLimit?: number;
  logger?: Logger;
}

const DAY_MS = 86_400_000;
/** Bucket origin shared by `date_bin` everywhere (TimescaleDB's time_bucket aligns the same for ≤ 1 day). */
const ORIGIN_MS = Date.UTC(2000, 0, 1);
const ORIGIN_SQL = `TIMESTAMPTZ '2000-01-01 00:00:00+00'`;
const BUCKET_SECONDS: Record<string, number> = { '1m': 60, '5m': 300, '15m': 900, '1h': 3600, '1d': 86_400 };
const TEXT_TYPES: ReadonlySet<number> = new Set([DataType.String, DataType.Text, DataType.UUID]);

/** Health metric: API field, column, and how a bucket combines it. */
const HEALTH_COLUMNS: ReadonlyArray<readonly [keyof HealthMetrics, string, 'avg' | 'max']> = [
  ['cpuPercent', 'cpu_percent', 'avg'],
  ['memoryPercent', 'memory_percent', 'avg'],
  ['diskPercent', 'disk_percent', 'avg'],
  ['temperatureC', 'temperature_c', 'avg'],
  ['uptimeS', 'uptime_s', 'max'],
  ['spoolBytes', 'spool_bytes', 'max'],
  ['spoolRecords', 'spool_records', 'max'],
  ['spoolAgeS', 'spool_age_s', 'max'],
  ['droppedRecords', 'dropped_records', 'max'],
  ['linkRttMs', 'link_rtt_ms', 'avg'],
];
const HEALTH_COLUMN_LIST = HEALTH_COLUMNS.map(([, col]) => col).join(', ');

// Timestamps travel as float8 milliseconds and become timestamptz in SQL: measured fastest on
// both PGlite and pg (no Date/ISO formatting in JS), and exact to the millisecond.
const INSERT_READINGS = `INSERT INTO readings (time, series_id, value, text_value, quality)
SELECT to_timestamp(t / 1000), s, v, tv, q
  FROM unnest($1::float8[], $2::int4[], $3::float8[], $4::text[], $5::int2[]) AS u(t, s, v, tv, q)
ON CONFLICT DO NOTHING`;

const INSERT_HEALTH = `INSERT INTO node_health (time, node_id, ${HEALTH_COLUMN_LIST})
SELECT to_timestamp(t / 1000), n, ${HEALTH_COLUMNS.map((_, i) => `c${i}`).join(', ')}
  FROM unnest($1::float8[], $2::text[], ${HEALTH_COLUMNS.map((_, i) => `$${i + 3}::float8[]`).join(', ')})
    AS u(t, n, ${HEALTH_COLUMNS.map((_, i) => `c${i}`).join(', ')})
ON CONFLICT DO NOTHING`;

// ON CONFLICT … DO UPDATE (not DO NOTHING) so that RETURNING yields ids of rows that already
// exist, including ones another hub inserted concurrently.
const UPSERT_SERIES = `INSERT INTO series (node_id, device_id, metric, datatype, unit)
SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::int2[], $5::text[])
ON CONFLICT (node_id, device_id, metric) DO UPDATE
  SET datatype = EXCLUDED.datatype, unit = COALESCE(EXCLUDED.unit, series.unit)
RETURNING id, node_id, device_id, metric, datatype, unit`;

const SELECT_SERIES = `SELECT id, device_id, metric, datatype FROM series
 WHERE node_id = $1 AND ($2::text IS NULL OR device_id = $2::text) AND ($3::text IS NULL OR metric = $3::text)`;

/** Several series: sorts every row in range, hence the raw range limit. */
const SELECT_RAW = `SELECT series_id, time, value, text_value, quality FROM readings
 WHERE series_id = ANY($1::int4[]) AND time >= $2::timestamptz AND time < $3::timestamptz
 ORDER BY time, series_id LIMIT $4`;

/** One series: an ordered scan of the (series_id, time) index that stops at the limit, so any range is cheap. */
const SELECT_RAW_ONE = `SELECT series_id, time, value, text_value, quality FROM readings
 WHERE series_id = $1::int4 AND time >= $2::timestamptz AND time < $3::timestamptz
 ORDER BY time LIMIT $4`;

/** Re-buckets the 1-minute continuous aggregate; avg stays exact through sum/value_count. */
const SELECT_BUCKETS_CAGG = `SELECT date_bin($2::interval, a.bucket, ${ORIGIN_SQL}) AS bucket, a.series_id,
       sum(a.sum) / nullif(sum(a.value_count), 0)::float8 AS avg,
       min(a.min) AS min, max(a.max) AS max, sum(a.count)::int8 AS count,
       (array_agg(a.last ORDER BY a.bucket DESC))[1] AS last
  FROM readings_1m a
 WHERE a.series_id = ANY($1::int4[]) AND a.bucket >= $3::timestamptz AND a.bucket < $4::timestamptz
 GROUP BY 1, 2 ORDER BY 1, 2 LIMIT $5`;

/** Plain PostgreSQL: buckets straight from raw rows (the readings_1m view could not use the time index). */
const SELECT_BUCKETS_RAW = `SELECT date_bin($2::interval, time, ${ORIGIN_SQL}) AS bucket, series_id,
       avg(value) AS avg, min(value) AS min, max(value) AS max, count(*)::int8 AS count,
       (array_agg(value ORDER BY time DESC))[1] AS last
  FROM readings
 WHERE series_id = ANY($1::int4[]) AND time >= $3::timestamptz AND time < $4::timestamptz
 GROUP BY 1, 2 ORDER BY 1, 2 LIMIT $5`;

const SELECT_HEALTH_RAW = `SELECT time, ${HEALTH_COLUMN_LIST} FROM node_health
 WHERE node_id = $1 AND time >= $2::timestamptz AND time < $3::timestamptz
 ORDER BY time LIMIT $4`;

/** Averages weighted by samples, so that re-bucketing 1-minute rows gives the true mean. */
const SELECT_HEALTH_BUCKETS_CAGG = `SELECT date_bin($2::interval, a.bucket, ${ORIGIN_SQL}) AS bucket,
       sum(a.samples)::int8 AS samples,
       ${HEALTH_COLUMNS.map(([, col, how]) =>
         how === 'max'
           ? `max(a.${col}) AS ${col}`
           : `sum(a.${col} * a.samples) / nullif(sum(a.samples) FILTER (WHERE a.${col} IS NOT NULL), 0)::float8 AS ${col}`,
       ).join(',\n       ')}
  FROM node_health_1m a
 WHERE a.node_id = $1 AND a.bucket >= $3::timestamptz AND a.bucket < $4::timestamptz
 GROUP BY 1 ORDER BY 1 LIMIT $5`;

const SELECT_HEALTH_BUCKETS_RAW = `SELECT date_bin($2::interval, time, ${ORIGIN_SQL}) AS bucket,
       count(*)::int8 AS samples,
       ${HEALTH_COLUMNS.map(([, col, how]) => `${how}(${col}) AS ${col}`).join(',\n       ')}
  FROM node_health
 WHERE node_id = $1 AND time >= $3::timestamptz AND time < $4::timestamptz
 GROUP BY 1 ORDER BY 1 LIMIT $5`;

interface SqlRange {
  from: string;
  to: string;
  spanMs: number;
}

interface SeriesRow {
  id: number;
  node_id: string;
  device_id: string;
  metric: string;
  datatype: number;
  unit: string | null;
}

interface CachedSeries {
  id: number;
  datatype: number;
  unit: string | null;
}

interface RawRow {
  series_id: number;
  time: Date;
  value: number | null;
  text_value: string | null;
  quality: number;
}

interface BucketSqlRow {
  bucket: Date;
  series_id: number;
  avg: number | null;
  min: number | null;
  max: number | null;
  count: number;
  last: number | null;
}

type HealthSqlRow = Record<string, number | null> & { time: Date; bucket: Date; samples: number };

/** Readings and node health over the hub's database. */
export class ReadingStore {
  readonly #db: Database;
  readonly #logger: Logger;
  readonly #cache = new Map<string, CachedSeries>();
  readonly #maxRawRangeMs: number;
  readonly #maxBucketedRangeMs: number;
  readonly #defaultLimit: number;
  readonly #maxLimit: number;

  constructor(db: Database, options: ReadingStoreOptions = {}) {
    this.#db = db;
    this.#logger = options.logger ?? componentLogger('reading-store');
    this.#maxRawRangeMs = options.maxRawRangeMs ?? 7 * DAY_MS;
    this.#maxBucketedRangeMs = options.maxBucketedRangeMs ?? 400 * DAY_MS;
    this.#defaultLimit = options.defaultLimit ?? 10_000;
    this.#maxLimit = options.maxLimit ?? 100_000;
  }

  /** Series ids for `keys` (same order), creating unknown series; cached, safe with concurrent hubs. */
  async resolveSeries(keys: readonly SeriesKey[]): Promise<number[]> {
    const missing = new Map<string, SeriesKey>();
    for (const key of keys) {
      const cacheKey = seriesCacheKey(key);
      const cached = this.#cache.get(cacheKey);
      const stale =
        cached === undefined ||
        cached.datatype !== key.datatype ||
        (key.unit !== undefined && key.unit !== cached.unit);
      if (stale) missing.set(cacheKey, key);
    }
    if (missing.size > 0) await this.#upsertSeries([...missing.values()]);
    return keys.map((key) => {
      const cached = this.#cache.get(seriesCacheKey(key));
      if (cached === undefined) {
        throw new CitysenseError('CS_ERR_SERIES_RESOLVE', `Series ${seriesCacheKey(key)} was not created.`);
      }
      return cached.id;
    });
  }

  /** Inserts a batch in one statement; rows already stored (same series and time) are skipped. Returns rows inserted. */
  async insertReadings(batch: ReadingRows): Promise<number> {
    const n = batch.time.length;
    if (
      batch.seriesId.length !== n ||
      batch.value.length !== n ||
      batch.textValue.length !== n ||
      batch.quality.length !== n
    ) {
      throw new CitysenseError(
        'CS_ERR_READINGS_SHAPE',
        `Reading batch columns differ in length (time ${n}, seriesId ${batch.seriesId.length}, value ${batch.value.length}, ` +
          `textValue ${batch.textValue.length}, quality ${batch.quality.length}).`,
      );
    }
    if (n === 0) return 0;
    const res = await this.#db.query(INSERT_READINGS, [
      batch.time,
      batch.seriesId,
      batch.value,
      batch.textValue,
      batch.quality,
    ]);
    return res.affectedRows;
  }

  /** Inserts node health samples in one statement; duplicates (same node and time) are skipped. Returns rows inserted. */
  async insertHealth(samples: readonly HealthSample[]): Promise<number> {
    if (samples.length === 0) return 0;
    const params: unknown[] = [samples.map((s) => s.time), samples.map((s) => s.nodeId)];
    for (const [field] of HEALTH_COLUMNS) params.push(samples.map((s) => s[field] ?? null));
    const res = await this.#db.query(INSERT_HEALTH, params);
    return res.affectedRows;
  }

  /** Raw readings of a node (optionally one device/metric) in [from, to), by time. */
  queryReadings(query: ReadingQuery & { bucket?: undefined }): Promise<ReadingRow[]>;
  /** Aggregated buckets of a node's series in [from, to), from the 1-minute continuous aggregate. */
  queryReadings(query: ReadingQuery & { bucket: Bucket }): Promise<ReadingBucketRow[]>;
  /** Raw readings, or buckets when `bucket` is set. */
  queryReadings(query: ReadingQuery): Promise<ReadingRow[] | ReadingBucketRow[]>;
  async queryReadings(query: ReadingQuery): Promise<ReadingRow[] | ReadingBucketRow[]> {
    requireNode(query.node);
    const limit = this.#limit(query.limit);
    const bucketS = query.bucket === undefined ? undefined : bucketSeconds(query.bucket);
    const range = this.#range(query, bucketS);
    const series = await this.#db.query<Pick<SeriesRow, 'id' | 'device_id' | 'metric' | 'datatype'>>(
      SELECT_SERIES,
      [query.node, query.device ?? null, query.metric ?? null],
    );
    const first = series.rows[0];
    if (first === undefined) return [];
    const byId = new Map(series.rows.map((s) => [s.id, s]));

    if (bucketS === undefined) {
      let res: { rows: RawRow[] };
      if (series.rows.length === 1) {
        res = await this.#db.query<RawRow>(SELECT_RAW_ONE, [first.id, range.from, range.to, limit]);
      } else {
        this.#checkRawRange(range, series.rows.length);
        res = await this.#db.query<RawRow>(SELECT_RAW, [[...byId.keys()], range.from, range.to, limit]);
      }
      return res.rows.map((row) => {
        const s = byId.get(row.series_id) ?? first;
        return {
          time: row.time,
          node: query.node,
          device: s.device_id,
          metric: s.metric,
          value: typedValue(s.datatype, row.value, row.text_value),
          quality: row.quality,
        };
      });
    }
    const sql = this.#db.features.timescale ? SELECT_BUCKETS_CAGG : SELECT_BUCKETS_RAW;
    const res = await this.#db.query<BucketSqlRow>(sql, [
      [...byId.keys()],
      `${bucketS} seconds`,
      range.from,
      range.to,
      limit,
    ]);
    return res.rows.map((row) => {
      const s = byId.get(row.series_id) ?? first;
      return {
        bucket: row.bucket,
        node: query.node,
        device: s.device_id,
        metric: s.metric,
        avg: row.avg,
        min: row.min,
        max: row.max,
        count: row.count,
        last: row.last,
      };
    });
  }

  /** Raw health samples of a node in [from, to), by time. */
  queryHealth(query: HealthQuery & { bucket?: undefined }): Promise<HealthRow[]>;
  /** Health buckets of a node in [from, to), from the 1-minute continuous aggregate. */
  queryHealth(query: HealthQuery & { bucket: Bucket }): Promise<HealthBucketRow[]>;
  /** Raw samples, or buckets when `bucket` is set. */
  queryHealth(query: HealthQuery): Promise<HealthRow[] | HealthBucketRow[]>;
  async queryHealth(query: HealthQuery): Promise<HealthRow[] | HealthBucketRow[]> {
    const { node } = query;
    requireNode(node);
    const limit = this.#limit(query.limit);
    const bucketS = query.bucket === undefined ? undefined : bucketSeconds(query.bucket);
    const range = this.#range(query, bucketS);
    if (bucketS === undefined) {
      // One node's samples come off the (node_id, time) index in order: no range limit needed.
      const res = await this.#db.query<HealthSqlRow>(SELECT_HEALTH_RAW, [node, range.from, range.to, limit]);
      return res.rows.map((row) => ({ time: row.time, node, ...healthValues(row) }));
    }
    const sql = this.#db.features.timescale ? SELECT_HEALTH_BUCKETS_CAGG : SELECT_HEALTH_BUCKETS_RAW;
    const res = await this.#db.query<HealthSqlRow>(sql, [
      node,
      `${bucketS} seconds`,
      range.from,
      range.to,
      limit,
    ]);
    return res.rows.map((row) => ({ bucket: row.bucket, node, samples: row.samples, ...healthValues(row) }));
  }

  async #upsertSeries(keys: SeriesKey[]): Promise<void> {
    // Same lock order in every hub: concurrent upserts of overlapping keys cannot deadlock.
    keys.sort((a, b) => compare(seriesCacheKey(a), seriesCacheKey(b)));
    const res = await this.#db.query<SeriesRow>(UPSERT_SERIES, [
      keys.map((k) => k.node),
      keys.map((k) => k.device),
      keys.map((k) => k.metric),
      keys.map((k) => k.datatype),
      keys.map((k) => k.unit ?? null),
    ]);
    for (const row of res.rows) {
      this.#cache.set(seriesCacheKey({ node: row.node_id, device: row.device_id, metric: row.metric }), {
        id: row.id,
        datatype: row.datatype,
        unit: row.unit,
      });
    }
    this.#logger.debug({ series: res.rows.length }, 'series resolved');
  }

  #limit(limit: number | undefined): number {
    const value = limit ?? this.#defaultLimit;
    if (!Number.isInteger(value) || value < 1 || value > this.#maxLimit) {
      throw new CitysenseError(
        'CS_ERR_QUERY_LIMIT',
        `limit must be an integer from 1 to ${this.#maxLimit}; got ${String(limit)}.`,
        400,
      );
    }
    return value;
  }

  /** Validated range as ISO strings; bucketed ranges widen to whole buckets so every engine agrees. */
  #range(range: TimeRange, bucketS: number | undefined): SqlRange {
    let from = toMs(range.from);
    let to = toMs(range.to);
    if (!Number.isFinite(from) || !Number.isFinite(to)) {
      throw new CitysenseError('CS_ERR_QUERY_RANGE', 'from and to must be valid times.', 400);
    }
    if (from > to) {
      throw new CitysenseError(
        'CS_ERR_QUERY_RANGE',
        `from (${new Date(from).toISOString()}) is after to (${new Date(to).toISOString()}).`,
        400,
      );
    }
    if (bucketS !== undefined) {
      if (to - from > this.#maxBucketedRangeMs) {
        throw new CitysenseError(
          'CS_ERR_QUERY_RANGE',
          `Range of ${hours(to - from)} h is too large for a bucketed query (max ${hours(this.#maxBucketedRangeMs)} h).`,
          400,
        );
      }
      const width = bucketS * 1000;
      from = ORIGIN_MS + Math.floor((from - ORIGIN_MS) / width) * width;
      to = ORIGIN_MS + Math.ceil((to - ORIGIN_MS) / width) * width;
    }
    return { from: new Date(from).toISOString(), to: new Date(to).toISOString(), spanMs: to - from };
  }

  /** A raw read over several series sorts every row in range: bound the range. */
  #checkRawRange(range: SqlRange, series: number): void {
    if (range.spanMs <= this.#maxRawRangeMs) return;
    throw new CitysenseError(
      'CS_ERR_QUERY_RANGE',
      `Range of ${hours(range.spanMs)} h is too large for a raw query over ${series} series ` +
        `(max ${hours(this.#maxRawRangeMs)} h): name one device and metric, shorten the range, or ask for a bucket such as 1m or 1h.`,
      400,
    );
  }
}

/** Seconds of a bucket label or number; throws CS_ERR_QUERY_BUCKET unless a positive multiple of 60. */
export function bucketSeconds(bucket: Bucket): number {
  const seconds = typeof bucket === 'number' ? bucket : BUCKET_SECONDS[bucket];
  if (seconds === undefined || !Number.isInteger(seconds) || seconds < 60 || seconds % 60 !== 0) {
    throw new CitysenseError(
      'CS_ERR_QUERY_BUCKET',
      `Bucket ${String(bucket)} is not supported: use 1m, 5m, 15m, 1h, 1d or a whole number of minutes in seconds.`,
      400,
    );
  }
  return seconds;
}

/** Cache key of a series. */
function seriesCacheKey(key: Pick<SeriesKey, 'node' | 'device' | 'metric'>): string {
  return `${key.node}\u0000${key.device}\u0000${key.metric}`;
}

function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

function hours(ms: number): number {
  return Math.round(ms / 3_600_000);
}

function requireNode(node: unknown): void {
  if (typeof node !== 'string' || node === '') {
    throw new CitysenseError('CS_ERR_QUERY_INVALID', 'A query needs a node id.', 400);
  }
}

function toMs(t: Date | number): number {
  return t instanceof Date ? t.getTime() : typeof t === 'number' ? t : Number.NaN;
}

/** The stored columns as the series' datatype: strings from text_value, booleans from 0/1. */
function typedValue(datatype: number, value: number | null, text: string | null): ReadingValue {
  if (TEXT_TYPES.has(datatype)) return text;
  if (datatype === DataType.Boolean) return value === null ? null : value !== 0;
  return value;
}

function healthValues(row: HealthSqlRow): HealthValues {
  const values = {} as HealthValues;
  for (const [field, col] of HEALTH_COLUMNS) values[field] = row[col] ?? null;
  return values;
}
