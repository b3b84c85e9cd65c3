/**
 * The heavy suites: one vitest project per folder of test/peers/, run once in CI rather than on
 * every Node version (`npm run test:<suite>` = `vitest run --config test/peers/vitest.config.ts
 * --project <suite>`). A folder with a vitest.config.ts of its own is that project's config
 * (see suite.ts); any other folder gets the defaults.
 */
import { existsSync, readdirSync } from 'node:fs';
import { defineConfig } from 'vitest/config';
import defaults from '../../vitest.config.js';
import { peerSuite } from './suite.js';

const here = 'test/peers';
const suites = readdirSync(here, { withFileTypes: true }).filter((entry) => entry.isDirectory()).map((entry) => entry.name);

export default defineConfig({
  // Reporters belong to the run, not to a project: the same as the default suite's.
  test: { reporters: defaults.test?.reporters, projects: suites.map((suite) => (existsSync(`${here}/${suite}/vitest.config.ts`) ? `${here}/${suite}/vitest.config.ts` : peerSuite(suite))) },
});
