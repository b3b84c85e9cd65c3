import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { expect, it } from 'vitest';

it('npm run demo absorbs every anomaly and conserves money', async () => {
  const cwd = mkdtempSync(join(tmpdir(), 'txbarrier-demo-'));
  try {
    const tsx = join(process.cwd(), 'node_modules/.bin/tsx');
    const { stdout } = await promisify(execFile)(tsx, [join(process.cwd(), 'examples/demo.ts')], { cwd });
    for (const outcome of ['applied', 'duplicate', 'null-compensation', 'dangling', 'failed']) {
      expect(stdout).toContain(`→ ${outcome}`);
    }
    expect(stdout).toContain('Balances: alice@A 850, bob@B 1150, carol@B 1000; total 3000');
    expect(stdout).toContain('No money was created or lost');
  } finally {
    rmSync(cwd, { recursive: true, force: true });
  }
});
