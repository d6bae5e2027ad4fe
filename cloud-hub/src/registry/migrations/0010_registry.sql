-- Compute management registry (001 Art. 49(二)): enrolment tokens and edge nodes.

CREATE TABLE IF NOT EXISTS enrollment_tokens (
  id            text PRIMARY KEY,
  token_hash    text NOT NULL UNIQUE,
  name          text,
  replaces_node text,
  created_at    timestamptz NOT NULL DEFAULT now(),
  expires_at    timestamptz NOT NULL,
  used_at       timestamptz,
  used_by_node  text
);

CREATE TABLE IF NOT EXISTS nodes (
  id               text PRIMARY KEY,
  group_id         text NOT NULL,
  name             text,
  public_key       text NOT NULL,
  credential_hash  text NOT NULL,
  agent_version    text,
  hardware         jsonb NOT NULL DEFAULT '{}'::jsonb,
  longitude        double precision,
  latitude         double precision,
  pole_id          text,
  enrolled_at      timestamptz NOT NULL DEFAULT now(),
  replaced_at      timestamptz,
  deregistered_at  timestamptz,
  online           boolean NOT NULL DEFAULT false,
  last_seen        timestamptz,
  last_birth_at    timestamptz,
  last_death_at    timestamptz,
  bd_seq           integer
);

CREATE INDEX IF NOT EXISTS nodes_active ON nodes (id) WHERE deregistered_at IS NULL;
