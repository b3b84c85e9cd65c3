-- The txbarrier outbox table on SQLite: what createOutbox(store).ensureSchema() runs for the default table
-- txbarrier_outbox (test/outbox-sql-files.test.ts keeps this file equal to the code).

CREATE TABLE IF NOT EXISTS "txbarrier_outbox" (
  seq INTEGER PRIMARY KEY,
  id TEXT NOT NULL UNIQUE,
  topic TEXT NOT NULL,
  msg_key TEXT,
  headers TEXT NOT NULL DEFAULT '{}',
  payload BLOB NOT NULL,
  status TEXT NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'sent', 'parked')),
  attempts INTEGER NOT NULL DEFAULT 0,
  available_at TEXT NOT NULL,
  last_error TEXT,
  created_at TEXT NOT NULL,
  sent_at TEXT
);

CREATE INDEX IF NOT EXISTS "txbarrier_outbox_status_seq" ON "txbarrier_outbox" (status, seq);

CREATE INDEX IF NOT EXISTS "txbarrier_outbox_key_seq" ON "txbarrier_outbox" (msg_key, seq) WHERE msg_key IS NOT NULL;
