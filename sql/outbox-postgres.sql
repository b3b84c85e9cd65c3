-- The txbarrier outbox table on PostgreSQL: what createOutbox(store).ensureSchema() runs for the default
-- table txbarrier_outbox (test/outbox-sql-files.test.ts keeps this file equal to the code).

CREATE TABLE IF NOT EXISTS "txbarrier_outbox" (
  seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  id VARCHAR(36) NOT NULL,
  topic VARCHAR(255) NOT NULL,
  msg_key VARCHAR(255),
  headers TEXT NOT NULL DEFAULT '{}',
  payload BYTEA NOT NULL,
  status VARCHAR(16) NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'sent', 'parked')),
  attempts INTEGER NOT NULL DEFAULT 0,
  available_at TIMESTAMP(3) WITH TIME ZONE NOT NULL DEFAULT CURRENT_TIMESTAMP,
  last_error TEXT,
  created_at TIMESTAMP(3) WITH TIME ZONE NOT NULL DEFAULT CURRENT_TIMESTAMP,
  sent_at TIMESTAMP(3) WITH TIME ZONE,
  CONSTRAINT "txbarrier_outbox_id" UNIQUE (id)
);

CREATE INDEX IF NOT EXISTS "txbarrier_outbox_status_seq" ON "txbarrier_outbox" (status, seq);

CREATE INDEX IF NOT EXISTS "txbarrier_outbox_key_seq" ON "txbarrier_outbox" (msg_key, seq) WHERE msg_key IS NOT NULL;
