-- Algorithm centre (001 Art. 49(一)): trusted signers, algorithm versions and their
-- lifecycle (draft → validated → filed → published → retired), multi-level
-- authorisation (centre → agency → node) and usage applications.

CREATE TABLE IF NOT EXISTS algorithm_signers (
  name         text PRIMARY KEY,
  algorithm    text NOT NULL CHECK (algorithm IN ('ed25519', 'sm2-sm3')),
  public_key   text NOT NULL,
  fingerprint  text NOT NULL UNIQUE,
  -- The centre's own key: registered at start, cannot be deleted.
  builtin      boolean NOT NULL DEFAULT false,
  created_at   timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE IF NOT EXISTS algorithms (
  id          text PRIMARY KEY,
  name        text NOT NULL,
  task        text NOT NULL,
  created_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE IF NOT EXISTS algorithm_versions (
  algorithm_id         text NOT NULL REFERENCES algorithms (id),
  version              text NOT NULL,
  state                text NOT NULL DEFAULT 'draft'
                       CHECK (state IN ('draft', 'validated', 'filed', 'published', 'retired')),
  -- The package file is <artifactDir>/algorithms/<sha256>.csalgo.
  sha256               text NOT NULL UNIQUE,
  bytes                bigint NOT NULL,
  manifest             jsonb NOT NULL,
  signature_algorithm  text NOT NULL,
  signer_fingerprint   text NOT NULL,
  signer_name          text,
  -- Latest adaptation test report (适配纳管), passing or not.
  report               jsonb,
  uploaded_at          timestamptz NOT NULL DEFAULT now(),
  updated_at           timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (algorithm_id, version)
);

CREATE TABLE IF NOT EXISTS algorithm_version_history (
  id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  algorithm_id  text NOT NULL,
  version       text NOT NULL,
  action        text NOT NULL,
  from_state    text,
  to_state      text NOT NULL,
  actor         text NOT NULL,
  note          text,
  at            timestamptz NOT NULL DEFAULT now(),
  FOREIGN KEY (algorithm_id, version) REFERENCES algorithm_versions (algorithm_id, version)
);

CREATE INDEX IF NOT EXISTS algorithm_version_history_version
  ON algorithm_version_history (algorithm_id, version, id);

CREATE TABLE IF NOT EXISTS agencies (
  id          text PRIMARY KEY,
  name        text NOT NULL,
  created_at  timestamptz NOT NULL DEFAULT now()
);

-- Which agency a node belongs to (at most one). The nodes table itself is the registry's.
CREATE TABLE IF NOT EXISTS agency_nodes (
  node_id    text PRIMARY KEY,
  agency_id  text NOT NULL REFERENCES agencies (id),
  added_at   timestamptz NOT NULL DEFAULT now(),
  UNIQUE (node_id, agency_id)
);

CREATE INDEX IF NOT EXISTS agency_nodes_agency ON agency_nodes (agency_id);

-- First level: the centre lets an agency use an algorithm.
CREATE TABLE IF NOT EXISTS agency_algorithm_grants (
  agency_id       text NOT NULL REFERENCES agencies (id),
  algorithm_id    text NOT NULL REFERENCES algorithms (id),
  application_id  text,
  granted_at      timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (agency_id, algorithm_id)
);

-- Second level: the agency lets its nodes run it. Revoking the agency grant or
-- taking the node out of the agency removes these rows.
CREATE TABLE IF NOT EXISTS node_algorithm_grants (
  node_id       text NOT NULL,
  algorithm_id  text NOT NULL,
  agency_id     text NOT NULL,
  granted_at    timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (node_id, algorithm_id),
  FOREIGN KEY (agency_id, algorithm_id) REFERENCES agency_algorithm_grants (agency_id, algorithm_id)
    ON DELETE CASCADE,
  FOREIGN KEY (node_id, agency_id) REFERENCES agency_nodes (node_id, agency_id) ON DELETE CASCADE
);

CREATE TABLE IF NOT EXISTS algorithm_applications (
  id            text PRIMARY KEY,
  agency_id     text NOT NULL REFERENCES agencies (id),
  algorithm_id  text NOT NULL REFERENCES algorithms (id),
  purpose       text NOT NULL,
  state         text NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'approved', 'rejected')),
  reason        text,
  created_at    timestamptz NOT NULL DEFAULT now(),
  decided_at    timestamptz
);

CREATE UNIQUE INDEX IF NOT EXISTS algorithm_applications_one_pending
  ON algorithm_applications (agency_id, algorithm_id) WHERE state = 'pending';

CREATE INDEX IF NOT EXISTS algorithm_applications_state ON algorithm_applications (state, created_at);
