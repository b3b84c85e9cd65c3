import type { TestProject } from 'vitest/node';
import type { Engine } from './servers.js';
import { ensureDatabase, MYSQL_URL, POSTGRES_URL } from '../../servers/index.js';

const REQUIRED = process.env.TXBARRIER_REQUIRE_DBS === '1';

async function reach(engine: Engine): Promise<string | undefined> {
  try {
    await ensureDatabase(engine, engine === 'mysql' ? MYSQL_URL : POSTGRES_URL);
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
