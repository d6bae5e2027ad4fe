-- Joint review (联审, 001 Art. 45): construction projects listing proposed ledger devices,
-- the review categories the coordinator routed them to, one decision per category, and
-- the full history of who did what when. Plain tables on every engine.

-- @all
CREATE TABLE review_projects (
  id text PRIMARY KEY,
  name text NOT NULL,
  -- The agency that builds; its operators create and submit the project.
  agency_id text NOT NULL,
  purpose text NOT NULL,
  -- Categories the applicant asked for beside those derived from device kinds.
  requested_categories text[] NOT NULL DEFAULT '{}',
  state text NOT NULL CHECK (state IN ('draft', 'submitted', 'in-review', 'approved', 'rejected')),
  created_by text NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now(),
  decided_at timestamptz
);
CREATE INDEX review_projects_agency ON review_projects (agency_id, state);

-- Devices of a project: ledger unified codes, with what each is for.
CREATE TABLE review_project_devices (
  project_id text NOT NULL REFERENCES review_projects (id),
  device_code text NOT NULL,
  position int NOT NULL,
  purpose text,
  PRIMARY KEY (project_id, device_code)
);
-- The ledger's activation gate asks "is this device in an approved project?".
CREATE INDEX review_project_devices_device ON review_project_devices (device_code);

-- One row per routed category; a decision is a conditional UPDATE of a pending row.
CREATE TABLE review_categories (
  project_id text NOT NULL REFERENCES review_projects (id),
  category text NOT NULL CHECK (category IN ('video', 'urban-operations', 'hazard-monitoring')),
  -- Why it is routed: derived from device kinds, asked by the applicant, added by the coordinator.
  source text NOT NULL CHECK (source IN ('devices', 'applicant', 'coordinator')),
  state text NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'approved', 'rejected')),
  routed_at timestamptz NOT NULL DEFAULT now(),
  decided_by text,
  decided_by_username text,
  decided_at timestamptz,
  comment text,
  PRIMARY KEY (project_id, category)
);
CREATE INDEX review_categories_pending ON review_categories (category, routed_at) WHERE state = 'pending';

-- Full history: every step of every project, append-only.
CREATE TABLE review_history (
  id bigserial PRIMARY KEY,
  project_id text NOT NULL REFERENCES review_projects (id),
  at timestamptz NOT NULL DEFAULT now(),
  actor_kind text NOT NULL,
  actor_id text,
  actor_username text,
  agency_id text,
  action text NOT NULL,
  category text,
  decision text,
  comment text,
  detail jsonb
);
CREATE INDEX review_history_project ON review_history (project_id, id);

CREATE FUNCTION review_history_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION 'review_history is append-only: % refused', TG_OP USING ERRCODE = 'insufficient_privilege';
END
$$;
CREATE TRIGGER review_history_append_only BEFORE UPDATE OR DELETE ON review_history
  FOR EACH ROW EXECUTE FUNCTION review_history_refuse_change();
