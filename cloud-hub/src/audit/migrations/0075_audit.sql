-- Append-only audit trail (003 §7.3.3 "audit trail of every operation"; GB/T 22239
-- level 3 security audit): every write, login and refused access. A plain table,
-- not a hypertable: the trigger below must see every row change.

CREATE TABLE IF NOT EXISTS audit_log (
  id              bigserial PRIMARY KEY,
  at              timestamptz NOT NULL DEFAULT now(),
  actor_kind      text NOT NULL CHECK (actor_kind IN ('admin', 'user', 'node', 'anonymous')),
  actor_id        text,
  actor_username  text,
  agency_id       text,
  action          text NOT NULL,
  target_type     text,
  target_id       text,
  before          jsonb,
  after           jsonb,
  request_id      text,
  ip              text,
  outcome         text NOT NULL CHECK (outcome IN ('success', 'failure', 'refused')),
  reason          text
);

CREATE INDEX IF NOT EXISTS audit_log_at ON audit_log (at);
CREATE INDEX IF NOT EXISTS audit_log_actor ON audit_log (actor_id);
CREATE INDEX IF NOT EXISTS audit_log_target ON audit_log (target_type, target_id);

CREATE OR REPLACE FUNCTION audit_log_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION 'audit_log is append-only: % refused', TG_OP USING ERRCODE = 'insufficient_privilege';
END
$$;

DROP TRIGGER IF EXISTS audit_log_append_only ON audit_log;
CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON audit_log
  FOR EACH ROW EXECUTE FUNCTION audit_log_refuse_change();

DROP TRIGGER IF EXISTS audit_log_no_truncate ON audit_log;
CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log
  FOR EACH STATEMENT EXECUTE FUNCTION audit_log_refuse_change();
