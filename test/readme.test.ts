/**
 * Every TypeScript block in the README and in docs/ compiles under the project's strict settings, each
 * as a module of its own, with `txbarrier` and its subpaths resolved to the sources. A block declares
 * whatever context it needs (`declare const req: …`), as a reader's file would.
 */
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import ts from 'typescript';
import { afterAll, describe, expect, it } from 'vitest';
import { documentationFiles } from './docs.js';

const SUBPATHS: Record<string, string> = { txbarrier: 'src/index.ts', 'txbarrier/testing': 'src/testing/index.ts' };
const pkg = JSON.parse(readFileSync('package.json', 'utf8')) as { exports: Record<string, unknown> };
const sources = readFileSync('tsup.config.ts', 'utf8');

/** `txbarrier/<name>` → the file tsup builds it from (the `sources` table of tsup.config.ts). */
function sourceOf(name: string): string | undefined {
  const match = new RegExp(`^\\s*'?${name.replace(/[-/]/g, (c) => `\\${c}`)}'?: '([^']+)'`, 'm').exec(sources);
  return match?.[1];
}

/** Each block with where it is (`docs/outbox.md:12`), for the failure message. */
const blocks = documentationFiles().flatMap((file) => {
  const text = readFileSync(file, 'utf8');
  return [...text.matchAll(/```ts\n([\s\S]*?)```/g)].map((m) => ({ code: m[1]!, at: `${file}:${text.slice(0, m.index).split('\n').length}` }));
});
const dir = join(process.cwd(), 'test', '.readme');

describe('README and docs/', () => {
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('has TypeScript blocks, and every one of them compiles', () => {
    expect(blocks.length).toBeGreaterThan(20);
    rmSync(dir, { recursive: true, force: true });
    mkdirSync(dir, { recursive: true });
    const files = blocks.map(({ code }, index) => {
      const file = join(dir, `block-${String(index + 1).padStart(3, '0')}.ts`);
      writeFileSync(file, `${code}\nexport {};\n`);
      return file;
    });
    const paths: Record<string, string[]> = {};
    for (const path of Object.keys(pkg.exports)) {
      if (path === './package.json') continue;
      const name = path === '.' ? 'txbarrier' : `txbarrier/${path.slice(2)}`;
      const source = SUBPATHS[name] ?? sourceOf(path.slice(2));
      if (source) paths[name] = [join(process.cwd(), source)];
    }
    const config = ts.readConfigFile('tsconfig.json', ts.sys.readFile);
    const { options } = ts.parseJsonConfigFileContent(config.config, ts.sys, process.cwd());
    const program = ts.createProgram(files, { ...options, noEmit: true, paths, baseUrl: process.cwd() });
    const problems = ts
      .getPreEmitDiagnostics(program)
      .filter((d) => d.file && d.file.fileName.startsWith(dir))
      .map((d) => {
        const { line } = d.file!.getLineAndCharacterOfPosition(d.start ?? 0);
        const block = blocks[Number(/block-(\d+)/.exec(d.file!.fileName)![1]) - 1]!;
        return `${block.at} (${block.code.split('\n')[0]}…) line ${line + 1}: ${ts.flattenDiagnosticMessageText(d.messageText, '\n')}`;
      });
    expect(problems).toEqual([]);
  }, 120_000);
});
