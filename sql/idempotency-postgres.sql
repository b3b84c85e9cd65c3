-- txbarrier's idempotency-key table for PostgreSQL, as ensureIdempotencySchema() creates it (default name idempotency_key).
-- Idempotent. For another name, pass { table } to the routes and to ensureIdempotencySchema(), or adapt the names below.

CREATE TABLE IF NOT EXISTS "idempotency_key" (
  scope VARCHAR(255) NOT NULL,
  idem_key VARCHAR(255) NOT NULL,
  fingerprint CHAR(64) NOT NULL,
  status SMALLINT NULL,
  headers TEXT NULL,
  body BYTEA NULL,
  created_at BIGINT NOT NULL,
  expires_at BIGINT NOT NULL,
  PRIMARY KEY (scope, idem_key)
);

CREATE INDEX IF NOT EXISTS "idempotency_key_expires_at" ON "idempotency_key" (expires_at);
