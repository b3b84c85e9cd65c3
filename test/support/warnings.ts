/**
 * A green run is quiet. Every process warning a test provokes (txbarrier reports errors it cannot
 * hand to anyone through `process.emitWarning` when no logger is given) is recorded here instead of
 * printed, and the test must claim it (`takeWarnings`, or a 'warning' listener of its own): a
 * warning left unclaimed fails the test that was running, naming it. So a warning is either asserted on or a bug, never noise.
 */
import { afterAll, afterEach } from 'vitest';

const recorded: string[] = [];

// Node prints warnings through a 'warning' listener of its own: replace it with the recorder. A
// warning that a test listens for itself (process.on('warning')) is that test's to assert on.
process.removeAllListeners('warning');
// Node 22's notice that node:sqlite is experimental comes from the runtime, not the code under test.
const RUNTIME_NOTICE = /^SQLite is an experimental feature/;
const record = (warning: Error) => {
  if (process.listenerCount('warning') > 1) return;
  if (warning.name === 'ExperimentalWarning' && RUNTIME_NOTICE.test(warning.message)) return;
  recorded.push(`${warning.name}: ${warning.message}`);
};
process.on('warning', record);

/** Removes and returns the warnings recorded so far (only those matching `pattern`, if given), as `Type: message`. */
export function takeWarnings(pattern?: RegExp): string[] {
  const taken: string[] = [];
  for (let i = 0; i < recorded.length; ) {
    if (pattern === undefined || pattern.test(recorded[i]!)) taken.push(...recorded.splice(i, 1));
    else i++;
  }
  return taken;
}

/** Waits until `count` warnings matching `pattern` have been recorded (they may come after the request that caused them), and takes them. */
export async function awaitWarnings(pattern: RegExp, count: number, timeoutMs = 5000): Promise<string[]> {
  const deadline = Date.now() + timeoutMs;
  while (recorded.filter((w) => pattern.test(w)).length < count && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
  return takeWarnings(pattern);
}

/** Waits until no warning has come for `quietMs` (at most `timeoutMs`), then takes them all: for faults whose reports trickle in. */
export async function settleWarnings(quietMs = 300, timeoutMs = 5000): Promise<string[]> {
  const deadline = Date.now() + timeoutMs;
  let seen = -1;
  while (seen !== recorded.length && Date.now() < deadline) {
    seen = recorded.length;
    await new Promise((resolve) => setTimeout(resolve, quietMs));
  }
  return takeWarnings();
}

function noneLeft(where: string): void {
  const left = takeWarnings();
  if (left.length > 0) throw new Error(`${where} left ${left.length} unclaimed warning(s); claim them with takeWarnings():\n  ${left.join('\n  ')}`);
}

afterEach(() => noneLeft('the test'));
// Warnings from a file's teardown (closing consumers, relays, servers) count too.
afterAll(() => noneLeft("the file's teardown"));
