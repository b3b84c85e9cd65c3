/**
 * Every TypeScript block in the README and in docs/ compiles under the project's strict settings, each
 * as a module of its own, with `txbarrier` and its subpaths resolved to the sources. A block declares
 * whatever context it needs (`declare const req: …`), as a reader's file would.
 */
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { typeProblems } from '../support/compile.js';
import { documentationFiles } from './docs.js';

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
    const problems = typeProblems(files).map(({ file, line, message }) => {
      const block = blocks[Number(/block-(\d+)/.exec(file)![1]) - 1]!;
      return `${block.at} (${block.code.split('\n')[0]}…) line ${line}: ${message}`;
    });
    expect(problems).toEqual([]);
  }, 120_000);
});
