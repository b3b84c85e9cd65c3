/**
 * A small Nest app as a Nest user writes it, serving the front conformance suite's routes
 * (test/fronts/conformance.ts) with `txbarrier/nestjs`. The test compiles it with tsc (this directory's
 * tsconfig: CommonJS, decorator metadata) and calls `startNestApp`.
 *
 * The adapter module comes in as an argument, not an import: the suite's errors (`BarrierFailure`)
 * and stores are the test's own copies of the core, and `instanceof` must hold between them.
 */
import { BadRequestException, Body, Controller, Get, Inject, Injectable, type LoggerService, Module, Post } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { ExpressAdapter, type NestExpressApplication } from '@nestjs/platform-express';
import { FastifyAdapter, type NestFastifyApplication } from '@nestjs/platform-fastify';
// The adapter is an ES module, as a user's installed txbarrier resolves for `import`.
import type * as TxBarrier from '../../../adapters/http/nestjs/barrier.js' with { 'resolution-mode': 'import' };
import type { Barrier, BarrierStore } from '../../../src/index.js' with { 'resolution-mode': 'import' };

/** The suite's routes (`FrontRoutes` in test/fronts/conformance.ts). */
export interface Routes {
  store: BarrierStore<unknown>;
  branches: Record<string, { run(tx: unknown, barrier: Barrier, body: any): unknown; onError?: (error: unknown) => void }>;
  middlewareNote(tx: unknown, barrier: Barrier, body: any): unknown;
}

export interface NestServer {
  url: string;
  /** What the app's logger received at `error` level (the stack, when there is one). */
  reported: unknown[];
  close(): Promise<void>;
}

export async function startNestApp(txb: typeof TxBarrier, routes: Routes, platform: 'express' | 'fastify'): Promise<NestServer> {
  const { BarrierTx, CurrentBarrier, QueryPrepared, TxBarrierModule, UseBarrier, BARRIER_STORE } = txb;
  const ROUTES = 'ROUTES';

  @Module({ providers: [{ provide: ROUTES, useValue: routes }], exports: [ROUTES] })
  class RoutesModule {}

  // Injected by its class: decorator metadata at work, beside the adapter's explicit tokens.
  @Injectable()
  class Branches {
    constructor(
      @Inject(ROUTES) private readonly routes: Routes,
      @Inject(BARRIER_STORE) readonly store: BarrierStore<unknown>,
    ) {}

    run(path: string, tx: unknown, barrier: Barrier, body: unknown): unknown {
      return this.routes.branches[path]!.run(tx, barrier, body);
    }

    note(tx: unknown, barrier: Barrier, body: unknown): unknown {
      return this.routes.middlewareNote(tx, barrier, body);
    }
  }

  @Controller()
  class BranchController {
    constructor(private readonly branches: Branches) {}

    @Post('note')
    @UseBarrier()
    note(@BarrierTx() tx: unknown, @CurrentBarrier() barrier: Barrier, @Body() body: unknown) {
      return this.branches.run('/note', tx, barrier, body);
    }

    @Post('fail')
    @UseBarrier()
    fail(@BarrierTx() tx: unknown, @CurrentBarrier() barrier: Barrier, @Body() body: unknown) {
      return this.branches.run('/fail', tx, barrier, body);
    }

    @Post('ongoing')
    @UseBarrier()
    ongoing(@BarrierTx() tx: unknown, @CurrentBarrier() barrier: Barrier) {
      return this.branches.run('/ongoing', tx, barrier, undefined);
    }

    @Post('conflict')
    @UseBarrier()
    conflict(@BarrierTx() tx: unknown, @CurrentBarrier() barrier: Barrier) {
      return this.branches.run('/conflict', tx, barrier, undefined);
    }

    @Post('broken')
    @UseBarrier({ onError: (error) => routes.branches['/broken']!.onError!(error) })
    broken(@BarrierTx() tx: unknown, @CurrentBarrier() barrier: Barrier) {
      return this.branches.run('/broken', tx, barrier, undefined);
    }

    @Post('unreported')
    @UseBarrier()
    unreported(@BarrierTx() tx: unknown, @CurrentBarrier() barrier: Barrier) {
      return this.branches.run('/unreported', tx, barrier, undefined);
    }

    @Post('bigint')
    @UseBarrier()
    bigint(@BarrierTx() tx: unknown, @CurrentBarrier() barrier: Barrier) {
      return this.branches.run('/bigint', tx, barrier, undefined);
    }

    @Get('query-prepared')
    @QueryPrepared()
    queryPrepared() {}

    // Beyond the suite: Nest's own exceptions pass through, after the rollback.
    @Post('refused')
    @UseBarrier()
    async refused(@BarrierTx() tx: unknown, @CurrentBarrier() barrier: Barrier) {
      await this.branches.run('/note', tx, barrier, undefined);
      throw new BadRequestException('amount must be positive');
    }

    // A mistake: the transaction is only there under @UseBarrier().
    @Post('misused')
    misused(@BarrierTx() tx: unknown) {
      return tx;
    }
  }

  // The suite's "middleware" routes: in Nest, @CurrentBarrier() reads the barrier on any route.
  @Controller('mw')
  class BarrierInfoController {
    constructor(private readonly branches: Branches) {}

    @Get('whoami')
    whoami(@CurrentBarrier() barrier: Barrier) {
      return { gid: barrier.gid, op: barrier.op };
    }

    @Post('note')
    @UseBarrier()
    note(@BarrierTx() tx: unknown, @CurrentBarrier() barrier: Barrier, @Body() body: unknown) {
      return this.branches.note(tx, barrier, body);
    }

    @Get('query-prepared')
    @QueryPrepared()
    queryPrepared() {}
  }

  @Module({
    imports: [
      RoutesModule,
      TxBarrierModule.forRootAsync({ imports: [RoutesModule], inject: [ROUTES], useFactory: (given: Routes) => ({ store: given.store }) }),
    ],
    controllers: [BranchController, BarrierInfoController],
    providers: [Branches],
  })
  class AppModule {}

  const reported: unknown[] = [];
  const logger: LoggerService = {
    log: () => {},
    warn: () => {},
    error: (message: unknown, ...rest: unknown[]) => void reported.push(rest[0] ?? message),
  };
  const options = { logger, forceCloseConnections: true, bodyParser: false } as const;
  let app: NestExpressApplication | NestFastifyApplication;
  if (platform === 'express') {
    const express = await NestFactory.create<NestExpressApplication>(AppModule, new ExpressAdapter(), options);
    express.useBodyParser('json', { limit: 1024 });
    app = express;
  } else {
    app = await NestFactory.create<NestFastifyApplication>(AppModule, new FastifyAdapter({ bodyLimit: 1024 }), { ...options, bodyParser: true });
  }
  await app.listen(0, '127.0.0.1');
  return { url: await app.getUrl(), reported, close: () => app.close() };
}
