-- The sensor ledger (一套台账): every camera and sensor with its unified code and lifecycle,
-- the hash-chained signed filing log (上链备案) and the webhook outbox cursor. Plain tables on
-- every engine: the ledger is small and relational, not a time series.

-- @all
CREATE TABLE ledger_devices (
  -- Unified code: GB/T 28181 20-digit ID (centre 8 + industry 2 + type 3 + network 1 + serial 6).
  code text PRIMARY KEY CHECK (code ~ '^[0-9]{20}$'),
  kind text NOT NULL,
  model text,
  vendor text,
  owner_agency text NOT NULL,
  pole_id text,
  -- WGS84 degrees.
  longitude double precision NOT NULL CHECK (longitude BETWEEN -180 AND 180),
  latitude double precision NOT NULL CHECK (latitude BETWEEN -90 AND 90),
  installed_on date,
  -- GB 35114 level of a video device: A, B, C or none.
  gb35114_level text CHECK (gb35114_level IN ('A', 'B', 'C', 'none')),
  network text,
  data_items text[] NOT NULL DEFAULT '{}',
  state text NOT NULL CHECK (state IN ('proposed', 'in-review', 'approved', 'installed', 'active', 'maintenance', 'retired')),
  -- Latest time of each state reached, {"proposed": "2026-…Z", …}; the full history is the chain.
  state_times jsonb NOT NULL,
  -- Active devices of the same kind within the duplicate radius when it was proposed.
  duplicates text[] NOT NULL DEFAULT '{}',
  resolution text CHECK (resolution IN ('reuse', 'justify')),
  reuse_of text,
  justification text,
  -- Sequence of the chain entry that filed this row's current content.
  change_seq bigint NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now()
);
-- Duplicate-build lookup: kind + bounding box on a btree, only over devices that exist on the street.
CREATE INDEX ledger_devices_standing_position ON ledger_devices (kind, latitude, longitude)
  WHERE state IN ('active', 'maintenance');
CREATE INDEX ledger_devices_change_seq ON ledger_devices (change_seq);
CREATE INDEX ledger_devices_owner ON ledger_devices (owner_agency);

-- Next serial per code prefix (centre + industry + type + network, 14 digits).
CREATE TABLE ledger_code_serials (
  prefix text PRIMARY KEY CHECK (prefix ~ '^[0-9]{14}$'),
  last_serial int NOT NULL
);

-- The filing log: append-only, hash-chained, each hash signed by the centre key.
CREATE TABLE ledger_chain (
  seq bigint PRIMARY KEY,
  time timestamptz NOT NULL,
  action text NOT NULL,
  device_code text NOT NULL,
  -- Canonical JSON (sorted keys) exactly as hashed; text, not jsonb, so no byte changes.
  content text NOT NULL,
  prev_hash text NOT NULL,
  hash text NOT NULL,
  signature text NOT NULL,
  signature_algorithm text NOT NULL,
  key_fingerprint text NOT NULL
);
CREATE INDEX ledger_chain_device ON ledger_chain (device_code, seq);

-- One row: the chain head. Every ledger write locks it, which serialises appends across hubs.
CREATE TABLE ledger_chain_head (
  id boolean PRIMARY KEY DEFAULT true CHECK (id),
  seq bigint NOT NULL,
  hash text NOT NULL
);
INSERT INTO ledger_chain_head (id, seq, hash) VALUES (true, 0, repeat('0', 64));

-- Webhook outbox: the chain is the queue, this row is how far the target has acknowledged.
CREATE TABLE ledger_webhook_outbox (
  target text PRIMARY KEY,
  delivered_seq bigint NOT NULL DEFAULT 0,
  attempts int NOT NULL DEFAULT 0,
  next_attempt_at timestamptz,
  last_error text,
  updated_at timestamptz NOT NULL DEFAULT now()
);
