-- txbarrier's barrier table for PostgreSQL, as ensureSchema() creates it (default name dtm_barrier.barrier).
-- Idempotent. For another name, pass { table } to the store and let ensureSchema() create it, or adapt the names below.

CREATE SCHEMA IF NOT EXISTS "dtm_barrier";

CREATE TABLE IF NOT EXISTS "dtm_barrier"."barrier" (
  trans_type VARCHAR(45) NOT NULL DEFAULT '',
  gid VARCHAR(128) NOT NULL,
  branch_id VARCHAR(128) NOT NULL,
  op VARCHAR(45) NOT NULL,
  barrier_id VARCHAR(45) NOT NULL,
  reason VARCHAR(45) NOT NULL DEFAULT '',
  create_time TIMESTAMP(0) WITH TIME ZONE NOT NULL DEFAULT CURRENT_TIMESTAMP,
  update_time TIMESTAMP(0) WITH TIME ZONE NOT NULL DEFAULT CURRENT_TIMESTAMP,
  CONSTRAINT "uniq_barrier" PRIMARY KEY (gid, branch_id, op, barrier_id)
);

CREATE INDEX IF NOT EXISTS "barrier_create_time" ON "dtm_barrier"."barrier" (create_time);
