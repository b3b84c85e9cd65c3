import { BarrierConfigError } from './errors.js';

const UNIT_MS = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000, w: 604_800_000 } as const;

/** Milliseconds from a number of milliseconds or a string such as `'7d'`, `'12h'`, `'90m'`, `'30s'`. */
export function parseDuration(value: number | string, what: string): number {
  if (typeof value === 'number' && Number.isFinite(value) && value >= 0) return value;
  const match = typeof value === 'string' ? /^(\d+(?:\.\d+)?)(ms|s|m|h|d|w)$/.exec(value.trim()) : null;
  if (!match) {
    throw new BarrierConfigError(`${what} must be milliseconds or a duration like 7d, 12h, 90m, 30s; got ${JSON.stringify(value)}`);
  }
  return Number(match[1]) * UNIT_MS[match[2] as keyof typeof UNIT_MS];
}
