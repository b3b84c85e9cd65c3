import type { TestProject } from 'vitest/node';
import type { Engine } from './servers.js';
import { MYSQL_URL, POSTGRES_URL } from '../../servers/index.js';

const REQUIRED = process.env.TXBARRIER_REQUIRE_DBS === '1';

async function reach(engine: Engine): Promise<string | undefined> {
  try {
    // Connect to the server without naming the suite's database, and create that database if missing.
    if (engine === 'mysql') {
      const mysql = await import('mysql2/promise');
      const url = new URL(MYSQL_URL);
      const database = url.pathname.slice(1);
      url.pathname = '/';
      const connection = await mysql.createConnection({ uri: url.href, connectTimeout: 3000 });
      await connection.query(`CREATE DATABASE IF NOT EXISTS \`${database}\` DEFAULT CHARACTER SET utf8mb4`);
      await connection.end();
    } else {
      const { default: pg } = await import('pg');
      const url = new URL(POSTGRES_URL);
      const database = decodeURIComponent(url.pathname.slice(1));
      url.pathname = '/postgres';
      const client = new pg.Client({ connectionString: url.href, connectionTimeoutMillis: 3000 });
      await client.connect();
      const { rowCount } = await client.query('SELECT 1 FROM pg_database WHERE datname = $1', [database]);
      // Two runs starting at once may both try: the loser's duplicate (42P04/23505) is fine.
      if (rowCount === 0) await client.query(`CREATE DATABASE "${database}"`).catch((error: { code?: string }) => {
        if (error.code !== '42P04' && error.code !== '23505') throw error;
      });
      await client.end();
    }
    return undefined;
  } catch (error) {
    return error instanceof Error ? error.message || error.constructor.name : String(error);
  }
}

export default async function setup(project: TestProject): Promise<void> {
  const servers = { mysql: false, postgres: false };
  const missing: string[] = [];
  for (const [engine, url, variable] of [
    ['mysql', MYSQL_URL, 'TXBARRIER_MYSQL_URL'],
    ['postgres', POSTGRES_URL, 'TXBARRIER_POSTGRES_URL'],
  ] as const) {
    const problem = await reach(engine);
    servers[engine] = problem === undefined;
    if (problem !== undefined) missing.push(`${engine} at ${url} (${problem}); set ${variable} to test it`);
  }
  if (missing.length > 0) {
    if (REQUIRED) throw new Error(`TXBARRIER_REQUIRE_DBS=1 but a server is unreachable:\n  ${missing.join('\n  ')}`);
    console.warn(`\ntxbarrier: SKIPPING the tests of:\n  ${missing.join('\n  ')}\nSQLite tests run regardless.\n`);
  } else {
    console.log('\ntxbarrier: testing SQLite, MySQL/MariaDB and PostgreSQL\n');
  }
  project.provide('servers', servers);
}
