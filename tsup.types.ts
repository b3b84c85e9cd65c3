/**
 * After tsup: one set of type declarations for both module systems. tsup writes each entry's types
 * twice (`x.d.ts` for import, `x.d.cts` for require), and a program that imports txbarrier from both
 * an `.mts` and a `.cts` file would then see two `Barrier` classes, and two declarations of the same
 * global augmentation (`Express.Request['barrier']`), which TypeScript rejects (TS2717). Each `x.d.ts`
 * becomes a re-export of `x.d.cts` (an ES module may import a CommonJS one; not the reverse).
 *
 * Usage: `tsx tsup.types.ts [dist]`.
 */
import { readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

/** Every folder of the build: entries such as `idempotency/express` live in subfolders. */
function* folders(dir: string): Generator<string> {
  yield dir;
  for (const name of readdirSync(dir)) if (statSync(join(dir, name)).isDirectory()) yield* folders(join(dir, name));
}

for (const dir of folders(process.argv[2] ?? 'dist')) {
  const files = readdirSync(dir);
  for (const file of files) {
    const entry = /^([\w-]+)\.d\.cts$/.exec(file)?.[1];
    // Shared chunks carry a hash (`barrier-DX2q_R_1.d.cts`); only entries have a .js beside them.
    if (!entry || !files.includes(`${entry}.js`)) continue;
    writeFileSync(join(dir, `${entry}.d.ts`), `export * from './${entry}.cjs';\n`);
  }
  // The ESM-only declaration chunks (no entry of that name beside them) are now unused.
  for (const file of files) {
    const base = /^(.+)\.d\.ts$/.exec(file)?.[1];
    if (base && !files.includes(`${base}.js`)) rmSync(join(dir, file));
  }
}
