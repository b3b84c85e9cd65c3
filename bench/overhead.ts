/**
 * Section 6: the SDK's own CPU per call apart from any I/O (bench/overhead-worker.ts), in a bundled
 * process of its own like section 1's workers.
 */
import { spawn } from 'node:child_process';
import type { OverheadResult } from './overhead-worker.js';
import type { Workers } from './processes.js';

export type { OverheadResult };

export function measureOverhead(workers: Workers, calls: number): Promise<OverheadResult[]> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [workers.overhead, String(calls)], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.on('data', (chunk) => (out += chunk));
    child.once('error', reject);
    child.once('exit', (code) =>
      code === 0 ? resolve(JSON.parse(out.trim().split('\n').at(-1)!) as OverheadResult[]) : reject(new Error(`overhead worker exited with ${code}`)),
    );
  });
}
