/**
 * The package as a new user installs it: packed once (`npm pack`, which builds on prepack), then
 * installed into fresh empty projects, alone and beside each peer, with npm 11 (the system npm) and
 * npm 10; in each, every subpath is loaded through import and through require (none needs its peer
 * at load time), and each peer present is used with its subpath (PEER_CHECKS). Fails on any ERESOLVE,
 * load error or failed use. Runs once in CI, on the system Node (`npm run test:install`).
 *
 * Usage: tsx scripts/install-matrix.ts [--tarball txbarrier-x.y.z.tgz] (an already packed one) [--keep]
 */
import { execFile } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

/** One line per project: what it installs beside txbarrier. A new optional peer adds its line here. */
const PROJECTS: string[][] = [
  [],
  ['pg'],
  ['mysql2'],
  ['postgres@3'],
  ['postgres@4'],
  ['drizzle-orm', 'postgres@4'],
  ['better-sqlite3@12'],
  ['@temporalio/activity'],
  ['@restatedev/restate-sdk'],
  ['@electric-sql/pglite'],
  ['ioredis'],
  ['redis'],
];

/** The npm majors every project is installed with: the system npm if it is that major, else one fetched (servers/npm-fetch.sh). */
const NPMS = [11, 10];

/**
 * Peers with a native addon: installed without scripts, then given the addon compiled once per
 * machine (cached by version and Node ABI) instead of compiling it in every project.
 */
const NATIVE: Record<string, string> = { 'better-sqlite3': 'build/Release/better_sqlite3.node' };

/**
 * What each peer's check does once every subpath has loaded: the same source runs as ESM and as
 * CommonJS, with `load(name)` (import or require) and `pick(module)` (its default export, if any).
 * Constructing a store connects to nothing; better-sqlite3 runs a whole barrier in memory.
 */
const PEER_CHECKS: Record<string, string> = {
  'better-sqlite3': `
    const Database = pick(await load('better-sqlite3'));
    const { sqliteStore } = await load('txbarrier/sqlite');
    const { Barrier } = await load('txbarrier');
    const store = sqliteStore(new Database(':memory:'));
    await store.ensureSchema();
    // Two requests for one branch: a barrier object per request (its calls count barrier ids).
    const request = () => Barrier.from({ transType: 'saga', gid: 'g', branchId: '01', op: 'action' }).call(store, () => {});
    const outcomes = [(await request()).outcome, (await request()).outcome];
    if (outcomes.join() !== 'applied,duplicate') throw new Error('better-sqlite3 barrier: ' + outcomes.join());`,
  pg: `
    const { Pool } = pick(await load('pg'));
    const { postgresStore } = await load('txbarrier/postgres');
    const pool = new Pool();
    postgresStore(pool);
    await pool.end();`,
  mysql2: `
    const { createPool } = pick(await load('mysql2/promise'));
    const { mysqlStore } = await load('txbarrier/mysql');
    const pool = createPool({});
    mysqlStore(pool);
    await pool.end();`,
  postgres: `
    const postgres = pick(await load('postgres'));
    const { postgresJsStore } = await load('txbarrier/postgres-js');
    const sql = postgres();
    postgresJsStore(sql);
    await sql.end();`,
  '@electric-sql/pglite': `
    const { PGlite } = await load('@electric-sql/pglite');
    const { pgliteStore } = await load('txbarrier/pglite');
    const { Barrier } = await load('txbarrier');
    const pg = new PGlite();
    const store = pgliteStore(pg);
    await store.ensureSchema();
    const request = () => Barrier.from({ transType: 'saga', gid: 'g', branchId: '01', op: 'action' }).call(store, () => {});
    const outcomes = [(await request()).outcome, (await request()).outcome];
    await pg.close();
    if (outcomes.join() !== 'applied,duplicate') throw new Error('PGlite barrier: ' + outcomes.join());`,
  ioredis: `
    const { Redis } = await load('ioredis');
    const { ioredisBarrier } = await load('txbarrier/redis');
    const redis = new Redis({ lazyConnect: true });
    ioredisBarrier(redis).script('return 1');
    redis.disconnect();`,
  redis: `
    const { createClient } = await load('redis');
    const { nodeRedisBarrier } = await load('txbarrier/redis');
    nodeRedisBarrier(createClient()).script('return 1');`,
};

const args = process.argv.slice(2);
const option = (name: string) => (args.includes(name) ? args[args.indexOf(name) + 1] : undefined);
const checkout = resolve(import.meta.dirname, '..');
const scratch = mkdtempSync(join(tmpdir(), 'txbarrier-install-'));
// npm run passes its own settings (npm_config_*) down; each npm here must start from the user's.
const env = Object.fromEntries(Object.entries(process.env).filter(([key]) => !key.toLowerCase().startsWith('npm_')));

interface Ran {
  stdout: string;
  stderr: string;
}

function run(command: string[], cwd: string, timeout = 300_000): Promise<Ran> {
  return new Promise((resolvePromise, reject) => {
    execFile(command[0]!, command.slice(1), { cwd, env, timeout, maxBuffer: 64 << 20 }, (error, stdout, stderr) => {
      if (error) reject(new Error(`${command.join(' ')} (in ${cwd}) failed: ${error.message}\n${stdout}${stderr}`.trim()));
      else resolvePromise({ stdout, stderr });
    });
  });
}

const nameOf = (spec: string) => spec.replace(/(?<=.)@.*$/, '');
const versionIn = (project: string, name: string) =>
  (JSON.parse(readFileSync(join(project, 'node_modules', name, 'package.json'), 'utf8')) as { version: string }).version;

/** The addon of `name@version` for this Node, compiled once per machine (servers/native-addon.sh). */
async function nativeAddon(name: string, version: string): Promise<string> {
  return (await run([join(checkout, 'servers/native-addon.sh'), name, version, NATIVE[name]!], checkout, 900_000)).stdout.trim();
}

/** The addons are fetched one at a time: two projects must not compile the same one at once. */
let addons = Promise.resolve();

interface Npm {
  name: string;
  command: string[];
}

async function npmOf(major: number): Promise<Npm> {
  const system = (await run(['npm', '--version'], scratch)).stdout.trim();
  if (system.split('.')[0] === String(major)) return { name: `npm ${major}`, command: ['npm'] };
  const dir = (await run([join(checkout, 'servers/npm-fetch.sh'), `npm@${major}`], scratch)).stdout.trim();
  return { name: `npm ${major}`, command: [process.execPath, join(dir, 'bin/npm-cli.js')] };
}

async function installAndLoad(tarball: string, peers: string[], npm: Npm, index: number): Promise<void> {
  const project = join(scratch, `project-${index}`);
  mkdirSync(project);
  writeFileSync(join(project, 'package.json'), JSON.stringify({ name: `matrix-${index}`, version: '1.0.0', private: true }));
  await run([...npm.command, 'install', tarball, ...peers, '--ignore-scripts', '--no-audit', '--no-fund', '--loglevel=error'], project);
  for (const name of peers.map(nameOf).filter((peer) => peer in NATIVE)) {
    const version = versionIn(project, name);
    const next = addons.then(() => nativeAddon(name, version));
    addons = next.then(() => undefined, () => undefined);
    const target = join(project, 'node_modules', name, NATIVE[name]!);
    mkdirSync(join(target, '..'), { recursive: true });
    copyFileSync(await next, target);
  }
  const exports = (JSON.parse(readFileSync(join(project, 'node_modules/txbarrier/package.json'), 'utf8')) as { exports: Record<string, unknown> }).exports;
  const subpaths = Object.keys(exports)
    .filter((path) => path !== './package.json')
    .map((path) => (path === '.' ? 'txbarrier' : `txbarrier/${path.slice(2)}`));
  const checks = peers.map(nameOf).map((name) => PEER_CHECKS[name] ?? '').join('\n');
  const body = `
    const pick = (module) => module.default ?? module;
    (async () => {
      for (const name of ${JSON.stringify(subpaths)}) await load(name);
      ${checks}
      console.log('ok');
    })().catch((error) => { console.error(error); process.exit(1); });`;
  writeFileSync(join(project, 'check.mjs'), `const load = (name) => import(name);${body}`);
  writeFileSync(join(project, 'check.cjs'), `const load = async (name) => require(name);${body}`);
  for (const file of ['check.mjs', 'check.cjs']) {
    const { stdout, stderr } = await run([process.execPath, file], project, 60_000);
    if (stdout.trim() !== 'ok' || stderr.trim() !== '') throw new Error(`${file}: expected only "ok", got:\n${stdout}${stderr}`);
  }
}

async function main(): Promise<number> {
  const started = Date.now();
  let tarball = option('--tarball');
  if (tarball) {
    tarball = resolve(tarball);
  } else {
    // npm pack runs prepack (the build), as it would on a fresh clone.
    const { stdout } = await run(['npm', 'pack', '--json', '--pack-destination', scratch, '--loglevel=error'], checkout, 600_000);
    tarball = join(scratch, (JSON.parse(stdout.slice(stdout.indexOf('[\n'))) as { filename: string }[])[0]!.filename);
  }
  const shipped = (await run(['tar', '-tzf', tarball], scratch)).stdout;
  if (!shipped.includes('package/dist/index.js')) throw new Error(`${tarball} ships no dist/ (was prepack skipped?)`);
  const npms: Npm[] = [];
  for (const major of NPMS) {
    const npm = await npmOf(major);
    console.log(`install-matrix: ${npm.name} is ${(await run([...npm.command, '--version'], scratch)).stdout.trim()} (${npm.command.join(' ')})`);
    npms.push(npm);
  }
  console.log(`install-matrix: packed in ${Math.round((Date.now() - started) / 1000)} s; ${PROJECTS.length} projects x ${npms.length} npm versions`);

  const jobs = PROJECTS.flatMap((peers) => npms.map((npm) => ({ peers, npm })));
  const results = new Map<(typeof jobs)[number], { seconds: number; error?: unknown }>();
  let next = 0;
  // Four at a time: an install mostly waits on the registry (npm reads every optional peer's metadata).
  await Promise.all(
    [0, 1, 2, 3].map(async () => {
      while (next < jobs.length) {
        const index = next++;
        const job = jobs[index]!;
        const begun = Date.now();
        const error = await installAndLoad(tarball, job.peers, job.npm, index).then(() => undefined, (e: unknown) => e ?? new Error('failed'));
        results.set(job, { seconds: Math.round((Date.now() - begun) / 1000), ...(error === undefined ? {} : { error }) });
      }
    }),
  );

  const failed = [...results.values()].filter((result) => result.error !== undefined);
  for (const [job, result] of results) {
    if (result.error !== undefined) console.error(`\ninstall-matrix: FAILED ${job.npm.name} [${job.peers.join(' ') || 'txbarrier alone'}]:\n${String(result.error instanceof Error ? result.error.message : result.error)}`);
  }
  const width = Math.max(...PROJECTS.map((peers) => (peers.join(' ') || 'txbarrier alone').length));
  console.log(`\n${'beside txbarrier'.padEnd(width)}  ${npms.map((npm) => npm.name.padEnd(12)).join('  ')}`);
  for (const peers of PROJECTS) {
    const cells = npms.map((npm) => {
      const result = results.get(jobs.find((job) => job.peers === peers && job.npm === npm)!)!;
      return `${result.error === undefined ? 'ok' : 'FAILED'} ${result.seconds} s`.padEnd(12);
    });
    console.log(`${(peers.join(' ') || 'txbarrier alone').padEnd(width)}  ${cells.join('  ')}`);
  }
  console.log(`install-matrix: ${failed.length === 0 ? 'passed' : `${failed.length} of ${jobs.length} FAILED`} in ${Math.round((Date.now() - started) / 1000)} s`);
  return failed.length === 0 ? 0 : 1;
}

main()
  .then(
    (code) => code,
    (error: unknown) => (console.error(error), 1),
  )
  .then((code) => {
    if (args.includes('--keep')) console.log(`install-matrix: kept ${scratch}`);
    else rmSync(scratch, { recursive: true, force: true });
    process.exitCode = code;
  });
