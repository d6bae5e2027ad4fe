-- People, agencies and roles (issue 6; GB/T 22239 level 3: authenticated users,
-- least privilege). Passwords and API tokens are stored only as hashes.

-- One agencies table for the whole hub: the algorithm centre created it (0030) with
-- id and name; people add what the directory needs.
ALTER TABLE agencies
  ADD COLUMN IF NOT EXISTS kind text NOT NULL DEFAULT 'bureau' CHECK (kind IN ('district', 'bureau', 'platform')),
  ADD COLUMN IF NOT EXISTS parent_id text REFERENCES agencies (id),
  ADD COLUMN IF NOT EXISTS updated_at timestamptz NOT NULL DEFAULT now();

CREATE TABLE IF NOT EXISTS users (
  id                   text PRIMARY KEY,
  username             text NOT NULL UNIQUE,
  display_name         text NOT NULL,
  agency_id            text NOT NULL REFERENCES agencies (id),
  -- scrypt$N$r$p$salt$hash (base64url), parameters kept with the hash.
  password_hash        text NOT NULL,
  disabled             boolean NOT NULL DEFAULT false,
  -- Sessions (JWTs) issued before this instant are refused: set on password change and disable.
  sessions_valid_after timestamptz NOT NULL DEFAULT now(),
  created_at           timestamptz NOT NULL DEFAULT now(),
  updated_at           timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX IF NOT EXISTS users_agency ON users (agency_id);

CREATE TABLE IF NOT EXISTS user_roles (
  user_id     text NOT NULL REFERENCES users (id) ON DELETE CASCADE,
  role        text NOT NULL CHECK (role IN ('platform-admin', 'agency-operator', 'reviewer', 'algorithm-admin', 'field-engineer')),
  -- Review category, only for reviewers; '' for every other role (part of the key).
  category    text NOT NULL DEFAULT '' CHECK (
    (role = 'reviewer' AND category IN ('video', 'urban-operations', 'hazard-monitoring'))
    OR (role <> 'reviewer' AND category = '')
  ),
  granted_at  timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (user_id, role, category)
);

CREATE TABLE IF NOT EXISTS api_tokens (
  id            text PRIMARY KEY,
  token_hash    text NOT NULL UNIQUE,
  name          text NOT NULL,
  user_id       text NOT NULL REFERENCES users (id) ON DELETE CASCADE,
  created_at    timestamptz NOT NULL DEFAULT now(),
  expires_at    timestamptz NOT NULL,
  last_used_at  timestamptz,
  revoked_at    timestamptz
);

CREATE INDEX IF NOT EXISTS api_tokens_user ON api_tokens (user_id);
