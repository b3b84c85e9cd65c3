/** Which sections run on which engines, with what sizes, and the results they produce. */
import { cpus, loadavg, release, tmpdir, totalmem } from 'node:os';
import { dirname, join } from 'node:path';
import { mkdirSync } from 'node:fs';
import { type BenchEngine, type EngineName } from './engine.js';
import { type FrontResult, type FrontsPlan, measureFronts } from './fronts.js';
import { type GrowthResult, measureGrowth } from './growth.js';
import { measureOverhead, type OverheadResult } from './overhead.js';
import { measurePrune, type PruneResult } from './prune.js';
import { bundleWorkers, measureProcesses, type ProcessCostResult, type ProcessPlan, type Workers } from './processes.js';
import { measureSchema, measureStatements, type SchemaResult, type Settings, type StatementsResult } from './throughput.js';
import { openEngine } from './engines.js';

export const SECTIONS = ['cost', 'schema', 'statements', 'fronts', 'growth', 'prune', 'overhead'] as const;
export type Section = (typeof SECTIONS)[number];

export interface SuiteConfig {
  engines: EngineName[];
  /** Starts every table name (see EngineOptions.prefix). */
  prefix: string;
  sections: Section[];
  throughput: Settings;
  /** Section 1, each variant in its own process. */
  processes: ProcessPlan;
  /** Table sizes for the growth section, per engine. */
  growthSizes: Record<EngineName, number[]>;
  /** Rebuild the cached growth tables. */
  reload: boolean;
  /** Keep the growth tables for the next run (SQLite: in `sqliteGrowthFile`, else in the run's temporary file). */
  keepGrowthTables: boolean;
  sqliteGrowthFile?: string;
  pruneRows: number;
  /** Rows in each layout's table for the schema comparison on grown tables (0: empty tables only). */
  schemaRows: Record<EngineName, number>;
  pruneBaselineSeconds: number;
  fronts: FrontsPlan;
  overheadCalls: number;
}

const M = 1_000_000;

export type Mode = 'full' | 'quick' | 'smoke';

export function suiteConfig(mode: Mode): Omit<SuiteConfig, 'engines' | 'sections' | 'reload' | 'prefix'> {
  switch (mode) {
    case 'full':
      return {
        throughput: { rounds: 12, roundSeconds: 0.3, clients: [1, 16] },
        // 1 and 16 clients on every engine (issue #33's targets name both): about 3 min per engine and
        // client count, 17–18 min for section 1 alone.
        processes: {
          rounds: 8,
          roundSeconds: 2,
          clients: [1, 16],
          warmSeconds: 3,
          warmOps: 8000,
          warmMaxSeconds: 20,
          warmMinOps: 4000,
        },
        // MariaDB's default 128 MB buffer pool makes a 10M-row load take far longer than the others; it is not a target.
        growthSizes: { sqlite: [0, M, 10 * M], postgres: [0, M, 10 * M], mysql: [0, M] },
        pruneRows: M,
        // MariaDB's schema figures are reported, not a target; its 1M-row loads are slow.
        schemaRows: { sqlite: M, postgres: M, mysql: 0 },
        pruneBaselineSeconds: 5,
        fronts: { rounds: 6, roundSeconds: 1.5, warmSeconds: 3, connections: 16, engines: ['postgres'] },
        overheadCalls: 50_000,
        keepGrowthTables: true,
        sqliteGrowthFile: SQLITE_GROWTH_FILE,
      };
    case 'quick':
      return {
        throughput: { rounds: 6, roundSeconds: 0.2, clients: [1, 16] },
        processes: { rounds: 2, roundSeconds: 0.3, clients: [1, 16], warmSeconds: 0.5, warmOps: 500 },
        growthSizes: { sqlite: [0, 10_000, 100_000], postgres: [0, 10_000, 100_000], mysql: [0, 10_000, 100_000] },
        pruneRows: 20_000,
        schemaRows: { sqlite: 20_000, postgres: 20_000, mysql: 20_000 },
        pruneBaselineSeconds: 1,
        fronts: { rounds: 2, roundSeconds: 1, warmSeconds: 1, connections: 16 },
        overheadCalls: 10_000,
        keepGrowthTables: true,
        sqliteGrowthFile: SQLITE_GROWTH_FILE,
      };
    case 'smoke':
      return {
        throughput: { rounds: 1, roundSeconds: 0.01, clients: [1, 4] },
        processes: { rounds: 1, roundSeconds: 0.01, clients: [1, 4], warmSeconds: 0, warmOps: 4, fixedOps: 8 },
        growthSizes: { sqlite: [0, 300], postgres: [0, 300], mysql: [0, 300] },
        pruneRows: 2_500,
        schemaRows: { sqlite: 300, postgres: 300, mysql: 300 },
        pruneBaselineSeconds: 0.1,
        // One front: the JSON test in test/project/bench-smoke.test.ts starts and calls every front's two servers.
        fronts: { rounds: 1, roundSeconds: 0.3, warmSeconds: 0.3, connections: 4, fronts: ['express'] },
        overheadCalls: 200,
        keepGrowthTables: false,
      };
  }
}

export interface EngineReport {
  engine: EngineName;
  version?: string;
  /** Why the engine did not run (a server out of reach). */
  skipped?: string;
  cost?: ProcessCostResult[];
  /** On empty tables, then on tables of `schemaRows` rows. */
  schema?: SchemaResult[];
  statements?: StatementsResult;
  growth?: GrowthResult;
  prune?: PruneResult;
  fronts?: FrontResult[];
}

export interface Machine {
  cpus: string;
  memoryGb: number;
  os: string;
  node: string;
  loadBefore: number[];
  loadAfter: number[];
}

/** When one section ran (over all engines), and the machine's load around it. */
export interface SectionRun {
  /** ISO date of its first start. */
  date: string;
  loadBefore: number[];
  loadAfter: number[];
  seconds: number;
}

export interface SuiteReport {
  date: string;
  machine: Machine;
  config: SuiteConfig;
  engines: EngineReport[];
  overhead?: OverheadResult[];
  /** Each section that ran: RESULTS.md gives each its own "taken" line, so a partial --write can keep the others. */
  sections: Partial<Record<Section, SectionRun>>;
  seconds: number;
}

/** SQLite's growth tables live in a file kept between runs (10M rows take a while to load). */
export const SQLITE_GROWTH_FILE = join(tmpdir(), 'txbarrier-bench', 'growth.db');

export async function runSuite(config: SuiteConfig, progress: (line: string) => void): Promise<SuiteReport> {
  const started = performance.now();
  const loadBefore = loadavg();
  const has = (section: Section) => config.sections.includes(section);
  const largest = Math.max(...config.throughput.clients);
  const engines: EngineReport[] = [];
  const sections: Partial<Record<Section, SectionRun>> = {};
  /** Runs one section on one engine (or all, for overhead), adding its time and load to `sections`. */
  const timedSection = async <T>(section: Section, run: () => Promise<T>): Promise<T> => {
    const sectionStart = performance.now();
    const entry = (sections[section] ??= { date: new Date().toISOString(), loadBefore: loadavg(), loadAfter: [], seconds: 0 });
    try {
      return await run();
    } finally {
      entry.seconds += (performance.now() - sectionStart) / 1000;
      entry.loadAfter = loadavg();
    }
  };
  let overhead: OverheadResult[] | undefined;
  const workers: Workers | undefined = has('cost') || has('fronts') || has('overhead') ? await bundleWorkers() : undefined;
  try {

  for (const name of config.engines) {
    let engine: BenchEngine<unknown>;
    try {
      engine = await openEngine(name, { prefix: config.prefix });
    } catch (error) {
      progress(`${name}: skipped (${String(error)})`);
      engines.push({ engine: name, skipped: error instanceof Error ? error.message : String(error) });
      continue;
    }
    const report: EngineReport = { engine: name, version: engine.version };
    engines.push(report);
    const step = async <T>(section: Section, run: () => Promise<T>): Promise<T | undefined> => {
      if (!has(section)) return undefined;
      progress(`${name}: ${section}…`);
      const sectionStart = performance.now();
      const result = await timedSection(section, run);
      progress(`${name}: ${section} done in ${((performance.now() - sectionStart) / 1000).toFixed(1)} s`);
      return result;
    };
    try {
      report.cost = await step('cost', () => measureProcesses(engine, workers!, config.processes, engine.file, progress));
      report.schema = await step('schema', async () => {
        const results = [await measureSchema(engine, config.throughput, 0)];
        if (config.schemaRows[name] > 0) results.push(await measureSchema(engine, config.throughput, config.schemaRows[name]));
        return results;
      });
      report.statements = await step('statements', () => measureStatements(engine, config.throughput));
      report.growth = await step('growth', () => growth(name, engine, config, progress));
      report.prune = await step('prune', () => measurePrune(engine, config.pruneRows, largest, config.pruneBaselineSeconds));
      if (config.fronts.engines?.includes(name) ?? true) report.fronts = await step('fronts', () => measureFronts(engine, workers!, config.fronts));
    } finally {
      await engine.close();
    }
  }
  overhead = has('overhead') ? await timedSection('overhead', () => measureOverhead(workers!, config.overheadCalls)) : undefined;
  } finally {
    workers?.dispose();
  }

  const cpuList = cpus();
  return {
    date: new Date().toISOString(),
    machine: {
      cpus: `${cpuList.length} × ${cpuList[0]?.model ?? 'unknown'}`,
      memoryGb: Math.round(totalmem() / 2 ** 30),
      os: `Linux ${release()}`,
      node: process.version,
      loadBefore,
      loadAfter: loadavg(),
    },
    config,
    engines,
    ...(overhead ? { overhead } : {}),
    sections,
    seconds: (performance.now() - started) / 1000,
  };
}

/** SQLite's growth tables may get a file of their own, kept between runs; the servers keep theirs in the test database. */
async function growth(name: EngineName, engine: BenchEngine<unknown>, config: SuiteConfig, progress: (line: string) => void) {
  const plan = { rounds: config.throughput.rounds, roundSeconds: config.throughput.roundSeconds, clients: Math.max(...config.throughput.clients) };
  const options = { reload: config.reload, keep: config.keepGrowthTables, progress };
  if (name !== 'sqlite' || !config.sqliteGrowthFile) return measureGrowth(engine, config.growthSizes[name], plan, options);
  mkdirSync(dirname(config.sqliteGrowthFile), { recursive: true });
  const cached = await openEngine('sqlite', { file: config.sqliteGrowthFile, prefix: config.prefix });
  try {
    return await measureGrowth(cached, config.growthSizes.sqlite, plan, options);
  } finally {
    await cached.close();
  }
}
