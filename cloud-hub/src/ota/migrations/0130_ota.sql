-- Over-the-air updates of agents and gateway firmware (003 §7.3.2.3): signed artifacts
-- uploaded to the hub, and campaigns that roll one artifact out to target nodes in
-- stages, canary first, with the same state machine as algorithm deployments
-- (deployments/rollout.ts). The hub keeps each node's desired OTA state (at most one
-- campaign per target, with a revision) and the status the nodes report.

CREATE TABLE IF NOT EXISTS ota_artifacts (
  id           text PRIMARY KEY,
  name         text NOT NULL,
  version      text NOT NULL,
  -- agent | firmware (OtaManifest.target)
  target       text NOT NULL CHECK (target IN ('agent', 'firmware')),
  manifest     jsonb NOT NULL,
  -- SHA-256 and size of the whole .csota file: the download check and the file's name on disk.
  sha256       text NOT NULL,
  bytes        bigint NOT NULL,
  -- Public key of the trusted signer that signed the manifest.
  signer_key   text NOT NULL,
  -- The audit actor of the upload: {kind, id, username, agencyId}.
  uploaded_by  jsonb NOT NULL,
  created_at   timestamptz NOT NULL DEFAULT now(),
  UNIQUE (name, version)
);

CREATE TABLE IF NOT EXISTS ota_campaigns (
  id                 text PRIMARY KEY,
  artifact_id        text NOT NULL REFERENCES ota_artifacts (id),
  target             text NOT NULL CHECK (target IN ('agent', 'firmware')),
  -- canary | rolling | completed | paused | aborted | superseded
  state              text NOT NULL
                     CHECK (state IN ('canary', 'rolling', 'completed', 'paused', 'aborted', 'superseded')),
  state_reason       text,
  stage              text NOT NULL DEFAULT 'canary' CHECK (stage IN ('canary', 'rolling')),
  -- The gate timeout runs from here (creation, a new canary, or a resume).
  stage_started_at   timestamptz NOT NULL DEFAULT now(),
  canary_share       double precision NOT NULL,
  min_healthy_share  double precision NOT NULL,
  max_failed         integer NOT NULL,
  gate_timeout_ms    bigint NOT NULL,
  health_timeout_s   integer NOT NULL,
  -- As requested: {nodes, agencies, carriers}.
  selector           jsonb NOT NULL,
  -- Agencies of the target nodes at creation ('' for nodes of no agency): who may act on it.
  agencies           text[] NOT NULL DEFAULT '{}',
  created_by         jsonb NOT NULL,
  created_at         timestamptz NOT NULL DEFAULT now(),
  updated_at         timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX IF NOT EXISTS ota_campaigns_state ON ota_campaigns (state, stage_started_at);
CREATE INDEX IF NOT EXISTS ota_campaigns_created ON ota_campaigns (created_at DESC, id);

-- One row per target node of a campaign: its place in the rollout and what it reported.
CREATE TABLE IF NOT EXISTS ota_campaign_nodes (
  campaign_id        text NOT NULL REFERENCES ota_campaigns (id),
  node_id            text NOT NULL,
  canary             boolean NOT NULL DEFAULT false,
  -- pending, the reported OTA_STATES queued .. rolled-back, or refused, superseded, cancelled.
  state              text NOT NULL
                     CHECK (state IN ('pending', 'queued', 'downloading', 'verifying', 'installing', 'activating',
                                      'healthy', 'failed', 'rolled-back', 'refused', 'superseded', 'cancelled')),
  progress           double precision,
  reason             text,
  code               text,
  -- The node's OTA revision when the update was given; older reports are stale.
  assigned_revision  bigint,
  reported_revision  bigint,
  running_version    text,
  slot               text,
  -- A failure counts against the gate's maxFailed until a resume acknowledges it.
  failed_at          timestamptz,
  failure_acknowledged boolean NOT NULL DEFAULT false,
  reported_at        timestamptz,
  updated_at         timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (campaign_id, node_id)
);

CREATE INDEX IF NOT EXISTS ota_campaign_nodes_node ON ota_campaign_nodes (node_id);

-- Every transition of a campaign (node_id NULL) or of one of its nodes.
CREATE TABLE IF NOT EXISTS ota_campaign_events (
  id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  campaign_id  text NOT NULL REFERENCES ota_campaigns (id),
  node_id      text,
  from_state   text,
  to_state     text NOT NULL,
  actor        text NOT NULL,
  reason       text,
  at           timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX IF NOT EXISTS ota_campaign_events_campaign ON ota_campaign_events (campaign_id, id);

-- The desired OTA state of each node: at most one campaign per target.
CREATE TABLE IF NOT EXISTS node_ota_updates (
  node_id      text NOT NULL,
  target       text NOT NULL CHECK (target IN ('agent', 'firmware')),
  campaign_id  text NOT NULL REFERENCES ota_campaigns (id),
  assigned_at  timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (node_id, target)
);

-- Increases whenever a node's OTA document changes (OtaDocument.revision).
CREATE TABLE IF NOT EXISTS node_ota_revisions (
  node_id     text PRIMARY KEY,
  revision    bigint NOT NULL,
  changed_at  timestamptz NOT NULL DEFAULT now()
);
