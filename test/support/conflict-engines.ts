/**
 * The three engines as a front's tests use them: a store and business table, and a real retryable
 * error the engine's own server raises on demand (a deadlock, a serialization failure, a busy file).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import type { Harness } from '../barrier/conformance.js';
import { mysqlHarness, postgresHarness } from './server-harness.js';
import { hasServer } from './servers.js';
import { type Db, sqliteHarness } from '../stores/sqlite-harness.js';

export interface ConflictEngine<Tx> extends Harness<Tx> {
  /** Makes the server itself raise a deadlock / serialization failure / busy error inside `tx`. */
  conflict(tx: Tx): Promise<void>;
}

/** `[name, available, open]` per engine; `prefix` names the tables (`<prefix>_<engine>_barrier`). */
export function conflictEngines(prefix: string): [string, () => boolean, () => Promise<ConflictEngine<any>>][] {
  return [
    ['sqlite', () => true, () => sqliteEngine(prefix)],
    ['mysql', () => hasServer('mysql'), serverEngine(prefix, 'mysql')],
    ['postgres', () => hasServer('postgres'), serverEngine(prefix, 'postgres')],
  ];
}

async function sqliteEngine(prefix: string): Promise<ConflictEngine<Db>> {
  const harness = await sqliteHarness();
  // Another file whose write lock the suite holds, so a statement on it gets a real SQLITE_BUSY.
  const dir = mkdtempSync(join(tmpdir(), `txbarrier-${prefix}-`));
  const side = new Database(join(dir, 'side.db'), { timeout: 0 });
  side.exec('CREATE TABLE side (x)');
  const holder = new Database(join(dir, 'side.db'));
  holder.exec('BEGIN IMMEDIATE');
  return {
    ...harness,
    conflict: async () => void side.prepare('INSERT INTO side VALUES (1)').run(),
    close: async () => {
      holder.exec('ROLLBACK');
      for (const connection of [holder, side]) connection.close();
      rmSync(dir, { recursive: true, force: true });
      await harness.close();
    },
  };
}

function serverEngine(prefix: string, engine: 'mysql' | 'postgres') {
  return async (): Promise<ConflictEngine<any>> => {
    const tables = { table: `${prefix}_${engine}_barrier`, notes: `${prefix}_${engine}_notes` };
    if (engine === 'mysql') {
      const harness = await mysqlHarness(tables);
      return { ...harness, conflict: (tx) => tx.query("SIGNAL SQLSTATE '40001' SET MYSQL_ERRNO = 1213, MESSAGE_TEXT = 'forced deadlock'") };
    }
    const harness = await postgresHarness(tables);
    return {
      ...harness,
      conflict: (tx) => tx.query("DO $$ BEGIN RAISE EXCEPTION 'forced' USING ERRCODE = 'serialization_failure'; END $$"),
    };
  };
}
