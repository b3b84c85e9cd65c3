/**
 * An idempotent route against the same route without it, over HTTP on loopback with autocannon:
 * alternating rounds on one server process, every request a new key.
 *
 *   tsx bench/idempotency.ts [--engines sqlite,mysql,postgres] [--rounds 4] [--seconds 2]
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import autocannon from 'autocannon';
import { ACCOUNTS, type EngineName } from './engine.js';

const SERVER = fileURLToPath(new URL('./idempotency-server.ts', import.meta.url));
const ROUTES = ['plain', 'idempotent'] as const;
const CONNECTIONS = 16;

const { values } = parseArgs({ options: { engines: { type: 'string', default: 'sqlite,mysql,postgres' }, rounds: { type: 'string', default: '4' }, seconds: { type: 'string', default: '2' } } });
const engines = values.engines.split(',') as EngineName[];
const rounds = Number(values.rounds);
const seconds = Number(values.seconds);

async function start(engine: EngineName): Promise<{ child: ChildProcess; port: number }> {
  const prefix = `bench_idem_${randomUUID().slice(0, 8)}_`;
  const child = spawn(process.execPath, ['--import', 'tsx', SERVER, engine, prefix], { stdio: ['ignore', 'pipe', 'inherit'] });
  for await (const line of createInterface({ input: child.stdout! })) {
    const match = /^listening (\d+)$/.exec(line);
    if (match) return { child, port: Number(match[1]) };
  }
  throw new Error('idempotency-server.ts exited before listening');
}

async function round(port: number, route: (typeof ROUTES)[number]) {
  const result = await autocannon({
    url: `http://127.0.0.1:${port}`,
    connections: CONNECTIONS,
    duration: seconds,
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-client': 'bench' },
    requests: [
      {
        setupRequest: (request) => ({
          ...request,
          path: `/${route}`,
          headers: { ...request.headers, 'idempotency-key': `"${randomUUID()}"` },
          body: JSON.stringify({ account: 1 + Math.floor(Math.random() * ACCOUNTS), amount: 1 }),
        }),
      },
    ],
  });
  // Only 201s count: a 409 or 500 would be a cheaper answer and flatter the route.
  if (result.non2xx > 0 || result.errors > 0 || result.timeouts > 0) {
    throw new Error(`/${route}: ${result.non2xx} non-2xx, ${result.errors} errors, ${result.timeouts} timeouts`);
  }
  return { rps: result.requests.total / result.duration, p99: result.latency.p99 };
}

const median = (numbers: number[]) => [...numbers].sort((a, b) => a - b)[Math.floor(numbers.length / 2)]!;

const lines = ['| engine | plain req/s | idempotent req/s | ratio (median of rounds) | plain p99 ms | idempotent p99 ms |', '|---|---|---|---|---|---|'];
for (const engine of engines) {
  const { child, port } = await start(engine);
  try {
    await round(port, 'plain');
    const results = { plain: [] as { rps: number; p99: number }[], idempotent: [] as { rps: number; p99: number }[] };
    for (let i = 0; i < rounds; i++) {
      const order = i % 2 === 0 ? ROUTES : [...ROUTES].reverse();
      for (const route of order) results[route].push(await round(port, route));
      process.stderr.write(`${engine}: round ${i + 1}/${rounds}\n`);
    }
    const ratio = median(results.idempotent.map((r, i) => r.rps / results.plain[i]!.rps));
    const [plain, idempotent] = [median(results.plain.map((r) => r.rps)), median(results.idempotent.map((r) => r.rps))];
    const [plainP99, idempotentP99] = [median(results.plain.map((r) => r.p99)), median(results.idempotent.map((r) => r.p99))];
    lines.push(`| ${engine} | ${plain.toFixed(0)} | ${idempotent.toFixed(0)} | ${ratio.toFixed(2)} | ${plainP99} | ${idempotentP99} |`);
  } finally {
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.kill('SIGTERM');
    await exited;
  }
}
console.log(lines.join('\n'));
