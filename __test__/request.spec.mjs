// Request (spec 4.1–4.4; D14) over real sockets.
import { test, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { startServer, request, connect, buildRequest, cleanup, sleep, lib } from './helpers.mjs';

afterEach(cleanup);

const T = { timeout: 10000 };

/** Starts a server whose single route answers with `pick(req)` as JSON. */
async function probe(pick, { method = 'get', pattern = '/*', options = {} } = {}) {
  const { port } = await startServer((app) => {
    app[method](pattern, async (req, res) => res.json(await pick(req)));
  }, options);
  return port;
}

async function ask(port, opts) {
  const r = await request(port, opts);
  assert.equal(r.status, 200, `status ${r.status}: ${r.text}`);
  return JSON.parse(r.text);
}

test('method, url, path and path_query reflect the request line', T, async () => {
  const port = await probe((req) => ({
    method: req.method,
    url: req.url,
    path: req.path,
    path_query: req.path_query,
    baseUrl: req.baseUrl,
    originalUrl: req.originalUrl,
  }));
  assert.deepEqual(await ask(port, { path: '/users/42?a=1&a=2' }), {
    method: 'GET',
    url: '/users/42?a=1&a=2',
    path: '/users/42',
    path_query: 'a=1&a=2',
    baseUrl: '/users/42',
    originalUrl: '/users/42?a=1&a=2',
  });
  const plain = await ask(port, { path: '/plain%20x' });
  assert.equal(plain.url, '/plain%20x');
  assert.equal(plain.path, '/plain%20x', 'path is not decoded');
  assert.equal(plain.path_query, '');
});

test('query parameters follow querystring.parse and req.query is the same object', T, async () => {
  const port = await probe((req) => ({ q: req.query_parameters, same: req.query === req.query_parameters }));
  const r = await ask(port, { path: '/q?a=1&a=2&b=x+y&c&d=%20z' });
  assert.deepEqual(r.q, { a: ['1', '2'], b: 'x y', c: '', d: ' z' });
  assert.equal(r.same, true);
  assert.deepEqual((await ask(port, { path: '/q' })).q, {});
});

test('request headers keep wire order, empty values and UTF-8 values', T, async () => {
  const port = await probe((req) => ({ keys: Object.keys(req.headers), headers: req.headers }));
  const client = await connect(port);
  client.write(
    Buffer.concat([
      Buffer.from('GET /w HTTP/1.1\r\nHost: h\r\nX-Empty:\r\nX-Utf8: '),
      Buffer.from('caf\u00e9 \u2713', 'utf8'),
      Buffer.from('\r\nX-Last:  padded  \r\nConnection: close\r\n\r\n'),
    ]),
  );
  await client.waitClosed(3000);
  const text = client.data.toString('utf8');
  const r = JSON.parse(text.slice(text.indexOf('\r\n\r\n') + 4));
  assert.deepEqual(r.keys, ['host', 'x-empty', 'x-utf8', 'x-last', 'connection']);
  assert.deepEqual(r.headers, { host: 'h', 'x-empty': '', 'x-utf8': 'caf\u00e9 \u2713', 'x-last': 'padded', connection: 'close' });
});

test('request headers are lowercase and the last value of a repeated header wins', T, async () => {
  const port = await probe((req) => ({
    multi: req.headers['x-multi'],
    mixed: req.headers['x-mixed-case'],
    get: req.get('X-MULTI'),
    header: req.header('x-mixed-case'),
    referer: req.get('referer'),
    referrer: req.get('referrer'),
    own: Object.prototype.hasOwnProperty.call(req, 'headers'),
  }));
  const r = await ask(port, {
    path: '/h',
    headers: [
      ['X-Multi', '1'],
      ['X-Mixed-Case', 'Value'],
      ['X-Multi', '2'],
      ['Referer', 'http://ref.example/'],
    ],
  });
  assert.deepEqual(r, {
    multi: '2',
    mixed: 'Value',
    get: '2',
    header: 'Value',
    referer: 'http://ref.example/',
    referrer: 'http://ref.example/',
    own: true,
  });
});

test('cookies are parsed and percent-decoded, and are {} without a Cookie header', T, async () => {
  const port = await probe((req) => req.cookies);
  assert.deepEqual(await ask(port, { path: '/c', headers: { Cookie: 'a=one; b=%20two' } }), { a: 'one', b: ' two' });
  assert.deepEqual(await ask(port, { path: '/c' }), {});
});

test('ip is the peer address, hostname drops the port, protocol is http', T, async () => {
  const port = await probe((req) => ({ ip: req.ip, hostname: req.hostname, protocol: req.protocol, secure: req.secure }));
  assert.deepEqual(await ask(port, { path: '/ip', headers: { Host: 'ex.com:8080' } }), {
    ip: '127.0.0.1',
    hostname: 'ex.com',
    protocol: 'http',
    secure: false,
  });
});

test('hostname keeps an IPv6 literal and drops its port', T, async () => {
  const port = await probe((req) => ({ hostname: req.hostname }));
  assert.deepEqual(await ask(port, { path: '/', headers: { Host: '[::1]:8080' } }), { hostname: '[::1]' });
});

test('forwarded headers drive ip, ips, hostname and protocol only with trust_proxy', T, async () => {
  const pick = (req) => ({ ip: req.ip, ips: req.ips, hostname: req.hostname, protocol: req.protocol });
  const headers = {
    Host: 'direct.example',
    'X-Forwarded-For': '1.2.3.4, 5.6.7.8',
    'X-Forwarded-Host': 'fwd.example',
    'X-Forwarded-Proto': 'https',
  };
  const trusted = await probe(pick, { options: { trust_proxy: true } });
  assert.deepEqual(await ask(trusted, { path: '/', headers }), {
    ip: '1.2.3.4',
    ips: ['1.2.3.4', '5.6.7.8'],
    hostname: 'fwd.example',
    protocol: 'https',
  });
  const untrusted = await probe(pick);
  const r = await ask(untrusted, { path: '/', headers });
  assert.equal(r.ip, '127.0.0.1');
  assert.equal(r.hostname, 'direct.example');
  assert.equal(r.protocol, 'http');
});

test('text(), json(), buffer() and urlencoded() read the body, and results are cached', T, async () => {
  const port = await probe(
    async (req) => {
      const text = await req.text();
      const again = await req.text();
      const buf = await req.buffer();
      return { text, again, bufLen: buf.length, isBuf: Buffer.isBuffer(buf), json: await req.json(), received: req.received };
    },
    { method: 'post' },
  );
  const body = JSON.stringify({ a: 1, s: 'é' });
  assert.deepEqual(await ask(port, { method: 'POST', path: '/b', body }), {
    text: body,
    again: body,
    bufLen: Buffer.byteLength(body),
    isBuf: true,
    json: { a: 1, s: 'é' },
    received: true,
  });
});

// Hyper-Express copies the request's data when it is created, so handlers may read it after
// answering (after an await, in a timer). Read nothing before answering, answer, wait past the
// end of the tick in which the response closed (when the native side forgets the request), then
// read everything.
test('headers, ip, cookies and the body stay readable after the response completed', T, async () => {
  let later;
  const { port } = await startServer((app) => {
    app.post('/late', (req, res) => {
      res.send('ok');
      later = new Promise((resolve) => {
        setTimeout(async () => {
          resolve({
            headers: { ...req.headers },
            ua: req.get('user-agent'),
            ip: req.ip,
            cookies: { ...req.cookies },
            text: await req.text(),
            json: await req.json(null),
          });
        }, 50);
      });
    });
  });
  const body = JSON.stringify({ a: 1 });
  const r = await request(port, {
    method: 'POST',
    path: '/late',
    headers: { 'User-Agent': 'late/1', Cookie: 'k=v%20w' },
    body,
  });
  assert.equal(r.status, 200);
  const seen = await later;
  assert.equal(seen.ua, 'late/1');
  assert.equal(seen.headers['user-agent'], 'late/1');
  assert.equal(seen.headers['content-length'], String(Buffer.byteLength(body)));
  assert.equal(seen.ip, '127.0.0.1');
  assert.deepEqual(seen.cookies, { k: 'v w' });
  assert.equal(seen.text, body);
  assert.deepEqual(seen.json, { a: 1 });
});

test('urlencoded() parses the body with querystring semantics', T, async () => {
  const port = await probe((req) => req.urlencoded(), { method: 'post' });
  assert.deepEqual(await ask(port, { method: 'POST', path: '/u', body: 'a=1&b=x%20y&a=2' }), { a: ['1', '2'], b: 'x y' });
});

test('json() resolves the default on invalid JSON and on an empty body', T, async () => {
  const port = await probe(
    async (req) => ({ bad: await req.json(), custom: await req.json({ d: 1 }) }),
    { method: 'post' },
  );
  assert.deepEqual(await ask(port, { method: 'POST', path: '/j', body: '{bad' }), { bad: {}, custom: { d: 1 } });
  assert.deepEqual(await ask(port, { method: 'POST', path: '/j' }), { bad: {}, custom: { d: 1 } });
});

test('an empty body reads as an empty Buffer, empty string and empty object', T, async () => {
  const port = await probe(
    async (req) => ({ buf: (await req.buffer()).length, text: await req.text(), form: await req.urlencoded(), received: req.received }),
    { method: 'post' },
  );
  assert.deepEqual(await ask(port, { method: 'POST', path: '/e', headers: { 'Content-Length': '0' } }), {
    buf: 0,
    text: '',
    form: {},
    received: true,
  });
});

test('a chunked request body without Content-Length is read in full (D14)', T, async () => {
  const port = await probe(async (req) => ({ text: await req.text() }), { method: 'post' });
  const r = await ask(port, { method: 'POST', path: '/chunked', chunked: true, chunks: ['hel', 'lo ', 'wörld'] });
  assert.equal(r.text, 'hello wörld');
});

test('a chunked body sent slowly in several TCP writes is read in full', T, async () => {
  const port = await probe(async (req) => ({ text: await req.text() }), { method: 'post' });
  const client = await connect(port);
  client.write('POST /slow HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n');
  for (const part of ['aaa', 'bbbb', 'c']) {
    await sleep(30);
    client.write(`${part.length.toString(16)}\r\n${part}\r\n`);
  }
  await sleep(30);
  client.write('0\r\n\r\n');
  const r = await client.response();
  assert.equal(JSON.parse(r.text).text, 'aaabbbbc');
});

test('the request is a Readable that streams its body', T, async () => {
  const port = await probe(
    (req) =>
      new Promise((resolve, reject) => {
        const parts = [];
        req.on('data', (c) => parts.push(Buffer.from(c)));
        req.on('end', () => resolve({ body: Buffer.concat(parts).toString() }));
        req.on('error', reject);
      }),
    { method: 'post' },
  );
  assert.deepEqual(await ask(port, { method: 'POST', path: '/s', body: 'x'.repeat(5000) }), { body: 'x'.repeat(5000) });
});

test("Readable's helpers work on the request: toArray(), map(), reduce(), iterator(), and its state getters", T, async () => {
  const port = await probe(
    async (req) => {
      const before = { didRead: req.readableDidRead, errored: req.errored, closed: req.closed, aborted: req.readableAborted };
      const chunks = await req.toArray();
      return { before, body: Buffer.concat(chunks).toString(), ended: req.readableEnded };
    },
    { method: 'post' },
  );
  assert.deepEqual(await ask(port, { method: 'POST', path: '/s', body: 'abc' }), {
    before: { didRead: false, errored: null, closed: false, aborted: false },
    body: 'abc',
    ended: true,
  });
  const port2 = await probe(
    async (req) => {
      const lengths = await req.map((c) => c.length).reduce((a, n) => a + n, 0);
      return { lengths };
    },
    { method: 'post' },
  );
  assert.deepEqual(await ask(port2, { method: 'POST', path: '/s', body: 'x'.repeat(3000) }), { lengths: 3000 });
  const port3 = await probe(
    async (req) => {
      let total = 0;
      for await (const c of req.iterator({ destroyOnReturn: true })) total += c.length;
      return { total };
    },
    { method: 'post' },
  );
  assert.deepEqual(await ask(port3, { method: 'POST', path: '/s', body: 'y'.repeat(10) }), { total: 10 });
});

test('req.locals is a fresh object per request', T, async () => {
  let n = 0;
  const port = await probe((req) => {
    const before = { ...req.locals };
    req.locals.n = ++n;
    return before;
  });
  assert.deepEqual(await ask(port, { path: '/1' }), {});
  assert.deepEqual(await ask(port, { path: '/2' }), {});
});

test('sign() and unsign() use the cookie-signature format', T, async () => {
  const port = await probe((req) => {
    const signed = req.sign('value', 'secret');
    return { signed, ok: req.unsign(signed, 'secret'), bad: req.unsign(signed + 'x', 'secret') ?? null, wrong: req.unsign(signed, 'other') ?? null };
  });
  const mac = crypto.createHmac('sha256', 'secret').update('value').digest('base64').replace(/=+$/, '');
  assert.deepEqual(await ask(port, { path: '/sig' }), { signed: `value.${mac}`, ok: 'value', bad: null, wrong: null });
});

test('param() returns the path parameter', T, async () => {
  const port = await probe((req) => ({ id: req.param('id') }), { pattern: '/items/:id' });
  assert.deepEqual(await ask(port, { path: '/items/abc' }), { id: 'abc' });
});

test('fresh, stale and signedCookies throw ERR_INCOMPATIBLE_CALL', T, async () => {
  const port = await probe((req) => {
    const out = {};
    for (const name of ['fresh', 'stale', 'signedCookies']) {
      try {
        void req[name];
        out[name] = 'no throw';
      } catch (e) {
        out[name] = /ERR_INCOMPATIBLE_CALL/.test(String(e && e.message)) ? 'throws' : String(e);
      }
    }
    return out;
  });
  assert.deepEqual(await ask(port, { path: '/x' }), { fresh: 'throws', stale: 'throws', signedCookies: 'throws' });
});

// ---------------------------------------------------------------------------
// Body limits (4.4)

async function limitServer(options = {}, routeOptions = {}) {
  const calls = { n: 0 };
  const { port } = await startServer((app) => {
    app.post('/upload', routeOptions, async (req, res) => {
      calls.n++;
      res.send(String((await req.buffer()).length));
    });
    app.get('/ping', (req, res) => res.send('pong'));
  }, options);
  return { port, calls };
}

test('a Content-Length body over max_body_length gets 413 with Content-Length 0 and the handler is not called', T, async () => {
  const { port, calls } = await limitServer({ max_body_length: 100 });
  const r = await request(port, { method: 'POST', path: '/upload', body: 'x'.repeat(101) });
  assert.equal(r.status, 413);
  assert.equal(r.header('content-length'), '0');
  assert.equal(r.body.length, 0);
  await sleep(30);
  assert.equal(calls.n, 0);
  const ok = await request(port, { method: 'POST', path: '/upload', body: 'x'.repeat(100) });
  assert.equal(ok.status, 200, 'a body exactly at the limit is accepted');
  assert.equal(ok.text, '100');
  assert.equal((await request(port, { path: '/ping' })).text, 'pong', 'the server stays up');
});

test('a body that stalls for header_timeout gets 408 and the connection closes; one that keeps coming slowly is read in full', T, async () => {
  const { port, calls } = await limitServer({ header_timeout: 1000 });
  // 3 bytes of 100, then nothing.
  const stalled = await connect(port);
  const t0 = Date.now();
  stalled.write('POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nabc');
  const r = await stalled.response(4000);
  assert.equal(r.status, 408);
  await stalled.waitClosed(2000);
  const took = Date.now() - t0;
  assert.ok(took >= 900 && took < 3000, `closed after ${took} ms`);
  assert.equal(calls.n, 0, 'the handler is not called');
  // 100 bytes in 4 pieces 400 ms apart: 1.2 s in all, but never a gap of 1 s.
  const slow = await connect(port);
  slow.write('POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n');
  for (let i = 0; i < 4; i++) {
    await sleep(400);
    slow.write('x'.repeat(25));
  }
  const ok = await slow.response(3000);
  assert.equal(ok.status, 200);
  assert.equal(ok.text, '100');
});

test('a chunked body that grows over max_body_length gets 413 and the handler is not called', T, async () => {
  const { port, calls } = await limitServer({ max_body_length: 100 });
  const r = await request(port, { method: 'POST', path: '/upload', chunked: true, chunks: ['x'.repeat(60), 'y'.repeat(60)] });
  assert.equal(r.status, 413);
  await sleep(30);
  assert.equal(calls.n, 0);
  const ok = await request(port, { method: 'POST', path: '/upload', chunked: true, chunks: ['x'.repeat(50), 'y'.repeat(50)] });
  assert.equal(ok.text, '100');
});

test('a route max_body_length overrides the server limit both ways', T, async () => {
  const calls = { big: 0, small: 0 };
  const { port } = await startServer(
    (app) => {
      app.post('/big', { max_body_length: 1000 }, async (req, res) => {
        calls.big++;
        res.send(String((await req.buffer()).length));
      });
      app.post('/small', { max_body_length: 10 }, async (req, res) => {
        calls.small++;
        res.send(String((await req.buffer()).length));
      });
    },
    { max_body_length: 100 },
  );
  assert.equal((await request(port, { method: 'POST', path: '/big', body: 'x'.repeat(500) })).text, '500');
  assert.equal((await request(port, { method: 'POST', path: '/big', body: 'x'.repeat(1001) })).status, 413);
  assert.equal((await request(port, { method: 'POST', path: '/small', body: 'x'.repeat(11) })).status, 413);
  await sleep(30);
  assert.deepEqual(calls, { big: 1, small: 0 });
});

test('max_body_length: Infinity means no limit, on the server and on a route (as Hyper-Express takes it); other non-finite values throw', T, async () => {
  const big = 'x'.repeat(400 * 1024);
  const { port } = await startServer(
    (app) => {
      app.post('/any', async (req, res) => res.send(String((await req.buffer()).length)));
      app.post('/route', { max_body_length: Infinity }, async (req, res) => res.send(String((await req.buffer()).length)));
    },
    { max_body_length: Infinity },
  );
  assert.equal((await request(port, { method: 'POST', path: '/any', body: big })).text, String(big.length));
  assert.equal((await request(port, { method: 'POST', path: '/route', body: big })).text, String(big.length));
  const { Server } = lib();
  assert.throws(() => new Server({ max_body_length: NaN }), { code: 'ERR_OUT_OF_RANGE' });
  assert.throws(() => new Server().post('/x', { max_body_length: -Infinity }, () => {}), RangeError);
});

test('with fast_abort an over-limit body closes the connection without a response', T, async () => {
  const { port, calls } = await limitServer({ max_body_length: 100, fast_abort: true });
  const client = await connect(port);
  client.write(buildRequest({ method: 'POST', path: '/upload', body: 'x'.repeat(200) }));
  await client.waitClosed(3000);
  assert.equal(client.length, 0, `no response expected, got ${JSON.stringify(client.text)}`);
  assert.equal(calls.n, 0);
  assert.equal((await request(port, { path: '/ping' })).text, 'pong');
});

test("the server's streaming.readable options apply to request streams; a route's own options win", T, async () => {
  const { port } = await startServer(
    (app) => {
      app.post('/server', (req, res) => res.json({ hwm: req.readableHighWaterMark }));
      app.post('/route', { streaming: { readable: { highWaterMark: 7 } } }, (req, res) =>
        res.json({ hwm: req.readableHighWaterMark }),
      );
    },
    { streaming: { readable: { highWaterMark: 1234 } } },
  );
  const server = await request(port, { method: 'POST', path: '/server', body: 'x' });
  const route = await request(port, { method: 'POST', path: '/route', body: 'x' });
  assert.deepEqual(JSON.parse(server.body.toString()), { hwm: 1234 });
  assert.deepEqual(JSON.parse(route.body.toString()), { hwm: 7 });
});
