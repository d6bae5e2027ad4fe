-- Box replacement (issue "Box replacement"): a replacement token lets a new box take
-- over a node id, its history and its links; the old box's credentials die with it.

-- Who issued a token (audit actor: kind, id, username, agencyId), so that the
-- replacement record can say who authorised the swap.
ALTER TABLE enrollment_tokens ADD COLUMN IF NOT EXISTS issued_by jsonb;

-- Every identity change of a node, oldest first: first enrolment, box replacements
-- (old hardware -> new hardware, which token, who issued it) and deregistration.
CREATE TABLE IF NOT EXISTS node_events (
  id       bigserial PRIMARY KEY,
  node_id  text NOT NULL,
  at       timestamptz NOT NULL DEFAULT now(),
  kind     text NOT NULL CHECK (kind IN ('enrolled', 'replaced', 'deregistered')),
  actor    jsonb,
  details  jsonb NOT NULL DEFAULT '{}'::jsonb
);

CREATE INDEX IF NOT EXISTS node_events_node ON node_events (node_id, id);
