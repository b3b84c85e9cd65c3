import Database from 'better-sqlite3';
import { expect } from 'vitest';
import { sqliteStore } from '../../adapters/stores/sqlite.js';
import { describeConformance } from '../barrier/conformance.js';
import { sqliteHarness } from './sqlite-harness.js';
import { describeSqliteQueue } from './sqlite-queue.js';

describeConformance('sqlite', sqliteHarness);

describeSqliteQueue({
  name: 'better-sqlite3',
  open: (file, timeout) => new Database(file, { timeout }),
  store: (db, options) => sqliteStore(db, options),
  inTransaction: (db) => db.inTransaction,
  openInChild: (file) => `const db = new (require('better-sqlite3'))(${JSON.stringify(file)});`,
  busyCause: { code: expect.stringMatching(/^SQLITE_BUSY/) },
});
