/**
 * The rooms' two rules (docs/architecture.md): no import circle anywhere in the repository (type-only
 * imports and re-exports count: a circle of types still ties two files into one), and arrows point
 * down only: src/ imports only src/; adapters/ only src/ and adapters/; bin/ only those and itself.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { posix } from 'node:path';
import ts from 'typescript';
import { describe, expect, it } from 'vitest';

/** What each product folder may import from; tests, benches, chaos, examples and servers may import anything. */
const ALLOWED: Record<string, readonly string[]> = {
  src: ['src'],
  adapters: ['src', 'adapters'],
  bin: ['src', 'adapters', 'bin'],
};

/** The repository files a relative import in `file` names (every kind: import, import type, export from, import()). */
function importsOf(file: string, text: string, exists: (path: string) => boolean): string[] {
  const { importedFiles } = ts.preProcessFile(text, true, true);
  const targets: string[] = [];
  for (const { fileName } of importedFiles) {
    if (!fileName.startsWith('.')) continue;
    const path = posix.normalize(posix.join(posix.dirname(file), fileName));
    const candidates = [path.replace(/\.js$/, '.ts'), path, `${path}.ts`, `${path}/index.ts`];
    const found = candidates.find(exists);
    if (found) targets.push(found);
  }
  return targets;
}

/** Each circle once, as the files in order with the first repeated at the end. */
function circles(graph: ReadonlyMap<string, readonly string[]>): string[][] {
  const found: string[][] = [];
  const state = new Map<string, 'open' | 'done'>();
  const stack: string[] = [];
  const visit = (file: string): void => {
    state.set(file, 'open');
    stack.push(file);
    for (const next of graph.get(file) ?? []) {
      if (state.get(next) === 'open') found.push([...stack.slice(stack.indexOf(next)), next]);
      else if (!state.has(next)) visit(next);
    }
    stack.pop();
    state.set(file, 'done');
  };
  for (const file of [...graph.keys()].sort()) if (!state.has(file)) visit(file);
  return found;
}

/** `from → to` for every import that points up or sideways out of its room. */
function upward(graph: ReadonlyMap<string, readonly string[]>): string[] {
  const wrong: string[] = [];
  for (const [from, targets] of graph) {
    const allowed = ALLOWED[from.split('/')[0]!];
    if (!allowed) continue;
    for (const to of targets) if (!allowed.includes(to.split('/')[0]!)) wrong.push(`${from} → ${to}`);
  }
  return wrong.sort();
}

/** Compiled apart, as a user's project would be (their own tsconfig). */
const FIXTURES = ['test/fronts/nest-app/', 'test/idempotency/typed/'];

function repositoryGraph(): Map<string, string[]> {
  const files = execFileSync('git', ['ls-files', '--cached', '--others', '--exclude-standard', '*.ts', '*.mts', '*.cts'], { encoding: 'utf8' })
    .split('\n')
    .filter((file) => file && existsSync(file) && !FIXTURES.some((fixture) => file.startsWith(fixture)));
  const known = new Set(files);
  return new Map(files.map((file) => [file, importsOf(file, readFileSync(file, 'utf8'), (path) => known.has(path))]));
}

describe('imports', () => {
  const graph = repositoryGraph();

  it('form no circle', () => {
    expect(graph.size).toBeGreaterThan(100);
    expect(circles(graph).map((circle) => circle.join(' → '))).toEqual([]);
  });

  it('point down only: src → src; adapters → src, adapters; bin → src, adapters, bin', () => {
    expect(upward(graph)).toEqual([]);
  });

  it('are all seen by the check, type-only and re-exports included', () => {
    const sources: Record<string, string> = {
      'src/a.ts': "import type { B } from './b.js';\nexport type A = B;",
      'src/b.ts': "export { type A } from './a.js';\nexport type B = string;",
      'src/c.ts': "export const c = () => import('../adapters/d.js');",
      'adapters/d.ts': "import { x } from '../bin/e.js';\nexport const d = x;",
      'bin/e.ts': "import '../adapters/d.js';\nexport const x = 1;",
    };
    const fake = new Map(Object.entries(sources).map(([file, text]) => [file, importsOf(file, text, (path) => path in sources)]));
    expect(circles(fake).map((circle) => circle.join(' → '))).toEqual(['adapters/d.ts → bin/e.ts → adapters/d.ts', 'src/a.ts → src/b.ts → src/a.ts']);
    expect(upward(fake)).toEqual(['adapters/d.ts → bin/e.ts', 'src/c.ts → adapters/d.ts']);
  });
});
