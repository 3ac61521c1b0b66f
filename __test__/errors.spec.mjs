// Bad input gets a clear answer and the server stays up (issue 2, Must show 4).
import { test, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import {
  startServer,
  request,
  connect,
  buildRequest,
  cleanup,
  sleep,
  until,
  recordEvents,
  checkInvariants,
  parseResponse,
  quietConsoleError,
  lib,
} from './helpers.mjs';

const parseResponseSafe = (buf) => {
  try {
    return parseResponse(buf);
  } catch {
    return null;
  }
};

afterEach(cleanup);

const T = { timeout: 10000 };

async function withPing(setup, options) {
  return startServer((app) => {
    app.get('/ping', (req, res) => res.send('pong'));
    if (setup) setup(app);
  }, options);
}

/**
 * A server with /ping whose error handler records `pick(err)` of each error in `seen` and
 * answers 500 with `body`; `setup(app)` adds the routes.
 */
async function withErrorLog(setup, pick = (err) => err.message, body = 'handled') {
  const seen = [];
  const started = await withPing((app) => {
    app.set_error_handler((req, res, err) => {
      seen.push(pick(err));
      res.status(500).send(body);
    });
    setup(app);
  });
  return { ...started, seen };
}

async function assertUp(port) {
  const r = await request(port, { path: '/ping' });
  assert.equal(r.text, 'pong', 'the server still answers');
}

async function rawExchange(port, bytes) {
  const client = await connect(port);
  client.write(bytes);
  return client.response(3000);
}

test('a request with a malformed header line gets 400 and the server stays up', T, async () => {
  const { port } = await withPing();
  const r = await rawExchange(port, 'GET /ping HTTP/1.1\r\nHost: x\r\nthis is not a header\r\n\r\n');
  assert.equal(r.status, 400);
  await assertUp(port);
});

test('bytes that are not HTTP at all get 400 and the server stays up', T, async () => {
  const { port } = await withPing();
  const r = await rawExchange(port, 'HELLO THERE\x01\x02 GARBAGE\r\n\r\n');
  assert.equal(r.status, 400);
  await assertUp(port);
});

test('a request head over the default 16 KiB limit gets 431 and the server stays up', T, async () => {
  const { port } = await withPing();
  const r = await rawExchange(port, `GET /ping HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(17000)}\r\n\r\n`);
  assert.equal(r.status, 431);
  await assertUp(port);
});

test('max_header_size sets the head limit', T, async () => {
  const { port } = await withPing(null, { max_header_size: 8192 });
  const ok = await rawExchange(port, `GET /ping HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(6000)}\r\n\r\n`);
  assert.equal(ok.status, 200);
  const big = await rawExchange(port, `GET /ping HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(9000)}\r\n\r\n`);
  assert.equal(big.status, 431);
  await assertUp(port);
});

test('server options of the wrong type or out of range are rejected by the constructor with a clear error', () => {
  const { Server } = lib();
  const rejects = (options, type, code, re) =>
    assert.throws(
      () => new Server(options),
      (err) => err instanceof type && err.code === code && re.test(err.message),
      JSON.stringify(options),
    );
  rejects({ max_body_length: '100' }, TypeError, 'ERR_INVALID_ARG_TYPE', /max_body_length must be a number, got string/);
  rejects({ header_timeout: null }, TypeError, 'ERR_INVALID_ARG_TYPE', /header_timeout must be a number, got null/);
  rejects({ worker_threads: 1e6 }, RangeError, 'ERR_OUT_OF_RANGE', /worker_threads must be between 1 and 64/);
  rejects({ worker_threads: 0 }, RangeError, 'ERR_OUT_OF_RANGE', /worker_threads/);
  rejects({ max_header_size: 10 }, RangeError, 'ERR_OUT_OF_RANGE', /max_header_size must be between 1024 and 1048576/);
  rejects({ sse_heartbeat: -1 }, RangeError, 'ERR_OUT_OF_RANGE', /sse_heartbeat/);
  rejects({ write_timeout: NaN }, RangeError, 'ERR_OUT_OF_RANGE', /write_timeout/);
  rejects({ write_timeout: 2 ** 31 }, RangeError, 'ERR_OUT_OF_RANGE', /write_timeout must be between 0 and 2147483647/);
  rejects({ max_queued_bytes: 0 }, RangeError, 'ERR_OUT_OF_RANGE', /max_queued_bytes/);
  rejects({ streaming: { writable: { highWaterMark: 0 } } }, RangeError, 'ERR_OUT_OF_RANGE', /streaming\.writable\.highWaterMark/);
  // Valid values, fractions floored, and 0 meaning off where documented.
  new Server({ worker_threads: 2, max_header_size: 1024, sse_heartbeat: 0, write_timeout: 0, header_timeout: 1500.7 });
});

test('CR or LF in a header name or value set from JS throws a TypeError and nothing of it is sent', T, async () => {
  const errors = [];
  const { port } = await withPing((app) =>
    app.get('/h', (req, res) => {
      const attempts = [
        () => res.header('x-bad', 'a\r\nx-injected: 1'),
        () => res.header('x-bad', 'a\nx-injected: 2'),
        () => res.header('x-bad', 'a\rx-injected: 3'),
        () => res.header('x-bad\r\nx-injected', 'v'),
        () => res.header('x-bad\nx-injected', 'v'),
        () => res.header('x-bad', ['fine', 'b\r\nx-injected: 4']),
      ];
      for (const attempt of attempts) {
        try {
          attempt();
          errors.push(null);
        } catch (e) {
          errors.push(e);
        }
      }
      res.send('ok');
    }),
  );
  const r = await request(port, { path: '/h' });
  assert.equal(r.status, 200);
  assert.equal(r.text, 'ok');
  assert.equal(errors.length, 6);
  errors.forEach((e, i) => assert.ok(e instanceof TypeError, `attempt ${i} throws a TypeError, got ${e}`));
  assert.deepEqual(r.headerAll('x-injected'), []);
  assert.ok(!/x-injected/i.test(r.raw), r.raw);
  assert.ok(r.headerAll('x-bad').every((v) => !/[\r\n]/.test(v)));
  await assertUp(port);
});

test('an uncaught TypeError from a bad header goes to the error handler and the bad header is not sent', T, async () => {
  quietConsoleError();
  const { port } = await withPing((app) => app.get('/h', (req, res) => res.header('x-evil', 'a\r\nx-injected: 1').send('never')));
  const r = await request(port, { path: '/h' });
  assert.equal(r.status, 500);
  assert.equal(r.text, 'HyperExpress: Uncaught Exception Occured');
  assert.ok(!/x-injected|x-evil/i.test(r.raw), r.raw);
});

test('CR or LF in a status message never produces an injected header', T, async () => {
  quietConsoleError();
  const { port } = await withPing((app) =>
    app.get('/s', (req, res) => {
      try {
        res.status(200, 'OK\r\nx-injected: 1');
      } catch {
        // a TypeError is an acceptable answer too
      }
      res.send('body');
    }),
  );
  const r = await request(port, { path: '/s' });
  assert.ok(!/x-injected/i.test(r.raw), r.raw);
  await assertUp(port);
});

test('a synchronous throw in a handler gets the default 500 with the reference body', T, async () => {
  const printed = quietConsoleError();
  const { port } = await withPing((app) =>
    app.get('/boom', () => {
      throw new Error('handler-boom');
    }),
  );
  const r = await request(port, { path: '/boom' });
  assert.equal(r.statusLine, 'HTTP/1.1 500 Internal Server Error');
  assert.equal(r.text, 'HyperExpress: Uncaught Exception Occured');
  assert.ok(printed.length >= 1, 'the error is printed with console.error');
  await assertUp(port);
});

test('a rejected handler promise goes to the custom error handler with the rejection', T, async () => {
  let seen;
  const { port } = await withPing((app) => {
    app.set_error_handler((req, res, err) => {
      seen = err;
      res.status(503).send('custom:' + err.message);
    });
    app.get('/rej', async () => {
      await sleep(5);
      throw new Error('async-boom');
    });
  });
  const r = await request(port, { path: '/rej' });
  assert.equal(r.status, 503);
  assert.equal(r.text, 'custom:async-boom');
  assert.ok(seen instanceof Error);
  await assertUp(port);
});

test('app.handlers exposes the installed handlers', T, async () => {
  const onError = (req, res) => res.send('e');
  const { app } = await withPing((a) => a.set_error_handler(onError));
  assert.equal(app.handlers.on_error, onError);
});

test('a throw inside a finish listener goes to the error handler and the server stays up', T, async () => {
  const { port, seen } = await withErrorLog((app) => {
    app.get('/l', (req, res) => {
      res.on('finish', () => {
        throw new Error('listener-boom');
      });
      res.send('sent');
    });
  });
  const r = await request(port, { path: '/l' });
  assert.equal(r.text, 'sent', 'the response was already sent');
  await until(() => seen.length > 0, 2000, 'the error handler');
  assert.deepEqual(seen, ['listener-boom']);
  await assertUp(port);
});

test('a throw inside an abort or close listener run for a client disconnect goes to the error handler, never crashes', T, async () => {
  let rec;
  const { port, seen } = await withErrorLog((app) => {
    app.get('/wait', (req, res) => {
      rec = recordEvents(req, res);
      res.on('abort', () => {
        throw new Error('abort-listener-boom');
      });
      res.on('close', () => {
        throw new Error('close-listener-boom');
      });
    });
  });
  const client = await connect(port);
  client.write(buildRequest({ path: '/wait' }));
  await until(() => rec, 2000, 'the handler');
  client.socket.destroy();
  await until(() => seen.length >= 2, 2000, () => `two errors handled, saw ${JSON.stringify(seen)}`);
  assert.deepEqual(seen.sort(), ['abort-listener-boom', 'close-listener-boom']);
  assert.equal(rec.count('close'), 1);
  assert.equal(rec.count('abort'), 1);
  await assertUp(port);
});

test('many malformed requests in a row leave the server serving normally', T, async () => {
  const { port } = await withPing();
  for (let i = 0; i < 20; i++) {
    const c = await connect(port);
    c.write(i % 2 ? '\x00\x01\x02\x03\r\n\r\n' : 'GET / HTTP/9.9\r\n\r\n');
    await c.waitClosed(3000).catch(() => c.destroy());
  }
  await assertUp(port);
});

test('a client that leaves in the middle of its request body never reaches the handler and the server stays up', T, async () => {
  let calls = 0;
  const { port } = await withPing((app) =>
    app.post('/upload', async (req, res) => {
      calls++;
      res.send(String((await req.buffer()).length));
    }),
  );
  const client = await connect(port);
  client.write('POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n' + 'x'.repeat(10));
  await sleep(50);
  client.socket.destroy();
  const chunked = await connect(port);
  chunked.write('POST /upload HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n');
  await sleep(50);
  chunked.socket.resetAndDestroy();
  await sleep(100);
  assert.equal(calls, 0);
  await assertUp(port);
});

test('an error handler that throws does not crash the server and the request is not left hanging', T, async () => {
  quietConsoleError();
  const { port } = await withPing((app) => {
    app.set_error_handler(() => {
      throw new Error('error-handler-boom');
    });
    app.get('/b', () => {
      throw new Error('handler-boom');
    });
  });
  const client = await connect(port);
  client.write(buildRequest({ path: '/b' }));
  await client.waitUntil((c) => c.closed || (parseResponseSafe(c.data) || {}).complete, 3000, 'a response or a close');
  await assertUp(port);
});

test('a throw in the not-found handler goes to the error handler', T, async () => {
  const seen = [];
  const { port } = await withPing((app) => {
    app.set_not_found_handler(() => {
      throw new Error('nf-boom');
    });
    app.set_error_handler((req, res, err) => {
      seen.push(err.message);
      res.status(500).send('E:' + err.message);
    });
  });
  const r = await request(port, { path: '/missing' });
  assert.equal(r.text, 'E:nf-boom');
  assert.deepEqual(seen, ['nf-boom']);
});

test('a readable that errors in the middle of res.stream() ends the response with exactly one close and the server stays up', T, async () => {
  quietConsoleError();
  let rec;
  const { port } = await withPing((app) => {
    app.set_error_handler((req, res) => res.close());
    app.get('/s', async (req, res) => {
      rec = recordEvents(req, res);
      const src = new Readable({ read() {} });
      src.push('first-chunk;');
      setTimeout(() => src.destroy(new Error('source failed')), 30);
      await res.stream(src).catch(() => {});
    });
  });
  const client = await connect(port);
  client.write(buildRequest({ path: '/s' }));
  await until(() => rec && rec.closed(), 3000, 'close after the source failed');
  await sleep(50);
  assert.equal(rec.count('close'), 1);
  assert.equal(rec.count('finish'), 0, 'a failed stream is not a successful completion');
  checkInvariants(assert, rec);
  await client.waitUntil((c) => c.closed || c.text.endsWith('0\r\n\r\n'), 3000, 'the client to see the end');
  await assertUp(port);
});

// The plain Node-API functions behind send(), write() and sse.send() (src/fast.rs): wrong
// argument types are a TypeError, a bad header an Error, an unknown id a plain result; nothing
// crashes and nothing is sent.
test('the native resEnd/resWrite/sseSend functions reject bad arguments with clear errors', T, async () => {
  const { port, app } = await withPing();
  const fast = app._fast;
  const typeError = (fn, re) =>
    assert.throws(fn, (err) => err instanceof TypeError && err.code === 'ERR_INVALID_ARG_TYPE' && re.test(err.message));
  typeError(() => fast.resEnd('1', 200, null, null, null), /id must be a number/);
  typeError(() => fast.resEnd(1, undefined, null, null, null), /status must be a number/);
  typeError(() => fast.resWrite(1n, 'x'), /id must be a number/);
  typeError(() => fast.sseSend(undefined, null, null, 'x'), /id must be a number/);
  typeError(() => fast.resEnd(1, 200, 5, null, null), /reason must be a string/);
  typeError(() => fast.resEnd(1, 200, null, ['a', 1], null), /headers must be an array of strings/);
  typeError(() => fast.resEnd(1, 200, null, 'x', null), /headers must be an array of strings/);
  typeError(() => fast.resEnd(1, 200, null, null, {}), /body must be a Buffer or a string/);
  typeError(() => fast.resWrite(1, 42), /chunk must be a Buffer or a string/);
  typeError(() => fast.resWrite(1, [1, 2]), /chunk must be a Buffer or a string/);
  typeError(() => fast.sseSend(1, 7, null, 'x'), /id must be a string/);
  typeError(() => fast.sseSend(1, null, null, null), /data must be a string/);
  assert.throws(
    () => fast.resEnd(1, 200, null, ['bad name', 'v'], null),
    (err) => !(err instanceof TypeError) && err instanceof Error && err.code === 'InvalidArg' && /header/i.test(err.message),
  );
  // Unknown ids (never issued): nothing to answer.
  assert.equal(fast.resEnd(2 ** 40, 200, null, null, 'x'), false);
  assert.equal(fast.resWrite(2 ** 40, 'x'), -1);
  assert.equal(fast.resWrite(2 ** 40, Buffer.from('x')), -1);
  assert.equal(fast.sseSend(2 ** 40, null, null, 'x'), -1);
  // Invalid SSE fields are reported before the id is looked up (nothing written either way).
  assert.equal(fast.sseSend(2 ** 40, null, 'a\nb', 'x'), -2);
  assert.equal(fast.sseSend(2 ** 40, 'a\0b', null, 'x'), -3);
  assert.throws(() => app._native.nativeFn('nope'), /no native function nope/);
  await assertUp(port);
});

test('values that are not Errors (a Symbol, a null-prototype object), thrown or rejected, and a thenable whose then throws, reach the error handler', T, async () => {
  const { port, seen } = await withErrorLog((app) => {
    app.get('/sym', () => {
      throw Symbol('odd');
    });
    app.get('/nullproto', async () => {
      throw Object.create(null);
    });
    app.get('/mw', { middlewares: [async () => Promise.reject(Symbol('mw'))] }, (req, res) => res.send('unreached'));
    app.get('/thenable', () => ({
      then() {
        throw new Error('then-threw');
      },
    }));
    app.get('/getter', () => ({
      get then() {
        throw new Error('getter-threw');
      },
    }));
  });
  for (const path of ['/sym', '/nullproto', '/mw', '/thenable', '/getter']) {
    const r = await request(port, { path });
    assert.equal(r.status, 500, path);
    assert.equal(r.text, 'handled', path);
  }
  assert.deepEqual(seen, [
    'ERR_CAUGHT_NON_ERROR_TYPE: Symbol(odd)',
    'ERR_CAUGHT_NON_ERROR_TYPE: [object Object]',
    'ERR_CAUGHT_NON_ERROR_TYPE: Symbol(mw)',
    'then-threw',
    'getter-threw',
  ]);
  await assertUp(port);
});

test('req.destroy(error) without an error listener stops reading and does not crash; the response still goes out', T, async () => {
  const { port } = await withPing((app) =>
    app.post('/stop', (req, res) => {
      req.destroy(new Error('enough'));
      res.send(String(req.destroyed));
    }),
  );
  const r = await request(port, { method: 'POST', path: '/stop', body: 'abc' });
  assert.equal(r.text, 'true');
  await assertUp(port);
});

test('a response whose headers the native side refuses (too many) is not left hanging: the error handler answers without them', T, async () => {
  const printed = quietConsoleError();
  const { port } = await withPing((app) =>
    app.get('/many', (req, res) => {
      for (let i = 0; i < 40000; i++) res.header(`x-h${i}`, 'v');
      res.send('unreached');
    }),
  );
  const r = await request(port, { path: '/many' });
  assert.equal(r.status, 500);
  assert.ok(printed.some(([e]) => e && e.code === 'ERR_INVALID_ARG_VALUE'), 'the refusal carries a Node-style code');
  assert.equal(r.header('x-h0'), undefined);
  assert.ok(printed.some((line) => /too many response headers/.test(line)), printed.join('\n'));
  await assertUp(port);
});

test('a header name longer than 65535 characters is a RangeError with a short message, and nothing changes', T, async () => {
  let caught;
  const { port } = await withPing((app) =>
    app.get('/long', (req, res) => {
      try {
        res.header('x'.repeat(70000), 'v');
      } catch (err) {
        caught = err;
      }
      res.send('ok');
    }),
  );
  assert.equal((await request(port, { path: '/long' })).text, 'ok');
  assert.equal(caught.code, 'ERR_OUT_OF_RANGE');
  assert.ok(caught.message.length < 300, `message of ${caught.message.length} characters`);
});

test('stream(readable, total): a bad total is a RangeError for the error handler, and a send() before the first chunk announces its own length', T, async () => {
  const { port, seen: codes } = await withErrorLog((app) => {
    app.get('/bad', (req, res) => res.stream(Readable.from(['abc']), Infinity));
    app.get('/frac', (req, res) => res.stream(Readable.from(['abc']), 2.5));
    app.get('/preempt', (req, res) => {
      res.stream(new Readable({ read() {} }), 6);
      res.send('END');
    });
  }, (err) => err.code, 'bad total');
  assert.equal((await request(port, { path: '/bad' })).text, 'bad total');
  assert.equal((await request(port, { path: '/frac' })).text, 'bad total');
  assert.deepEqual(codes, ['ERR_OUT_OF_RANGE', 'ERR_OUT_OF_RANGE']);
  // Keep-alive: the next response on the connection must parse after it.
  const c = await connect(port);
  c.write(buildRequest({ path: '/preempt' }));
  c.write(buildRequest({ path: '/ping' }));
  await until(() => c.text.includes('pong'), 3000, 'both responses');
  assert.match(c.text, /^HTTP\/1\.1 200 OK\r\n[^]*content-length: 3\r\n[^]*\r\n\r\nENDHTTP\/1\.1 200 OK\r\n/i);
});

test('shutdown(timeout_ms): Infinity waits for in-flight responses; a value that is not a non-negative number rejects before anything stops', T, async () => {
  const { Server } = lib();
  const app = new Server({ auto_close: false });
  app.get('/slow', (req, res) => setTimeout(() => res.send('late answer'), 300));
  const { port } = await app.listen(0, '127.0.0.1');
  await assert.rejects(app.shutdown('soon'), { code: 'ERR_INVALID_ARG_VALUE' });
  await assert.rejects(app.shutdown(-1), { code: 'ERR_INVALID_ARG_VALUE' });
  assert.equal(app.socket !== null, true, 'still listening after a rejected shutdown()');
  const pending = request(port, { path: '/slow' });
  await sleep(50);
  await app.shutdown(Infinity);
  assert.equal((await pending).text, 'late answer');
});

test('errors of hyper-sse itself carry a code: constructor and handler setters, Channel options, route patterns (checked where registered), listen ports, drain()', T, async () => {
  const { Server, Channel } = lib();
  assert.throws(() => new Server(null), { code: 'ERR_INVALID_ARG_TYPE' });
  const app = new Server({ auto_close: false });
  assert.throws(() => app.set_error_handler(1), { code: 'ERR_INVALID_ARG_TYPE' });
  assert.throws(() => app.set_not_found_handler('x'), { code: 'ERR_INVALID_ARG_TYPE' });
  assert.throws(() => new Channel({ history: 2 ** 32 }), { code: 'ERR_OUT_OF_RANGE' });
  assert.throws(() => new Channel(null), { code: 'ERR_INVALID_ARG_TYPE' });
  for (const pattern of ['', 'noslash', '/a/*/b']) {
    assert.throws(() => app.get(pattern, () => {}), { code: 'ERR_INVALID_ARG_VALUE' }, JSON.stringify(pattern));
  }
  app.get('/ok/*', () => {});
  let headersError;
  const { port: p2 } = await startServer((a) =>
    a.get('/h', (req, res) => {
      try {
        res.writeHeaders('abc');
      } catch (err) {
        headersError = err.code;
      }
      res.send('ok');
    }),
  );
  const h = await request(p2, { path: '/h' });
  assert.equal(h.text, 'ok');
  assert.equal(h.header('0'), undefined);
  assert.equal(headersError, 'ERR_INVALID_ARG_TYPE');
  for (const port of [true, 123n, [80], '80x']) {
    await assert.rejects(app.listen(port, '127.0.0.1'), /invalid port/);
  }
  let drainError;
  const { port } = await startServer((a) =>
    a.get('/d', (req, res) => {
      try {
        res.drain(123);
      } catch (err) {
        drainError = err.code;
      }
      res.send('ok');
    }),
  );
  assert.equal((await request(port, { path: '/d' })).text, 'ok');
  assert.equal(drainError, 'ERR_INVALID_ARG_TYPE');
});
