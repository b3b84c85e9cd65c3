/**
 * The real DTM server as the coordinator of a transfer guarded by txbarrier, behind each front, on
 * each engine: saga, TCC and the 2-phase message with its check-back, then the network's faults
 * between DTM and the service and the service killed mid-branch (see cases.ts).
 *
 * CI runs the short form: every case on Express × SQLite, MariaDB, PostgreSQL, and a failing saga
 * and a committing TCC through each other front on PostgreSQL. TXBARRIER_DTM_FULL=1
 * (`npm run test:dtm:full`) runs every case through every front on every engine.
 */
import { afterAll } from 'vitest';
import { ENGINES } from '../../../servers/index.js';
import { CASES, describeGroup, EVERY_FRONT, GRPC_CASES } from './cases.js';
import { FRONTS, removeNestBuild } from './services.js';

const FULL = process.env.TXBARRIER_DTM_FULL === '1';

afterAll(() => removeNestBuild());

for (const engine of ENGINES) {
  for (const front of FRONTS) {
    const everything = front === 'express' || FULL;
    if (!everything && engine !== 'postgres') continue;
    // The Nest test service (test/fronts/nest-app) serves the branches but no check-back route.
    const all = Object.keys(CASES).filter((name) => front !== 'nestjs' || !name.includes('check-back'));
    // gRPC has no HTTP proxy in between and no check-back in its test service: saga and TCC only.
    const cases = front === 'grpc' ? (FULL ? GRPC_CASES : EVERY_FRONT) : everything ? all : EVERY_FRONT;
    describeGroup(`DTM coordinating ${front} on ${engine}`, { engine, front, cases, withCrash: everything && front !== 'grpc' && front !== 'nestjs' });
  }
}
