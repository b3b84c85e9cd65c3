/**
 * `txbarrier/nestjs`: DTM's protocol the NestJS way, on both platforms (Express and Fastify).
 * `TxBarrierModule.forRoot({ store })` provides the store under `BARRIER_STORE`; `@UseBarrier()` on
 * a controller method runs it under the request's barrier, and `@BarrierTx()` hands it the open
 * transaction; `@QueryPrepared()` makes a method the 2-phase message check-back.
 *
 * An interceptor, because that is where Nest runs code around a handler: it opens the barrier's
 * transaction around `next.handle()`, so your pipes, the method and any Observable it returns all
 * run inside it, and your guards run before it. Every dependency is injected by an explicit token,
 * so nothing here relies on decorator metadata; your own classes may, as usual. Nest and rxjs are
 * loaded by the first decorator, not at import.
 */
import { createRequire } from 'node:module';
import type { CallHandler, DynamicModule, ExceptionFilter, ExecutionContext, InjectionToken, ModuleMetadata, NestInterceptor } from '@nestjs/common';
import type { Reflector } from '@nestjs/core';
import type { Observable } from 'rxjs';
import { type Barrier, BarrierConfigError, type BarrierStore, type Logger } from '../../../src/index.js';
import {
  barrierOf,
  checkBackBarrierOf,
  CONTENT_TYPE,
  type FrontOptions,
  type HttpAnswer,
  httpAnswer,
  reportError,
  type RequestParts,
  runBranch,
  runCheckBack,
  type Verdict,
  verdictOfError,
} from '../../../src/protocol/dtm.js';

/** The injection token of the store given to `TxBarrierModule.forRoot` (`@Inject(BARRIER_STORE)`). */
export const BARRIER_STORE: unique symbol = Symbol.for('txbarrier:store');
/** The injection token of the module's options. */
export const TXBARRIER_OPTIONS: unique symbol = Symbol.for('txbarrier:options');

/** The part of a Nest request (Express's `Request` or Fastify's `FastifyRequest`) the barrier reads. */
export interface NestRequest {
  headers: Record<string, string | string[] | undefined>;
  /** Express: the URL as the client sent it, whatever routers did to `url`. */
  originalUrl?: string;
  /** Fastify: the Node request. */
  raw?: { url?: string };
  url?: string;
}

/**
 * `extract` and `onError`, as on every front (see `FrontOptions`), given the platform's request.
 * `onError` defaults to the store's logger, else Nest's `Logger` (context `TxBarrier`), where Nest
 * logs its own unhandled errors.
 */
export type BarrierOptions = FrontOptions<NestRequest>;

export interface TxBarrierModuleOptions extends BarrierOptions {
  /** The store every `@UseBarrier()` and `@QueryPrepared()` route runs on. */
  store: BarrierStore<any>;
}

export interface TxBarrierModuleAsyncOptions extends Pick<ModuleMetadata, 'imports'> {
  /** Builds the options from the providers in `inject` (a config service, a connection pool). */
  useFactory: (...args: any[]) => TxBarrierModuleOptions | Promise<TxBarrierModuleOptions>;
  /** The tokens whose providers `useFactory` receives, in order. Defaults to none. */
  inject?: InjectionToken[];
}

/** DTM's reading: the raw query string when it names any of the four fields, else the `dtm-*` headers. */
export const dtmExtractor = (request: NestRequest): Barrier => barrierOf(partsOf(request));

/**
 * Provides the store under `BARRIER_STORE` to the whole app (a global module, as a database
 * module is), for `@UseBarrier()`, `@QueryPrepared()` and your own `@Inject(BARRIER_STORE)`.
 */
export class TxBarrierModule {
  static forRoot(options: TxBarrierModuleOptions): DynamicModule {
    return moduleOf([{ provide: TXBARRIER_OPTIONS, useValue: options }]);
  }

  static forRootAsync({ imports = [], useFactory, inject = [] }: TxBarrierModuleAsyncOptions): DynamicModule {
    return { ...moduleOf([{ provide: TXBARRIER_OPTIONS, useFactory, inject }]), imports };
  }
}

function moduleOf(providers: NonNullable<DynamicModule['providers']>): DynamicModule {
  return {
    module: TxBarrierModule,
    global: true,
    providers: [
      ...providers,
      { provide: BARRIER_STORE, useFactory: (options: TxBarrierModuleOptions) => options.store, inject: [TXBARRIER_OPTIONS] },
    ],
    exports: [TXBARRIER_OPTIONS, BARRIER_STORE],
  };
}

/**
 * Runs the method under the request's barrier and answers as DTM reads it: 200 `SUCCESS` for
 * applied and every suppressed outcome (with the method's value when applied; the method does not
 * run otherwise), 409 `FAILURE` for `BarrierFailure`, 425 `ONGOING` for `BarrierOngoing` and for a
 * database conflict from the method's own SQL, 400 for a bad barrier, 500 for anything else
 * (reported, never sent). An `HttpException` from your pipes or method rolls back and gets Nest's
 * usual answer. `options` override the module's for this route.
 */
export function UseBarrier(options: BarrierOptions = {}): MethodDecorator {
  return answeringRoute({ kind: 'branch', options });
}

/**
 * Makes the method DTM's `QueryPrepared` check-back for 2-phase messages: 200 `SUCCESS` if the
 * local transaction of the message committed, 409 `FAILURE` if it rolled back (or never ran, and
 * now never will), 425 `ONGOING` if the database could not tell in time. Takes DTM's full query
 * or a `gid` alone (query or `dtm-gid` header). The answer is the decorator's: leave the body empty.
 */
export function QueryPrepared(options: Pick<BarrierOptions, 'onError'> = {}): MethodDecorator {
  return answeringRoute({ kind: 'check-back', options });
}

/** The transaction of the route's barrier, in a `@UseBarrier()` method (`@BarrierTx() tx: PoolClient`). */
export function BarrierTx(): ParameterDecorator {
  return nest().paramDecorators.tx();
}

/**
 * The request's barrier (`gid`, `op`, …). In a `@UseBarrier()` method, the one it runs under; on
 * any other route, read from the request, a bad one answered 400 with each bad field named.
 */
export function CurrentBarrier(): ParameterDecorator {
  return nest().paramDecorators.barrier();
}

interface RouteKind {
  kind: 'branch' | 'check-back';
  options: BarrierOptions;
}

const ROUTE = 'txbarrier:route';

function answeringRoute(route: RouteKind): MethodDecorator {
  const { common, Interceptor, filter } = nest();
  return common.applyDecorators(
    common.SetMetadata(ROUTE, route),
    // DTM reads 200 as success; Nest would answer a POST with 201.
    common.HttpCode(200),
    common.Header('Content-Type', CONTENT_TYPE),
    common.UseInterceptors(Interceptor),
    common.UseFilters(filter),
  );
}

/** What a `@UseBarrier()` request carries between the interceptor and the parameter decorators. */
interface Slot {
  barrier?: Barrier;
  tx?: unknown;
}

const slots = new WeakMap<object, Slot>();

function slotOf(request: object): Slot {
  let slot = slots.get(request);
  if (!slot) slots.set(request, (slot = {}));
  return slot;
}

/**
 * Nest, rxjs and the classes built on them, loaded on first use rather than at import, so that
 * the package can load every subpath without each one's framework installed.
 */
interface Nest {
  common: typeof import('@nestjs/common');
  Interceptor: new (options: TxBarrierModuleOptions, reflector: Reflector) => NestInterceptor;
  filter: ExceptionFilter;
  paramDecorators: { tx: () => ParameterDecorator; barrier: () => ParameterDecorator };
}

let loaded: Nest | undefined;

function nest(): Nest {
  if (loaded) return loaded;
  const load = createRequire(import.meta.url);
  const common = load('@nestjs/common') as typeof import('@nestjs/common');
  const { Reflector } = load('@nestjs/core') as typeof import('@nestjs/core');
  const rxjs = load('rxjs') as typeof import('rxjs');

  /** A verdict other than success, on its way to the filter; an `HttpException`, so Nest and its tooling treat it as an answer, not a crash. */
  class BarrierAnswer extends common.HttpException {
    constructor(readonly answer: HttpAnswer) {
      super(JSON.parse(answer.body) as object, answer.status);
    }
  }

  class BarrierAnswerFilter implements ExceptionFilter {
    catch(exception: InstanceType<typeof BarrierAnswer>, host: Parameters<ExceptionFilter['catch']>[1]): void {
      // Express's `Response` and Fastify's `FastifyReply` both have these three.
      const response = host.switchToHttp().getResponse<{ status(code: number): unknown; header(name: string, value: string): unknown; send(body: string): unknown }>();
      response.status(exception.answer.status);
      response.header('content-type', CONTENT_TYPE);
      response.send(exception.answer.body);
    }
  }
  common.Catch(BarrierAnswer)(BarrierAnswerFilter);

  class BarrierInterceptor implements NestInterceptor {
    constructor(
      private readonly module: TxBarrierModuleOptions,
      private readonly reflector: Reflector,
    ) {}

    intercept(context: ExecutionContext, next: CallHandler): Observable<string> {
      const { kind, options: own } = this.reflector.get<RouteKind>(ROUTE, context.getHandler());
      const options = { ...this.module, ...own };
      const request = context.switchToHttp().getRequest<NestRequest>();
      const { store } = this.module;
      const verdict = kind === 'check-back' ? runCheckBack(store, () => checkBackBarrierOf(partsOf(request))) : this.branch(request, options, next);
      return rxjs.from(verdict.then((v) => answer(v, request, options, store)));
    }

    /** The method under the request's barrier, `@BarrierTx()` and `@CurrentBarrier()` reading this call's slot. */
    private branch(request: NestRequest, options: BarrierOptions, next: CallHandler): Promise<Verdict> {
      const slot = slotOf(request);
      return runBranch(
        this.module.store,
        () => (slot.barrier ??= (options.extract ?? dtmExtractor)(request)),
        (tx) => {
          slot.tx = tx;
          return rxjs.lastValueFrom(next.handle(), { defaultValue: undefined });
        },
      );
    }
  }
  common.Inject(TXBARRIER_OPTIONS)(BarrierInterceptor, undefined, 0);
  common.Inject(Reflector)(BarrierInterceptor, undefined, 1);
  common.Injectable()(BarrierInterceptor);

  /** The body of a 200; any other verdict is thrown for the filter, and Nest's own exceptions pass through. */
  function answer(verdict: Verdict, request: NestRequest, options: BarrierOptions, store: BarrierStore<unknown>): string {
    if (verdict.result === 'ERROR' && verdict.error instanceof common.HttpException) throw verdict.error;
    const http = httpAnswer(verdict);
    if (http.status === 500) reportError(http.error, request, options.onError, store.hooks.logger ?? nestLogger);
    if (http.status === 200) return http.body;
    throw new BarrierAnswer(http);
  }

  /** Where Nest reports its own unhandled errors: the app's logger. */
  const logger = new common.Logger('TxBarrier');
  const nestLogger: Logger = {
    error: (object, message) => {
      const { err } = object as { err?: unknown };
      logger.error(message, err instanceof Error ? err.stack : String(err));
    },
  };

  const tx = common.createParamDecorator((_data: unknown, context: ExecutionContext) => {
    const slot = slots.get(context.switchToHttp().getRequest());
    if (slot?.tx === undefined) throw new BarrierConfigError('@BarrierTx() is only given in a method decorated with @UseBarrier()');
    return slot.tx;
  });
  const barrier = common.createParamDecorator((_data: unknown, context: ExecutionContext) => {
    const request = context.switchToHttp().getRequest<NestRequest>();
    const slot = slotOf(request);
    try {
      return (slot.barrier ??= dtmExtractor(request));
    } catch (error) {
      throw new BarrierAnswer(httpAnswer(verdictOfError(error)));
    }
  });

  loaded = { common, Interceptor: BarrierInterceptor, filter: new BarrierAnswerFilter(), paramDecorators: { tx, barrier } };
  return loaded;
}

/** The raw query string as the client sent it (whatever query parser the platform has) and the headers. */
function partsOf(request: NestRequest): RequestParts {
  const url = request.originalUrl ?? request.raw?.url ?? request.url ?? '';
  const start = url.indexOf('?');
  return { query: start < 0 ? '' : url.slice(start + 1), headers: request.headers };
}

