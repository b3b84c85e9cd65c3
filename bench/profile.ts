/**
 * A CPU profile of one cost worker (section 1's process), and its heaviest functions by self time.
 *
 *   npx tsx bench/profile.ts <sqlite|mysql|postgres> <sdk|hand> <action|compensate> [clients=16] [ops=20000]
 *
 * Writes the `.cpuprofile` (open it in Chrome DevTools) under $TMPDIR/txbarrier-profiles and prints
 * the top 25 functions by self time, with their share of the samples and µs per op.
 */
import { spawn } from 'node:child_process';
import { mkdirSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ACCOUNTS, type BranchOp, type EngineName } from './engine.js';
import { bundleWorkers, type Mechanism } from './processes.js';
import type { WorkerArgs, WorkerResult } from './worker-common.js';
import { MYSQL_URL, POSTGRES_URL } from '../servers/index.js';
import { openEngine } from './engines.js';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  hitCount: number;
}

const [engineName, mechanism, op, clientsText = '16', opsText = '20000'] = process.argv.slice(2) as [EngineName, Mechanism, BranchOp, string?, string?];
const prefix = 'bench_profile_';
const engine = await openEngine(engineName, { prefix });
const workers = await bundleWorkers();
const dir = join(tmpdir(), 'txbarrier-profiles', `${engineName}-${mechanism}-${op}-${Date.now()}`);
mkdirSync(dir, { recursive: true });
try {
  const table = `${prefix}cost`;
  await engine.createBarrierTable(table, 'default');
  const ops = Number(opsText);
  const args: WorkerArgs = {
    engine: engineName,
    op,
    clients: Number(clientsText),
    ops,
    warmOps: 1000,
    table,
    accounts: `${prefix}accounts`,
    accountCount: ACCOUNTS,
    target: engineName === 'sqlite' ? engine.file! : engineName === 'mysql' ? MYSQL_URL : POSTGRES_URL,
  };
  const output = await new Promise<string>((resolve, reject) => {
    const child = spawn(process.execPath, ['--cpu-prof', '--cpu-prof-dir', dir, workers.script[mechanism], JSON.stringify(args)], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let out = '';
    child.stdout.on('data', (chunk) => (out += chunk));
    child.once('exit', (code) => (code === 0 ? resolve(out) : reject(new Error(`worker exited with ${code}`))));
  });
  const result = JSON.parse(output.trim().split('\n').at(-1)!) as WorkerResult;
  const file = join(dir, readdirSync(dir).find((name) => name.endsWith('.cpuprofile'))!);
  const profile = JSON.parse(readFileSync(file, 'utf8')) as { nodes: ProfileNode[]; startTime: number; endTime: number };
  const totalHits = profile.nodes.reduce((sum, node) => sum + node.hitCount, 0);
  const microsPerHit = (profile.endTime - profile.startTime) / totalHits;
  const bySelf = new Map<string, number>();
  for (const { callFrame, hitCount } of profile.nodes) {
    const where = callFrame.url ? `${callFrame.url.replace(/^.*node_modules\//, '').replace(/^file:\/\/.*\//, '')}:${callFrame.lineNumber + 1}` : '';
    const name = `${callFrame.functionName || '(anonymous)'} ${where}`;
    bySelf.set(name, (bySelf.get(name) ?? 0) + hitCount);
  }
  const groups = new Map<string, number>();
  for (const { callFrame, hitCount } of profile.nodes) {
    const { url, functionName } = callFrame;
    const group = url.includes('node_modules/')
      ? url.replace(/^.*node_modules\//, '').split('/')[0]!
      : url.startsWith('node:')
        ? 'node internals'
        : url
          ? 'the worker bundle (txbarrier and the benchmark loop)'
          : functionName.startsWith('(')
            ? functionName
            : 'native (socket writes, timers, …)';
    groups.set(group, (groups.get(group) ?? 0) + hitCount);
  }
  const cpu = (result.userMicros + result.systemMicros) / result.ops;
  console.log(`${engineName} ${mechanism} ${op}, ${args.clients} clients: ${(result.ops / result.seconds).toFixed(0)} tx/s, ${cpu.toFixed(1)} µs CPU per op`);
  console.log(`profile: ${file} (µs per op below: over all ${ops + args.warmOps} ops, setup included)`);
  console.log('by origin:');
  for (const [name, hits] of [...groups].sort((a, b) => b[1] - a[1])) {
    console.log(`${((100 * hits) / totalHits).toFixed(1).padStart(5)}%  ${((hits * microsPerHit) / (ops + args.warmOps)).toFixed(2).padStart(6)} µs/op  ${name}`);
  }
  console.log('by function:');
  for (const [name, hits] of [...bySelf].sort((a, b) => b[1] - a[1]).slice(0, 25)) {
    console.log(`${((100 * hits) / totalHits).toFixed(1).padStart(5)}%  ${((hits * microsPerHit) / (ops + args.warmOps)).toFixed(2).padStart(6)} µs/op  ${name}`);
  }
} finally {
  workers.dispose();
  await engine.close();
}
