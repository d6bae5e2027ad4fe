-- Telemetry: the series dictionary, raw readings, node health, and 1-minute rollups.
-- Sections: -- @timescaledb runs only with TimescaleDB, -- @plain only without it, -- @all always.
-- Runs inside one transaction: continuous aggregates are created WITH NO DATA and
-- filled by their refresh policy (StorageMaintenance on the embedded engine).

-- @all
-- One row per Sparkplug metric of a node or device (device_id '' = node-level metric).
CREATE TABLE series (
  id serial PRIMARY KEY,
  node_id text NOT NULL,
  device_id text NOT NULL DEFAULT '',
  metric text NOT NULL,
  datatype smallint NOT NULL, -- Sparkplug 3.0 §6.4.16 datatype code
  unit text,
  created_at timestamptz NOT NULL DEFAULT now(),
  UNIQUE (node_id, device_id, metric)
);

-- Numbers and booleans (0/1) in value, strings in text_value.
-- quality: 192 good, 64 uncertain, 0 bad (OPC DA codes carried by Sparkplug hosts).
CREATE TABLE readings (
  time timestamptz NOT NULL,
  series_id int NOT NULL,
  value double precision,
  text_value text,
  quality smallint NOT NULL DEFAULT 192
);
-- Includes the time column (required by hypertables); makes spool replays idempotent via ON CONFLICT DO NOTHING.
CREATE UNIQUE INDEX readings_series_time_key ON readings (series_id, time);

CREATE TABLE node_health (
  time timestamptz NOT NULL,
  node_id text NOT NULL,
  cpu_percent double precision,
  memory_percent double precision,
  disk_percent double precision,
  temperature_c double precision,
  uptime_s double precision,
  spool_bytes double precision,
  spool_records double precision,
  spool_age_s double precision,
  dropped_records double precision,
  link_rtt_ms double precision
);
CREATE UNIQUE INDEX node_health_node_time_key ON node_health (node_id, time);

-- @timescaledb
-- The classic create_hypertable signature works on every TimescaleDB 2.x server.
SELECT create_hypertable('readings', 'time', chunk_time_interval => INTERVAL '1 day');
ALTER TABLE readings SET (
  timescaledb.compress,
  timescaledb.compress_segmentby = 'series_id',
  timescaledb.compress_orderby = 'time'
);
SELECT add_compression_policy('readings', INTERVAL '7 days');
SELECT add_retention_policy('readings', INTERVAL '365 days');

-- Real-time aggregate (materialized_only = false): rows newer than the last refresh are
-- aggregated on the fly. sum and value_count let readers re-bucket avg exactly.
CREATE MATERIALIZED VIEW readings_1m
WITH (timescaledb.continuous, timescaledb.materialized_only = false) AS
SELECT time_bucket(INTERVAL '1 minute', time) AS bucket,
       series_id,
       avg(value) AS avg,
       min(value) AS min,
       max(value) AS max,
       count(*) AS count,
       last(value, time) AS last,
       sum(value) AS sum,
       count(value) AS value_count
  FROM readings
 GROUP BY bucket, series_id
WITH NO DATA;
-- A 30-day window so that edge spool replays after long outages reach the aggregate too.
SELECT add_continuous_aggregate_policy('readings_1m',
  start_offset => INTERVAL '30 days',
  end_offset => INTERVAL '1 minute',
  schedule_interval => INTERVAL '1 minute');

SELECT create_hypertable('node_health', 'time', chunk_time_interval => INTERVAL '1 day');
ALTER TABLE node_health SET (
  timescaledb.compress,
  timescaledb.compress_segmentby = 'node_id',
  timescaledb.compress_orderby = 'time'
);
SELECT add_compression_policy('node_health', INTERVAL '7 days');
SELECT add_retention_policy('node_health', INTERVAL '90 days');

CREATE MATERIALIZED VIEW node_health_1m
WITH (timescaledb.continuous, timescaledb.materialized_only = false) AS
SELECT time_bucket(INTERVAL '1 minute', time) AS bucket,
       node_id,
       count(*) AS samples,
       avg(cpu_percent) AS cpu_percent,
       avg(memory_percent) AS memory_percent,
       avg(disk_percent) AS disk_percent,
       avg(temperature_c) AS temperature_c,
       max(uptime_s) AS uptime_s,
       max(spool_bytes) AS spool_bytes,
       max(spool_records) AS spool_records,
       max(spool_age_s) AS spool_age_s,
       max(dropped_records) AS dropped_records,
       avg(link_rtt_ms) AS link_rtt_ms
  FROM node_health
 GROUP BY bucket, node_id
WITH NO DATA;
SELECT add_continuous_aggregate_policy('node_health_1m',
  start_offset => INTERVAL '30 days',
  end_offset => INTERVAL '1 minute',
  schedule_interval => INTERVAL '1 minute');

-- @plain
-- Plain PostgreSQL (14+ for date_bin): the same columns, computed on every read.
CREATE VIEW readings_1m AS
SELECT date_bin(INTERVAL '1 minute', time, TIMESTAMPTZ '2000-01-01 00:00:00+00') AS bucket,
       series_id,
       avg(value) AS avg,
       min(value) AS min,
       max(value) AS max,
       count(*) AS count,
       (array_agg(value ORDER BY time DESC))[1] AS last,
       sum(value) AS sum,
       count(value) AS value_count
  FROM readings
 GROUP BY 1, series_id;

CREATE VIEW node_health_1m AS
SELECT date_bin(INTERVAL '1 minute', time, TIMESTAMPTZ '2000-01-01 00:00:00+00') AS bucket,
       node_id,
       count(*) AS samples,
       avg(cpu_percent) AS cpu_percent,
       avg(memory_percent) AS memory_percent,
       avg(disk_percent) AS disk_percent,
       avg(temperature_c) AS temperature_c,
       max(uptime_s) AS uptime_s,
       max(spool_bytes) AS spool_bytes,
       max(spool_records) AS spool_records,
       max(spool_age_s) AS spool_age_s,
       max(dropped_records) AS dropped_records,
       avg(link_rtt_ms) AS link_rtt_ms
  FROM node_health
 GROUP BY 1, node_id;
