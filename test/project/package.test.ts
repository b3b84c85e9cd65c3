/**
 * The package as a user installs it: built with tsup into a scratch copy, every subpath export
 * resolved through package.json from both `import` and `require`, with its type declarations.
 */
import { execFile } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative, resolve, sep } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const run = promisify(execFile);
const pkg = JSON.parse(readFileSync('package.json', 'utf8')) as {
  exports: Record<string, string | { import: Record<string, string>; require: Record<string, string> }>;
  peerDependenciesMeta: Record<string, { optional: boolean }>;
  engines: { node: string };
};
const subpaths = Object.entries(pkg.exports).filter(([path]) => path !== './package.json');
const specifier = (path: string) => (path === '.' ? 'txbarrier' : `txbarrier/${path.slice(2)}`);

describe('the published package', () => {
  let root: string;
  beforeAll(async () => {
    root = mkdtempSync(join(tmpdir(), 'txbarrier-pkg-'));
    // tsup needs about 30 s of CPU, which on a loaded 2-core machine took 144 s of wall time.
    await run(join(process.cwd(), 'node_modules/.bin/tsup'), ['--out-dir', join(root, 'dist'), '--silent'], { timeout: 300_000 });
    await run(join(process.cwd(), 'node_modules/.bin/tsx'), ['tsup.types.ts', join(root, 'dist')], { timeout: 60_000 });
    copyFileSync('package.json', join(root, 'package.json'));
  }, 370_000);
  afterAll(() => rmSync(root, { recursive: true, force: true }));

  const node = (file: string, source: string) => {
    writeFileSync(join(root, file), source);
    return run(process.execPath, [join(root, file)], { cwd: root });
  };

  it('declares every subpath with types for both module systems, and every file exists', () => {
    for (const [path, target] of subpaths) {
      expect(typeof target, path).toBe('object');
      const { import: esm, require: cjs } = target as { import: Record<string, string>; require: Record<string, string> };
      for (const file of [esm.types, esm.default, cjs.types, cjs.default]) {
        expect(existsSync(join(root, file!)), `${path}: ${file}`).toBe(true);
      }
    }
  });

  it('loads every subpath through import and require without any driver being needed at load time', async () => {
    const names = subpaths.map(([path]) => specifier(path));
    const esm = await node('load.mjs', `for (const n of ${JSON.stringify(names)}) await import(n); console.log('ok');`);
    const cjs = await node('load.cjs', `for (const n of ${JSON.stringify(names)}) require(n); console.log('ok');`);
    expect(esm.stdout.trim()).toBe('ok');
    expect(cjs.stdout.trim()).toBe('ok');
  });

  it('shares one copy of the core between entries, so instanceof holds across subpaths', async () => {
    const check = `
      const { BarrierConfigError } = M('txbarrier');
      const { sqliteStore } = M('txbarrier/sqlite');
      const db = { name: ':memory:', memory: true, inTransaction: false, prepare() {} };
      try { sqliteStore(db, { table: 'not a table' }); console.log('no error'); }
      catch (e) { console.log(e instanceof BarrierConfigError ? 'same class' : 'different class'); }`;
    const cjs = await node('identity.cjs', `const M = require;${check}`);
    const esm = await node('identity.mjs', `const mods = { txbarrier: await import('txbarrier'), 'txbarrier/sqlite': await import('txbarrier/sqlite') }; const M = (n) => mods[n];${check}`);
    expect(cjs.stdout.trim()).toBe('same class');
    expect(esm.stdout.trim()).toBe('same class');
  });

  it('ships what its source maps point to, its licence and its changelog', async () => {
    const { stdout } = await run('npm', ['pack', '--dry-run', '--json', '--ignore-scripts'], { timeout: 60_000 });
    const shipped = new Set((JSON.parse(stdout) as { files: { path: string }[] }[])[0]!.files.map((f) => f.path));
    for (const file of ['LICENSE', 'CHANGELOG.md', 'README.md', 'docs/barrier.md']) expect(shipped, file).toContain(file);
    const maps = readdirSync(join(root, 'dist')).filter((file) => file.endsWith('.map'));
    expect(maps.length).toBeGreaterThan(0);
    for (const map of maps) {
      for (const source of (JSON.parse(readFileSync(join(root, 'dist', map), 'utf8')) as { sources: string[] }).sources) {
        // Built into a scratch directory, the maps point back into this checkout: read them from here.
        // (Entries for the bundler's own glue point at the built file itself.)
        const absolute = resolve(root, 'dist', source);
        if (absolute.startsWith(root)) continue;
        const path = relative(process.cwd(), absolute).split(sep).join('/');
        if (!path.startsWith('node_modules/')) expect(shipped, `${map} → ${source}`).toContain(path);
      }
    }
  });

  it('type-checks for a project importing it from both an .mts and a .cts file (one declaration of each type)', async () => {
    const project = join(root, 'consumer');
    mkdirSync(join(project, 'node_modules'), { recursive: true });
    symlinkSync(root, join(project, 'node_modules', 'txbarrier'));
    // The peers' types beside the package too (the project lies inside it), as an npm install puts them where
    // the package's declarations look: dist/ imports `express`'s types, which resolve from the package's real path.
    mkdirSync(join(root, 'node_modules'));
    for (const types of ['@types', 'express']) symlinkSync(join(process.cwd(), 'node_modules', types), join(root, 'node_modules', types));
    const uses = (name: string) =>
      `import { Barrier } from 'txbarrier';\nimport { barrierRoute } from 'txbarrier/express';\n` +
      `export const ${name}: Barrier = Barrier.from({ transType: 'saga', gid: 'g', branchId: '01', op: 'action' });\n` +
      `export const ${name}Route = barrierRoute;\n`;
    writeFileSync(join(project, 'a.mts'), uses('a'));
    writeFileSync(join(project, 'b.cts'), uses('b'));
    writeFileSync(
      join(project, 'tsconfig.json'),
      JSON.stringify({
        compilerOptions: { module: 'NodeNext', moduleResolution: 'NodeNext', strict: true, noEmit: true, skipLibCheck: false, types: ['node'] },
        files: ['a.mts', 'b.cts'],
      }),
    );
    const result = await run(join(process.cwd(), 'node_modules/.bin/tsc'), ['-p', project], { timeout: 120_000 }).catch((error: { stdout: string }) => error);
    expect(result.stdout).toBe('');
  }, 150_000);

  it('makes every driver and framework an optional peer dependency, and runs on Node 20', () => {
    for (const driver of ['better-sqlite3', 'mysql2', 'pg', 'express']) {
      expect(pkg.peerDependenciesMeta[driver]?.optional, driver).toBe(true);
    }
    expect(pkg.engines.node).toBe('>=20');
  });
});
