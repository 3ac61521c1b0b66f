// HTTP/1.1 protocol details hyper leaves to the server (RFC 9110/9112): the request target and
// Host, broken request bodies, the lingering close after an early answer, responses that have no
// body, the Connection header of HTTP/1.0 responses, and what goes out when a declared length is
// not met.
import { test, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import net from 'node:net';
import { Readable } from 'node:stream';
import { startServer, request, connect, cleanup, onCleanup, sleep, until, recordEvents, quietConsoleError } from './helpers.mjs';

afterEach(cleanup);

const T = { timeout: 15000 };

/** Sends raw bytes on a fresh connection; resolves with everything received until the server closes or `ms`. */
async function raw(port, bytes, ms = 2000) {
  const c = await connect(port);
  c.write(bytes);
  await until(() => c.closed || c.ended, ms, 'the server to close').catch(() => {});
  return c;
}

test('Host: missing on HTTP/1.1, repeated or invalid gets 400 and the handler is not called; HTTP/1.0 may omit it', T, async () => {
  let calls = 0;
  const { port } = await startServer((app) => app.get('/info', (req, res) => res.send(String(++calls))));
  for (const head of [
    'GET /info HTTP/1.1\r\n\r\n',
    'GET /info HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n',
    'GET /info HTTP/1.1\r\nHost: a b\r\n\r\n',
    'GET /info HTTP/1.1\r\nHost: a/b\r\n\r\n',
  ]) {
    const c = await raw(port, head);
    assert.match(c.text, /^HTTP\/1\.1 400 Bad Request\r\n/, JSON.stringify(head));
    assert.match(c.text, /\r\nconnection: close\r\n/i);
    assert.ok(c.closed || c.ended, 'the connection closes after the 400');
  }
  assert.equal(calls, 0);
  const ok10 = await raw(port, 'GET /info HTTP/1.0\r\n\r\n');
  assert.match(ok10.text, /^HTTP\/1\.0 200 OK\r\n/);
  const ok11 = await raw(port, 'GET /info HTTP/1.1\r\nHost: [::1]:8080\r\nConnection: close\r\n\r\n');
  assert.match(ok11.text, /^HTTP\/1\.1 200 OK\r\n/);
  assert.equal(calls, 2);
});

test('an absolute-form target names the host: req.hostname is its authority, not the Host header', T, async () => {
  const { port } = await startServer((app) =>
    app.get('/info', (req, res) => res.json({ url: req.url, path: req.path, hostname: req.hostname, host: req.headers.host })),
  );
  const c = await raw(port, 'GET http://other.example:81/info?a=1 HTTP/1.1\r\nHost: good.example\r\nConnection: close\r\n\r\n');
  const body = JSON.parse(c.text.slice(c.text.indexOf('\r\n\r\n') + 4));
  assert.deepEqual(body, { url: '/info?a=1', path: '/info', hostname: 'other.example', host: 'other.example:81' });
  // The authority gets the Host checks: no userinfo.
  const bad = await raw(port, 'GET http://evil@good.example/info HTTP/1.1\r\nHost: good.example\r\n\r\n');
  assert.match(bad.text, /^HTTP\/1\.1 400 Bad Request\r\n/);
});

test('an absolute-form target with an empty path is the path /', T, async () => {
  const { port } = await startServer((app) => app.get('/', (req, res) => res.json({ url: req.url, path: req.path, q: req.query_parameters.x })));
  const c = await raw(port, 'GET http://h.example?x=1 HTTP/1.1\r\nHost: h.example\r\nConnection: close\r\n\r\n');
  assert.deepEqual(JSON.parse(c.text.slice(c.text.indexOf('\r\n\r\n') + 4)), { url: '/?x=1', path: '/', q: '1' });
});

test('a target that is not origin-form gets 400; OPTIONS * and CONNECT host:port reach the routes', T, async () => {
  const seen = [];
  const { port } = await startServer((app) => app.any('/*', (req, res) => (seen.push(`${req.method} ${req.url}`), res.send('ok'))));
  const bad = await raw(port, 'GET hello HTTP/1.1\r\nHost: x\r\n\r\n');
  assert.match(bad.text, /^HTTP\/1\.1 400 Bad Request\r\n/);
  const star = await raw(port, 'OPTIONS * HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
  assert.match(star.text, /^HTTP\/1\.1 200 OK\r\n/);
  const conn = await raw(port, 'CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n');
  assert.match(conn.text, /^HTTP\/1\.1 200 OK\r\n/);
  assert.deepEqual(seen, ['OPTIONS *', 'CONNECT example.com:443']);
});

test('a target with characters a URI may not contain gets 400 before any route (the README lists them); the printable others are served as sent', T, async () => {
  const seen = [];
  const { port } = await startServer((app) => app.any('/*', (req, res) => (seen.push(req.url), res.send('ok'))));
  for (const target of ['/a<b', '/a>b', '/a`b', '/a\x7fb', '/s?q="x"', '/s?q=<', '/s?q=>', '/s?q=\x7f']) {
    const c = await raw(port, `GET ${target} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`);
    assert.match(c.text, /^HTTP\/1\.1 400 Bad Request\r\n/, `${JSON.stringify(target)}: ${JSON.stringify(c.text)}`);
  }
  assert.deepEqual(seen, []);
  for (const target of ['/a{b}|c^d\\e"f', '/s?q={a:1}|^`']) {
    const c = await raw(port, `GET ${target} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`);
    assert.match(c.text, /^HTTP\/1\.1 200 OK\r\n/, `${JSON.stringify(target)}: ${JSON.stringify(c.text)}`);
  }
  assert.deepEqual(seen, ['/a{b}|c^d\\e"f', '/s?q={a:1}|^`']);
});

test('a chunked body with broken framing gets 400 and the handler is not called', T, async () => {
  let calls = 0;
  const { port } = await startServer((app) => app.post('/echo', async (req, res) => (calls++, res.send(await req.text()))));
  for (const size of ['zz', '0x5', ' 5', 'ffffffffffffffffff']) {
    const c = await raw(port, `POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n${size}\r\nhello\r\n0\r\n\r\n`);
    assert.match(c.text, /^HTTP\/1\.1 400 Bad Request\r\n/, `chunk size ${JSON.stringify(size)}: ${JSON.stringify(c.text)}`);
  }
  assert.equal(calls, 0);
  const ok = await request(port, { method: 'POST', path: '/echo', body: 'hello', chunked: true });
  assert.equal(ok.text, 'hello');
});

test('a request body with a transfer coding other than chunked (gzip, chunked) gets 501: hyper would hand it on still encoded', T, async () => {
  let calls = 0;
  const { port } = await startServer((app) => app.post('/echo', async (req, res) => (calls++, res.send(await req.text()))));
  const c = await raw(port, 'POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n');
  assert.match(c.text, /^HTTP\/1\.1 501 Not Implemented\r\n/);
  assert.equal(calls, 0);
  // Chunked named twice, on two lines (hyper refuses it on one): 400.
  const twice = await raw(port, 'POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n');
  assert.match(twice.text, /^HTTP\/1\.1 400 Bad Request\r\n/);
  assert.equal(calls, 0);
  const ok = await raw(port, 'POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: Chunked\r\nConnection: close\r\n\r\n5\r\nhello\r\n0\r\n\r\n');
  assert.match(ok.text, /^HTTP\/1\.1 200 OK\r\n[^]*hello$/);
});

test('an upload over the limit gets its 413 (lingering close), not a reset, with node:http as the client', T, async () => {
  let calls = 0;
  const { port } = await startServer((app) => app.post('/up', async (req, res) => (calls++, res.send(String((await req.buffer()).length)))));
  const upload = (size) =>
    new Promise((resolve) => {
      const r = http.request({ port, host: '127.0.0.1', method: 'POST', path: '/up', headers: { 'content-length': size } }, (res) => {
        res.resume();
        res.on('end', () => resolve(`${res.statusCode} ${res.headers.connection}`));
      });
      r.on('error', (e) => resolve(`error ${e.code}`));
      r.setTimeout(5000, () => r.destroy(new Error('timeout')));
      r.end(Buffer.alloc(size, 97));
    });
  const results = [];
  for (const size of [1 << 20, 4 << 20, 4 << 20, 4 << 20, 4 << 20]) results.push(await upload(size));
  assert.deepEqual(results, Array(5).fill('413 close'));
  assert.equal(calls, 0);
});

/** A half-open raw client: it can keep sending after the server's answer and FIN. */
async function halfOpen(port) {
  const socket = net.connect({ port, host: '127.0.0.1', allowHalfOpen: true });
  const state = { socket, text: '', ended: false, closed: false, error: null };
  socket.on('data', (d) => (state.text += d.toString('latin1')));
  socket.on('end', () => (state.ended = true));
  socket.on('close', () => (state.closed = true));
  socket.on('error', (e) => (state.error = e));
  onCleanup(() => socket.destroy());
  await new Promise((resolve) => socket.once('connect', resolve));
  return state;
}

// `_native.connections` (the native side's count of open connections) is internal: a lingering
// close is otherwise invisible to a client that already got the answer and the server's FIN.
test('the lingering close reads what the client still sends, and ends when the client closes or at force_close()', T, async () => {
  const { app, port } = await startServer((a) => a.post('/up', (req, res) => res.send('x')));
  const upload = 'POST /up HTTP/1.1\r\nHost: x\r\nContent-Length: 10000000\r\n\r\n' + 'a'.repeat(1000);
  const c = await halfOpen(port);
  c.socket.write(upload);
  await until(() => c.text.includes('413 Payload Too Large') && c.ended, 3000, 'the 413 and the end of the answer');
  // The rest of the body is read and thrown away: no reset while the client keeps sending.
  for (let i = 0; i < 20; i++) {
    c.socket.write(Buffer.alloc(64 * 1024, 97));
    await sleep(10);
  }
  await sleep(100);
  assert.equal(c.error, null, 'no reset while the server lingers');
  assert.equal(app._native.connections, 1, 'the server still reads the connection');
  c.socket.end();
  await until(() => app._native.connections === 0, 2000, 'the lingering close to end with the client');

  const d = await halfOpen(port);
  d.socket.write(upload);
  await until(() => d.ended, 3000, 'the answer');
  assert.equal(app._native.connections, 1);
  app.force_close();
  await until(() => app._native.connections === 0, 2000, 'force_close() to end the lingering close');
});

test('an SSE stream cannot start on a 204/205/304 (ERR_HTTP_BODY_NOT_ALLOWED, nothing sent, the response still answers)', T, async () => {
  const codes = [];
  const { port } = await startServer((app) =>
    app.get('/sse/:code', (req, res) => {
      res.status(Number(req.path_parameters.code));
      try {
        res.sse.send('x');
      } catch (err) {
        codes.push(err.code);
        assert.equal(res.initiated, false);
      }
      res.send();
    }),
  );
  for (const code of [204, 205, 304]) {
    const c = await raw(port, `GET /sse/${code} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`);
    assert.ok(c.text.startsWith(`HTTP/1.1 ${code} `), c.text);
    assert.doesNotMatch(c.text, /text\/event-stream|transfer-encoding|data:/i);
  }
  assert.deepEqual(codes, Array(3).fill('ERR_HTTP_BODY_NOT_ALLOWED'));
});

test('a 204/205/304 response has no body: write() is ignored (as node:http does), send(body) drops it', T, async () => {
  const rec = {};
  const { port } = await startServer((app) => {
    app.get('/w/:code', (req, res) => {
      rec[req.path_parameters.code] = recordEvents(req, res);
      res.status(Number(req.path_parameters.code));
      assert.equal(res.write('abc'), true);
      res.end('def');
    });
    app.get('/s/:code', (req, res) => res.status(Number(req.path_parameters.code)).send('body'));
  });
  for (const code of [204, 205, 304]) {
    for (const kind of ['w', 's']) {
      const c = await raw(port, `GET /${kind}/${code} HTTP/1.1\r\nHost: x\r\n\r\nGET /${kind}/${code} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`);
      // Two answers, no body bytes, the connection framed correctly between them.
      const answers = c.text.split(`HTTP/1.1 ${code} `);
      assert.equal(answers.length, 3, c.text);
      assert.doesNotMatch(c.text, /abc|def|body|transfer-encoding/, c.text);
      if (code === 205) assert.match(c.text, /content-length: 0\r\n/);
    }
    await until(() => rec[code] && rec[code].closed(), 2000, 'close');
    assert.deepEqual(rec[code].names, ['prepare', 'finish', 'close']);
  }
});

test('status() refuses 1xx codes (interim responses cannot end a request) and changes nothing', T, async () => {
  const { port } = await startServer((app) =>
    app.get('/', (req, res) => {
      for (const code of [100, 101, 103, 199]) {
        assert.throws(() => res.status(code), (err) => err instanceof RangeError && err.code === 'ERR_HTTP_INVALID_STATUS_CODE');
      }
      res.send('still 200');
    }),
  );
  const r = await request(port, { path: '/' });
  assert.equal(r.status, 200);
  assert.equal(r.text, 'still 200');
});

test('stream(readable, total): a readable shorter than total drops the connection and reports ERR_HTTP_CONTENT_LENGTH_MISMATCH', T, async () => {
  const errors = [];
  let rec;
  const { app, port } = await startServer((a) =>
    a.get('/short', (req, res) => {
      rec = recordEvents(req, res);
      res.stream(Readable.from([Buffer.from('abcde')]), 10);
    }),
  );
  app.set_error_handler((req, res, err) => {
    errors.push([err.code, res.completed]);
    res.status(500).send('too late');
  });
  const c = await raw(port, 'GET /short HTTP/1.1\r\nHost: x\r\n\r\n');
  assert.ok(c.closed || c.ended, 'the connection is dropped');
  assert.doesNotMatch(c.text, /too late/);
  await until(() => rec.closed(), 2000, 'close');
  assert.deepEqual(errors, [['ERR_HTTP_CONTENT_LENGTH_MISMATCH', true]]);
  assert.equal(rec.res.close_reason, 'server');
});

test('stream(readable, total): a readable that gives exactly total bytes, after a delay or from a file, completes with finish (hyper ends the body at its last byte)', T, async () => {
  const fs = await import('node:fs');
  const os = await import('node:os');
  const path = await import('node:path');
  const file = path.join(os.tmpdir(), `hyper-sse-stream-${process.pid}.bin`);
  fs.writeFileSync(file, Buffer.alloc(100000, 97));
  onCleanup(() => fs.rmSync(file, { force: true }));
  const recs = [];
  let fileClosed = false;
  const { port } = await startServer((app) => {
    app.get('/file', (req, res) => {
      recs.push(recordEvents(req, res));
      const rs = fs.createReadStream(file);
      rs.on('close', () => (fileClosed = true));
      res.stream(rs, 100000);
    });
    app.get('/slow', (req, res) => {
      recs.push(recordEvents(req, res));
      const chunks = [Buffer.from('ab'), Buffer.from('cd')];
      res.stream(new Readable({ read() { const c = chunks.shift() || null; setTimeout(() => this.push(c), 20); } }), 4);
    });
  });
  const f = await request(port, { path: '/file' });
  assert.equal(f.body.length, 100000);
  const s = await request(port, { path: '/slow' });
  assert.equal(s.text, 'abcd');
  await until(() => recs.length === 2 && recs.every((r) => r.closed()) && fileClosed, 3000, 'both closes and the file closed');
  for (const r of recs) {
    assert.deepEqual(r.names.filter((n) => n !== 'drain'), ['prepare', 'finish', 'close']);
    assert.equal(r.res.close_reason, 'finished');
  }
});

test('stream(readable, total): a readable longer than total never sends more than total; the error handler answers', T, async () => {
  quietConsoleError();
  const errors = [];
  const { app, port } = await startServer((a) => a.get('/long', (req, res) => res.stream(Readable.from([Buffer.from('abcde')]), 3)));
  app.set_error_handler((req, res, err) => {
    errors.push(err.code);
    res.status(500).send('mismatch');
  });
  const r = await request(port, { path: '/long' });
  assert.equal(r.status, 500);
  assert.equal(r.header('content-length'), '8');
  assert.equal(r.text, 'mismatch');
  assert.deepEqual(errors, ['ERR_HTTP_CONTENT_LENGTH_MISMATCH']);
});

test('a HEAD response announces the content-length the app sets (one value, and only a length), else its own body length, 0 included', T, async () => {
  const { port } = await startServer((app) => {
    app.head('/file', (req, res) => res.header('content-length', '12345').send());
    app.head('/two', (req, res) => res.header('content-length', '100').header('content-length', '5').send());
    app.head('/bad', (req, res) => res.header('content-length', 'abc').send());
    app.head('/stream', (req, res) => res.header('content-length', '100').stream(Readable.from([Buffer.from('abcde')]), 5));
    app.head('/nocontent', (req, res) => res.status(204).header('content-length', '100').send());
    app.head('/empty', (req, res) => res.send());
    app.head('/reset', (req, res) => res.status(205).send());
    app.get('/reset', (req, res) => res.status(205).send());
    app.head('/short', (req, res) => res.send('abc'));
  });
  const head = async (path) => {
    const c = await raw(port, `HEAD ${path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`);
    assert.match(c.text, /^HTTP\/1\.1 200 OK\r\n/, `${path}: ${JSON.stringify(c.text)}`);
    assert.ok(c.text.endsWith('\r\n\r\n'), 'no body');
    return c.text.match(/content-length: [^\r]*/gi) || [];
  };
  assert.deepEqual(await head('/file'), ['content-length: 12345']);
  assert.deepEqual(await head('/two'), ['content-length: 5'], 'the last value');
  assert.deepEqual(await head('/bad'), ['content-length: 0'], 'not a length: not sent; the empty body is announced, as to GET');
  assert.deepEqual(await head('/empty'), ['content-length: 0'], 'an empty answer: 0, as to GET');
  assert.deepEqual(await head('/short'), ['content-length: 3']);
  const reset = async (method) => {
    const c = await raw(port, `${method} /reset HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`);
    assert.match(c.text, /^HTTP\/1\.1 205 Reset Content\r\n/);
    return c.text.match(/content-length: [^\r]*/gi);
  };
  assert.deepEqual(await reset('HEAD'), await reset('GET'), 'a 205: HEAD as GET');
  const missing = await raw(port, 'HEAD /missing HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
  assert.match(missing.text, /^HTTP\/1\.1 404 Not Found\r\n/);
  assert.deepEqual(missing.text.match(/content-length: [^\r]*/gi), ['content-length: 0'], 'the default 404 as to GET');
  assert.deepEqual(await head('/stream'), ['content-length: 5'], 'the stream total wins');
  const nc = await raw(port, 'HEAD /nocontent HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
  assert.match(nc.text, /^HTTP\/1\.1 204 No Content\r\n/);
  assert.doesNotMatch(nc.text, /content-length/i, 'a 204 never announces a length');
});

test('HTTP/1.0: a connection that closes after the response says close, whatever the app or hyper would say', T, async () => {
  const { port } = await startServer((app) => {
    app.get('/ka', (req, res) => res.header('connection', 'keep-alive').send('c'));
    app.get('/close', (req, res) => res.header('connection', 'close').send('c'));
    app.get('/stream', (req, res) => {
      res.write('abc');
      res.end('def');
    });
  });
  // Without keep-alive the connection closes: the app's `keep-alive` is replaced.
  let c = await raw(port, 'GET /ka HTTP/1.0\r\n\r\n');
  assert.match(c.text, /^HTTP\/1\.0 200 OK\r\nconnection: close\r\n/);
  assert.doesNotMatch(c.text, /keep-alive/);
  // A streamed body without a length ends by closing, even for a keep-alive client.
  c = await raw(port, 'GET /stream HTTP/1.0\r\nConnection: keep-alive\r\n\r\n');
  assert.match(c.text, /\r\nconnection: close\r\n/);
  assert.doesNotMatch(c.text, /keep-alive/);
  assert.ok(c.text.endsWith('abcdef'));
  // The app asks to close a keep-alive client's connection.
  c = await raw(port, 'GET /close HTTP/1.0\r\nConnection: keep-alive\r\n\r\n');
  assert.match(c.text, /\r\nconnection: close\r\n/);
  assert.doesNotMatch(c.text, /keep-alive/);
  assert.ok(c.closed || c.ended);
  // A keep-alive client with a sized body keeps its connection, and is told so.
  c = await connect(port);
  c.write('GET /ka HTTP/1.0\r\nConnection: keep-alive\r\n\r\n');
  await c.waitUntil((x) => x.text.endsWith('\r\n\r\nc'), 2000, 'the response');
  assert.match(c.text, /\r\nconnection: keep-alive\r\n/);
  c.write('GET /ka HTTP/1.0\r\n\r\n');
  await c.waitUntil((x) => x.text.split('HTTP/1.0 200').length === 3, 2000, 'a second response on the kept connection');
});

test('header values and status messages go out as UTF-8 (as Hyper-Express sends them); control characters are refused', T, async () => {
  const { port } = await startServer((app) =>
    app.get('/', (req, res) => {
      assert.throws(() => res.header('x-bad', 'a\u0001b'), (err) => err.code === 'ERR_INVALID_CHAR');
      assert.throws(() => res.header('x-bad', 'a\u007fb'), (err) => err.code === 'ERR_INVALID_CHAR');
      res.status(200, 'Très bien €').header('x-name', 'café €').send('u');
    }),
  );
  const c = await raw(port, 'GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
  const head = c.data.subarray(0, c.data.indexOf('\r\n\r\n')).toString('utf8');
  assert.match(head, /^HTTP\/1\.1 200 Très bien €\r\n/);
  assert.match(head, /\r\nx-name: café €/);
  assert.doesNotMatch(head, /x-bad/);
});

test('stream(readable): a source that fails after the start drops the connection and reaches the error handler', T, async () => {
  const errors = [];
  let rec;
  let resolved = false;
  const { app, port } = await startServer((a) =>
    a.get('/fail', async (req, res) => {
      rec = recordEvents(req, res);
      const source = new Readable({ read() {} });
      source.push('part');
      setTimeout(() => source.destroy(new Error('source broke')), 50);
      await res.stream(source);
      resolved = true;
    }),
  );
  app.set_error_handler((req, res, err) => errors.push([err.message, res.completed]));
  const c = await raw(port, 'GET /fail HTTP/1.1\r\nHost: x\r\n\r\n');
  assert.ok(c.closed || c.ended, 'the connection is dropped');
  assert.match(c.text, /\r\n\r\n4\r\npart\r\n$/, 'the body is cut, not ended');
  await until(() => resolved && rec.closed(), 2000, 'the stream() promise and close');
  assert.deepEqual(errors, [['source broke', true]]);
  assert.deepEqual(rec.names, ['prepare', 'close']);
  assert.equal(rec.res.close_reason, 'server');
});

test('a request body that starts with a UTF-8 byte order mark: text(), json() and urlencoded() drop the mark', T, async () => {
  const { port } = await startServer((app) =>
    app.post('/b/:kind', async (req, res) => res.json({ value: await req[req.path_parameters.kind]() })),
  );
  const bom = Buffer.from([0xef, 0xbb, 0xbf]);
  const ask = async (kind, body) =>
    JSON.parse((await request(port, { method: 'POST', path: `/b/${kind}`, body: Buffer.concat([bom, Buffer.from(body)]) })).text).value;
  assert.equal(await ask('text', 'abc'), 'abc');
  assert.deepEqual(await ask('json', '{"a":1}'), { a: 1 });
  assert.deepEqual(await ask('urlencoded', 'x=1&y=2'), { x: '1', y: '2' });
});

test('res.cookie() with a name the cookie package refuses: a TypeError that names the call and the cookie', T, async () => {
  let caught;
  const { port } = await startServer((app) =>
    app.get('/', (req, res) => {
      try {
        res.cookie('a b', 'v');
      } catch (err) {
        caught = err;
      }
      res.send('ok');
    }),
  );
  const r = await request(port, { path: '/' });
  assert.equal(r.text, 'ok');
  assert.ok(caught instanceof TypeError);
  assert.equal(caught.code, 'ERR_INVALID_ARG_VALUE');
  assert.match(caught.message, /Response\.cookie\("a b"\)/);
  assert.equal(r.header('set-cookie'), undefined);
});
