/**
 * Each HTTP front's `barrierRoute` against the same route hand-written in that framework, over HTTP
 * on loopback with autocannon. Every server runs in a process of its own (bench/front-server.ts), and
 * a second hand-written server is the A/A control; rounds rotate among the three, every request a
 * new saga action.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { createInterface } from 'node:readline';
import autocannon from 'autocannon';
import { FRONTS, type FrontName } from '../chaos/fronts.js';
import { ACCOUNTS, type BenchEngine, type EngineName } from './engine.js';
import type { FrontArgs } from './front-server.js';
import type { Workers } from './processes.js';
import type { ThreadCpu } from './worker-common.js';
import { type Ratio, spread } from './rounds.js';
import { MYSQL_URL, POSTGRES_URL } from '../servers/index.js';

export type Route = 'sdk' | 'hand' | 'core';
/**
 * The servers of one front: the SDK's route, the hand-written one, and the hand-written one again (the
 * A/A control); with `FrontsPlan.core`, also the hand-written route calling `Barrier.call` (`core`),
 * which splits the SDK's cost between the barrier call and the front adapter.
 */
export type Server = Route | 'control';

export interface RouteRound {
  requestsPerSecond: number;
  p99Ms: number;
  /** The server process's CPU per request, µs, read per thread (its JavaScript thread and all the others). */
  cpuMicros: number;
  mainCpuMicros: number;
}

export interface FrontResult {
  front: FrontName;
  connections: number;
  rounds: Partial<Record<Server, RouteRound[]>> & Record<'sdk' | 'hand' | 'control', RouteRound[]>;
}

export interface FrontsPlan {
  rounds: number;
  roundSeconds: number;
  /** One unmeasured round per server first, this long. */
  warmSeconds: number;
  connections: number;
  fronts?: readonly FrontName[];
  /** Engines the section runs on (default: all the run's); the full run keeps it to PostgreSQL, for time. */
  engines?: readonly EngineName[];
  /** Also run the `core` server (a diagnosis: where the SDK's extra cost per request is). */
  core?: boolean;
}

/** A server process listening on `port`, whose CPU `cpu` reads. */
export interface ServerProcess {
  child: ChildProcess;
  port: number;
  /** Runs `load` and answers its value and the server's per-thread CPU over it. */
  measure<T>(load: () => Promise<T>): Promise<{ value: T; cpu: ThreadCpu }>;
}

/** Starts one front server and resolves once it listens. */
export function startFront(workers: Workers, args: FrontArgs): Promise<ServerProcess> {
  return startServer(workers.front, [JSON.stringify(args)], `${args.front} ${args.route}`);
}

/** Spawns a server script that prints `listening <port>` and answers `mark`/`cpu` over IPC (bench/front-server.ts does). */
export async function startServer(script: string, argv: string[], label: string): Promise<ServerProcess> {
  const child = spawn(process.execPath, [script, ...argv], { stdio: ['ignore', 'pipe', 'inherit', 'ipc'] });
  const exited = new Promise<never>((_, reject) => child.once('exit', (code) => reject(new Error(`${label} server exited with ${code}`))));
  exited.catch(() => undefined);
  const listening = (async () => {
    for await (const line of createInterface({ input: child.stdout! })) {
      const match = /^listening (\d+)$/.exec(line);
      if (match) return Number(match[1]);
    }
    throw new Error(`${label} server closed its output before listening`);
  })();
  const ask = <T>(message: 'mark' | 'cpu') => {
    const answer = new Promise<T>((resolve) => child.once('message', (reply) => resolve(reply as T)));
    child.send(message);
    return Promise.race([answer, exited]);
  };
  const measure = async <T>(load: () => Promise<T>) => {
    await ask('mark');
    const value = await load();
    return { value, cpu: await ask<ThreadCpu>('cpu') };
  };
  return { child, port: await Promise.race([listening, exited]), measure };
}

export async function stopFront(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null) return;
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill('SIGTERM');
  await exited;
}

/** The URL a coordinator calls for a new saga action of branch 01. */
export const actionPath = (gid: string) => `/transfer/01/action?gid=${gid}&trans_type=saga&branch_id=01&op=action`;

/** One autocannon round of POSTs with a JSON body against `server`; `path` names each request. */
export async function loadRound(
  server: ServerProcess,
  options: {
    seconds: number;
    connections: number;
    path: () => string;
    headers?: () => Record<string, string>;
    /** Non-2xx answers a round may have, as a fraction of its requests, not counted in its rate. Defaults to 0. */
    tolerate?: number;
  },
): Promise<RouteRound> {
  const { value: result, cpu } = await server.measure(() =>
    autocannon({
      url: `http://127.0.0.1:${server.port}`,
      connections: options.connections,
      duration: options.seconds,
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      requests: [
        {
          setupRequest: (request) => ({
            ...request,
            path: options.path(),
            ...(options.headers ? { headers: { ...request.headers, ...options.headers() } } : {}),
            body: JSON.stringify({ account: 1 + Math.floor(Math.random() * ACCOUNTS), amount: 1 }),
          }),
        },
      ],
    }),
  );
  // Anything but 2xx (a 425 from a conflict, a 409, a 500) would be a cheaper answer and flatter the route:
  // beyond the tolerated share the round fails; within it, those answers are said and not counted.
  const tolerated = Math.floor((options.tolerate ?? 0) * result.requests.total);
  if (result.non2xx > tolerated || result.errors > 0 || result.timeouts > 0) {
    throw new Error(`port ${server.port}: ${result.non2xx} non-2xx answers (${JSON.stringify(result.statusCodeStats)}), ${result.errors} errors, ${result.timeouts} timeouts`);
  }
  if (result.non2xx > 0) process.stderr.write(`port ${server.port}: ${result.non2xx} non-2xx answers of ${result.requests.total} (${JSON.stringify(result.statusCodeStats)}), not counted\n`);
  const requests = result.requests.total - result.non2xx;
  return {
    requestsPerSecond: requests / result.duration,
    p99Ms: result.latency.p99,
    cpuMicros: (cpu.main + cpu.background) / requests,
    mainCpuMicros: cpu.main / requests,
  };
}

const round = (server: ServerProcess, seconds: number, connections: number) =>
  loadRound(server, { seconds, connections, path: () => actionPath(randomUUID()) });

export function frontArgs<Tx>(engine: BenchEngine<Tx>, front: FrontName, route: Route, table: string): FrontArgs {
  return {
    engine: engine.name,
    front,
    route,
    table,
    accounts: `${engine.prefix}accounts`,
    target: engine.name === 'sqlite' ? engine.file! : engine.name === 'mysql' ? MYSQL_URL : POSTGRES_URL,
  };
}

export async function measureFronts<Tx>(engine: BenchEngine<Tx>, workers: Workers, plan: FrontsPlan): Promise<FrontResult[]> {
  const table = `${engine.prefix}fronts`;
  await engine.createBarrierTable(table, 'default');
  const results: FrontResult[] = [];
  try {
    const kinds: Server[] = plan.core ? ['sdk', 'hand', 'control', 'core'] : ['sdk', 'hand', 'control'];
    for (const front of plan.fronts ?? FRONTS) {
      const servers = await Promise.all(
        kinds.map((server) => startFront(workers, frontArgs(engine, front, server === 'control' ? 'hand' : server, table))),
      );
      try {
        const serverOf = (server: Server) => servers[kinds.indexOf(server)]!;
        // Warm-up: JIT, pool connections, the table's first pages.
        for (const server of kinds) await round(serverOf(server), plan.warmSeconds, plan.connections);
        const rounds = Object.fromEntries(kinds.map((server) => [server, []])) as unknown as FrontResult['rounds'];
        for (let index = 0; index < plan.rounds; index++) {
          const start = index % kinds.length;
          const order = [...kinds.slice(start), ...kinds.slice(0, start)];
          for (const server of index % 2 === 0 ? order : order.reverse()) {
            rounds[server]!.push(await round(serverOf(server), plan.roundSeconds, plan.connections));
          }
        }
        results.push({ front, connections: plan.connections, rounds });
      } finally {
        await Promise.all(servers.map(({ child }) => stopFront(child)));
      }
    }
  } finally {
    await engine.dropTable(table);
  }
  return results;
}

/** A server's figure divided by the hand-written route's in the same round, over all rounds (`control`: the A/A ratio). */
export function routeRatio(result: FrontResult, field: keyof RouteRound, server: Exclude<Server, 'hand'> = 'sdk'): Ratio {
  return spread((result.rounds[server] ?? []).map((value, index) => value[field] / result.rounds.hand[index]![field]));
}
