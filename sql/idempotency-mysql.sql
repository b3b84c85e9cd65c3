-- txbarrier's idempotency-key table for MySQL/MariaDB, as ensureIdempotencySchema() creates it (default name idempotency_key).
-- Idempotent. For another name, pass { table } to the routes and to ensureIdempotencySchema(), or adapt the names below.

CREATE TABLE IF NOT EXISTS `idempotency_key` (
  scope VARBINARY(1020) NOT NULL,
  idem_key VARBINARY(255) NOT NULL,
  fingerprint CHAR(64) NOT NULL,
  status SMALLINT NULL COMMENT 'NULL while the first request is in flight',
  headers TEXT NULL,
  body LONGBLOB NULL,
  created_at BIGINT NOT NULL,
  expires_at BIGINT NOT NULL,
  PRIMARY KEY (scope, idem_key),
  KEY (expires_at)
) DEFAULT CHARACTER SET utf8mb4;
