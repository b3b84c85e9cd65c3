/** Every error code the library can throw is documented in the README or docs/, so callers can match on it. */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { documentationFiles } from '../project/docs.js';

function* sourceFiles(dir: string): Generator<string> {
  for (const name of readdirSync(dir)) {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) yield* sourceFiles(path);
    else if (path.endsWith('.ts')) yield path;
  }
}

describe('error codes', () => {
  it('are each listed in the README or docs/', () => {
    const documentation = documentationFiles().map((file) => readFileSync(file, 'utf8')).join('\n');
    const codes = new Set<string>();
    for (const dir of ['src', 'adapters', 'bin']) {
      for (const file of sourceFiles(dir)) for (const [, code] of readFileSync(file, 'utf8').matchAll(/'(ERR_TXBARRIER[A-Z_]*)'/g)) codes.add(code!);
    }
    expect(codes.size).toBeGreaterThan(20);
    expect([...codes].filter((code) => !documentation.includes(`\`${code}\``)).sort()).toEqual([]);
  });
});
