import { configDefaults, defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // Heavy suites run once in CI, each by its own `npm run test:<suite>` (test/peers/vitest.config.ts).
    exclude: [...configDefaults.exclude, 'test/peers/**'],
    globalSetup: ['test/support/global-setup.ts'],
    // Under .ci/run, skipped tests are also written down for its summary (test/support/ci-skips.ts).
    reporters: process.env.TXBARRIER_CI_SKIPS ? ['default', './test/support/ci-skips.ts'] : ['default'],
    // Warnings a test provokes are recorded, not printed, and must be claimed (test/support/warnings.ts).
    setupFiles: ['test/support/warnings.ts'],
    // Race tests hold transactions open against real servers; the default 5 s is tight on 2 cores.
    testTimeout: 30_000,
    hookTimeout: 30_000,
  },
});
