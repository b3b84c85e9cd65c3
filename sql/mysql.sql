-- txbarrier's barrier table for MySQL / MariaDB, as ensureSchema() creates it (default name dtm_barrier.barrier).
-- Idempotent. For another name, pass { table } to the store and let ensureSchema() create it, or adapt the names below.

CREATE DATABASE IF NOT EXISTS `dtm_barrier` DEFAULT CHARACTER SET utf8mb4;

CREATE TABLE IF NOT EXISTS `dtm_barrier`.`barrier` (
  id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
  trans_type VARCHAR(45) NOT NULL DEFAULT '',
  gid VARCHAR(128) COLLATE utf8mb4_bin NOT NULL DEFAULT '',
  branch_id VARCHAR(128) COLLATE utf8mb4_bin NOT NULL DEFAULT '',
  op VARCHAR(45) COLLATE utf8mb4_bin NOT NULL DEFAULT '',
  barrier_id VARCHAR(45) COLLATE utf8mb4_bin NOT NULL DEFAULT '',
  reason VARCHAR(45) NOT NULL DEFAULT '' COMMENT 'the op that inserted this row',
  create_time DATETIME DEFAULT CURRENT_TIMESTAMP,
  update_time DATETIME DEFAULT CURRENT_TIMESTAMP,
  KEY (create_time),
  UNIQUE KEY (gid, branch_id, op, barrier_id)
) DEFAULT CHARACTER SET utf8mb4;
