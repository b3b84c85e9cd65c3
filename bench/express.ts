/**
 * `barrierRoute` against the same route written by hand, over HTTP on loopback with autocannon:
 * alternating rounds on one server process, every request a new saga action.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import autocannon from 'autocannon';
import { ACCOUNTS, type EngineName } from './engine.js';
import { type Ratio, spread } from './rounds.js';

export type Route = 'sdk' | 'hand';
export const ROUTES: readonly Route[] = ['sdk', 'hand'];

export interface RouteRound {
  requestsPerSecond: number;
  p99Ms: number;
}

export interface ExpressResult {
  engine: EngineName;
  connections: number;
  rounds: Record<Route, RouteRound[]>;
}

export interface ExpressPlan {
  rounds: number;
  roundSeconds: number;
  connections: number;
}

const SERVER = fileURLToPath(new URL('./express-server.ts', import.meta.url));

/** Starts the server process and resolves once it listens. */
export async function startServer(engine: EngineName, prefix: string): Promise<{ child: ChildProcess; port: number }> {
  const child = spawn(process.execPath, ['--import', 'tsx', SERVER, engine, prefix], { stdio: ['ignore', 'pipe', 'inherit'] });
  const exited = new Promise<never>((_, reject) =>
    child.once('exit', (code) => reject(new Error(`express-server.ts exited with ${code} before listening`))),
  );
  const listening = (async () => {
    for await (const line of createInterface({ input: child.stdout! })) {
      const match = /^listening (\d+)$/.exec(line);
      if (match) return Number(match[1]);
    }
    throw new Error('express-server.ts closed its output before listening');
  })();
  return { child, port: await Promise.race([listening, exited]) };
}

export async function stopServer(child: ChildProcess): Promise<void> {
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill('SIGTERM');
  await exited;
}

async function round(port: number, route: Route, plan: ExpressPlan): Promise<RouteRound> {
  const result = await autocannon({
    url: `http://127.0.0.1:${port}`,
    connections: plan.connections,
    duration: plan.roundSeconds,
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    requests: [
      {
        setupRequest: (request) => ({
          ...request,
          path: `/${route}?gid=${randomUUID()}&trans_type=saga&branch_id=01&op=action`,
          body: JSON.stringify({ account: 1 + Math.floor(Math.random() * ACCOUNTS), amount: 1 }),
        }),
      },
    ],
  });
  // Anything but 200 (a 425 from a conflict, a 500) would be a cheaper answer and flatter the route.
  if (result.non2xx > 0 || result.errors > 0 || result.timeouts > 0) {
    throw new Error(`/${route}: ${result.non2xx} non-2xx answers, ${result.errors} errors, ${result.timeouts} timeouts`);
  }
  return { requestsPerSecond: result.requests.total / result.duration, p99Ms: result.latency.p99 };
}

export async function measureExpress(engine: EngineName, prefix: string, plan: ExpressPlan): Promise<ExpressResult> {
  const { child, port } = await startServer(engine, prefix);
  try {
    // Warm-up: JIT, pool connections, the table's first pages.
    for (const route of ROUTES) await round(port, route, { ...plan, roundSeconds: Math.min(1, plan.roundSeconds) });
    const rounds: Record<Route, RouteRound[]> = { sdk: [], hand: [] };
    for (let index = 0; index < plan.rounds; index++) {
      const order = index % 2 === 0 ? ROUTES : [...ROUTES].reverse();
      for (const route of order) rounds[route].push(await round(port, route, plan));
    }
    return { engine, connections: plan.connections, rounds };
  } finally {
    await stopServer(child);
  }
}

/** The SDK route's figure divided by the hand-written route's in the same round pair, over all pairs. */
export function routeRatio(result: ExpressResult, field: keyof RouteRound): Ratio {
  return spread(result.rounds.sdk.map((sdk, index) => sdk[field] / result.rounds.hand[index]![field]));
}
