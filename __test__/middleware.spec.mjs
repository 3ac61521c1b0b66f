// Middleware, use(), next() (spec 3.3) and Router composition (spec 3.4).
import { test, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, request, cleanup, lib, sleep, quietConsoleError } from './helpers.mjs';

afterEach(cleanup);

const T = { timeout: 10000 };

const mark = (name) => (req, res, next) => {
  (req.locals.trace ??= []).push(name);
  next();
};
const traceHandler = (req, res) => res.json({ trace: req.locals.trace || [], path: req.path });
const errorToBody = (req, res, err) => res.status(500).send('E:' + (err && err.message));

async function get(port, path, method = 'GET') {
  const r = await request(port, { method, path });
  return {
    status: r.status,
    text: r.text,
    get json() {
      return JSON.parse(r.text);
    },
  };
}

test('middlewares run in registration order, then route options.middlewares, then route argument middlewares, then the handler', T, async () => {
  const { port } = await startServer((app) => {
    app.use(mark('global1'));
    app.use('/api', mark('api'));
    app.use(mark('global2'));
    app.get('/api/x', { middlewares: [mark('option')] }, mark('arg'), traceHandler);
  });
  assert.deepEqual((await get(port, '/api/x')).json.trace, ['global1', 'api', 'global2', 'option', 'arg']);
});

test('arrays of middlewares and the options object may appear in any order; the last function is the handler', T, async () => {
  const { port } = await startServer((app) => {
    app.get('/arr', [mark('a'), mark('b')], { max_body_length: 10 }, mark('c'), traceHandler);
  });
  assert.deepEqual((await get(port, '/arr')).json.trace, ['a', 'b', 'c']);
});

test('a global use() registered after a route still runs for it, after the route own middlewares', T, async () => {
  const { port } = await startServer((app) => {
    app.use(mark('early'));
    app.get('/late', mark('route'), traceHandler);
    app.use(mark('late'));
  });
  assert.deepEqual((await get(port, '/late')).json.trace, ['early', 'route', 'late']);
});

test('path-scoped middleware runs for the path and below it, not for a sibling sharing the prefix', T, async () => {
  const { port } = await startServer((app) => {
    app.use('/api', mark('api'));
    app.get('/api', traceHandler);
    app.get('/api/deep/x', traceHandler);
    app.get('/api-x', traceHandler);
    app.get('/other', traceHandler);
  });
  assert.deepEqual((await get(port, '/api')).json.trace, ['api']);
  assert.deepEqual((await get(port, '/api/deep/x')).json.trace, ['api']);
  assert.deepEqual((await get(port, '/api-x')).json.trace, []);
  assert.deepEqual((await get(port, '/other')).json.trace, []);
});

test('a trailing slash on a use() path is dropped', T, async () => {
  const { port } = await startServer((app) => {
    app.use('/v1/', mark('v1'));
    app.get('/v1', traceHandler);
    app.get('/v1/y', traceHandler);
  });
  assert.deepEqual((await get(port, '/v1')).json.trace, ['v1']);
  assert.deepEqual((await get(port, '/v1/y')).json.trace, ['v1']);
});

test('use() throws for paths containing * or :, and is chainable otherwise', T, async () => {
  const app = new (lib().Server)();
  assert.throws(() => app.use('/a/*', mark('x')));
  assert.throws(() => app.use('/a/:id', mark('x')));
  assert.equal(app.use(mark('ok')), app);
});

test('use() accepts an object with a middleware function', T, async () => {
  const { port } = await startServer((app) => {
    app.use({ middleware: mark('obj') });
    app.get('/o', traceHandler);
  });
  assert.deepEqual((await get(port, '/o')).json.trace, ['obj']);
});

test('an async middleware continues the chain when its promise resolves, without calling next', T, async () => {
  const { port } = await startServer((app) => {
    app.use(async (req) => {
      await sleep(20);
      (req.locals.trace ??= []).push('async');
    });
    app.get('/async', mark('sync'), traceHandler);
  });
  assert.deepEqual((await get(port, '/async')).json.trace, ['async', 'sync']);
});

test('an async middleware that rejects goes to the error handler and the handler is not called', T, async () => {
  let handlerCalls = 0;
  const { port } = await startServer((app) => {
    app.set_error_handler(errorToBody);
    app.use(async () => {
      await sleep(5);
      throw new Error('rejected-mw');
    });
    app.get('/rej', (req, res) => {
      handlerCalls++;
      res.send('handler');
    });
  });
  const r = await get(port, '/rej');
  assert.equal(r.status, 500);
  assert.equal(r.text, 'E:rejected-mw');
  await sleep(30);
  assert.equal(handlerCalls, 0);
});

test('next(err) goes to the error handler with that error and stops the chain', T, async () => {
  let handlerCalls = 0;
  let seen;
  const { port } = await startServer((app) => {
    app.set_error_handler((req, res, err) => {
      seen = err;
      errorToBody(req, res, err);
    });
    app.use((req, res, next) => next(new Error('from-next')));
    app.get('/n', (req, res) => {
      handlerCalls++;
      res.send('handler');
    });
  });
  const r = await get(port, '/n');
  assert.equal(r.text, 'E:from-next');
  assert.ok(seen instanceof Error);
  assert.equal(handlerCalls, 0);
});

test('a synchronous throw in a middleware goes to the error handler', T, async () => {
  const { port } = await startServer((app) => {
    app.set_error_handler(errorToBody);
    app.use(() => {
      throw new Error('sync-mw');
    });
    app.get('/t', (req, res) => res.send('handler'));
  });
  assert.equal((await get(port, '/t')).text, 'E:sync-mw');
});

test('calling next() twice in a middleware is reported to the error handler as ERR_DOUBLE_MIDDLEWARE_EXEUCTION_DETECTED', T, async () => {
  const { port } = await startServer((app) => {
    app.set_error_handler(errorToBody);
    app.use((req, res, next) => {
      next();
      next();
    });
    app.get('/twice', (req, res) => {
      setTimeout(() => res.send('handler'), 100);
    });
  });
  const r = await get(port, '/twice');
  assert.equal(r.status, 500);
  assert.match(r.text, /^E:ERR_DOUBLE_MIDDLEWARE_EXEUCTION_DETECTED/);
});

test('calling next() inside an async middleware is reported as ERR_DOUBLE_MIDDLEWARE_EXEUCTION_DETECTED', T, async () => {
  const { port } = await startServer((app) => {
    app.set_error_handler(errorToBody);
    app.use(async (req, res, next) => {
      next();
    });
    app.get('/async-next', (req, res) => {
      setTimeout(() => res.send('handler'), 100);
    });
  });
  const r = await get(port, '/async-next');
  assert.equal(r.status, 500);
  assert.match(r.text, /^E:ERR_DOUBLE_MIDDLEWARE_EXEUCTION_DETECTED/);
});

test('a middleware that completes the response stops the chain silently', T, async () => {
  let handlerCalls = 0;
  let errors = 0;
  const { port } = await startServer((app) => {
    app.set_error_handler((req, res, err) => {
      errors++;
      errorToBody(req, res, err);
    });
    app.use((req, res, next) => {
      res.send('early');
      next();
    });
    app.get('/early', (req, res) => {
      handlerCalls++;
      res.send('handler');
    });
  });
  const r = await get(port, '/early');
  assert.equal(r.text, 'early');
  await sleep(30);
  assert.equal(handlerCalls, 0);
  assert.equal(errors, 0);
});

test('the default error handler answers 500 with the reference body and prints the error', T, async () => {
  const printed = quietConsoleError();
  const { port } = await startServer((app) => {
    app.use(() => {
      throw new Error('default-handler-check');
    });
    app.get('/d', (req, res) => res.send('handler'));
  });
  const r = await request(port, { path: '/d' });
  assert.equal(r.status, 500);
  assert.equal(r.statusLine, 'HTTP/1.1 500 Internal Server Error');
  assert.equal(r.text, 'HyperExpress: Uncaught Exception Occured');
  assert.equal(r.header('content-length'), '40');
  assert.ok(printed.some((args) => args.some((a) => String(a && a.message ? a.message : a).includes('default-handler-check'))));
});

// ---------------------------------------------------------------------------
// Router (3.4)

test('a mounted router prefixes its routes and req.path is the full path', T, async () => {
  const { Router } = lib();
  const { port } = await startServer((app) => {
    const router = new Router();
    router.get('/r1', traceHandler);
    app.use('/mount', router);
  });
  const r = await get(port, '/mount/r1');
  assert.equal(r.status, 200);
  assert.equal(r.json.path, '/mount/r1');
  assert.equal((await get(port, '/r1')).status, 404);
});

test('router middlewares run after earlier global middlewares and only under the mount path', T, async () => {
  const { Router } = lib();
  const { port } = await startServer((app) => {
    app.use(mark('global'));
    const router = new Router();
    router.use(mark('router'));
    router.get('/r1', traceHandler);
    app.use('/mount', router);
    app.get('/outside', traceHandler);
  });
  assert.deepEqual((await get(port, '/mount/r1')).json.trace, ['global', 'router']);
  assert.deepEqual((await get(port, '/outside')).json.trace, ['global']);
});

test('routes and middlewares registered on a router after mounting are served', T, async () => {
  const { Router } = lib();
  const { port } = await startServer((app) => {
    const router = new Router();
    app.use('/late', router);
    router.use(mark('after-mount'));
    router.get('/x', traceHandler);
  });
  const r = await get(port, '/late/x');
  assert.equal(r.status, 200);
  assert.deepEqual(r.json.trace, ['after-mount']);
});

test('routers nest and prefixes add up', T, async () => {
  const { Router } = lib();
  const { port } = await startServer((app) => {
    const inner = new Router();
    inner.get('/leaf/:id', (req, res) => res.json({ path: req.path, params: req.path_parameters }));
    const outer = new Router();
    outer.use('/inner', inner);
    app.use('/outer', outer);
  });
  const r = await get(port, '/outer/inner/leaf/5');
  assert.equal(r.status, 200);
  assert.deepEqual(r.json, { path: '/outer/inner/leaf/5', params: { id: '5' } });
});

test('router.route(p) binds chained methods to one pattern', T, async () => {
  const { Router } = lib();
  const { port } = await startServer((app) => {
    const router = new Router();
    const chain = router.route('/thing');
    assert.equal(chain.get((req, res) => res.send('got')), chain, 'route() chain methods are chainable');
    chain.post((req, res) => res.send('posted'));
    assert.throws(() => chain.use(mark('x')), 'use() on a route() chain throws');
    app.use('/c', router);
  });
  assert.equal((await get(port, '/c/thing')).text, 'got');
  assert.equal((await get(port, '/c/thing', 'POST')).text, 'posted');
});

test('router.routes and router.middlewares list what was registered, in order', T, async () => {
  const { Router } = lib();
  const router = new Router();
  assert.equal(router.get('/a', traceHandler), router, 'route methods on a Router are chainable');
  router.post('/b', traceHandler);
  router.use(mark('m'));
  assert.ok(Array.isArray(router.routes));
  assert.equal(router.routes.length, 2);
  assert.ok(Array.isArray(router.middlewares));
  assert.equal(router.middlewares.length, 1);
});
