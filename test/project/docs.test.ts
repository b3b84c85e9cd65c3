/**
 * Every relative link in the README and docs/ leads somewhere: the file exists, and a `#fragment` names a
 * heading of that page (GitHub's anchors). Links inside code are not links, and absolute URLs are not checked.
 */
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, normalize } from 'node:path';
import { describe, expect, it } from 'vitest';
import { documentationFiles } from './docs.js';

/** Markdown without its fenced blocks and inline code, where `[a](b)` is text, not a link. */
function prose(markdown: string): string {
  return markdown.replace(/^```[\s\S]*?^```/gm, '').replace(/`[^`\n]*`/g, '');
}

/** The anchors GitHub gives a page's headings: lower case, punctuation dropped, spaces to hyphens, repeats numbered. */
function anchors(markdown: string): Set<string> {
  const seen = new Map<string, number>();
  const found = new Set<string>();
  for (const [, heading] of prose(markdown.replace(/`([^`\n]*)`/g, '$1')).matchAll(/^#{1,6} (.+)$/gm)) {
    const slug = heading!.trim().toLowerCase().replace(/[^\p{L}\p{N}\s_-]/gu, '').replace(/\s/g, '-');
    const count = seen.get(slug) ?? 0;
    seen.set(slug, count + 1);
    found.add(count === 0 ? slug : `${slug}-${count}`);
  }
  return found;
}

/** `file: target` for each relative link in `text` (of `file`) that leads nowhere. */
function brokenLinks(file: string, text: string, read: (path: string) => string | undefined): string[] {
  const broken: string[] = [];
  for (const [, target] of prose(text).matchAll(/\]\(([^)\s]+)(?:\s+"[^"]*")?\)/g)) {
    if (/^[a-z][a-z0-9+.-]*:/i.test(target!)) continue;
    const [path, fragment] = target!.split('#', 2) as [string, string | undefined];
    const linked = path === '' ? file : normalize(join(dirname(file), decodeURIComponent(path)));
    const page = read(linked);
    if (page === undefined) broken.push(`${file}: ${target} (no such file)`);
    else if (fragment !== undefined && linked.endsWith('.md') && !anchors(page).has(fragment)) broken.push(`${file}: ${target} (no such heading)`);
  }
  return broken;
}

const readFile = (path: string) => (existsSync(path) ? (path.endsWith('.md') ? readFileSync(path, 'utf8') : '') : undefined);

describe('documentation links', () => {
  it('every relative link in the README and docs/ resolves, headings included', () => {
    const files = documentationFiles();
    expect(files.length).toBeGreaterThan(10);
    expect(files.flatMap((file) => brokenLinks(file, readFileSync(file, 'utf8'), readFile))).toEqual([]);
  });

  it('are checked: a missing file, a missing heading, a repeated heading', () => {
    const pages: Record<string, string> = {
      'README.md': '# Top\n\n[a](docs/a.md#two-words) [b](docs/gone.md) [c](docs/a.md#nothing) [d](#top) `[e](nowhere.md)` [f](https://example.com/x)',
      'docs/a.md': '# A\n\n## Two `words`, here?\n\n## Same\n\n## Same\n\n[back](../README.md#top) [g](#same-1) [h](#same-2)',
    };
    const read = (path: string) => pages[path];
    expect(brokenLinks('README.md', pages['README.md']!, read)).toEqual(['README.md: docs/a.md#two-words (no such heading)', 'README.md: docs/gone.md (no such file)', 'README.md: docs/a.md#nothing (no such heading)']);
    expect(anchors(pages['docs/a.md']!)).toEqual(new Set(['a', 'two-words-here', 'same', 'same-1']));
    expect(brokenLinks('docs/a.md', pages['docs/a.md']!, read)).toEqual(['docs/a.md: #same-2 (no such heading)']);
  });
});
