/**
 * Each front's idempotent handler and `scope` receive their framework's own request or context:
 * a typed app per front (test/idempotency/typed) compiles under strict settings with
 * nothing annotated.
 */
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { typeProblems } from '../support/compile.js';

const dir = join(process.cwd(), 'test', 'idempotency', 'typed');
const files = readdirSync(dir).map((file) => join(dir, file));

describe('idempotentRoute types', () => {
  it('has a typed app for each of the four fronts, and every one compiles under strict', () => {
    expect(files.map((file) => file.slice(dir.length + 1)).sort()).toEqual(['express.ts', 'fastify.ts', 'hono.ts', 'koa.ts']);
    expect(typeProblems(files).map(({ file, line, message }) => `${file.slice(dir.length + 1)}:${line}: ${message}`)).toEqual([]);
  }, 120_000);
});
