/**
 * One heavy suite's vitest project: the default suite's settings (global setup, timeouts), its own
 * name, the tests of its folder, and what `overrides` adds. A suite that needs settings of its own
 * exports `peerSuite('<suite>', { … })` from `test/peers/<suite>/vitest.config.ts`.
 */
import { fileURLToPath } from 'node:url';
import { configDefaults, mergeConfig, type ViteUserConfig } from 'vitest/config';
import defaults from '../../vitest.config.js';

export function peerSuite(name: string, overrides: ViteUserConfig = {}): ViteUserConfig {
  const base: ViteUserConfig = {
    ...defaults,
    // Replaced, not merged: mergeConfig would append these to the default suite's include and exclude.
    // A project's root would otherwise be its config file's folder; paths here are the repository's.
    test: { ...defaults.test, root: fileURLToPath(new URL('../..', import.meta.url)), name, include: [`test/peers/${name}/**/*.test.ts`], exclude: configDefaults.exclude },
  };
  return mergeConfig(base, overrides);
}
