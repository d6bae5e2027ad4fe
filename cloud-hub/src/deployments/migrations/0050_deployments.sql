-- Deployments with staged rollout (001 Art. 49): one published algorithm version
-- onto target nodes and their video sources, canary first, then the rest. The hub
-- keeps each node's desired state (its assignments, with a revision) and the
-- per-node status the nodes report.

CREATE TABLE IF NOT EXISTS deployments (
  id                text PRIMARY KEY,
  algorithm_id      text NOT NULL,
  version           text NOT NULL,
  -- canary | rolling | completed | paused | rolled-back | cancelled | superseded
  state             text NOT NULL
                    CHECK (state IN ('canary', 'rolling', 'completed', 'paused', 'rolled-back', 'cancelled',
                                     'superseded')),
  -- Why it is in its state (gate passed, gate timed out, node failures, admin note).
  state_reason      text,
  -- How far the rollout got: a paused deployment resumes here.
  stage             text NOT NULL DEFAULT 'canary' CHECK (stage IN ('canary', 'rolling')),
  -- The gate timeout runs from here (creation, a new canary, or a resume).
  stage_started_at  timestamptz NOT NULL DEFAULT now(),
  canary_share      double precision NOT NULL,
  min_active_share  double precision NOT NULL,
  max_failed        integer NOT NULL,
  gate_timeout_ms   bigint NOT NULL,
  -- As requested: {nodes, agencies}.
  targets           jsonb NOT NULL,
  sources           jsonb NOT NULL,
  sources_by_node   jsonb NOT NULL DEFAULT '{}'::jsonb,
  -- Local alert rules every node evaluates on its analysed frames (AlgorithmAssignment.rules).
  rules             jsonb NOT NULL DEFAULT '[]'::jsonb,
  created_by        text NOT NULL,
  created_at        timestamptz NOT NULL DEFAULT now(),
  updated_at        timestamptz NOT NULL DEFAULT now(),
  FOREIGN KEY (algorithm_id, version) REFERENCES algorithm_versions (algorithm_id, version)
);

CREATE INDEX IF NOT EXISTS deployments_state ON deployments (state, stage_started_at);
CREATE INDEX IF NOT EXISTS deployments_created ON deployments (created_at DESC, id);

-- One row per target node of a deployment: its place in the rollout and what it reported.
CREATE TABLE IF NOT EXISTS deployment_nodes (
  deployment_id           text NOT NULL REFERENCES deployments (id),
  node_id                 text NOT NULL,
  canary                  boolean NOT NULL DEFAULT false,
  -- pending (waits for its stage), the reported states queued .. rolled-back, or refused,
  -- superseded (a newer deployment of the algorithm took the node), cancelled (never given).
  state                   text NOT NULL
                          CHECK (state IN ('pending', 'queued', 'downloading', 'verifying', 'loading', 'active',
                                           'failed', 'rolled-back', 'refused', 'superseded', 'cancelled')),
  progress                double precision,
  reason                  text,
  code                    text,
  -- The deployment of the same algorithm the node had when this one took over: rollback restores it.
  previous_deployment_id  text,
  -- The node's assignments revision when this assignment was (last) given; older reports are stale.
  assigned_revision       bigint,
  reported_revision       bigint,
  active_version          text,
  stats                   jsonb,
  -- A failure counts against the gate's maxFailed until a resume acknowledges it.
  failed_at               timestamptz,
  failure_acknowledged    boolean NOT NULL DEFAULT false,
  reported_at             timestamptz,
  updated_at              timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (deployment_id, node_id)
);

CREATE INDEX IF NOT EXISTS deployment_nodes_node ON deployment_nodes (node_id);

-- Every transition of a deployment (node_id NULL) or of one of its nodes: when, who, why.
CREATE TABLE IF NOT EXISTS deployment_events (
  id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  deployment_id  text NOT NULL REFERENCES deployments (id),
  node_id        text,
  from_state     text,
  to_state       text NOT NULL,
  actor          text NOT NULL,
  reason         text,
  at             timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX IF NOT EXISTS deployment_events_deployment ON deployment_events (deployment_id, id);

-- The desired state of each node: at most one deployment per algorithm.
CREATE TABLE IF NOT EXISTS node_assignments (
  node_id        text NOT NULL,
  algorithm_id   text NOT NULL,
  deployment_id  text NOT NULL REFERENCES deployments (id),
  assigned_at    timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (node_id, algorithm_id)
);

-- Increases whenever a node's assignments change (AssignmentsDocument.revision).
CREATE TABLE IF NOT EXISTS node_assignment_revisions (
  node_id     text PRIMARY KEY,
  revision    bigint NOT NULL,
  changed_at  timestamptz NOT NULL DEFAULT now()
);
