-- The txbarrier outbox table on MySQL 8 / MariaDB 10.6+ (FOR UPDATE SKIP LOCKED): what createOutbox(store).ensureSchema()
-- runs for the default table txbarrier_outbox (test/outbox-sql-files.test.ts keeps this file equal to the code).

CREATE TABLE IF NOT EXISTS `txbarrier_outbox` (
  seq BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
  id CHAR(36) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
  topic VARCHAR(255) COLLATE utf8mb4_bin NOT NULL,
  msg_key VARCHAR(255) COLLATE utf8mb4_bin NULL,
  headers TEXT NOT NULL,
  payload LONGBLOB NOT NULL,
  status VARCHAR(16) CHARACTER SET ascii NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'sent', 'parked')),
  attempts INT NOT NULL DEFAULT 0,
  available_at DATETIME(3) NOT NULL,
  last_error TEXT NULL,
  created_at DATETIME(3) NOT NULL,
  sent_at DATETIME(3) NULL,
  UNIQUE KEY id (id),
  KEY status_seq (status, seq),
  KEY key_seq (msg_key, seq)
) DEFAULT CHARACTER SET utf8mb4;
