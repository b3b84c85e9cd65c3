import type { Request } from 'express';
import { barrierMiddleware, barrierRoute, queryPreparedRoute } from '../../adapters/http/express/barrier.js';
import { EXPRESS_VERSIONS, listen } from './express-http.js';
import { describeFront } from './conformance.js';

for (const [name, express] of EXPRESS_VERSIONS) {
  describeFront(name, async ({ store, branches, middlewareNote }) => {
    const app = express();
    app.use(express.json({ limit: '1kb' }));
    app.use('/mw', barrierMiddleware());
    app.get('/mw/whoami', (req: Request, res) => void res.json({ gid: req.barrier?.gid, op: req.barrier?.op }));
    app.post('/mw/note', barrierRoute(store, (tx, req) => middlewareNote(tx, req.barrier, req.body)));
    for (const [path, { run, onError }] of Object.entries(branches)) {
      app.post(path, barrierRoute(store, (tx, req) => run(tx, req.barrier, req.body), onError ? { onError } : {}));
    }
    app.get('/query-prepared', queryPreparedRoute(store));
    app.get('/mw/query-prepared', queryPreparedRoute(store));
    return listen(app);
  });
}
