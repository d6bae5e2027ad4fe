-- The runtime obeys the ledger: data refused because a device's ledger entry is not in an
-- admitted state, one row per device, refusal code and channel, so its owner sees why and
-- how often. Counts are added in batches (upsert); times are those of the refusals.

-- @all
CREATE TABLE ledger_refusals (
  -- The device's unified code (GB/T 28181 20-digit ID); it may be missing from the ledger.
  device_code text NOT NULL CHECK (device_code ~ '^[0-9]{20}$'),
  -- Stable refusal code, e.g. CS_ERR_LEDGER_NOT_ACTIVE.
  code text NOT NULL,
  -- 'video' (GB/T 28181 REGISTER) or 'sensor' (Sparkplug values).
  channel text NOT NULL CHECK (channel IN ('video', 'sensor')),
  -- What the owner should do, as of the last refusal.
  reason text NOT NULL,
  -- Who sent the refused data last: the SIP peer or the Sparkplug edge node.
  source text NOT NULL,
  -- Refused REGISTER requests (video) or dropped values (sensor).
  count bigint NOT NULL CHECK (count > 0),
  first_at timestamptz NOT NULL,
  last_at timestamptz NOT NULL,
  PRIMARY KEY (device_code, code, channel)
);
