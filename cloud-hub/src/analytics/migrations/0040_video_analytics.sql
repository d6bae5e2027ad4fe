-- Video analytics: what edge algorithms saw, frame by frame (ONVIF Profile M style).
-- Sections: -- @timescaledb runs only with TimescaleDB, -- @plain only without it, -- @all always.

-- @all
-- One row per (node, video source, algorithm version): the stream dictionary keeps
-- the hypertables narrow and makes replays idempotent on (stream_id, time).
CREATE TABLE analytics_streams (
  id serial PRIMARY KEY,
  node_id text NOT NULL,
  source text NOT NULL,
  algorithm_id text NOT NULL,
  algorithm_version text NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now(),
  UNIQUE (node_id, source, algorithm_id, algorithm_version)
);

-- Every analysed frame, also those with no object: "nothing seen" is an answer too.
CREATE TABLE analytics_frames (
  time timestamptz NOT NULL,
  stream_id int NOT NULL,
  frame_width int NOT NULL,
  frame_height int NOT NULL,
  object_count int NOT NULL,
  infer_ms real NOT NULL
);
CREATE UNIQUE INDEX analytics_frames_stream_time_key ON analytics_frames (stream_id, time);

-- One row per object; box normalised to 0..1 of the frame, origin top-left.
CREATE TABLE detections (
  time timestamptz NOT NULL,
  stream_id int NOT NULL,
  ordinal smallint NOT NULL, -- position of the object in its frame
  label text NOT NULL,
  class_id int NOT NULL,
  likelihood real NOT NULL,
  box_left real NOT NULL,
  box_top real NOT NULL,
  box_right real NOT NULL,
  box_bottom real NOT NULL,
  object_id int NOT NULL DEFAULT 0
);
CREATE UNIQUE INDEX detections_stream_time_ordinal_key ON detections (stream_id, time, ordinal);
CREATE INDEX detections_label_time ON detections (label, time DESC);

-- @timescaledb
SELECT create_hypertable('analytics_frames', 'time', chunk_time_interval => INTERVAL '1 day');
ALTER TABLE analytics_frames SET (
  timescaledb.compress,
  timescaledb.compress_segmentby = 'stream_id',
  timescaledb.compress_orderby = 'time'
);
SELECT add_compression_policy('analytics_frames', INTERVAL '7 days');
SELECT add_retention_policy('analytics_frames', INTERVAL '90 days');

SELECT create_hypertable('detections', 'time', chunk_time_interval => INTERVAL '1 day');
ALTER TABLE detections SET (
  timescaledb.compress,
  timescaledb.compress_segmentby = 'stream_id',
  timescaledb.compress_orderby = 'time, ordinal'
);
SELECT add_compression_policy('detections', INTERVAL '7 days');
SELECT add_retention_policy('detections', INTERVAL '90 days');
