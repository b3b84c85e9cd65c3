/**
 * Type-checks files as a reader's project would: the project's strict settings, with `txbarrier` and
 * its subpaths resolved to the sources they are built from (the `sources` table of tsup.config.ts).
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import ts from 'typescript';

const SUBPATHS: Record<string, string> = { txbarrier: 'src/index.ts', 'txbarrier/testing': 'src/testing/index.ts' };

/** `txbarrier/<name>` → the file tsup builds it from. */
function sourceOf(name: string, sources: string): string | undefined {
  const match = new RegExp(`^\\s*'?${name.replace(/[-/]/g, (c) => `\\${c}`)}'?: '([^']+)'`, 'm').exec(sources);
  return match?.[1];
}

export interface TypeProblem {
  file: string;
  /** 1-based. */
  line: number;
  message: string;
}

/** The diagnostics of `files`, and only theirs. */
export function typeProblems(files: string[]): TypeProblem[] {
  const pkg = JSON.parse(readFileSync('package.json', 'utf8')) as { exports: Record<string, unknown> };
  const sources = readFileSync('tsup.config.ts', 'utf8');
  const paths: Record<string, string[]> = {};
  for (const path of Object.keys(pkg.exports)) {
    if (path === './package.json') continue;
    const name = path === '.' ? 'txbarrier' : `txbarrier/${path.slice(2)}`;
    const source = SUBPATHS[name] ?? sourceOf(path.slice(2), sources);
    if (source) paths[name] = [join(process.cwd(), source)];
  }
  const config = ts.readConfigFile('tsconfig.json', ts.sys.readFile);
  const { options } = ts.parseJsonConfigFileContent(config.config, ts.sys, process.cwd());
  const program = ts.createProgram(files, { ...options, noEmit: true, paths, baseUrl: process.cwd() });
  return ts
    .getPreEmitDiagnostics(program)
    .filter((d) => d.file && files.includes(d.file.fileName))
    .map((d) => ({
      file: d.file!.fileName,
      line: d.file!.getLineAndCharacterOfPosition(d.start ?? 0).line + 1,
      message: ts.flattenDiagnosticMessageText(d.messageText, '\n'),
    }));
}
