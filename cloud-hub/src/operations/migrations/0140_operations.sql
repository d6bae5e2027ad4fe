-- Remote operations on edge nodes (doctor, log tail, driver restart, configuration)
-- and the versioned remote configuration of each node. Who asked is kept with every
-- operation so that its outcome, reported later by the node, is attributable.

CREATE TABLE IF NOT EXISTS node_operations (
  id             text PRIMARY KEY,
  seq            bigserial UNIQUE,
  node_id        text NOT NULL,
  kind           text NOT NULL,
  params         jsonb NOT NULL,
  state          text NOT NULL
                 CHECK (state IN ('pending', 'running', 'succeeded', 'failed', 'rolled-back', 'expired')),
  code           text,
  message        text,
  result         jsonb,
  -- The audit actor of the request: {kind, id, username, agencyId}.
  requested_by   jsonb NOT NULL,
  created_at     timestamptz NOT NULL DEFAULT now(),
  deadline       timestamptz NOT NULL,
  started_at     timestamptz,
  finished_at    timestamptz,
  updated_at     timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX IF NOT EXISTS node_operations_node ON node_operations (node_id, seq);
CREATE INDEX IF NOT EXISTS node_operations_open ON node_operations (deadline)
  WHERE state IN ('pending', 'running');

CREATE TABLE IF NOT EXISTS node_config_versions (
  node_id        text NOT NULL,
  version        integer NOT NULL CHECK (version >= 1),
  config         jsonb NOT NULL,
  comment        text,
  author         jsonb NOT NULL,
  created_at     timestamptz NOT NULL DEFAULT now(),
  operation_id   text REFERENCES node_operations (id),
  state          text NOT NULL DEFAULT 'pending'
                 CHECK (state IN ('pending', 'applied', 'refused', 'rolled-back', 'expired', 'superseded')),
  reason         text,
  PRIMARY KEY (node_id, version)
);

-- The remote configuration version each node last said it runs.
CREATE TABLE IF NOT EXISTS node_config_state (
  node_id         text PRIMARY KEY,
  active_version  integer,
  reported_at     timestamptz NOT NULL DEFAULT now()
);
