import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';

/** `npm run test:dtm`: the suites with the real DTM server as coordinator, which the global setup starts. */
export default defineConfig({
  test: {
    root: fileURLToPath(new URL('../../..', import.meta.url)),
    include: ['test/peers/dtm/**/*.test.ts'],
    globalSetup: ['test/global-setup.ts', 'test/peers/dtm/setup.ts'],
    testTimeout: 120_000,
    hookTimeout: 600_000,
  },
});
