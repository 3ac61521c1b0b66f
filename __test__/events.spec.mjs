// Response events (spec 5.4, 7.5, 7.6, the invariants of section 8; D7, D12) and
// disconnects of normal (non-SSE) requests.
import { test, afterEach } from 'node:test';
import assert from 'node:assert/strict';
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
} from './helpers.mjs';

afterEach(cleanup);

const T = { timeout: 10000 };

const pick = (e) => ({ name: e.name, completed: e.completed, initiated: e.initiated });

test('send() emits prepare, finish and close synchronously, with the documented flags inside each listener', T, async () => {
  let rec;
  let namesRightAfterSend;
  const { port } = await startServer((app) =>
    app.get('/x', (req, res) => {
      rec = recordEvents(req, res);
      res.send('hello');
      namesRightAfterSend = rec.names.slice();
    }),
  );
  const r = await request(port, { path: '/x' });
  assert.equal(r.text, 'hello');
  assert.deepEqual(namesRightAfterSend, ['prepare', 'finish', 'close']);
  assert.deepEqual(rec.list.map(pick), [
    { name: 'prepare', completed: false, initiated: false },
    { name: 'finish', completed: false, initiated: true },
    { name: 'close', completed: true, initiated: true },
  ]);
  checkInvariants(assert, rec);
});

test('send() 20 ms after the handler returned emits the same three events', T, async () => {
  let rec;
  const { port } = await startServer((app) =>
    app.get('/x', (req, res) => {
      rec = recordEvents(req, res);
      setTimeout(() => res.send('later'), 20);
    }),
  );
  assert.equal((await request(port, { path: '/x' })).text, 'later');
  assert.deepEqual(rec.names, ['prepare', 'finish', 'close']);
  checkInvariants(assert, rec);
});

test('a header set inside a prepare listener is still sent', T, async () => {
  const { port } = await startServer((app) =>
    app.get('/x', (req, res) => {
      res.on('prepare', () => res.header('x-from-prepare', 'yes'));
      res.send('ok');
    }),
  );
  const r = await request(port, { path: '/x' });
  assert.equal(r.header('x-from-prepare'), 'yes');
});

// In Hyper-Express a throw in a prepare listener leaves send() before anything is written, and
// the error handler's answer is the response. Checked for an error handler that answers at once,
// one that answers later, and for a streamed start (write()).
test('a prepare listener that throws: the error handler answers, the original body is never sent', T, async () => {
  const { port } = await startServer((app) => {
    app.get('/sync', (req, res) => {
      res.on('prepare', () => {
        throw new Error('prepare failed');
      });
      res.json({ secret: 'user data' });
    });
    app.get('/later', (req, res) => {
      res.on('prepare', () => {
        throw new Error('later');
      });
      res.send('original');
    });
    app.get('/write', (req, res) => {
      res.on('prepare', () => {
        throw new Error('prepare failed');
      });
      assert.equal(res.write('original chunk'), false);
      res.end('original end');
    });
    app.set_error_handler((req, res, err) => {
      if (err.message === 'later') setTimeout(() => res.status(503).send('handled later'), 20);
      else res.status(500).send(`handled: ${err.message}`);
    });
  });
  const sync = await request(port, { path: '/sync' });
  assert.equal(sync.status, 500);
  assert.equal(sync.text, 'handled: prepare failed');
  assert.deepEqual(sync.headerAll('content-type'), ['application/json; charset=utf-8'], 'one content-type, the one set before');
  const later = await request(port, { path: '/later' });
  assert.equal(later.status, 503);
  assert.equal(later.text, 'handled later');
  const write = await request(port, { path: '/write' });
  assert.equal(write.status, 500);
  assert.equal(write.text, 'handled: prepare failed');
});

test('a prepare listener that starts the body with write(): send() then ends that stream with its body', T, async () => {
  let rec;
  const { port } = await startServer((app) =>
    app.get('/x', (req, res) => {
      rec = recordEvents(req, res);
      res.on('prepare', () => res.write('pre;'));
      res.send('body');
    }),
  );
  const r = await request(port, { path: '/x' });
  assert.equal(r.status, 200);
  assert.equal(r.text, 'pre;body');
  await until(() => rec.closed(), 2000, 'close');
  assert.deepEqual(rec.names, ['prepare', 'finish', 'close']);
  assert.equal(rec.res.close_reason, 'finished');
});

test('res.close() inside a finish listener changes nothing: close follows once, with close_reason finished', T, async () => {
  let rec;
  const { port } = await startServer((app) =>
    app.get('/x', (req, res) => {
      rec = recordEvents(req, res);
      res.on('finish', () => res.close());
      res.send('delivered');
    }),
  );
  const r = await request(port, { path: '/x' });
  assert.equal(r.text, 'delivered');
  await until(() => rec.closed(), 2000, 'close');
  await sleep(30);
  assert.deepEqual(rec.names, ['prepare', 'finish', 'close']);
  assert.equal(rec.res.close_reason, 'finished');
  assert.equal(rec.res.writableFinished, true);
});

test('write, write, end emits prepare, finish and close: finish also follows a streamed body (D7)', T, async () => {
  let rec;
  const { port } = await startServer((app) =>
    app.get('/x', (req, res) => {
      rec = recordEvents(req, res);
      res.write('a');
      res.write('b');
      res.end('c');
    }),
  );
  assert.equal((await request(port, { path: '/x' })).text, 'abc');
  await until(() => rec.closed(), 2000, 'close');
  await sleep(20);
  assert.deepEqual(rec.names.filter((n) => n !== 'drain'), ['prepare', 'finish', 'close']);
  checkInvariants(assert, rec);
});

test('completed and aborted are both true after a normal send, and close_reason is null then finished', T, async () => {
  let seen;
  const { port } = await startServer((app) =>
    app.get('/x', (req, res) => {
      const before = { completed: res.completed, aborted: res.aborted, initiated: res.initiated, reason: res.close_reason };
      res.send('ok');
      seen = { before, after: { completed: res.completed, aborted: res.aborted, initiated: res.initiated, reason: res.close_reason } };
    }),
  );
  await request(port, { path: '/x' });
  assert.deepEqual(seen, {
    before: { completed: false, aborted: false, initiated: false, reason: null },
    after: { completed: true, aborted: true, initiated: true, reason: 'finished' },
  });
});

test('calls after completion are no-ops: send returns the response, write returns false, nothing more is sent or emitted (D12)', T, async () => {
  let rec;
  let results;
  const { port } = await startServer((app) =>
    app.get('/x', (req, res) => {
      res.send('first');
      rec = recordEvents(req, res);
      results = {
        send: res.send('second') === res,
        end: res.end('third') === res,
        write: res.write('more'),
        json: res.json({ a: 1 }) === res,
        status: res.status(500) === res,
        header: (() => {
          try {
            return res.header('x-late', '1') === res;
          } catch (e) {
            return 'threw ' + e.message;
          }
        })(),
        redirect: res.redirect('/x'),
        ssesend: res.sse.send('late'),
        completed: res.completed,
      };
    }),
  );
  const client = await connect(port);
  client.write(buildRequest({ path: '/x' }));
  const r = await client.response();
  assert.equal(r.text, 'first');
  await sleep(100);
  assert.equal(r.rest.length, 0, `nothing after the response, got ${JSON.stringify(r.rest.toString())}`);
  assert.equal(client.data.length, r.raw.length + 4 + r.body.length);
  assert.deepEqual(results, {
    send: true,
    end: true,
    write: false,
    json: true,
    status: true,
    header: true,
    redirect: false,
    ssesend: false,
    completed: true,
  });
  assert.deepEqual(rec.names, [], 'no event after completion');
});

test('a client that closes (FIN) before the response gets abort then close, once each, with close_reason client', T, async () => {
  let rec;
  let res0;
  const { port } = await startServer((app) =>
    app.get('/slow', (req, res) => {
      res0 = res;
      rec = recordEvents(req, res);
    }),
  );
  const client = await connect(port);
  client.write(buildRequest({ path: '/slow' }));
  await until(() => rec, 2000, 'the handler');
  const t0 = Date.now();
  client.socket.end();
  await until(() => rec.closed(), 2000, 'close after the client left');
  const elapsed = Date.now() - t0;
  await sleep(50);
  assert.deepEqual(rec.list.map(pick), [
    { name: 'abort', completed: true, initiated: false },
    { name: 'close', completed: true, initiated: false },
  ]);
  assert.equal(res0.close_reason, 'client');
  assert.ok(elapsed < 1000, `events within 1 s of the disconnect (took ${elapsed} ms)`);
  checkInvariants(assert, rec);
});

test('a client that resets (RST) before the response gets abort then close, and a late send() writes nothing and emits nothing', T, async () => {
  let rec;
  let res0;
  const { port } = await startServer((app) =>
    app.get('/slow', (req, res) => {
      res0 = res;
      rec = recordEvents(req, res);
    }),
  );
  const client = await connect(port);
  client.write(buildRequest({ path: '/slow' }));
  await until(() => rec, 2000, 'the handler');
  client.socket.resetAndDestroy();
  await until(() => rec.closed(), 2000, 'close after the client left');
  assert.equal(res0.send('late'), res0, 'late send returns the response');
  assert.equal(res0.write('late'), false, 'late write returns false');
  await sleep(50);
  assert.deepEqual(rec.names, ['abort', 'close']);
  assert.equal(res0.close_reason, 'client');
  checkInvariants(assert, rec);
});

test('a client leaving before any listener was attached still ends the response: completed, aborted, close_reason client, and later listeners never fire', T, async () => {
  let res0;
  let listenersAtStart;
  const { port } = await startServer((app) =>
    app.get('/slow', (req, res) => {
      res0 = res;
      listenersAtStart = res.listenerCount('abort') + res.listenerCount('close');
    }),
  );
  const client = await connect(port);
  client.write(buildRequest({ path: '/slow' }));
  await until(() => res0, 2000, 'the handler');
  assert.equal(res0.close_reason, null);
  client.socket.destroy();
  await until(() => res0.completed, 2000, 'completed after the client left');
  assert.equal(listenersAtStart, 0);
  assert.equal(res0.close_reason, 'client');
  assert.equal(res0.aborted, true);
  assert.equal(res0.initiated, false);
  // A listener attached after the end is never called: no event after close.
  let late = 0;
  res0.on('close', () => late++);
  res0.on('abort', () => late++);
  res0.on('finish', () => late++);
  assert.equal(res0.send('late'), res0);
  await sleep(100);
  assert.equal(late, 0);
});

test('a client that leaves in the middle of a streamed response gets abort then close and no finish', T, async () => {
  let rec;
  let res0;
  let afterWrite;
  const { port } = await startServer((app) =>
    app.get('/stream', (req, res) => {
      res0 = res;
      rec = recordEvents(req, res);
      const timer = setInterval(() => {
        if (res.completed) {
          clearInterval(timer);
          afterWrite = res.write('after');
          return;
        }
        res.write('tick\n');
      }, 10);
    }),
  );
  const client = await connect(port);
  client.write(buildRequest({ path: '/stream' }));
  await client.waitUntil((c) => c.text.split('tick').length > 5, 3000, 'five ticks');
  client.socket.destroy();
  await until(() => rec.closed(), 2000, 'close');
  await until(() => afterWrite !== undefined, 1000, 'the write after completion');
  await sleep(30);
  assert.deepEqual(rec.names.filter((n) => n !== 'drain'), ['prepare', 'abort', 'close']);
  assert.equal(res0.close_reason, 'client');
  assert.equal(afterWrite, false);
  checkInvariants(assert, rec);
});

test('a client that leaves after the response completed causes no abort', T, async () => {
  let rec;
  const { port } = await startServer((app) =>
    app.get('/x', (req, res) => {
      rec = recordEvents(req, res);
      res.send('done');
    }),
  );
  const r = await request(port, { path: '/x' });
  r.client.socket.destroy();
  await sleep(100);
  assert.deepEqual(rec.names, ['prepare', 'finish', 'close']);
});

test('the invariants hold over 200 concurrent requests, half of whose clients leave early', { timeout: 20000 }, async () => {
  const recs = [];
  const { port } = await startServer((app) =>
    app.get('/mixed/:i', (req, res) => {
      const rec = recordEvents(req, res);
      recs.push(rec);
      const i = Number(req.path_parameters.i);
      if (i % 2 === 0) setTimeout(() => res.send('ok'), 5);
    }),
  );
  const clients = [];
  for (let i = 0; i < 200; i++) {
    const c = await connect(port);
    c.write(buildRequest({ path: `/mixed/${i}` }));
    clients.push(c);
  }
  await until(() => recs.length === 200, 5000, () => `200 handlers, saw ${recs.length}`);
  await until(() => clients.filter((c, i) => i % 2 === 0).every((c) => c.text.endsWith('ok')), 5000, 'even responses');
  clients.forEach((c, i) => {
    if (i % 2 === 1) c.socket.destroy();
  });
  await until(() => recs.every((r) => r.closed()), 5000, () => `all closed, ${recs.filter((r) => r.closed()).length}/200`);
  await sleep(50);
  for (const rec of recs) {
    checkInvariants(assert, rec);
    const i = Number(rec.req.path_parameters.i);
    assert.deepEqual(rec.names, i % 2 === 0 ? ['prepare', 'finish', 'close'] : ['abort', 'close']);
  }
});

test('on a keep-alive connection a client leaving during the second request aborts only that request', T, async () => {
  const recs = [];
  const { port } = await startServer((app) =>
    app.get('/k/:n', (req, res) => {
      const rec = recordEvents(req, res);
      recs.push(rec);
      if (req.path_parameters.n === '1') res.send('first');
    }),
  );
  const client = await connect(port);
  client.write(buildRequest({ path: '/k/1' }));
  await client.waitUntil((c) => c.text.endsWith('first'), 2000, 'the first response');
  client.write(buildRequest({ path: '/k/2' }));
  await until(() => recs.length === 2, 2000, 'the second handler');
  client.socket.destroy();
  await until(() => recs[1].closed(), 2000, 'close of the second response');
  await sleep(50);
  assert.deepEqual(recs[0].names, ['prepare', 'finish', 'close']);
  assert.deepEqual(recs[1].names, ['abort', 'close']);
  assert.equal(recs[0].res.close_reason, 'finished');
  assert.equal(recs[1].res.close_reason, 'client');
});

test('Writable state getters follow the response: open, finished, and aborted by the client', T, async () => {
  const states = {};
  const snap = (res) => ({
    writable: res.writable,
    writableEnded: res.writableEnded,
    writableFinished: res.writableFinished,
    writableAborted: res.writableAborted,
    destroyed: res.destroyed,
    closed: res.closed,
    errored: res.errored,
    writableCorked: res.writableCorked,
  });
  let aborted;
  const { port } = await startServer((app) => {
    app.get('/done', (req, res) => {
      states.open = snap(res);
      res.once('close', () => (states.finished = snap(res)));
      res.send('ok');
    });
    app.get('/gone', (req, res) => {
      res.write('partial');
      res.once('close', () => (aborted = snap(res)));
    });
  });
  assert.equal((await request(port, { path: '/done' })).text, 'ok');
  const c = await connect(port);
  c.write(buildRequest({ path: '/gone' }));
  await until(() => c.text.includes('partial'), 2000, 'the first chunk');
  c.socket.resetAndDestroy();
  await until(() => aborted !== undefined, 3000, 'close after the reset');
  const base = { errored: null, writableCorked: 0 };
  assert.deepEqual(states.open, { ...base, writable: true, writableEnded: false, writableFinished: false, writableAborted: false, destroyed: false, closed: false });
  assert.deepEqual(states.finished, { ...base, writable: false, writableEnded: true, writableFinished: true, writableAborted: false, destroyed: false, closed: true });
  assert.deepEqual(aborted, { ...base, writable: false, writableEnded: true, writableFinished: false, writableAborted: true, destroyed: true, closed: true });
});
