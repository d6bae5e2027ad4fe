-- Carriers (001 Art. 46): lamp and traffic poles that other agencies' devices mount on,
-- the capacity booked on them, and the mount applications their owners decide.
-- What is mounted is read through from the ledger (ledger_devices.pole_id) and the node
-- registry (nodes.pole_id); only bookings made here live here.

-- @all
CREATE TABLE carrier_poles (
  id text PRIMARY KEY CHECK (id ~ '^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$'),
  kind text NOT NULL CHECK (kind IN ('lamp', 'traffic', 'other')),
  owner_agency text NOT NULL REFERENCES agencies (id),
  -- WGS84 degrees.
  longitude double precision NOT NULL CHECK (longitude BETWEEN -180 AND 180),
  latitude double precision NOT NULL CHECK (latitude BETWEEN -90 AND 90),
  road text,
  address text,
  power_status text NOT NULL DEFAULT 'unknown' CHECK (power_status IN ('ok', 'fault', 'unknown')),
  -- Power the owner offers to mounted equipment, and how much of it approved mounts booked.
  power_budget_w double precision NOT NULL CHECK (power_budget_w >= 0),
  power_booked_w double precision NOT NULL DEFAULT 0 CHECK (power_booked_w >= 0),
  network_kind text NOT NULL DEFAULT 'none' CHECK (network_kind IN ('fibre', '4G', '5G', 'none')),
  network_status text NOT NULL DEFAULT 'unknown' CHECK (network_status IN ('up', 'down', 'unknown')),
  slots integer NOT NULL CHECK (slots >= 0),
  slots_booked integer NOT NULL DEFAULT 0 CHECK (slots_booked >= 0),
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now(),
  -- The last guard against over-commitment; approvals check free capacity in their UPDATE first.
  CONSTRAINT carrier_poles_power_fits CHECK (power_booked_w <= power_budget_w),
  CONSTRAINT carrier_poles_slots_fit CHECK (slots_booked <= slots)
);
CREATE INDEX carrier_poles_position ON carrier_poles (latitude, longitude);
CREATE INDEX carrier_poles_owner ON carrier_poles (owner_agency);

-- Mount applications: on an existing pole (`mount`) or for a new pole at a position (`new-pole`).
-- No foreign key to the pole: the history outlives a removed pole.
CREATE TABLE carrier_applications (
  id text PRIMARY KEY,
  kind text NOT NULL CHECK (kind IN ('mount', 'new-pole')),
  applicant_agency text NOT NULL REFERENCES agencies (id),
  applicant_user text,
  -- The agency that decides: owner of the pole, or the one asked to put up a new pole.
  owner_agency text NOT NULL REFERENCES agencies (id),
  pole_id text,
  longitude double precision CHECK (longitude BETWEEN -180 AND 180),
  latitude double precision CHECK (latitude BETWEEN -90 AND 90),
  pole_kind text CHECK (pole_kind IN ('lamp', 'traffic', 'other')),
  device_code text NOT NULL CHECK (device_code ~ '^[0-9]{20}$'),
  power_w double precision NOT NULL CHECK (power_w >= 0),
  slots integer NOT NULL CHECK (slots >= 1),
  purpose text,
  state text NOT NULL CHECK (state IN ('pending', 'approved', 'refused')),
  decided_by text,
  decided_at timestamptz,
  comment text,
  mount_id bigint,
  created_at timestamptz NOT NULL DEFAULT now(),
  CHECK (kind = 'new-pole' OR pole_id IS NOT NULL),
  CHECK (kind = 'mount' OR (longitude IS NOT NULL AND latitude IS NOT NULL))
);
CREATE INDEX carrier_applications_applicant ON carrier_applications (applicant_agency, created_at);
CREATE INDEX carrier_applications_owner ON carrier_applications (owner_agency, created_at);
CREATE INDEX carrier_applications_pending_pole ON carrier_applications (pole_id) WHERE state = 'pending';

-- Every step of an application, oldest first.
CREATE TABLE carrier_application_events (
  id bigserial PRIMARY KEY,
  application_id text NOT NULL REFERENCES carrier_applications (id),
  at timestamptz NOT NULL DEFAULT now(),
  action text NOT NULL CHECK (action IN ('submitted', 'approved', 'refused')),
  actor text NOT NULL,
  actor_agency text,
  comment text
);
CREATE INDEX carrier_application_events_application ON carrier_application_events (application_id, id);

-- Capacity booked on a pole by an approved application; `removed_at` releases it.
CREATE TABLE carrier_mounts (
  id bigserial PRIMARY KEY,
  pole_id text NOT NULL,
  application_id text REFERENCES carrier_applications (id),
  device_code text NOT NULL CHECK (device_code ~ '^[0-9]{20}$'),
  agency_id text NOT NULL,
  power_w double precision NOT NULL CHECK (power_w >= 0),
  slots integer NOT NULL CHECK (slots >= 1),
  mounted_at timestamptz NOT NULL DEFAULT now(),
  removed_at timestamptz,
  removed_by text
);
-- A device hangs on one pole at a time.
CREATE UNIQUE INDEX carrier_mounts_device_current ON carrier_mounts (device_code) WHERE removed_at IS NULL;
CREATE INDEX carrier_mounts_pole_current ON carrier_mounts (pole_id) WHERE removed_at IS NULL;

-- Read-through joins from a pole to what references it (the ledger and the registry own those rows).
CREATE INDEX IF NOT EXISTS carrier_ledger_devices_pole ON ledger_devices (pole_id) WHERE pole_id IS NOT NULL;
CREATE INDEX IF NOT EXISTS carrier_nodes_pole ON nodes (pole_id) WHERE pole_id IS NOT NULL;
