/**
 * A vitest reporter for .ci/run: appends each skipped test to the file named by TXBARRIER_CI_SKIPS
 * (`<file> > <test name>`, then ` — <note>` if the test gave `ctx.skip(note)`), so the run's summary
 * can say what a step skipped, and fail a step whose skips no one allowed.
 */
import { appendFileSync } from 'node:fs';
import { relative } from 'node:path';
import type { Reporter, TestModule } from 'vitest/node';

export default class CiSkips implements Reporter {
  onTestRunEnd(modules: ReadonlyArray<TestModule>): void {
    const file = process.env.TXBARRIER_CI_SKIPS;
    if (!file) return;
    const lines: string[] = [];
    for (const module of modules) {
      for (const test of module.children.allTests('skipped')) {
        const result = test.result();
        const note = result.state === 'skipped' ? result.note : undefined;
        lines.push(`${relative(process.cwd(), module.moduleId)} > ${test.fullName}${note ? ` — ${note}` : ''}`);
      }
    }
    if (lines.length > 0) appendFileSync(file, `${lines.join('\n')}\n`);
  }
}
