/**
 * Storage of video analytics frames from edge algorithms: a stream dictionary
 * (node × source × algorithm version → int id), every analysed frame, and one
 * row per detected object. Inserts are idempotent on (stream, time[, ordinal]),
 * so spool replays never duplicate. Same SQL on embedded TimescaleDB and pg.
 */
import { CitysenseError, type EdgeAlert, type VideoAnalyticsFrame } from '@citysense/protocol';
import type { Database } from '../storage/database.ts';
import { type Bucket, bucketSeconds } from '../telemetry/reading-store.ts';

/** A frame as received from a node. */
export interface NodeFrame {
  nodeId: string;
  frame: VideoAnalyticsFrame;
}

/** An alert as received from a node. */
export interface NodeAlert {
  nodeId: string;
  alert: EdgeAlert;
}

/** Which alerts to read. */
export interface AlertQuery {
  from: Date;
  to: Date;
  node?: string | undefined;
  source?: string | undefined;
  rule?: string | undefined;
  severity?: string | undefined;
  limit?: number | undefined;
}

/** One stored alert. */
export interface AlertRow extends Omit<EdgeAlert, 'utcTimeMs'> {
  time: Date;
  node: string;
}

/** What to read. `from` inclusive, `to` exclusive. */
export interface DetectionQuery {
  from: Date;
  to: Date;
  node?: string | undefined;
  source?: string | undefined;
  label?: string | undefined;
  limit?: number | undefined;
}

/** One stored detection. */
export interface DetectionRow {
  time: Date;
  node: string;
  source: string;
  algorithmId: string;
  algorithmVersion: string;
  label: string;
  classId: number;
  likelihood: number;
  box: { left: number; top: number; right: number; bottom: number };
  objectId: number;
}

/** Objects of one label counted per time bucket. */
export interface DetectionCountRow {
  bucket: Date;
  label: string;
  /** Objects seen in the bucket (summed over frames). */
  objects: number;
  /** Frames of the bucket in which the label appeared. */
  frames: number;
  /** Most objects of the label in one frame of the bucket. */
  peak: number;
}

const MAX_LIMIT = 100_000;
const ORIGIN_SQL = `TIMESTAMPTZ '2000-01-01 00:00:00+00'`;

const UPSERT_STREAMS = `INSERT INTO analytics_streams (node_id, source, algorithm_id, algorithm_version)
SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[])
ON CONFLICT (node_id, source, algorithm_id, algorithm_version) DO UPDATE SET node_id = EXCLUDED.node_id
RETURNING id, node_id, source, algorithm_id, algorithm_version`;

const INSERT_FRAMES = `INSERT INTO analytics_frames (time, stream_id, frame_width, frame_height, object_count, infer_ms)
SELECT to_timestamp(t / 1000.0), s, w, h, n, ms
  FROM unnest($1::float8[], $2::int4[], $3::int4[], $4::int4[], $5::int4[], $6::float4[]) AS u(t, s, w, h, n, ms)
ON CONFLICT DO NOTHING`;

const INSERT_DETECTIONS = `INSERT INTO detections
  (time, stream_id, ordinal, label, class_id, likelihood, box_left, box_top, box_right, box_bottom, object_id)
SELECT to_timestamp(t / 1000.0), s, o, l, c, p, x1, y1, x2, y2, k
  FROM unnest($1::float8[], $2::int4[], $3::int2[], $4::text[], $5::int4[], $6::float4[],
              $7::float4[], $8::float4[], $9::float4[], $10::float4[], $11::int4[])
       AS u(t, s, o, l, c, p, x1, y1, x2, y2, k)
ON CONFLICT DO NOTHING`;

const FILTER = `d.time >= $1 AND d.time < $2
   AND ($3::text IS NULL OR s.node_id = $3)
   AND ($4::text IS NULL OR s.source = $4)
   AND ($5::text IS NULL OR d.label = $5)`;

const SELECT_DETECTIONS = `SELECT d.time, s.node_id, s.source, s.algorithm_id, s.algorithm_version, d.label, d.class_id,
       d.likelihood, d.box_left, d.box_top, d.box_right, d.box_bottom, d.object_id
  FROM detections d JOIN analytics_streams s ON s.id = d.stream_id
 WHERE ${FILTER}
 ORDER BY d.time, d.stream_id, d.ordinal
 LIMIT $6`;

const SELECT_COUNTS = `SELECT date_bin($6::interval, f.time, ${ORIGIN_SQL}) AS bucket, f.label,
       sum(f.n)::int AS objects, count(*)::int AS frames, max(f.n)::int AS peak
  FROM (SELECT d.time, d.stream_id, d.label, count(*) AS n
          FROM detections d JOIN analytics_streams s ON s.id = d.stream_id
         WHERE ${FILTER}
         GROUP BY d.time, d.stream_id, d.label) f
 GROUP BY 1, 2
 ORDER BY 1, 2
 LIMIT $7`;

const INSERT_ALERTS = `INSERT INTO edge_alerts
  (time, node_id, source, rule_id, kind, severity, algorithm_id, algorithm_version, object_count, held_seconds,
   message, objects)
SELECT to_timestamp(t / 1000.0), n, s, r, k, v, a, av, c, h, m, o::jsonb
  FROM unnest($1::float8[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[],
              $9::int4[], $10::float4[], $11::text[], $12::text[]) AS u(t, n, s, r, k, v, a, av, c, h, m, o)
ON CONFLICT DO NOTHING`;

const SELECT_ALERTS = `SELECT time, node_id, source, rule_id, kind, severity, algorithm_id, algorithm_version,
       object_count, held_seconds, message, objects
  FROM edge_alerts
 WHERE time >= $1 AND time < $2
   AND ($3::text IS NULL OR node_id = $3)
   AND ($4::text IS NULL OR source = $4)
   AND ($5::text IS NULL OR rule_id = $5)
   AND ($6::text IS NULL OR severity = $6)
 ORDER BY time DESC
 LIMIT $7`;

interface AlertSqlRow {
  time: Date;
  node_id: string;
  source: string;
  rule_id: string;
  kind: EdgeAlert['kind'];
  severity: EdgeAlert['severity'];
  algorithm_id: string;
  algorithm_version: string;
  object_count: number;
  held_seconds: number;
  message: string;
  objects: EdgeAlert['objects'] | string;
}

interface StreamRow {
  id: number;
  node_id: string;
  source: string;
  algorithm_id: string;
  algorithm_version: string;
}

interface DetectionSqlRow {
  time: Date;
  node_id: string;
  source: string;
  algorithm_id: string;
  algorithm_version: string;
  label: string;
  class_id: number;
  likelihood: number;
  box_left: number;
  box_top: number;
  box_right: number;
  box_bottom: number;
  object_id: number;
}

/** Reads and writes video analytics. */
export class AnalyticsStore {
  readonly #db: Database;
  readonly #streams = new Map<string, number>();

  constructor(db: Database) {
    this.#db = db;
  }

  /** Inserts frames and their objects (two statements); replays are skipped. Returns frames inserted. */
  async insertFrames(frames: readonly NodeFrame[]): Promise<number> {
    if (frames.length === 0) return 0;
    const ids = await this.#resolveStreams(frames);
    const f = {
      t: [] as number[],
      s: [] as number[],
      w: [] as number[],
      h: [] as number[],
      n: [] as number[],
    };
    const ms: number[] = [];
    const d = {
      t: [] as number[],
      s: [] as number[],
      o: [] as number[],
      l: [] as string[],
      c: [] as number[],
      p: [] as number[],
      x1: [] as number[],
      y1: [] as number[],
      x2: [] as number[],
      y2: [] as number[],
      k: [] as number[],
    };
    frames.forEach(({ frame }, i) => {
      const stream = ids[i] ?? 0;
      f.t.push(frame.utcTimeMs);
      f.s.push(stream);
      f.w.push(frame.frameWidth);
      f.h.push(frame.frameHeight);
      f.n.push(frame.objects.length);
      ms.push(frame.inferMs);
      frame.objects.forEach((o, ordinal) => {
        d.t.push(frame.utcTimeMs);
        d.s.push(stream);
        d.o.push(ordinal);
        d.l.push(o.label);
        d.c.push(o.classId);
        d.p.push(o.likelihood);
        d.x1.push(o.box.left);
        d.y1.push(o.box.top);
        d.x2.push(o.box.right);
        d.y2.push(o.box.bottom);
        d.k.push(o.objectId);
      });
    });
    const inserted = await this.#db.query(INSERT_FRAMES, [f.t, f.s, f.w, f.h, f.n, ms]);
    if (d.t.length > 0)
      await this.#db.query(INSERT_DETECTIONS, [d.t, d.s, d.o, d.l, d.c, d.p, d.x1, d.y1, d.x2, d.y2, d.k]);
    return inserted.affectedRows;
  }

  /** Inserts alerts in one statement; replays (same node, source, rule and time) are skipped. */
  async insertAlerts(alerts: readonly NodeAlert[]): Promise<number> {
    if (alerts.length === 0) return 0;
    const col = <T>(f: (a: NodeAlert) => T) => alerts.map(f);
    const res = await this.#db.query(INSERT_ALERTS, [
      col((a) => a.alert.utcTimeMs),
      col((a) => a.nodeId),
      col((a) => a.alert.source),
      col((a) => a.alert.ruleId),
      col((a) => a.alert.kind),
      col((a) => a.alert.severity),
      col((a) => a.alert.algorithmId),
      col((a) => a.alert.algorithmVersion),
      col((a) => a.alert.count),
      col((a) => a.alert.heldSeconds),
      col((a) => a.alert.message),
      col((a) => JSON.stringify(a.alert.objects)),
    ]);
    return res.affectedRows;
  }

  /** Alerts in [from, to), newest first. */
  async queryAlerts(q: AlertQuery): Promise<AlertRow[]> {
    if (!(q.from < q.to)) throw new CitysenseError('CS_ERR_QUERY_RANGE', '`from` must be before `to`', 400);
    const res = await this.#db.query<AlertSqlRow>(SELECT_ALERTS, [
      q.from,
      q.to,
      q.node ?? null,
      q.source ?? null,
      q.rule ?? null,
      q.severity ?? null,
      limitOf(q.limit),
    ]);
    return res.rows.map((r) => ({
      time: r.time,
      node: r.node_id,
      source: r.source,
      ruleId: r.rule_id,
      kind: r.kind,
      severity: r.severity,
      algorithmId: r.algorithm_id,
      algorithmVersion: r.algorithm_version,
      count: r.object_count,
      heldSeconds: r.held_seconds,
      message: r.message,
      objects: typeof r.objects === 'string' ? (JSON.parse(r.objects) as EdgeAlert['objects']) : r.objects,
    }));
  }

  /** Detections in [from, to), oldest first, filtered by node, source and label. */
  async queryDetections(q: DetectionQuery): Promise<DetectionRow[]> {
    const res = await this.#db.query<DetectionSqlRow>(SELECT_DETECTIONS, [
      ...filterParams(q),
      limitOf(q.limit),
    ]);
    return res.rows.map((r) => ({
      time: r.time,
      node: r.node_id,
      source: r.source,
      algorithmId: r.algorithm_id,
      algorithmVersion: r.algorithm_version,
      label: r.label,
      classId: r.class_id,
      likelihood: r.likelihood,
      box: { left: r.box_left, top: r.box_top, right: r.box_right, bottom: r.box_bottom },
      objectId: r.object_id,
    }));
  }

  /** Objects per label and time bucket: how many, in how many frames, the most in one frame. */
  async countDetections(q: DetectionQuery & { bucket: Bucket }): Promise<DetectionCountRow[]> {
    const seconds = bucketSeconds(q.bucket);
    const res = await this.#db.query<DetectionCountRow>(SELECT_COUNTS, [
      ...filterParams(q),
      `${seconds} seconds`,
      limitOf(q.limit),
    ]);
    return res.rows;
  }

  async #resolveStreams(frames: readonly NodeFrame[]): Promise<number[]> {
    const keyOf = (n: NodeFrame) =>
      `${n.nodeId}\u0000${n.frame.source}\u0000${n.frame.algorithmId}\u0000${n.frame.algorithmVersion}`;
    const missing = new Map<string, NodeFrame>();
    for (const n of frames) if (!this.#streams.has(keyOf(n))) missing.set(keyOf(n), n);
    if (missing.size > 0) {
      const list = [...missing.values()];
      const res = await this.#db.query<StreamRow>(UPSERT_STREAMS, [
        list.map((n) => n.nodeId),
        list.map((n) => n.frame.source),
        list.map((n) => n.frame.algorithmId),
        list.map((n) => n.frame.algorithmVersion),
      ]);
      for (const r of res.rows)
        this.#streams.set(
          `${r.node_id}\u0000${r.source}\u0000${r.algorithm_id}\u0000${r.algorithm_version}`,
          r.id,
        );
    }
    return frames.map((n) => this.#streams.get(keyOf(n)) ?? 0);
  }
}

function filterParams(q: DetectionQuery): unknown[] {
  if (!(q.from < q.to)) throw new CitysenseError('CS_ERR_QUERY_RANGE', '`from` must be before `to`', 400);
  return [q.from, q.to, q.node ?? null, q.source ?? null, q.label ?? null];
}

function limitOf(limit: number | undefined): number {
  const n = limit ?? 10_000;
  if (!Number.isInteger(n) || n < 1 || n > MAX_LIMIT)
    throw new CitysenseError('CS_ERR_QUERY_LIMIT', `limit must be 1–${MAX_LIMIT}`, 400);
  return n;
}
