// res.sse bytes on the wire (spec 6; D2–D6, D9, D12; retry and heartbeat extensions),
// checked with raw net sockets.
import { test, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import {
  startServer,
  request,
  connect,
  buildRequest,
  openSSE,
  cleanup,
  sleep,
  until,
  SSEParser,
  assertSSEHead as checkSSEHead,
  recordEvents,
  checkInvariants,
} from './helpers.mjs';

const assertSSEHead = (head, status) => checkSSEHead(assert, head, status);


afterEach(cleanup);

const T = { timeout: 10000 };

/**
 * Serves GET /sse with `script(res, req)` followed by `res.sse.close()` (unless
 * `keepOpen`), reads the whole stream with a raw socket and returns
 * `{ client, head, body, value }` where value is what `script` returned.
 */
async function sseCase(script, { keepOpen = false, options = {} } = {}) {
  let value;
  let done = false;
  const { port } = await startServer((app) =>
    app.get('/sse', async (req, res) => {
      try {
        value = await script(res, req);
      } finally {
        done = true;
      }
      if (!keepOpen) res.sse.close();
    }),
  options);
  const client = await openSSE(port, '/sse');
  await until(() => done, 3000, 'the SSE script');
  if (!keepOpen) await client.waitTerminated(3000);
  else await client.waitHead(3000);
  return { client, head: client.head, body: client.body, value, port };
}

/** A regex for `expected` where each `data:~` stands for `data:` or `data: `. */
function emptyDataPattern(expected) {
  const escaped = expected.replace(/[.*+?^${}()|[\]\\]/g, '\\$&').replace(/data:~/g, 'data: ?');
  return new RegExp('^' + escaped + '$');
}

test('the first send() sends status 200 and the four SSE headers, chunked', T, async () => {
  const { head } = await sseCase((res) => res.sse.send('d1'));
  assertSSEHead(head);
});

test('send() with no argument writes a bare line as the reference does (no event for the client), and sends the SSE headers when first', T, async () => {
  const { head, body, value } = await sseCase((res) => [res.sse.send(), res.sse.send('a'), res.sse.send()]);
  assertSSEHead(head);
  assert.deepEqual(value, [true, true, true]);
  assert.equal(body, '\ndata: a\n\n\n');
  const parser = new SSEParser();
  parser.push(body);
  assert.deepEqual(parser.events.map((e) => e.data), ['a'], 'only the real event is dispatched');
});

test('single-line output is byte-identical to the reference (spec 6.3)', T, async () => {
  const { body, value } = await sseCase((res) => [
    res.sse.send('d1'),
    res.sse.send('ev2', 'd2'),
    res.sse.send('id3', 'ev3', 'd3'),
    res.sse.send(11),
    res.sse.send({ a: 1 }),
    res.sse.comment('c1'),
    res.sse.open(),
  ]);
  assert.equal(
    body,
    'data: d1\n\n' +
      'event: ev2\ndata: d2\n\n' +
      'id: id3\nevent: ev3\ndata: d3\n\n' +
      'data: 11\n\n' +
      'data: [object Object]\n\n' +
      ': c1\n' +
      ': open\n',
  );
  assert.deepEqual(value, [true, true, true, true, true, true, true]);
});

test('sse.close() ends the chunked body with the last chunk and returns the Response', T, async () => {
  let returned;
  let response;
  const { port } = await startServer((app) =>
    app.get('/sse', (req, res) => {
      response = res;
      res.sse.send('x');
      returned = res.sse.close();
    }),
  );
  const client = await openSSE(port, '/sse');
  await client.waitTerminated();
  assert.equal(returned, response);
  assert.equal(client.body, 'data: x\n\n');
});

test('after sse.close() the keep-alive connection serves another request', T, async () => {
  const { port } = await startServer((app) => {
    app.get('/sse', (req, res) => {
      res.sse.send('x');
      res.sse.close();
    });
    app.get('/ping', (req, res) => res.send('pong'));
  });
  const client = await connect(port);
  client.write(buildRequest({ path: '/sse' }));
  await client.waitUntil((c) => c.text.endsWith('0\r\n\r\n'), 3000, 'the last chunk');
  const mark = client.length;
  client.write(buildRequest({ path: '/ping' }));
  await client.waitUntil((c) => c.data.subarray(mark).toString().endsWith('pong'), 3000, 'pong on the same connection');
  assert.equal(client.closed, false);
});

test('bytes a client sends during a stream are discarded, and after sse.close() the connection closes instead of serving them', T, async () => {
  let rec;
  let served = 0;
  let release;
  const go = new Promise((resolve) => (release = resolve));
  const { port } = await startServer((app) => {
    app.get('/sse', async (req, res) => {
      rec = recordEvents(req, res);
      res.sse.send('x');
      await go;
      res.sse.send('y');
      res.sse.close();
    });
    app.get('/ping', (req, res) => {
      served++;
      res.send('pong');
    });
  });
  const client = await connect(port);
  client.write(buildRequest({ path: '/sse' }));
  await client.waitUntil((c) => c.text.includes('data: x\n\n'), 3000, 'the first event');
  // A pipelined request on an event stream, then a lot more bytes: not an end of the stream,
  // discarded, and never served.
  client.write(buildRequest({ path: '/ping' }));
  client.write(Buffer.alloc(200 * 1024, 'x'));
  await sleep(100);
  assert.equal(rec.count('abort'), 0, 'bytes from the client do not abort the stream');
  release();
  await client.waitClosed(3000);
  assert.ok(client.text.endsWith('data: y\n\n\r\n0\r\n\r\n'), `ends with the last event and the last chunk: ${JSON.stringify(client.text.slice(-40))}`);
  assert.ok(!client.text.includes('pong'));
  assert.equal(served, 0);
  await until(() => rec.closed(), 2000, 'close');
  assert.deepEqual(rec.names.filter((n) => n !== 'drain' && n !== 'prepare'), ['finish', 'close']);
  checkInvariants(assert, rec);
});

test('a request pipelined in the same packet as the SSE request is not served, and the connection closes after the stream', T, async () => {
  let served = 0;
  const { port } = await startServer((app) => {
    app.get('/sse', (req, res) => {
      res.sse.send('a');
      setTimeout(() => res.sse.close(), 100);
    });
    app.get('/ping', (req, res) => {
      served++;
      res.send('pong');
    });
  });
  const client = await connect(port);
  client.write(Buffer.concat([buildRequest({ path: '/sse' }), buildRequest({ path: '/ping' })]));
  await client.waitClosed(3000);
  assert.ok(client.text.endsWith('data: a\n\n\r\n0\r\n\r\n'), JSON.stringify(client.text.slice(-40)));
  assert.ok(!client.text.includes('pong'));
  assert.equal(served, 0);
});

test('an HTTP/1.0 client gets the stream without chunked framing, ended by closing the connection', T, async () => {
  let rec;
  const { port } = await startServer((app) =>
    app.get('/sse', (req, res) => {
      rec = recordEvents(req, res);
      res.sse.send('a');
      res.sse.send('b\nc');
      setTimeout(() => res.sse.close(), 50);
    }));
  const client = await connect(port);
  client.write(Buffer.from('GET /sse HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n', 'latin1'));
  await client.waitClosed(3000);
  const text = client.text;
  const split = text.indexOf('\r\n\r\n');
  assert.ok(split > 0, 'a response head');
  const head = text.slice(0, split).toLowerCase();
  assert.match(head, /^http\/1\.[01] 200 ok/);
  assert.match(head, /content-type: text\/event-stream/);
  assert.doesNotMatch(head, /transfer-encoding/);
  // Ended by closing: `connection: close`, not the SSE headers' usual keep-alive.
  assert.match(head, /\r\nconnection: close(\r\n|$)/);
  assert.doesNotMatch(head, /keep-alive/);
  assert.equal(text.slice(split + 4), 'data: a\n\ndata: b\ndata: c\n\n');
  await until(() => rec.closed(), 2000, 'close');
  assert.deepEqual(rec.names.filter((n) => n !== 'drain' && n !== 'prepare'), ['finish', 'close']);
  checkInvariants(assert, rec);
});

test('multi-line data is split into one data: line per line, for LF, CRLF and CR (D2)', T, async () => {
  const { body } = await sseCase((res) => {
    res.sse.send('line1\nline2\r\nline3');
    res.sse.send('a\rb');
    res.sse.send('ev', 'x\ny');
  });
  assert.equal(body, 'data: line1\ndata: line2\ndata: line3\n\n' + 'data: a\ndata: b\n\n' + 'event: ev\ndata: x\ndata: y\n\n');
});

test('data keeps leading spaces, colons and unicode exactly', T, async () => {
  const { body, client } = await sseCase((res) => {
    res.sse.send(' lead');
    res.sse.send('k: v');
    res.sse.send('héllo ✓ 🚀');
  });
  assert.equal(body, 'data:  lead\n\n' + 'data: k: v\n\n' + 'data: héllo ✓ 🚀\n\n');
  assert.deepEqual(
    client.events.map((e) => e.data),
    [' lead', 'k: v', 'héllo ✓ 🚀'],
  );
});

test('data with trailing and empty lines round-trips through an SSE parser', T, async () => {
  const inputs = ['x\n', '\nx', 'a\n\nb', '\r\n', 'a\r\n\r\nb'];
  const { client } = await sseCase((res) => inputs.forEach((d) => res.sse.send(d)));
  const normalise = (s) => s.replace(/\r\n|\r/g, '\n');
  assert.deepEqual(
    client.events.map((e) => e.data),
    inputs.map(normalise),
  );
});

test('CR or LF in event or id, and NUL in id, throw a TypeError with code ERR_SSE_INVALID_FIELD, write nothing, and the stream stays open (D3)', T, async () => {
  const { body, value } = await sseCase((res) => {
    const attempts = [
      () => res.sse.send('evil\ndata: injected', 'd5'),
      () => res.sse.send('evil\r', 'd'),
      () => res.sse.send('7\nevent: x', 'ev', 'd6'),
      () => res.sse.send('7\r', 'ev', 'd'),
      () => res.sse.send('i\0d', 'ev', 'd'),
      () => res.sse.send('id', 'e\r\nv', 'd'),
    ];
    const errors = attempts.map((a) => {
      try {
        a();
        return null;
      } catch (e) {
        return { type: e instanceof TypeError, code: e.code, message: e.message };
      }
    });
    const activeAfter = res.sse.active;
    const okAfter = res.sse.send('ok');
    return { errors, activeAfter, okAfter };
  });
  for (const [i, e] of value.errors.entries()) {
    assert.ok(e, `attempt ${i} throws`);
    assert.equal(e.type, true, `attempt ${i} throws a TypeError`);
    assert.equal(e.code, 'ERR_SSE_INVALID_FIELD', `attempt ${i} code`);
    assert.ok(e.message.length > 0);
  }
  assert.equal(value.activeAfter, true);
  assert.equal(value.okAfter, true);
  assert.equal(body, 'data: ok\n\n');
});

test('a rejected first send sends no headers: the next valid call still starts the stream normally', T, async () => {
  const { head, body } = await sseCase((res) => {
    try {
      res.sse.send('bad\n', 'x');
    } catch {}
    res.status(202);
    res.sse.send('good');
  });
  assertSSEHead(head, 'HTTP/1.1 202 Accepted');
  assert.equal(body, 'data: good\n\n');
});

test('every line of a comment gets its own ": " prefix and a missing comment writes ":" alone (D4)', T, async () => {
  const { body } = await sseCase((res) => {
    res.sse.comment('c2\nc3');
    res.sse.comment('r1\r\nr2');
    res.sse.comment();
  });
  assert.equal(body, ': c2\n: c3\n' + ': r1\n: r2\n' + ':\n');
});

test('open() as the first call sends the SSE headers (D5)', T, async () => {
  const { head, body } = await sseCase((res) => res.sse.open());
  assertSSEHead(head);
  assert.equal(body, ': open\n');
});

test('comment() as the first call sends the SSE headers (D5)', T, async () => {
  const { head, body } = await sseCase((res) => res.sse.comment('hi'));
  assertSSEHead(head);
  assert.equal(body, ': hi\n');
});

test('overloads are decided by argument count and empty data is still an event (D6)', T, async () => {
  const { body, client } = await sseCase((res) => {
    res.sse.send('');
    res.sse.send('i8', 'e8', '');
    res.sse.send(null, 'e10', 'd10');
    res.sse.send(0);
    res.sse.send(undefined, 'e11', 'd11');
    res.sse.send(null, null, 'd12');
    res.sse.send('e13', null);
    res.sse.send(undefined, 'd14');
    res.sse.send(false);
    // An empty id or event is omitted like a missing one (Hyper-Express omits falsy fields; an
    // empty `id:` line would reset the client's last event id).
    res.sse.send('', '', 'd15');
    res.sse.send('', 'd16');
  });
  assert.match(
    body,
    emptyDataPattern(
      'data:~\n\n' +
        'id: i8\nevent: e8\ndata:~\n\n' +
        'event: e10\ndata: d10\n\n' +
        'data: 0\n\n' +
        'event: e11\ndata: d11\n\n' +
        'data: d12\n\n' +
        'event: e13\ndata:~\n\n' +
        'data: d14\n\n' +
        'data: false\n\n' +
        'data: d15\n\n' +
        'data: d16\n\n',
    ),
  );
  assert.deepEqual(
    client.events.map((e) => [e.event, e.data]),
    [
      ['message', ''],
      ['e8', ''],
      ['e10', 'd10'],
      ['message', '0'],
      ['e11', 'd11'],
      ['message', 'd12'],
      ['e13', ''],
      ['message', 'd14'],
      ['message', 'false'],
      ['message', 'd15'],
      ['message', 'd16'],
    ],
  );
});

test('SSE sets its headers over user ones: one content-type, user status and other headers kept (D9)', T, async () => {
  const { head } = await sseCase((res) => {
    res.status(201);
    res.header('x-a', '1');
    res.header('content-type', 'text/plain');
    res.header('cache-control', 'max-age=60');
    res.sse.send('x');
  });
  assertSSEHead(head, 'HTTP/1.1 201 Created');
  assert.deepEqual(head.headerAll('x-a'), ['1']);
  const names = head.headers.map(([n]) => n);
  assert.ok(names.indexOf('x-a') < names.indexOf('x-accel-buffering'), `user headers come first: ${names}`);
});

test('after sse.close() send, comment and open return false, close() is a no-op returning the Response, active is false (D12)', T, async () => {
  const { value, client } = await sseCase(
    (res) => {
      res.sse.send('only');
      const activeBefore = res.sse.active;
      const closeRet = res.sse.close();
      return {
        activeBefore,
        closeIsRes: closeRet === res,
        send: res.sse.send('late'),
        send3: res.sse.send('1', 'e', 'late'),
        comment: res.sse.comment('late'),
        open: res.sse.open(),
        again: res.sse.close() === res,
        active: res.sse.active,
        write: res.write('late'),
      };
    },
    { keepOpen: true },
  );
  await client.waitTerminated();
  await sleep(50);
  assert.deepEqual(value, {
    activeBefore: true,
    closeIsRes: true,
    send: false,
    send3: false,
    comment: false,
    open: false,
    again: true,
    active: false,
    write: false,
  });
  assert.equal(client.body, 'data: only\n\n');
  assert.equal(client.afterEnd.length, 0, 'nothing after the last chunk');
});

test('res.sse is one object per response, keeps arbitrary properties, and writes nothing until used', T, async () => {
  let seen;
  const { port } = await startServer((app) => {
    app.get('/plain', (req, res) => {
      const a = res.sse;
      a.id = 'pool-key';
      a.custom = { n: 1 };
      seen = { same: res.sse === a, id: res.sse.id, custom: res.sse.custom, type: typeof a };
      res.send('plain');
    });
  });
  const r = await request(port, { path: '/plain' });
  assert.deepEqual(seen, { same: true, id: 'pool-key', custom: { n: 1 }, type: 'object' });
  assert.equal(r.header('content-length'), '5');
  assert.equal(r.header('content-type'), undefined);
  assert.equal(r.text, 'plain');
});

test('res.sse is undefined for POST, also through any(), and an object for GET through any()', T, async () => {
  const { port } = await startServer((app) => {
    app.any('/any', (req, res) => res.send(typeof res.sse));
    app.post('/post', (req, res) => res.send(typeof res.sse));
  });
  assert.equal((await request(port, { method: 'POST', path: '/post' })).text, 'undefined');
  assert.equal((await request(port, { method: 'POST', path: '/any' })).text, 'undefined');
  assert.equal((await request(port, { method: 'GET', path: '/any' })).text, 'object');
});

test('sse.active is true while the stream is open and false after it ended', T, async () => {
  const states = [];
  await sseCase((res) => {
    states.push(res.sse.active);
    res.sse.send('x');
    states.push(res.sse.active);
  });
  assert.deepEqual(states, [true, true]);
});

test('sse.retry(ms) writes a retry field; a value that is not a non-negative integer throws and writes nothing', T, async () => {
  const codes = [];
  const { body, client } = await sseCase((res) => {
    for (const bad of [-1, 1.5, '10', NaN]) {
      try {
        res.sse.retry(bad);
      } catch (err) {
        if (err instanceof TypeError) codes.push(err.code);
      }
    }
    res.sse.retry(3000);
    res.sse.send('after-retry');
  });
  assert.deepEqual(codes, Array(4).fill('ERR_INVALID_ARG_VALUE'));
  assert.equal(body, 'retry: 3000\n\n' + 'data: after-retry\n\n');
  assert.deepEqual(client.parser.retry, ['3000']);
});

test('an idle stream gets ":" heartbeat comments at the sse_heartbeat interval', T, async () => {
  const { client } = await sseCase((res) => res.sse.open(), { keepOpen: true, options: { sse_heartbeat: 200 } });
  const t0 = Date.now();
  await client.waitBody((b) => b.startsWith(': open\n:\n'), 2000, 'a heartbeat');
  const first = Date.now() - t0;
  await client.waitBody((b) => b.startsWith(': open\n:\n:\n'), 2000, 'a second heartbeat');
  assert.ok(first < 1000, `first heartbeat after ${first} ms`);
  assert.match(client.body, /^: open\n(:\n)+$/);
});

test('sse_heartbeat 0 turns heartbeats off', T, async () => {
  const { client } = await sseCase((res) => res.sse.open(), { keepOpen: true, options: { sse_heartbeat: 0 } });
  await client.waitBody((b) => b.length > 0);
  await sleep(700);
  assert.equal(client.body, ': open\n');
});

test('heartbeats do not interrupt an event: every event parses intact while heartbeats run', T, async () => {
  let sse;
  const { port } = await startServer((app) => app.get('/sse', (req, res) => {
    sse = res.sse;
    res.sse.open();
  }), { sse_heartbeat: 20 });
  const client = await openSSE(port, '/sse');
  await until(() => sse, 2000, 'handler');
  for (let i = 0; i < 20; i++) {
    sse.send('ev', `line-${i}\nsecond-${i}`);
    await sleep(i % 4 === 0 ? 60 : 3);
  }
  await client.waitEvents(20);
  assert.deepEqual(
    client.events.map((e) => e.data),
    Array.from({ length: 20 }, (_, i) => `line-${i}\nsecond-${i}`),
  );
  const reparsed = new SSEParser();
  reparsed.push(client.body);
  assert.ok(reparsed.comments.length >= 1, 'heartbeats were sent in between');
});

test('real writes reset the heartbeat timer: a stream written every 50 ms gets no heartbeat until it goes idle', { timeout: 10000 }, async () => {
  let sse;
  const { port } = await startServer((app) => app.get('/sse', (req, res) => {
    sse = res.sse;
    res.sse.send('first');
  }), { sse_heartbeat: 400 });
  const client = await openSSE(port, '/sse');
  await client.waitEvents(1);
  for (let i = 0; i < 24; i++) {
    await sleep(50);
    sse.send(`e${i}`);
  }
  await client.waitEvents(25);
  assert.equal(client.parser.comments.length, 0, 'no heartbeat while events flow');
  await client.waitBody((b) => b.endsWith(':\n'), 2000, 'a heartbeat once idle');
});
