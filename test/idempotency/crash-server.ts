/**
 * A payment service in a process of its own, for the SIGKILL test: `POST /pay` writes a ledger
 * row in the idempotent route's transaction. With `hang`, the handler then prints IN_HANDLER and
 * never returns, so the test can kill the process mid-request.
 * Arguments: engine, url (mysql://…, postgres://…, sqlite:file), key table, ledger table, mode.
 */
import Database from 'better-sqlite3';
import express from 'express';
import mysql from 'mysql2/promise';
import pg from 'pg';
import { idempotentRoute, keepRawBody } from '../../adapters/http/express/idempotency.js';
import { mysqlStore } from '../../adapters/stores/mysql.js';
import { postgresStore } from '../../adapters/stores/postgres.js';
import { sqliteStore } from '../../adapters/stores/sqlite.js';
import type { BarrierStore } from '../../src/index.js';

const [engine, url, table, ledger, mode] = process.argv.slice(2) as [string, string, string, string, 'hang' | 'normal'];

let store: BarrierStore<any>;
let record: (tx: any, note: string) => Promise<unknown>;
if (engine === 'sqlite') {
  store = sqliteStore(new Database(url.slice('sqlite:'.length)));
  record = async (tx, note) => tx.prepare(`INSERT INTO ${ledger} (note) VALUES (?)`).run(note);
} else if (engine === 'mysql') {
  store = mysqlStore(mysql.createPool({ uri: url, connectionLimit: 2 }));
  record = (tx, note) => tx.query(`INSERT INTO ${ledger} (note) VALUES (?)`, [note]);
} else {
  store = postgresStore(new pg.Pool({ connectionString: url, max: 2 }));
  record = (tx, note) => tx.query(`INSERT INTO ${ledger} (note) VALUES ($1)`, [note]);
}

const app = express();
app.use(express.json({ verify: keepRawBody }));
app.post(
  '/pay',
  idempotentRoute(
    store,
    async (tx, req) => {
      await record(tx, req.body.note);
      if (mode === 'hang') {
        console.log('IN_HANDLER');
        await new Promise(() => undefined);
      }
      return { status: 201, body: { paid: req.body.amount, pid: process.pid } };
    },
    { scope: (req) => String(req.headers['x-client']), table },
  ),
);
const server = app.listen(0, '127.0.0.1', () => {
  const address = server.address();
  console.log(`LISTENING ${typeof address === 'object' && address ? address.port : ''}`);
});
