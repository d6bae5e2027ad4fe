-- The sensing data catalogue (001 Art. 48) and device sharing ("reuse before build", Art. 45):
-- shares of one ledger device between agencies, data resources with grade and category, access
-- applications per delivery form, and the key of the pseudonyms of desensitised data.
-- Decisions are conditional UPDATEs on `status`, so concurrent deciders resolve to one outcome.

-- @all
CREATE TABLE catalogue_shares (
  id text PRIMARY KEY,
  -- Unified code of the ledger device to be shared.
  device_code text NOT NULL,
  -- The device's owner agency when the share was applied for (the one that decides).
  owner_agency text NOT NULL,
  applicant_agency text NOT NULL,
  purpose text NOT NULL,
  status text NOT NULL CHECK (status IN ('pending', 'approved', 'refused', 'revoked')),
  applied_by text NOT NULL,
  applied_at timestamptz NOT NULL DEFAULT now(),
  decided_by text,
  decided_at timestamptz,
  comment text
);
-- One open (pending or approved) share per device and applicant.
CREATE UNIQUE INDEX catalogue_shares_open ON catalogue_shares (device_code, applicant_agency)
  WHERE status IN ('pending', 'approved');
CREATE INDEX catalogue_shares_owner ON catalogue_shares (owner_agency, status);
CREATE INDEX catalogue_shares_applicant ON catalogue_shares (applicant_agency, status);

CREATE TABLE catalogue_resources (
  id text PRIMARY KEY CHECK (id ~ '^[a-z0-9][a-z0-9._-]{1,63}$'),
  title text NOT NULL,
  device_kind text NOT NULL,
  -- `reading`: a Sparkplug metric of the devices; `detection`: an object label of their video analytics.
  data_type text NOT NULL CHECK (data_type IN ('reading', 'detection')),
  -- Metric name or detection label.
  item text NOT NULL,
  -- Only this agency's devices, and this agency decides applications; NULL: every agency's devices,
  -- the platform admin decides.
  owner_agency text,
  -- Sensitivity 1 (public) … 4 (most sensitive).
  grade smallint NOT NULL CHECK (grade BETWEEN 1 AND 4),
  category text NOT NULL,
  forms text[] NOT NULL,
  -- Desensitisation rule (position grid, aggregation bucket), see desensitise.ts.
  rule jsonb NOT NULL,
  description text,
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE catalogue_applications (
  id text PRIMARY KEY,
  resource_id text NOT NULL REFERENCES catalogue_resources (id),
  applicant_agency text NOT NULL,
  form text NOT NULL CHECK (form IN ('raw', 'desensitised', 'analysis')),
  purpose text NOT NULL,
  status text NOT NULL CHECK (status IN ('pending', 'granted', 'refused', 'revoked')),
  applied_by text NOT NULL,
  applied_at timestamptz NOT NULL DEFAULT now(),
  decided_by text,
  decided_at timestamptz,
  comment text
);
-- One open (pending or granted) application per resource, applicant and form.
CREATE UNIQUE INDEX catalogue_applications_open ON catalogue_applications (resource_id, applicant_agency, form)
  WHERE status IN ('pending', 'granted');
CREATE INDEX catalogue_applications_applicant ON catalogue_applications (applicant_agency, status);

-- One row: the HMAC key of pseudonyms, shared by every hub on this database so that a
-- device keeps its pseudonym whichever hub answers.
CREATE TABLE catalogue_pseudonym_key (
  id boolean PRIMARY KEY DEFAULT true CHECK (id),
  key text NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now()
);
