-- GB/T 28181 video access: devices admitted to register, their channels, online/offline
-- history and alarms. Sections: -- @timescaledb runs only with TimescaleDB, -- @plain only
-- without it, -- @all always.

-- @all
CREATE TABLE video_devices (
  device_id text PRIMARY KEY,
  -- Admitted by an operator (ledger) or by auto-accept; only admitted devices register.
  admitted boolean NOT NULL DEFAULT false,
  name text,
  manufacturer text,
  model text,
  firmware text,
  channel_count int,
  transport text,
  address text,
  port int,
  user_agent text,
  online boolean NOT NULL DEFAULT false,
  registered_at timestamptz,
  expires_at timestamptz,
  last_keepalive_at timestamptz,
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE video_channels (
  device_id text NOT NULL REFERENCES video_devices (device_id) ON DELETE CASCADE,
  channel_id text NOT NULL,
  name text,
  manufacturer text,
  model text,
  owner text,
  civil_code text,
  address text,
  parent_id text,
  status text,
  -- WGS84 degrees.
  longitude double precision,
  latitude double precision,
  updated_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (device_id, channel_id)
);
CREATE INDEX video_channels_channel ON video_channels (channel_id);

CREATE TABLE video_device_events (
  time timestamptz NOT NULL,
  device_id text NOT NULL,
  online boolean NOT NULL,
  reason text NOT NULL
);
CREATE INDEX video_device_events_device_time ON video_device_events (device_id, time DESC);

CREATE TABLE video_alarms (
  time timestamptz NOT NULL,
  device_id text NOT NULL,
  priority smallint NOT NULL,
  method smallint NOT NULL,
  alarm_type text,
  description text NOT NULL,
  -- As the device sent it (local time, no zone).
  alarm_time text NOT NULL,
  longitude double precision,
  latitude double precision
);
CREATE INDEX video_alarms_device_time ON video_alarms (device_id, time DESC);

-- @timescaledb
SELECT create_hypertable('video_device_events', 'time', chunk_time_interval => INTERVAL '7 days');
SELECT add_retention_policy('video_device_events', INTERVAL '365 days');
SELECT create_hypertable('video_alarms', 'time', chunk_time_interval => INTERVAL '7 days');
SELECT add_retention_policy('video_alarms', INTERVAL '365 days');
