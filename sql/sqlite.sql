-- txbarrier's barrier table for SQLite, as ensureSchema() creates it (default name barrier).
-- Idempotent. For another name, pass { table } to the store and let ensureSchema() create it, or adapt the names below.

CREATE TABLE IF NOT EXISTS "barrier" (
  trans_type TEXT NOT NULL DEFAULT '',
  gid TEXT NOT NULL,
  branch_id TEXT NOT NULL,
  op TEXT NOT NULL,
  barrier_id TEXT NOT NULL,
  reason TEXT NOT NULL DEFAULT '',
  create_time TEXT NOT NULL DEFAULT CURRENT_TIMESTAMP,
  update_time TEXT NOT NULL DEFAULT CURRENT_TIMESTAMP,
  PRIMARY KEY (gid, branch_id, op, barrier_id)
) WITHOUT ROWID;

CREATE INDEX IF NOT EXISTS "barrier_create_time" ON "barrier" (create_time);
