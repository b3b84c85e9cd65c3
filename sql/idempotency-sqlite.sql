-- txbarrier's idempotency-key table for SQLite, as ensureIdempotencySchema() creates it (default name idempotency_key).
-- Idempotent. For another name, pass { table } to the routes and to ensureIdempotencySchema(), or adapt the names below.

CREATE TABLE IF NOT EXISTS "idempotency_key" (
  scope TEXT NOT NULL,
  idem_key TEXT NOT NULL,
  fingerprint TEXT NOT NULL,
  status INTEGER NULL,
  headers TEXT NULL,
  body BLOB NULL,
  created_at INTEGER NOT NULL,
  expires_at INTEGER NOT NULL,
  PRIMARY KEY (scope, idem_key)
);

CREATE INDEX IF NOT EXISTS "idempotency_key_expires_at" ON "idempotency_key" (expires_at);
