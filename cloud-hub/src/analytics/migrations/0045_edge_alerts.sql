-- Alerts nodes raised from their local rules ("alert on the device"), kept for review.
-- Sections: -- @timescaledb runs only with TimescaleDB, -- @plain only without it, -- @all always.

-- @all
CREATE TABLE edge_alerts (
  time timestamptz NOT NULL,
  node_id text NOT NULL,
  source text NOT NULL,
  rule_id text NOT NULL,
  kind text NOT NULL,
  severity text NOT NULL,
  algorithm_id text NOT NULL,
  algorithm_version text NOT NULL,
  object_count int NOT NULL,
  held_seconds real NOT NULL,
  message text NOT NULL,
  objects jsonb NOT NULL DEFAULT '[]'::jsonb
);
-- A replayed alert (spool resend) is the same alert.
CREATE UNIQUE INDEX edge_alerts_key ON edge_alerts (node_id, source, rule_id, time);
CREATE INDEX edge_alerts_severity_time ON edge_alerts (severity, time DESC);

-- @timescaledb
SELECT create_hypertable('edge_alerts', 'time', chunk_time_interval => INTERVAL '7 days');
SELECT add_retention_policy('edge_alerts', INTERVAL '365 days');
