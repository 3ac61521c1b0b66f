// Response (spec 5.1–5.3; D8, D10, D13) over real sockets.
import { test, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { Readable } from 'node:stream';
import {
  startServer,
  request,
  connect,
  buildRequest,
  cleanup,
  sleep,
  waitFor,
  until,
  recordEvents,
  checkInvariants,
  lib,
} from './helpers.mjs';

afterEach(cleanup);

const T = { timeout: 10000 };

/** One GET route at /r handled by `handler`; returns the parsed response. */
async function serve(handler, { options = {}, path = '/r', method = 'GET' } = {}) {
  const { port } = await startServer((app) => app.any('/r', handler), options);
  return { res: await request(port, { method, path }), port };
}

test('send() without writes answers with status line, date, Content-Length and the body', T, async () => {
  const { res } = await serve((req, r) => r.send('hello'));
  assert.equal(res.statusLine, 'HTTP/1.1 200 OK');
  assert.equal(res.header('content-length'), '5');
  assert.equal(res.header('transfer-encoding'), undefined);
  assert.ok(res.header('date'), 'a Date header is sent');
  assert.equal(res.text, 'hello');
});

test('send() with a Buffer sends its bytes unchanged', T, async () => {
  const bytes = Buffer.from([0, 1, 2, 250, 255, 13, 10]);
  const { res } = await serve((req, r) => r.send(bytes));
  assert.deepEqual(res.body, bytes);
});

test('status(code, message) sends a custom reason phrase', T, async () => {
  const { res } = await serve((req, r) => r.status(418, 'Teapot Custom').send());
  assert.equal(res.statusLine, 'HTTP/1.1 418 Teapot Custom');
});

test('status(code) uses the standard reason phrase and statusCode reflects it', T, async () => {
  const { res } = await serve((req, r) => {
    r.status(201);
    r.send(String(r.statusCode));
  });
  assert.equal(res.statusLine, 'HTTP/1.1 201 Created');
  assert.equal(res.text, '201');
});

test('an unknown status code without a message never shows "undefined" (D13)', T, async () => {
  const { res } = await serve((req, r) => r.status(299).send('x'));
  assert.equal(res.status, 299);
  assert.match(res.statusLine, /^HTTP\/1\.1 299( [^\r\n]*)?$/);
  assert.ok(!res.statusLine.includes('undefined'), res.statusLine);
});

test('status() is ignored once the response is initiated', T, async () => {
  const { res } = await serve((req, r) => {
    r.write('a');
    r.status(500);
    r.end('b');
  });
  assert.equal(res.status, 200);
  assert.equal(res.text, 'ab');
});

test('header() lowercases names on the wire and appends to an existing value', T, async () => {
  const { res } = await serve((req, r) => r.header('X-Append', '1').header('x-append', '2').send());
  assert.deepEqual(res.headerAll('x-append'), ['1', '2']);
  const lines = res.raw.split('\r\n');
  assert.ok(lines.includes('x-append: 1'), res.raw);
  assert.ok(!lines.some((l) => l.startsWith('X-Append')), 'header names go out lowercase');
});

test('header(name, value, true) overwrites the existing value', T, async () => {
  const { res } = await serve((req, r) => r.header('x-o', '1').header('x-o', '2', true).send());
  assert.deepEqual(res.headerAll('x-o'), ['2']);
});

test('an array header value gives one header line per value', T, async () => {
  const { res } = await serve((req, r) => r.header('x-arr', ['1', '2', '3']).send());
  assert.deepEqual(res.headerAll('x-arr'), ['1', '2', '3']);
});

test('removeHeader() drops a pending header and setHeader()/append() append', T, async () => {
  const { res } = await serve((req, r) => {
    r.header('x-gone', '1');
    r.removeHeader('x-gone');
    r.setHeader('x-s', 'a');
    r.append('x-s', 'b');
    r.send();
  });
  assert.deepEqual(res.headerAll('x-gone'), []);
  assert.deepEqual(res.headerAll('x-s'), ['a', 'b']);
});

test('type() sets content-type from an extension or a mime type, unknown gives text/plain', T, async () => {
  const { port } = await startServer((app) => {
    app.get('/t/:ext', (req, r) => r.type(decodeURIComponent(req.path_parameters.ext)).send('x'));
  });
  const cases = {
    json: 'application/json; charset=utf-8',
    html: 'text/html; charset=utf-8',
    '.png': 'image/png',
    'text/css': 'text/css; charset=utf-8',
    'no-such-type-zzz': 'text/plain',
  };
  for (const [ext, expected] of Object.entries(cases)) {
    const res = await request(port, { path: `/t/${encodeURIComponent(ext)}` });
    assert.equal(res.header('content-type'), expected, ext);
  }
});

test('json() sends JSON with the json content-type and returns the response', T, async () => {
  let returned;
  let response;
  const { res } = await serve((req, r) => {
    response = r;
    returned = r.json({ a: [1, 'é'] });
  });
  assert.equal(res.header('content-type'), 'application/json; charset=utf-8');
  assert.deepEqual(JSON.parse(res.text), { a: [1, 'é'] });
  assert.equal(returned, response);
});

test('html() sends text/html', T, async () => {
  const { res } = await serve((req, r) => r.html('<p>hi</p>'));
  assert.equal(res.header('content-type'), 'text/html; charset=utf-8');
  assert.equal(res.text, '<p>hi</p>');
});

test('redirect() answers 302 Found with a location header, and returns false once completed', T, async () => {
  let second;
  const { res } = await serve((req, r) => {
    r.redirect('/elsewhere');
    second = r.redirect('/again');
  });
  assert.equal(res.statusLine, 'HTTP/1.1 302 Found');
  assert.equal(res.header('location'), '/elsewhere');
  assert.equal(second, false);
});

test('a status() or redirect() rejected for a CR/LF, redirect(status, url), and an object given to send() or write() throw and leave the response as it was', T, async () => {
  const errors = [];
  const { res } = await serve((req, r) => {
    const calls = [
      () => r.status(503, 'bad\r\nx-injected: 1'),
      () => r.redirect('/a\r\nx-injected: 1'),
      () => r.redirect(301, '/elsewhere'),
      () => r.send({ not: 'a body' }),
      () => r.write({ not: 'a chunk' }),
    ];
    for (const bad of calls) {
      try {
        bad();
      } catch (err) {
        errors.push(err.code);
      }
    }
    r.send('still 200');
  });
  assert.deepEqual(errors, ['ERR_INVALID_CHAR', 'ERR_INVALID_CHAR', 'ERR_INVALID_ARG_TYPE', 'ERR_INVALID_ARG_TYPE', 'ERR_INVALID_ARG_TYPE']);
  assert.equal(res.statusLine, 'HTTP/1.1 200 OK');
  assert.equal(res.header('location'), undefined);
  assert.equal(res.header('x-injected'), undefined);
  assert.equal(res.text, 'still 200');
});

test('a rejected body changes nothing: end(obj, cb) registers no callback, html(obj) and json(BigInt) leave the content type, write(obj) throws on a 204 too', T, async () => {
  const errors = [];
  let called = 0;
  let after;
  const { res } = await serve((req, r) => {
    const calls = [
      () => r.end({ a: 1 }, () => called++),
      () => r.html({ a: 1 }),
      () => r.json({ n: 1n }),
      () => r.status(204).write({ a: 1 }),
    ];
    for (const bad of calls) {
      try {
        bad();
      } catch (err) {
        errors.push(err.code || err.name);
      }
    }
    r.status(200).send('plain');
    // Once completed, whatever comes is refused quietly (a pipe may still be flowing).
    after = [r.write({ a: 1 }), r.send({ a: 1 }) === r, r.end({ a: 1 }) === r];
  });
  assert.deepEqual(after, [false, true, true]);
  assert.deepEqual(errors, ['ERR_INVALID_ARG_TYPE', 'ERR_INVALID_ARG_TYPE', 'TypeError', 'ERR_INVALID_ARG_TYPE']);
  assert.equal(res.text, 'plain');
  assert.equal(res.header('content-type'), undefined);
  await sleep(50);
  assert.equal(called, 0, 'the callback of a rejected end() never runs');
});

test('stream() of a readable that gives objects passes a TypeError to the error handler, and the server stays up', T, async () => {
  let handled;
  const { port } = await startServer((app) => {
    app.get('/objects', (req, r) => r.stream(Readable.from([{ not: 'bytes' }])));
    app.get('/late', (req, r) => r.stream(Readable.from([Buffer.from('ab'), { not: 'bytes' }])));
    app.get('/ok', (req, r) => r.send('ok'));
    app.set_error_handler((req, r, err) => {
      handled = err.code;
      r.status(500).send('failed');
    });
  });
  const first = await request(port, { path: '/objects' });
  assert.equal(first.statusLine, 'HTTP/1.1 500 Internal Server Error');
  assert.equal(first.text, 'failed');
  assert.equal(handled, 'ERR_INVALID_ARG_TYPE');
  handled = undefined;
  // Started: the connection is dropped (a cut body), and the error handler still hears of it.
  const c = await connect(port);
  c.write(buildRequest({ path: '/late' }));
  await c.waitClosed(3000);
  await until(() => handled === 'ERR_INVALID_ARG_TYPE', 2000, 'the error handler');
  assert.equal((await request(port, { path: '/ok' })).text, 'ok');
});

test('attachment() quotes the file name (a quote in it cannot add a parameter) and sets the type from its extension', T, async () => {
  const { port } = await startServer((app) => {
    app.get('/plain', (req, r) => r.attachment('/files/report.pdf').send('x'));
    app.get('/evil', (req, r) => r.attachment('f', 'a"; evil="1.txt').send('x'));
    app.get('/bare', (req, r) => r.attachment().send('x'));
  });
  const plain = await request(port, { path: '/plain' });
  assert.equal(plain.header('content-disposition'), 'attachment; filename="report.pdf"');
  assert.equal(plain.header('content-type'), 'application/pdf');
  const evil = await request(port, { path: '/evil' });
  assert.equal(evil.header('content-disposition'), 'attachment; filename="a\\"; evil=\\"1.txt"');
  assert.equal((await request(port, { path: '/bare' })).header('content-disposition'), 'attachment');
});

// Cookies (5.3)

test('cookie() without options sends Path=/; Secure; SameSite=None', T, async () => {
  const { res } = await serve((req, r) => r.cookie('a', 'b').send());
  assert.deepEqual(res.headerAll('set-cookie'), ['a=b; Path=/; Secure; SameSite=None']);
});

test('cookie() with options applies only the given options', T, async () => {
  const { res } = await serve((req, r) => r.cookie('a', 'b', undefined, { path: '/p', httpOnly: true }).send());
  const [line] = res.headerAll('set-cookie');
  const parts = line.split('; ');
  assert.equal(parts[0], 'a=b');
  assert.deepEqual(parts.slice(1).sort(), ['HttpOnly', 'Path=/p']);
});

test('cookie() with expiry_ms sets Max-Age in seconds and a matching Expires', T, async () => {
  const before = Date.now();
  const { res } = await serve((req, r) => r.cookie('e', 'v', 60000).send());
  const [line] = res.headerAll('set-cookie');
  assert.match(line, /^e=v;/);
  assert.match(line, /; Max-Age=60(;|$)/);
  const expires = /; Expires=([^;]+)/.exec(line);
  assert.ok(expires, line);
  const at = Date.parse(expires[1]);
  assert.ok(Math.abs(at - (before + 60000)) < 5000, `Expires ${expires[1]} is about now + 60 s`);
});

test('cookie(name, null) sends a deletion cookie with Max-Age=0', T, async () => {
  const { res } = await serve((req, r) => r.cookie('del', null).send());
  const [line] = res.headerAll('set-cookie');
  assert.match(line, /^del=;/);
  assert.match(line, /; Max-Age=0(;|$)/);
});

test('cookie() with options.secret signs the value like req.sign()', T, async () => {
  const { res } = await serve((req, r) => r.cookie('s', 'v', undefined, { secret: 'k', path: '/' }).send());
  const [line] = res.headerAll('set-cookie');
  const value = decodeURIComponent(line.split(';')[0].slice(2));
  const mac = crypto.createHmac('sha256', 'k').update('v').digest('base64').replace(/=+$/, '');
  assert.equal(value, `v.${mac}`);
});

test('setting the same cookie name twice sends one set-cookie line with the last value', T, async () => {
  const { res } = await serve((req, r) => r.cookie('a', '1').cookie('a', '2').cookie('b', '3').send());
  const lines = res.headerAll('set-cookie');
  assert.equal(lines.length, 2, JSON.stringify(lines));
  assert.ok(lines.some((l) => l.startsWith('a=2;')));
  assert.ok(lines.some((l) => l.startsWith('b=3;')));
});

// Streaming

test('write() starts a chunked response; send() adds the last chunk and the terminator', T, async () => {
  let results;
  const { res } = await serve((req, r) => {
    results = [r.write('a'), r.write('b')];
    r.end('c');
  });
  assert.deepEqual(results, [true, true]);
  assert.equal(res.header('transfer-encoding'), 'chunked');
  assert.equal(res.header('content-length'), undefined);
  assert.equal(res.text, 'abc');
  assert.equal(res.complete, true);
});

test('a 9-byte write returns true, a 20,000-byte write returns false, and drain follows', T, async () => {
  let small;
  let big;
  let drained = false;
  const { port } = await startServer((app) =>
    app.get('/bp', async (req, r) => {
      small = r.write('123456789');
      big = r.write(Buffer.alloc(20000, 'b'));
      await waitFor(r, 'drain', 3000);
      drained = true;
      r.end('!');
    }),
  );
  const res = await request(port, { path: '/bp' });
  assert.equal(small, true);
  assert.equal(big, false);
  assert.equal(drained, true);
  assert.equal(res.body.length, 9 + 20000 + 1);
  assert.equal(res.text, '123456789' + 'b'.repeat(20000) + '!');
});

test("a route's streaming.writable.highWaterMark replaces the server's: false above it, then drain", T, async () => {
  const seen = {};
  const { port } = await startServer((app) => {
    app.get('/small', { streaming: { writable: { highWaterMark: 100 } } }, async (req, r) => {
      seen.small = { hwm: r.writableHighWaterMark, first: r.write('x'.repeat(60)), second: r.write('y'.repeat(60)) };
      await waitFor(r, 'drain', 3000);
      seen.small.drained = true;
      r.end('!');
    });
    app.get('/default', (req, r) => {
      seen.def = { hwm: r.writableHighWaterMark, first: r.write('x'.repeat(60)), second: r.write('y'.repeat(60)) };
      r.end('!');
    });
  });
  const small = await request(port, { path: '/small' });
  const def = await request(port, { path: '/default' });
  assert.deepEqual(seen.small, { hwm: 100, first: true, second: false, drained: true });
  assert.deepEqual(seen.def, { hwm: 16384, first: true, second: true });
  assert.equal(small.text, 'x'.repeat(60) + 'y'.repeat(60) + '!');
  assert.equal(def.text, 'x'.repeat(60) + 'y'.repeat(60) + '!');
});

test('an invalid route streaming.writable.highWaterMark is a RangeError at registration', T, async () => {
  const { Server } = lib();
  const app = new Server();
  for (const bad of [0, -5, 1.5, '100', NaN]) {
    assert.throws(
      () => app.get(`/r${String(bad)}`, { streaming: { writable: { highWaterMark: bad } } }, () => {}),
      (err) => err instanceof RangeError && /streaming\.writable\.highWaterMark/.test(err.message),
      `highWaterMark ${String(bad)}`,
    );
  }
});

test('writing 2 MB in 16 KB pieces while honouring drain delivers every byte in order', T, async () => {
  const piece = (i) => Buffer.alloc(16384, 97 + (i % 26));
  const { port } = await startServer((app) =>
    app.get('/big', async (req, r) => {
      for (let i = 0; i < 128; i++) {
        if (!r.write(piece(i))) await waitFor(r, 'drain', 3000);
      }
      r.end();
    }),
  );
  const res = await request(port, { path: '/big' }, 8000);
  const expected = Buffer.concat(Array.from({ length: 128 }, (_, i) => piece(i)));
  assert.equal(res.body.length, expected.length);
  assert.ok(res.body.equals(expected));
});

test('readable.pipe(res) delivers every chunk, then ends the response (D8)', T, async () => {
  const chunks = Array.from({ length: 200 }, (_, i) => `chunk-${i};`.padEnd(1000, '.'));
  let rec;
  const { port } = await startServer((app) =>
    app.get('/pipe', (req, r) => {
      rec = recordEvents(req, r);
      let i = 0;
      const src = new Readable({
        read() {
          setImmediate(() => this.push(i < chunks.length ? chunks[i++] : null));
        },
      });
      src.pipe(r);
    }),
  );
  const res = await request(port, { path: '/pipe' }, 8000);
  assert.equal(res.complete, true);
  assert.equal(res.text, chunks.join(''));
  await until(() => rec.closed(), 2000, 'close');
  await sleep(20);
  assert.deepEqual(rec.names.filter((n) => n !== 'drain'), ['prepare', 'finish', 'close']);
  checkInvariants(assert, rec);
});

test('stream(readable) sends a chunked body, emits prepare, finish, close and resolves', T, async () => {
  let rec;
  let resolved = false;
  const { port } = await startServer((app) =>
    app.get('/s', async (req, r) => {
      rec = recordEvents(req, r);
      await r.stream(Readable.from(['one,', 'two,', 'three']));
      resolved = true;
    }),
  );
  const res = await request(port, { path: '/s' });
  assert.equal(res.header('transfer-encoding'), 'chunked');
  assert.equal(res.text, 'one,two,three');
  await until(() => resolved, 2000, 'the stream() promise');
  assert.deepEqual(rec.names.filter((n) => n !== 'drain'), ['prepare', 'finish', 'close']);
  checkInvariants(assert, rec);
});

test('stream(readable, total) sends Content-Length instead of chunked', T, async () => {
  const { port } = await startServer((app) =>
    app.get('/s', async (req, r) => {
      await r.stream(Readable.from([Buffer.from('abc'), Buffer.from('defg')]), 7);
    }),
  );
  const res = await request(port, { path: '/s' });
  assert.equal(res.header('content-length'), '7');
  assert.equal(res.header('transfer-encoding'), undefined);
  assert.equal(res.text, 'abcdefg');
});

test('close() drops the connection without a response and emits only close (D10)', T, async () => {
  let rec;
  let flags;
  const { port } = await startServer((app) =>
    app.get('/drop', (req, r) => {
      rec = recordEvents(req, r);
      r.close();
      flags = { completed: r.completed, aborted: r.aborted };
    }),
  );
  const client = await connect(port);
  client.write(buildRequest({ path: '/drop' }));
  await client.waitClosed(3000);
  assert.equal(client.length, 0, `no response bytes expected, got ${JSON.stringify(client.text)}`);
  await until(() => rec && rec.closed(), 2000, 'close');
  await sleep(30);
  assert.deepEqual(rec.names, ['close']);
  assert.deepEqual(flags, { completed: true, aborted: true });
  checkInvariants(assert, rec);
});

test('close() in the middle of a streamed response cuts the connection and emits only close', T, async () => {
  let rec;
  const { port } = await startServer((app) =>
    app.get('/cut', async (req, r) => {
      r.write('partial');
      await sleep(50);
      rec = recordEvents(req, r);
      r.close();
    }),
  );
  const client = await connect(port);
  client.write(buildRequest({ path: '/cut' }));
  await client.waitClosed(3000);
  assert.ok(client.text.includes('partial'));
  assert.ok(!client.text.endsWith('0\r\n\r\n'), 'the chunked body is not terminated');
  await until(() => rec && rec.closed(), 2000, 'close');
  assert.deepEqual(rec.names, ['close']);
});

test('atomic(fn) runs fn and its writes arrive in order', T, async () => {
  const { res } = await serve((req, r) => {
    const ret = r.atomic(() => {
      r.write('x');
      r.write('y');
    });
    r.end(ret === r ? 'z' : 'not-chainable');
  });
  assert.equal(res.text, 'xyz');
});

test('res.throw(err) calls the error handler; a non-Error is wrapped as ERR_CAUGHT_NON_ERROR_TYPE', T, async () => {
  const seen = [];
  const { port } = await startServer((app) => {
    app.set_error_handler((req, r, err) => {
      seen.push(err);
      r.status(500).send(err.message);
    });
    app.get('/e', (req, r) => r.throw(new Error('thrown-err')));
    app.get('/s', (req, r) => r.throw('plain string'));
  });
  assert.equal((await request(port, { path: '/e' })).text, 'thrown-err');
  const r2 = await request(port, { path: '/s' });
  assert.ok(seen[1] instanceof Error);
  assert.match(r2.text, /^ERR_CAUGHT_NON_ERROR_TYPE/);
});

test('one keep-alive connection serves several requests in sequence', T, async () => {
  let n = 0;
  const { port } = await startServer((app) => app.get('/k', (req, r) => r.send(String(++n))));
  const client = await connect(port);
  for (let i = 1; i <= 3; i++) {
    const start = client.length;
    client.write(buildRequest({ path: '/k' }));
    await client.waitUntil((c) => {
      const p = c.length > start && c.data.subarray(start);
      return p && p.toString('latin1').endsWith(`\r\n\r\n${i}`);
    }, 3000, `response ${i}`);
  }
  assert.equal(client.closed, false);
});

test('bodies larger than max_queued_bytes (5 MB send, 3 MB write, 2 MB SSE event) reach a reading client whole', { timeout: 20000 }, async () => {
  const reasons = {};
  const { port } = await startServer((app) => {
    app.get('/send', (req, r) => {
      r.on('close', () => (reasons.send = r.close_reason));
      r.send(Buffer.alloc(5 * 1024 * 1024, 'a'));
    });
    app.get('/write', (req, r) => {
      r.on('close', () => (reasons.write = r.close_reason));
      r.write(Buffer.alloc(3 * 1024 * 1024, 'b'));
      r.end();
    });
    app.get('/sse', (req, r) => {
      r.on('close', () => (reasons.sse = r.close_reason));
      r.sse.send('c'.repeat(2 * 1024 * 1024));
      r.sse.close();
    });
  });
  assert.equal((await request(port, { path: '/send' }, 8000)).body.length, 5 * 1024 * 1024);
  assert.equal((await request(port, { path: '/write' }, 8000)).body.length, 3 * 1024 * 1024);
  assert.equal((await request(port, { path: '/sse' }, 8000)).text, `data: ${'c'.repeat(2 * 1024 * 1024)}\n\n`);
  await until(() => Object.keys(reasons).length === 3, 2000, 'three closes');
  assert.deepEqual(reasons, { send: 'finished', write: 'finished', sse: 'finished' });
});

test('pipelined requests on one connection are answered in order', T, async () => {
  const { port } = await startServer((app) =>
    app.get('/p/:n', async (req, r) => {
      await sleep(req.path_parameters.n === '1' ? 40 : 0);
      r.send(`answer-${req.path_parameters.n}`);
    }),
  );
  const client = await connect(port);
  client.write(Buffer.concat([buildRequest({ path: '/p/1' }), buildRequest({ path: '/p/2' }), buildRequest({ path: '/p/3' })]));
  await client.waitUntil((c) => c.text.includes('answer-3'), 3000, 'three answers');
  const order = [...client.text.matchAll(/answer-(\d)/g)].map((m) => m[1]);
  assert.deepEqual(order, ['1', '2', '3']);
});

test('send(body, true) closes the connection after the response', T, async () => {
  const { port } = await startServer((app) => app.get('/bye', (req, r) => r.send('bye', true)));
  const client = await connect(port);
  client.write(buildRequest({ path: '/bye' }));
  const res = await client.response();
  assert.equal(res.text, 'bye');
  await client.waitClosed(2000);
});

test('write(chunk, callback) calls the callback once the chunk is handled', T, async () => {
  let called = 0;
  let args;
  const { port } = await startServer((app) =>
    app.get('/cb', (req, r) => {
      r.write('a', (...a) => {
        called++;
        args = a;
        r.end('b');
      });
    }),
  );
  const res = await request(port, { path: '/cb' });
  assert.equal(res.text, 'ab');
  assert.equal(called, 1);
  assert.deepEqual(args, [null], 'no error: null, as node:stream and Hyper-Express pass');
});
