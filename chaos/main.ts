/**
 * `npm run chaos [-- --sagas N] [--seed S] [--engines sqlite,mysql,postgres] [--front express|fastify|hono|koa]
 * [--concurrency C] [--keep]`: the fault-injection suite against every engine, through one HTTP
 * front (default express). Prints one table; exits 1 on any violation.
 * `--keep` leaves each run's tables (`chaos_<hex>_*`) in place for inspection.
 */
import { parseArgs } from 'node:util';
import { type ChaosReport, formatReport, formatViolations } from '../src/testing/index.js';
import { FRONTS, type FrontName } from './fronts.js';
import { chaosOverHttp } from './run.js';
import { ENGINES, type EngineName } from '../servers/index.js';

const { values } = parseArgs({
  options: {
    sagas: { type: 'string', default: '10000' },
    seed: { type: 'string' },
    engines: { type: 'string', default: ENGINES.join(',') },
    front: { type: 'string', default: 'express' },
    concurrency: { type: 'string', default: '16' },
    keep: { type: 'boolean', default: false },
  },
});
const engines = values.engines.split(',') as EngineName[];
const unknown = engines.filter((engine) => !ENGINES.includes(engine));
if (unknown.length > 0) throw new Error(`unknown engine(s) ${unknown.join(', ')}; choose from ${ENGINES.join(', ')}`);
const front = values.front as FrontName;
if (!FRONTS.includes(front)) throw new Error(`unknown front ${front}; choose from ${FRONTS.join(', ')}`);
// One seed for every engine, so each faces the same schedule.
const seed = values.seed === undefined ? Math.floor(Math.random() * 2 ** 32) : Number(values.seed);

const reports: Record<string, ChaosReport> = {};
for (const engine of engines) {
  console.log(`${engine} through ${front}: ${values.sagas} sagas, seed ${seed}…`);
  reports[engine] = await chaosOverHttp({
    engine,
    front,
    sagas: Number(values.sagas),
    seed,
    concurrency: Number(values.concurrency),
    keep: values.keep,
  });
}
console.log(`\n${formatReport(reports)}\n`);
const failed = Object.entries(reports).filter(([, report]) => report.violations.length > 0);
for (const [engine, report] of failed) console.error(`${engine}: ${formatViolations(report)}\n`);
if (failed.length > 0) {
  console.error(`Reproduce with: npm run chaos -- --seed ${seed} --engines ${failed.map(([e]) => e).join(',')} --front ${front} --sagas ${values.sagas}`);
  process.exit(1);
}
console.log('No violations.');
