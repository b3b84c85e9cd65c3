/**
 * The transfer service the DTM suite drives, in a process of its own behind each front: the chaos
 * bank's branches (chaos/bank.ts) served by chaos/service.ts (Express, Fastify, Hono, Koa, with the
 * check-back), test/fronts/nestjs-chaos-service.ts (NestJS on Express) or test/fronts/grpc/chaos-service.ts
 * (gRPC, JSON messages). Each runs under `startService`, restarted when it dies.
 */
import { execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import type { BankConfig } from '../../../chaos/bank.js';
import { type Service, startService } from '../../../src/testing/index.js';

export const FRONTS = ['express', 'fastify', 'hono', 'koa', 'nestjs', 'grpc'] as const;
export type Front = (typeof FRONTS)[number];

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const NEST_FIXTURE = join(ROOT, 'test/fronts/nest-app');

let nestBuild: Promise<{ transferApp: string; remove(): void }> | undefined;

/**
 * The Nest fixture compiled as the Nest CLI would (tsc, decorator metadata), once per run, inside
 * the fixture folder so the CommonJS output resolves the repository's node_modules.
 */
function nestTransferApp(): Promise<{ transferApp: string; remove(): void }> {
  nestBuild ??= (async () => {
    const out = join(NEST_FIXTURE, 'dist', randomUUID());
    await promisify(execFile)(join(ROOT, 'node_modules/.bin/tsc'), ['-p', join(NEST_FIXTURE, 'tsconfig.json'), '--outDir', out], { timeout: 180_000 }).catch(
      (error: { stdout?: string }) => {
        throw new Error(`tsc failed on the Nest fixture:\n${error.stdout}`);
      },
    );
    return { transferApp: join(out, 'test/fronts/nest-app/transfer.js'), remove: () => rmSync(out, { recursive: true, force: true }) };
  })();
  return nestBuild;
}

/** Deletes the compiled Nest fixture, if a run compiled it. */
export async function removeNestBuild(): Promise<void> {
  (await nestBuild?.catch(() => undefined))?.remove();
}

export interface TransferService extends Service {
  /** The URL DTM calls for a branch op: HTTP `…/transfer/<branch>/<op>`, or gRPC `host:port/<service>/<method>`. */
  branchUrl(base: string, branchId: string, op: string): string;
}

/** Starts the transfer service of `front` on the bank `config` (whose tables exist). */
export async function startTransferService(front: Front, config: BankConfig): Promise<TransferService> {
  const env: Record<string, string> = { CHAOS_BANK: JSON.stringify(config) };
  let script = join(ROOT, 'chaos/service.ts');
  if (front === 'nestjs') {
    script = join(ROOT, 'test/fronts/nestjs-chaos-service.ts');
    Object.assign(env, { NEST_TRANSFER_APP: (await nestTransferApp()).transferApp, NEST_PLATFORM: 'express' });
  } else if (front === 'grpc') {
    script = join(ROOT, 'test/fronts/grpc/chaos-service.ts');
  } else {
    env.CHAOS_FRONT = front;
  }
  const service = await startService({ command: process.execPath, args: ['--import', 'tsx', script], env });
  return {
    ...service,
    crash: () => service.crash(),
    stop: () => service.stop(),
    branchUrl: (base, branchId, op) => (front === 'grpc' ? `${base.replace(/^http:\/\//, '')}/txbarrier.test.JsonNotes/Transfer` : `${base}/transfer/${branchId}/${op}`),
  };
}
