/** The documentation the tests read: the README (the front door) and every page of docs/. */
import { readdirSync } from 'node:fs';
import { join } from 'node:path';

export function documentationFiles(): string[] {
  const pages = (dir: string): string[] =>
    readdirSync(dir, { withFileTypes: true }).flatMap((entry) =>
      entry.isDirectory() ? pages(join(dir, entry.name)) : entry.name.endsWith('.md') ? [join(dir, entry.name)] : [],
    );
  return ['README.md', ...pages('docs').sort()];
}
