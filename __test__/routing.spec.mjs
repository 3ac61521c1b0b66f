// Routing (spec 3.1, 3.2; D11) over real sockets.
import { test, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { startServer, request, buildRequest, RawClient, onCleanup, cleanup, lib } from './helpers.mjs';

afterEach(cleanup);

const T = { timeout: 10000 };

const reply = (label) => (req, res) => res.json({ label, params: req.path_parameters, method: req.method });

async function get(port, path, method = 'GET') {
  const res = await request(port, { method, path });
  return {
    status: res.status,
    body: res.text,
    get json() {
      return JSON.parse(res.text);
    },
    res,
  };
}

test('requests sent at once on many connections (several reach JS in one call) each get their own method, url and parameters', T, async () => {
  const { port } = await startServer((app) => {
    const echo = (req, res) => res.json({ m: req.method, url: req.url, params: req.path_parameters });
    app.get('/u/:a/:b', echo);
    app.post('/plain', echo);
    app.get('/files/*', echo);
  });
  const kinds = [
    (n) => ['GET', `/u/x${n}/y?q=${n}`, { m: 'GET', url: `/u/x${n}/y?q=${n}`, params: { a: `x${n}`, b: 'y' } }],
    (n) => ['POST', `/plain?n=${n}`, { m: 'POST', url: `/plain?n=${n}`, params: {} }],
    (n) => ['GET', `/u/%E2%82%AC${n}/%00`, { m: 'GET', url: `/u/%E2%82%AC${n}/%00`, params: { a: `%E2%82%AC${n}`, b: '%00' } }],
    (n) => ['GET', `/files/a/${n}.txt`, { m: 'GET', url: `/files/a/${n}.txt` }],
    (n) => ['GET', `/nowhere/${n}`, null],
  ];
  const sent = Array.from({ length: 30 }, (_, n) => kinds[n % kinds.length](n));
  // Written before the connections are even accepted: the server then accepts and reads them in
  // a burst, and hands them to JS together.
  const clients = sent.map(([method, path]) => {
    const socket = net.connect({ port, host: '127.0.0.1' });
    onCleanup(() => socket.destroy());
    socket.write(buildRequest({ method, path, body: method === 'POST' ? '' : undefined }));
    return new RawClient(socket);
  });
  const res = await Promise.all(clients.map((c) => c.response()));
  sent.forEach(([, path, expected], i) => {
    if (expected === null) return assert.equal(res[i].status, 404, path);
    const got = JSON.parse(res[i].text);
    if (!('params' in expected)) delete got.params;
    assert.deepEqual(got, expected, path);
  });
});

test('a batch of requests from the native side (onRequests) is split into its requests, in order', T, async () => {
  // The decoder alone (private API), with a batch as Rust builds it: [id, routeId, paramCount]
  // per request and each method, url and parameter followed by a NUL. The ids are unknown to the
  // native side, so the responses are no-ops; what counts is what each handler saw.
  const seen = [];
  const record = (req, res) => {
    seen.push([req.method, req.url, { ...req.path_parameters }, req.ip, { ...req.headers }]);
    res.send('x');
  };
  const { app } = await startServer((app) => {
    app.get('/u/:a/:b', record);
    app.post('/plain', record);
  });
  const routeId = (pattern) => app._route_list.findIndex((r) => r.pattern === pattern);
  const u = routeId('/u/:a/:b');
  const plain = routeId('/plain');
  assert.ok(u >= 0 && plain >= 0);
  const base = 2 ** 40;
  app._on_requests(
    new Float64Array([base, u, 2, 0, base + 1, plain, 0, 0, base + 2, u, 2, 0]),
    'GET\0/u/1/%E2%82%AC?x=1\0' + '1\0%E2%82%AC\0' + 'POST\0/plain\0' + 'GET\0/u/a/b\0a\0b\0',
    ['127.0.0.1\0host\0h1\0', '::1\0', '10.0.0.2\0x-a\x001\0x-a\x002\0x-e\0\0'],
  );
  assert.deepEqual(seen, [
    ['GET', '/u/1/%E2%82%AC?x=1', { a: '1', b: '%E2%82%AC' }, '127.0.0.1', { host: 'h1' }],
    ['POST', '/plain', {}, '::1', {}],
    // A repeated header: the last value wins (spec 4.1).
    ['GET', '/u/a/b', { a: 'a', b: 'b' }, '10.0.0.2', { 'x-a': '2', 'x-e': '' }],
  ]);
});

test('a static segment beats a parameter, which beats a wildcard, whatever the registration order', T, async () => {
  const { port } = await startServer((app) => {
    app.get('/p/*', reply('wild'));
    app.get('/p/:id', reply('param'));
    app.get('/p/static', reply('static'));
  });
  assert.equal((await get(port, '/p/static')).json.label, 'static');
  const param = await get(port, '/p/other');
  assert.equal(param.json.label, 'param');
  assert.deepEqual(param.json.params, { id: 'other' });
  assert.equal((await get(port, '/p/a/b')).json.label, 'wild');
});

test('a parameter captures one raw path segment without percent-decoding', T, async () => {
  const { port } = await startServer((app) => app.get('/users/:id', reply('user')));
  assert.deepEqual((await get(port, '/users/42')).json.params, { id: '42' });
  assert.deepEqual((await get(port, '/users/a%20b')).json.params, { id: 'a%20b' });
});

test('matching is exact and case-sensitive: trailing slash, other case and missing segment give 404', T, async () => {
  const { port } = await startServer((app) => app.get('/users/:id', reply('user')));
  assert.equal((await get(port, '/users/42/')).status, 404);
  assert.equal((await get(port, '/USERS/42')).status, 404);
  assert.equal((await get(port, '/users')).status, 404);
  assert.equal((await get(port, '/users/')).status, 404);
});

test('a parameter never matches an empty segment', T, async () => {
  const { port } = await startServer((app) => app.get('/q/:a/:b', reply('q')));
  assert.equal((await get(port, '/q/1/2')).status, 200);
  assert.equal((await get(port, '/q//2')).status, 404);
});

test('one-letter parameter names are captured (D11)', T, async () => {
  const { port } = await startServer((app) => app.get('/a/:x/b/:y', reply('xy')));
  const r = await get(port, '/a/1/b/2');
  assert.equal(r.status, 200);
  assert.deepEqual(r.json.params, { x: '1', y: '2' });
});

test('req.params is the same object as req.path_parameters', T, async () => {
  const { port } = await startServer((app) =>
    app.get('/r/:id', (req, res) => res.json({ same: req.params === req.path_parameters, id: req.params.id })),
  );
  assert.deepEqual((await get(port, '/r/7')).json, { same: true, id: '7' });
});

test('a trailing wildcard matches any depth, captures nothing, and not the bare prefix', T, async () => {
  const { port } = await startServer((app) => app.get('/files/*', reply('files')));
  const r = await get(port, '/files/x/y.txt');
  assert.equal(r.status, 200);
  assert.deepEqual(r.json.params, {});
  assert.equal((await get(port, '/files/a')).status, 200);
  assert.equal((await get(port, '/files')).status, 404);
});

test('/* matches every path', T, async () => {
  const { port } = await startServer((app) => app.get('/*', reply('all')));
  for (const p of ['/', '/a', '/a/b/c', '/x?y=1']) {
    const r = await get(port, p);
    assert.equal(r.status, 200, p);
    assert.equal(r.json.label, 'all');
  }
});

test('a pattern starting with * gets a leading slash', T, async () => {
  const { port } = await startServer((app) => app.get('*', reply('star')));
  assert.equal((await get(port, '/any/thing')).json.label, 'star');
});

test('a method route beats any() on the same pattern; any() sees the real method', T, async () => {
  const { port } = await startServer((app) => {
    app.any('/m', reply('any'));
    app.get('/m', reply('get'));
  });
  assert.equal((await get(port, '/m')).json.label, 'get');
  const post = await get(port, '/m', 'POST');
  assert.equal(post.json.label, 'any');
  assert.equal(post.json.method, 'POST');
  const del = await get(port, '/m', 'DELETE');
  assert.equal(del.json.label, 'any');
  assert.equal(del.json.method, 'DELETE');
});

test('all() registers a route for every method', T, async () => {
  const { port } = await startServer((app) => app.all('/everything', reply('all')));
  for (const m of ['GET', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS']) {
    const r = await get(port, '/everything', m);
    assert.equal(r.status, 200, m);
    assert.equal(r.json.method, m);
  }
});

test('each method helper routes its own method, and delete() reports DELETE', T, async () => {
  const { port } = await startServer((app) => {
    for (const m of ['get', 'post', 'put', 'delete', 'patch', 'options']) app[m]('/verb', reply(m));
  });
  for (const m of ['get', 'post', 'put', 'delete', 'patch', 'options']) {
    const r = await get(port, '/verb', m.toUpperCase());
    assert.equal(r.json.label, m);
    assert.equal(r.json.method, m.toUpperCase());
  }
});

test('HEAD is not served from a GET route', T, async () => {
  const { port } = await startServer((app) => app.get('/only-get', reply('g')));
  const r = await request(port, { method: 'HEAD', path: '/only-get' });
  assert.equal(r.status, 404);
});

test('a method without a route falls to the default not-found handler: 404, Content-Length 0, empty body', T, async () => {
  const { port } = await startServer((app) => app.get('/x', reply('x')));
  const r = await request(port, { method: 'PUT', path: '/x' });
  assert.equal(r.status, 404);
  assert.equal(r.statusLine, 'HTTP/1.1 404 Not Found');
  assert.equal(r.header('content-length'), '0');
  assert.equal(r.body.length, 0);
  const missing = await request(port, { path: '/nowhere' });
  assert.equal(missing.status, 404);
  assert.equal(missing.body.length, 0);
});

test('a custom not-found handler answers unmatched requests', T, async () => {
  const { port } = await startServer((app) => {
    app.get('/x', reply('x'));
    app.set_not_found_handler((req, res) => res.status(404).send(`nothing at ${req.path}`));
  });
  const r = await request(port, { path: '/nope?q=1' });
  assert.equal(r.status, 404);
  assert.equal(r.text, 'nothing at /nope');
});

test('set_not_found_handler and set_error_handler throw when given a non-function', T, async () => {
  const app = new (lib().Server)();
  assert.throws(() => app.set_not_found_handler('nope'));
  assert.throws(() => app.set_error_handler(42));
});

test('the query string takes no part in matching', T, async () => {
  const { port } = await startServer((app) => app.get('/users/:id', reply('user')));
  const r = await get(port, '/users/42?x=/y/z&id=9');
  assert.equal(r.status, 200);
  assert.deepEqual(r.json.params, { id: '42' });
});

test('registering the same method and pattern twice throws', T, async () => {
  const app = new (lib().Server)();
  app.get('/dup', reply('a'));
  assert.throws(() => app.get('/dup', reply('b')), /duplicate/i);
  app.post('/dup', reply('c'));
});

test('the Server constructor throws when options is not an object', T, async () => {
  const { Server } = lib();
  assert.throws(() => new Server(null));
  assert.throws(() => new Server('x'));
  const app = new Server({ max_body_length: 1234 });
  assert.equal(app._options.max_body_length, 1234);
});

test('the module exports Server, Router, Channel and compressors', T, async () => {
  const m = lib();
  assert.equal(typeof m.Server, 'function');
  assert.equal(typeof m.Router, 'function');
  assert.equal(typeof m.Channel, 'function');
  assert.equal(typeof m.compressors, 'object');
  assert.equal(typeof m.compressors.DISABLED, 'number');
  assert.equal(typeof m.compressors.SHARED_COMPRESSOR, 'number');
  assert.ok(new m.Server() instanceof m.Router, 'Server extends Router');
});
