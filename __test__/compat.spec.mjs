// Smaller Hyper-Express compatibility rows of spec sections 2–5: introspection, Express-style
// request helpers, response aliases, and the out-of-scope names that must exist and refuse.
import { test, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, request, cleanup, lib } from './helpers.mjs';

afterEach(cleanup);

const T = { timeout: 10000 };

async function probe(pick, options = {}) {
  const { port, app } = await startServer((a) => a.any('/*', async (req, res) => res.json(await pick(req, res, a))), options);
  return { port, app };
}

async function ask(port, opts) {
  const r = await request(port, opts);
  assert.equal(r.status, 200, `status ${r.status}: ${r.text}`);
  return JSON.parse(r.text);
}

test('app.locals is a plain object and app.socket is the listen socket while listening', T, async () => {
  const { Server } = lib();
  const app = new Server();
  assert.deepEqual(app.locals, {});
  app.get('/x', (req, res) => res.send('x'));
  const socket = await app.listen(0, '127.0.0.1');
  try {
    assert.equal(app.socket, socket);
  } finally {
    app.close();
  }
  assert.ok(app.socket === null || app.socket === undefined, 'no socket after close()');
});

test('app.routes is keyed by lowercase method, with del for DELETE', T, async () => {
  const { Server } = lib();
  const app = new Server();
  app.get('/g', (req, res) => res.send('g'));
  app.delete('/d', (req, res) => res.send('d'));
  assert.ok(app.routes.get['/g'], 'routes.get has /g');
  assert.ok(app.routes.del['/d'], 'routes.del has /d');
});

test('req.app is the server, req.route the matched route, and proxy_ip is empty', T, async () => {
  let app0;
  const { port } = await startServer((a) => {
    app0 = a;
    a.get('/who', (req, res) => res.json({ app: req.app === a, route: typeof req.route, proxy_ip: req.proxy_ip, ips: req.ips }));
  });
  const r = await ask(port, { path: '/who' });
  assert.ok(app0);
  assert.deepEqual(r, { app: true, route: 'object', proxy_ip: '', ips: ['127.0.0.1'] });
});

test('xhr and subdomains follow Express semantics', T, async () => {
  const { port } = await probe((req) => ({ xhr: req.xhr, subdomains: req.subdomains }));
  assert.deepEqual(await ask(port, { path: '/', headers: { Host: 'a.b.example.com', 'X-Requested-With': 'XMLHttpRequest' } }), {
    xhr: true,
    subdomains: ['b', 'a'],
  });
  assert.deepEqual(await ask(port, { path: '/', headers: { Host: 'example.com' } }), { xhr: false, subdomains: [] });
});

test('accepts(), is() and range() follow the accepts, type-is and range-parser semantics', T, async () => {
  const { port } = await probe((req) => ({
    accepts: req.accepts(['json', 'html']),
    is: req.is('json'),
    range: req.range(1000),
  }));
  const r = await ask(port, {
    method: 'POST',
    path: '/',
    headers: { Accept: 'text/html', 'Content-Type': 'application/json', Range: 'bytes=0-99' },
    body: '{}',
  });
  assert.equal(r.accepts, 'html');
  assert.equal(r.is, 'json');
  assert.deepEqual(r.range, [{ start: 0, end: 99 }]);
});

test('req.pause() and req.resume() are chainable', T, async () => {
  const { port } = await probe((req) => ({ pause: req.pause() === req, resume: req.resume() === req }));
  assert.deepEqual(await ask(port, { path: '/' }), { pause: true, resume: true });
});

test('statusCode and statusMessage are undefined until set (as in Hyper-Express), then what was sent; an error handler can fall back on them', T, async () => {
  const seen = {};
  const { port } = await startServer((a) => {
    a.get('/d', (req, res) => {
      seen.unset = [res.statusCode, res.statusMessage];
      res.statusMessage = 'Fine';
      seen.phraseOnly = [res.statusCode, res.statusMessage];
      res.on('finish', () => (seen.finish = [res.statusCode, res.statusMessage]));
      res.send('x');
    });
    a.get('/c', (req, res) => {
      res.statusCode = 201;
      seen.code = [res.statusCode, res.statusMessage];
      res.send('x');
    });
    a.get('/e', () => {
      throw new Error('boom');
    });
    a.set_error_handler((req, res) => res.status(res.statusCode || 500).send('failed'));
  });
  assert.equal((await request(port, { path: '/d' })).statusLine, 'HTTP/1.1 200 Fine');
  assert.equal((await request(port, { path: '/c' })).statusLine, 'HTTP/1.1 201 Created');
  assert.equal((await request(port, { path: '/e' })).statusLine, 'HTTP/1.1 500 Internal Server Error');
  assert.deepEqual(seen, {
    unset: [undefined, undefined],
    phraseOnly: [undefined, 'Fine'],
    finish: [200, 'Fine'],
    code: [201, undefined],
  });
});

test('headersSent mirrors initiated, statusCode and statusMessage reflect status(), res.locals is per response', T, async () => {
  let seen;
  const { port } = await startServer((a) =>
    a.get('/s', (req, res) => {
      res.status(202, 'Taken');
      const before = { headersSent: res.headersSent, code: res.statusCode, message: res.statusMessage, locals: { ...res.locals } };
      res.locals.x = 1;
      res.send('ok');
      seen = { before, after: { headersSent: res.headersSent } };
    }),
  );
  const r = await request(port, { path: '/s' });
  assert.equal(r.statusLine, 'HTTP/1.1 202 Taken');
  assert.deepEqual(seen, { before: { headersSent: false, code: 202, message: 'Taken', locals: {} }, after: { headersSent: true } });
});

test('jsonp() wraps the JSON in the callback named by ?callback=', T, async () => {
  const { port } = await startServer((a) => a.get('/p', (req, res) => res.jsonp({ a: 1 })));
  const r = await request(port, { path: '/p?callback=cb' });
  assert.equal(r.text, 'cb({"a":1})');
  assert.match(r.header('content-type'), /javascript/);
});

test('format() and render() throw ERR_INCOMPATIBLE_CALL', T, async () => {
  const { port } = await startServer((a) =>
    a.get('/f', (req, res) => {
      const out = {};
      for (const name of ['format', 'render']) {
        try {
          res[name]();
          out[name] = 'no throw';
        } catch (e) {
          out[name] = /ERR_INCOMPATIBLE_CALL/.test(String(e && e.message)) ? 'throws' : String(e);
        }
      }
      res.json(out);
    }),
  );
  assert.deepEqual(JSON.parse((await request(port, { path: '/f' })).text), { format: 'throws', render: 'throws' });
});

test('out-of-scope features exist and throw a clear "not supported" error', T, async () => {
  const { Server } = lib();
  const app = new Server();
  assert.throws(() => app.ws('/ws', () => {}), /not supported/i);
  assert.throws(() => app.upgrade('/up', () => {}), /not supported/i);
  const outcomes = {};
  const { port } = await startServer((a) =>
    a.post('/x', async (req, res) => {
      const attempt = async (name, fn) => {
        try {
          await fn();
          outcomes[name] = 'no error';
        } catch (e) {
          outcomes[name] = /not supported/i.test(String(e && e.message ? e.message : e)) ? 'not supported' : String(e);
        }
      };
      await attempt('file', () => res.file('/etc/hostname'));
      await attempt('download', () => res.download('/etc/hostname'));
      await attempt('multipart', () => req.multipart(() => {}));
      res.send('done');
    }),
  );
  await request(port, { method: 'POST', path: '/x', body: 'x' });
  assert.deepEqual(outcomes, { file: 'not supported', download: 'not supported', multipart: 'not supported' });
});
