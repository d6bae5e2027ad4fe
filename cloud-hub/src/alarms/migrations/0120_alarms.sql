-- Hub rules engine: alarm rules, tiered alarms with their full history, and the outbox of
-- webhook notifications. Plain tables on every engine: alarms are few and relational.

-- @all
CREATE TABLE alarm_rules (
  id text PRIMARY KEY,
  name text NOT NULL,
  enabled boolean NOT NULL DEFAULT true,
  severity text NOT NULL CHECK (severity IN ('critical', 'major', 'minor', 'warning')),
  -- Owner agency; NULL = platform-wide.
  agency_id text,
  -- {"scope": …, "condition": …, "message": …, "webhookUrl": …} as validated by alarms/rules.ts.
  definition jsonb NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE alarms (
  id uuid PRIMARY KEY,
  rule_id text NOT NULL,
  rule_name text NOT NULL,
  node_id text NOT NULL,
  -- '' for node-level metrics (health).
  device text NOT NULL,
  metric text NOT NULL,
  severity text NOT NULL CHECK (severity IN ('critical', 'major', 'minor', 'warning')),
  -- 0 = critical … 3 = warning, for ordering.
  severity_rank smallint NOT NULL,
  agency_id text,
  state text NOT NULL CHECK (state IN ('active', 'acknowledged', 'cleared')),
  message text,
  -- Times the condition was seen while the alarm was open (de-duplicated raises).
  count integer NOT NULL DEFAULT 1,
  first_value double precision,
  last_value double precision,
  raised_at timestamptz NOT NULL,
  last_at timestamptz NOT NULL,
  acknowledged_at timestamptz,
  acknowledged_by text,
  ack_comment text,
  cleared_at timestamptz,
  cleared_by text,
  clear_reason text
);
-- De-duplication: at most one open alarm per (rule, node, device, metric).
CREATE UNIQUE INDEX alarms_open_key ON alarms (rule_id, node_id, device, metric) WHERE state <> 'cleared';
CREATE INDEX alarms_raised ON alarms (raised_at DESC);
CREATE INDEX alarms_node ON alarms (node_id, raised_at DESC);

-- Every transition of every alarm, in order.
CREATE TABLE alarm_events (
  id bigserial PRIMARY KEY,
  alarm_id uuid NOT NULL REFERENCES alarms (id),
  time timestamptz NOT NULL,
  transition text NOT NULL CHECK (transition IN ('raised', 'acknowledged', 'cleared')),
  actor text,
  comment text,
  value double precision
);
CREATE INDEX alarm_events_alarm ON alarm_events (alarm_id, id);

-- Webhook outbox: one row per (event, target); the alarm never depends on delivery.
CREATE TABLE alarm_webhook_deliveries (
  id bigserial PRIMARY KEY,
  event_id bigint NOT NULL REFERENCES alarm_events (id),
  alarm_id uuid NOT NULL,
  target text NOT NULL,
  -- The exact JSON body, so every retry sends (and signs) the same bytes.
  body text NOT NULL,
  state text NOT NULL CHECK (state IN ('pending', 'delivered', 'failed')),
  attempts integer NOT NULL DEFAULT 0,
  next_attempt_at timestamptz NOT NULL DEFAULT now(),
  last_error text,
  delivered_at timestamptz,
  created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX alarm_webhook_due ON alarm_webhook_deliveries (next_attempt_at) WHERE state = 'pending';
CREATE INDEX alarm_webhook_alarm ON alarm_webhook_deliveries (alarm_id, id);
