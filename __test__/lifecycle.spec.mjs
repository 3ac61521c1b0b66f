// Server lifecycle (spec 2.2, 7.7, section 10; issue 2 Must show 5).
import { test, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import {
  lib,
  startServer,
  request,
  connect,
  connectError,
  buildRequest,
  openSSE,
  cleanup,
  onCleanup,
  sleep,
  until,
  recordEvents,
  checkInvariants,
  runNode,
} from './helpers.mjs';

afterEach(cleanup);

const T = { timeout: 10000 };

test('listen(0, host, cb) calls cb with the listen socket, resolves with it, and port gives the bound port', T, async () => {
  const { Server } = lib();
  const app = new Server();
  onCleanup(() => app.close());
  app.get('/x', (req, res) => res.send('x'));
  const order = [];
  let cbSocket;
  const socket = await app.listen(0, '127.0.0.1', (s) => {
    order.push('cb');
    cbSocket = s;
  });
  order.push('resolved');
  assert.deepEqual(order, ['cb', 'resolved']);
  assert.equal(typeof socket, 'object');
  assert.ok(socket);
  assert.equal(cbSocket, socket);
  assert.ok(Number.isInteger(app.port) && app.port > 0);
  assert.equal((await request(app.port, { path: '/x' })).text, 'x');
});

test('port throws when the server is not listening', T, async () => {
  const { Server } = lib();
  const app = new Server();
  assert.throws(() => app.port);
});

test('listen() on a port in use rejects with a string', T, async () => {
  const blocker = net.createServer();
  await new Promise((resolve) => blocker.listen(0, '127.0.0.1', resolve));
  onCleanup(() => blocker.close());
  const { Server } = lib();
  const app = new Server();
  onCleanup(() => app.close());
  let rejection;
  await app.listen(blocker.address().port, '127.0.0.1').then(
    () => assert.fail('listen should reject'),
    (e) => {
      rejection = e;
    },
  );
  assert.equal(typeof rejection, 'string');
  assert.ok(rejection.length > 0);
});

test('registering a route or middleware after listen() throws', T, async () => {
  const { app } = await startServer((a) => a.get('/x', (req, res) => res.send('x')));
  assert.throws(() => app.get('/late', (req, res) => res.send('late')));
  assert.throws(() => app.use((req, res, next) => next()));
});

test('close() returns true then false; new connects are refused while an open SSE stream keeps working', T, async () => {
  let sse;
  let rec;
  const { app, port } = await startServer((a) =>
    a.get('/sse', (req, res) => {
      sse = res.sse;
      rec = recordEvents(req, res);
      res.sse.send('before');
    }),
  );
  const client = await openSSE(port, '/sse');
  await client.waitEvents(1);
  assert.equal(app.close(), true);
  assert.equal(app.close(), false);
  assert.equal(await connectError(port), 'ECONNREFUSED');
  assert.equal(sse.send('after'), true);
  await client.waitEvents(2);
  assert.deepEqual(
    client.events.map((e) => e.data),
    ['before', 'after'],
  );
  assert.deepEqual(rec.names, ['prepare'], 'no event fires at close() time');
  assert.equal(sse.active, true);
});

test('close() has stopped accepting when it returns: a connect right after it is refused, every time', { timeout: 20000 }, async () => {
  const outcomes = [];
  for (let i = 0; i < 20; i++) {
    const { app, port } = await startServer((a) => a.get('/x', (req, res) => res.send('x')));
    assert.equal(app.close(), true);
    outcomes.push(await connectError(port));
    await cleanup();
  }
  assert.deepEqual(
    outcomes.filter((o) => o !== 'ECONNREFUSED'),
    [],
    `${outcomes.filter((o) => o !== 'ECONNREFUSED').length}/20 connects made right after close() were not refused`,
  );
});

test('shutdown() ends every open SSE stream from the server side (finish, close), refuses new connects and resolves', T, async () => {
  const recs = [];
  const { app, port } = await startServer((a) =>
    a.get('/sse', (req, res) => {
      recs.push(recordEvents(req, res));
      res.sse.send('hello');
    }),
  );
  const clients = [await openSSE(port, '/sse'), await openSSE(port, '/sse')];
  for (const c of clients) await c.waitEvents(1);
  const p = app.shutdown(2000);
  assert.ok(p instanceof Promise, 'shutdown() returns a Promise');
  for (const c of clients) await c.waitTerminated(3000);
  const t0 = Date.now();
  await p;
  assert.ok(Date.now() - t0 < 2500);
  assert.equal(await connectError(port), 'ECONNREFUSED');
  for (const rec of recs) {
    await until(() => rec.closed(), 1000, 'close');
    assert.deepEqual(rec.names, ['prepare', 'finish', 'close']);
    assert.equal(rec.res.close_reason, 'shutdown');
    checkInvariants(assert, rec);
  }
  for (const c of clients) await c.waitClosed(3000);
});

test('shutdown() waits for an in-flight request to complete before resolving', T, async () => {
  let rec;
  let sentAt;
  const { app, port } = await startServer((a) =>
    a.get('/slow', (req, res) => {
      rec = recordEvents(req, res);
      setTimeout(() => {
        sentAt = Date.now();
        res.send('slow-done');
      }, 300);
    }),
  );
  const client = await connect(port);
  client.write(buildRequest({ path: '/slow' }));
  await until(() => rec, 2000, 'the handler');
  await app.shutdown(3000);
  const resolvedAt = Date.now();
  const r = await client.response();
  assert.equal(r.text, 'slow-done');
  assert.ok(sentAt && resolvedAt >= sentAt, 'resolved after the response was sent');
  assert.deepEqual(rec.names, ['prepare', 'finish', 'close']);
});

test('an SSE stream that starts while shutdown() runs (its handler was still awaiting) is ended like the others: its first event, then finish and close', T, async () => {
  let rec;
  const { app, port } = await startServer((a) =>
    a.get('/late', (req, res) => {
      rec = recordEvents(req, res);
      setTimeout(() => res.sse.send('started'), 150);
    }),
  );
  const client = await connect(port);
  client.write(buildRequest({ path: '/late' }));
  await until(() => rec, 2000, 'the handler');
  const t0 = Date.now();
  await app.shutdown(3000);
  const took = Date.now() - t0;
  assert.ok(took < 1500, `shutdown(3000) took ${took} ms: the late stream was not ended`);
  await client.waitClosed(2000);
  assert.match(client.text, /data: started\n\n/);
  assert.ok(client.text.endsWith('0\r\n\r\n'), 'the chunked body is terminated');
  assert.deepEqual(rec.names, ['prepare', 'finish', 'close']);
  assert.equal(rec.res.close_reason, 'shutdown');
});

test('shutdown(timeout) resolves within its bound even when a request never completes, and that response closes once', T, async () => {
  let rec;
  const { app, port } = await startServer((a) =>
    a.get('/never', (req, res) => {
      rec = recordEvents(req, res);
    }),
  );
  const client = await connect(port);
  client.write(buildRequest({ path: '/never' }));
  await until(() => rec, 2000, 'the handler');
  const t0 = Date.now();
  await app.shutdown(300);
  const took = Date.now() - t0;
  assert.ok(took < 2000, `shutdown(300) took ${took} ms`);
  await until(() => rec.closed(), 2000, 'close of the unanswered response');
  await sleep(30);
  checkInvariants(assert, rec);
  await client.waitClosed(3000);
});

test('force_close() drops every connection at once and each open response emits close exactly once', T, async () => {
  const recs = [];
  const { app, port } = await startServer((a) => {
    a.get('/sse', (req, res) => {
      recs.push(recordEvents(req, res));
      res.sse.open();
    });
    a.get('/pending', (req, res) => {
      recs.push(recordEvents(req, res));
    });
  });
  const s = await openSSE(port, '/sse');
  await s.waitBody((b) => b.length > 0);
  const p = await connect(port);
  p.write(buildRequest({ path: '/pending' }));
  await until(() => recs.length === 2, 2000, 'both handlers');
  app.force_close();
  await s.waitClosed(2000);
  await p.waitClosed(2000);
  assert.equal(s.terminated, false, 'no graceful end for force_close');
  for (const rec of recs) {
    await until(() => rec.closed(), 2000, 'close');
    await sleep(20);
    checkInvariants(assert, rec);
    assert.equal(rec.count('finish'), 0);
    assert.deepEqual(
      rec.names.filter((n) => n !== 'prepare'),
      ['close'],
      'force_close() gives close only (after the prepare of a started stream)',
    );
    assert.equal(rec.res.close_reason, 'shutdown');
  }
  assert.equal(await connectError(port), 'ECONNREFUSED');
});

// ---------------------------------------------------------------------------
// The Node process exits by itself

const CHILD_PRELUDE = `
const { Server } = require('./index.js');
const app = new Server();
const log = (s) => process.stdout.write(s + '\\n');
`;

/**
 * Runs a child server script that prints "PORT <n>" once listening; `drive(port)`
 * then talks to it. Resolves with the child's exit record.
 */
async function childServer(script, drive, ms = 8000) {
  let started;
  const ready = new Promise((resolve) => {
    started = resolve;
  });
  const exit = runNode(CHILD_PRELUDE + script, {
    ms,
    onStdout: (out) => {
      const m = /PORT (\d+)/.exec(out);
      if (m) started(Number(m[1]));
    },
  });
  const port = await Promise.race([ready, exit.then(() => null)]);
  let exited = false;
  exit.then(() => {
    exited = true;
  });
  if (port) {
    try {
      await drive(port);
    } catch (e) {
      const r = exited ? await exit : null;
      if (r) throw new Error(`the child exited (code ${r.code}) before it served the test: ${e.message}; stdout ${JSON.stringify(r.stdout)} stderr ${JSON.stringify(r.stderr)}`);
      throw e;
    }
  }
  return exit;
}

test('the process exits by itself after serving one request and shutdown()', { timeout: 15000 }, async () => {
  const result = await childServer(
    `
app.get('/hello', (req, res) => {
  res.send('hi');
  setTimeout(() => app.shutdown(1000).then(() => log('RESOLVED')), 10);
});
app.listen(0, '127.0.0.1').then(() => log('PORT ' + app.port));
`,
    async (port) => {
      const r = await request(port, { path: '/hello' });
      assert.equal(r.text, 'hi');
    },
  );
  assert.equal(result.timedOut, false, `child did not exit by itself; stdout ${result.stdout} stderr ${result.stderr}`);
  assert.equal(result.code, 0, result.stderr);
  assert.match(result.stdout, /RESOLVED/);
});

test('the process exits by itself after shutdown() with an SSE stream open', { timeout: 15000 }, async () => {
  let sseClient;
  const result = await childServer(
    `
app.get('/sse', (req, res) => { res.sse.send('open'); });
app.get('/stop', (req, res) => { res.send('stopping'); app.shutdown(1000).then(() => log('RESOLVED')); });
app.listen(0, '127.0.0.1').then(() => log('PORT ' + app.port));
`,
    async (port) => {
      sseClient = await openSSE(port, '/sse');
      await sseClient.waitEvents(1);
      await request(port, { path: '/stop' });
    },
  );
  assert.equal(result.timedOut, false, `child did not exit by itself; stdout ${result.stdout} stderr ${result.stderr}`);
  assert.equal(result.code, 0, result.stderr);
  assert.equal(sseClient.terminated, true, 'the SSE stream was ended with the last chunk');
});

test('the process exits by itself after force_close() with an SSE stream open', { timeout: 15000 }, async () => {
  const result = await childServer(
    `
app.get('/sse', (req, res) => { res.sse.send('open'); res.on('close', () => log('CLOSED ' + res.close_reason)); });
app.get('/stop', (req, res) => { res.send('stopping'); setTimeout(() => app.force_close(), 20); });
app.listen(0, '127.0.0.1').then(() => log('PORT ' + app.port));
`,
    async (port) => {
      const s = await openSSE(port, '/sse');
      await s.waitEvents(1);
      await request(port, { path: '/stop' });
      await s.waitClosed(3000);
    },
  );
  assert.equal(result.timedOut, false, `child did not exit by itself; stdout ${result.stdout} stderr ${result.stderr}`);
  assert.equal(result.code, 0, result.stderr);
  assert.match(result.stdout, /CLOSED /);
});

test('the process exits by itself after close() once its last connection is gone', { timeout: 15000 }, async () => {
  const result = await childServer(
    `
app.get('/hello', (req, res) => { res.send('hi'); app.close(); });
app.listen(0, '127.0.0.1').then(() => log('PORT ' + app.port));
`,
    async (port) => {
      const r = await request(port, { path: '/hello' });
      assert.equal(r.text, 'hi');
      r.client.destroy();
    },
  );
  assert.equal(result.timedOut, false, `child did not exit by itself; stdout ${result.stdout} stderr ${result.stderr}`);
  assert.equal(result.code, 0, result.stderr);
});

/**
 * Starts a child process with a listening server (default options, so auto_close is on), sends it
 * `signal` once it listens, and resolves with how it ended (`started` tells it did start).
 */
function signalListeningChild(signal) {
  let started = false;
  return runNode(
    CHILD_PRELUDE +
      `
app.get('/x', (req, res) => res.send('x'));
app.listen(0, '127.0.0.1').then(() => log('PORT ' + app.port));
`,
    {
      ms: 8000,
      onStdout: (out, c) => {
        if (!started && /PORT/.test(out)) {
          started = true;
          c.kill(signal);
        }
      },
    },
  ).then((result) => ({ ...result, started }));
}

test('with auto_close a listening process ends on SIGTERM', { timeout: 15000 }, async () => {
  const t0 = Date.now();
  const result = await signalListeningChild('SIGTERM');
  assert.ok(result.started, 'the child started');
  assert.equal(result.timedOut, false, 'the child ended after SIGTERM');
  assert.ok(Date.now() - t0 < 8000);
});

test('with auto_close, SIGUSR1 closes the server without killing the process, which then exits by itself with code 0', { timeout: 15000 }, async () => {
  const result = await signalListeningChild('SIGUSR1');
  assert.ok(result.started, 'the child started');
  assert.equal(result.timedOut, false, 'the child ended after the server closed');
  assert.equal(result.signal ?? null, null, `killed by ${result.signal}`);
  assert.equal(result.code, 0, result.stderr);
});

test('with worker_threads 2 the server serves concurrent requests and SSE streams, and disconnects are still seen once', T, async () => {
  const recs = [];
  const { port } = await startServer(
    (a) => {
      a.get('/x/:n', (req, res) => res.send(req.path_parameters.n));
      a.get('/sse', (req, res) => {
        recs.push(recordEvents(req, res));
        res.sse.send('hi');
      });
    },
    { worker_threads: 2 },
  );
  const answers = await Promise.all(Array.from({ length: 50 }, (_, i) => request(port, { path: `/x/${i}` })));
  assert.deepEqual(
    answers.map((r) => r.text),
    Array.from({ length: 50 }, (_, i) => String(i)),
  );
  const streams = await Promise.all(Array.from({ length: 20 }, () => openSSE(port, '/sse')));
  for (const s of streams) await s.waitEvents(1);
  streams.forEach((s) => s.destroy());
  await until(() => recs.length === 20 && recs.every((r) => r.closed()), 3000, 'close on every stream');
  await sleep(30);
  for (const rec of recs) assert.deepEqual(rec.names, ['prepare', 'abort', 'close']);
});

test('a response sent just before close() in the handler always reaches the client before the process exits (15 runs)', { timeout: 40000 }, async () => {
  let lost = 0;
  for (let i = 0; i < 15; i++) {
    let text = null;
    const result = await childServer(
      `
app.get('/hello', (req, res) => { res.send('hi'); app.close(); });
app.listen(0, '127.0.0.1').then(() => log('PORT ' + app.port));
`,
      async (port) => {
        const client = await connect(port);
        client.write(buildRequest({ path: '/hello' }));
        await client.waitUntil((c) => c.text.endsWith('hi') || c.closed, 3000, 'the response or a close').catch(() => {});
        text = client.text;
        client.destroy();
      },
    );
    assert.equal(result.timedOut, false, 'the child exits by itself');
    if (!text || !text.endsWith('\r\n\r\nhi')) lost++;
  }
  assert.equal(lost, 0, `${lost}/15 responses were lost when the process exited after close()`);
});

test('shutdown() twice and force_close() afterwards are harmless', T, async () => {
  let rec;
  const { app, port } = await startServer((a) =>
    a.get('/sse', (req, res) => {
      rec = recordEvents(req, res);
      res.sse.open();
    }),
  );
  const client = await openSSE(port, '/sse');
  await client.waitBody((b) => b.length > 0);
  await Promise.all([app.shutdown(1000), app.shutdown(1000)]);
  app.force_close();
  assert.equal(app.close(), false);
  await client.waitTerminated();
  await sleep(30);
  assert.deepEqual(rec.names, ['prepare', 'finish', 'close']);
});

test('header_timeout closes idle keep-alive and trickling connections; a slow handler and an SSE stream are not cut; 0 turns it off', { timeout: 20000 }, async () => {
  const { port } = await startServer(
    (app) => {
      app.get('/', (req, res) => res.send('ok'));
      app.get('/slow', async (req, res) => {
        await sleep(3000);
        res.send('late');
      });
      app.get('/sse', (req, res) => res.sse.open());
    },
    { header_timeout: 1500 },
  );
  const { port: offPort } = await startServer((app) => app.get('/', (req, res) => res.send('ok')), { header_timeout: 0 });

  // An idle keep-alive connection after one response.
  const idle = await connect(port);
  const t0 = Date.now();
  idle.write(buildRequest({ path: '/' }));
  assert.equal((await idle.response()).status, 200);
  // A client that never finishes its head: one header byte every 300 ms.
  const trickle = await connect(port);
  trickle.write('GET / HTTP/1.1\r\nHost: x\r\nX-Slow: ');
  const dribble = setInterval(() => {
    if (!trickle.closed) trickle.write('a');
  }, 300);
  onCleanup(() => clearInterval(dribble));
  // Neither a request waiting 3 s for its handler nor an open SSE stream is cut.
  const slow = await connect(port);
  slow.write(buildRequest({ path: '/slow' }));
  const sse = await openSSE(port, '/sse');
  // The same idle connection on a server with the timeout off.
  const keep = await connect(offPort);
  keep.write(buildRequest({ path: '/' }));
  assert.equal((await keep.response()).status, 200);

  await idle.waitClosed(4500);
  const idleMs = Date.now() - t0;
  assert.ok(idleMs >= 400 && idleMs <= 4500, `idle connection closed after ${idleMs} ms (timeout 1500 ± 1000)`);
  await trickle.waitClosed(4500);
  clearInterval(dribble);
  assert.ok(!trickle.text.startsWith('HTTP/1.1 200'), 'the trickled head was never answered');

  const late = await slow.response(5000);
  assert.equal(late.status, 200);
  assert.equal(late.body.toString(), 'late');
  assert.equal(sse.closed, false, 'the SSE stream is still open');
  assert.equal(keep.closed, false, 'header_timeout 0: the idle connection stays open');
  keep.write(buildRequest({ path: '/' }));
  await keep.waitUntil((c) => c.text.split('HTTP/1.1 200').length === 3, 2000, 'a second response on the kept connection');
});

test('new Server() rejects a header_timeout that is not a number >= 0, naming the option', T, async () => {
  const { Server } = lib();
  for (const bad of [-1, 'soon', NaN]) {
    assert.throws(
      () => new Server({ header_timeout: bad, auto_close: false }),
      (err) => (err instanceof TypeError || err instanceof RangeError) && err.message.includes('header_timeout'),
    );
  }
});

test('a connection that is quiet for a second after connecting to a long-running server is not closed as idle', { timeout: 15000 }, async () => {
  const { port } = await startServer((app) => app.get('/', (req, res) => res.send('ok')), { header_timeout: 3000 });
  // The server has been up for longer than header_timeout when the client connects.
  await sleep(3500);
  const c = await connect(port);
  await sleep(1300);
  assert.equal(c.closed, false, 'still open after a housekeeping tick');
  c.write(buildRequest({ path: '/' }));
  const r = await c.response();
  assert.equal(r.status, 200);
});

/** The start of the child scripts that count threads and collected Servers. */
const GC_PRELUDE = `
    const { Server } = require('.');
    const http = require('node:http');
    const fs = require('node:fs');
    const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
    const threads = () => fs.readdirSync('/proc/self/task').length;
    let collected = 0;
    const reg = new FinalizationRegistry(() => collected++);
`;

test('a stopped Server with no connection left lets go of its runtime thread and can be garbage-collected (close, shutdown, force_close)', { timeout: 30000 }, async () => {
  const script = `
    ${GC_PRELUDE}
    (async () => {
      const out = {};
      for (const how of ['close', 'shutdown', 'force_close']) {
        const before = threads();
        let peak = before;
        for (let i = 0; i < 8; i++) {
          let app = new Server();
          app.get('/', (req, res) => res.send('ok'));
          await app.listen(0, '127.0.0.1');
          await new Promise((r) => http.get({ host: '127.0.0.1', port: app.port, path: '/', agent: false }, (res) => { res.resume(); res.on('end', r); }));
          peak = Math.max(peak, threads());
          if (how === 'close') app.close();
          else if (how === 'shutdown') await app.shutdown(1000);
          else app.force_close();
          reg.register(app, i);
          app = null;
          await sleep(60);
        }
        for (let i = 0; i < 10 && collected < 8; i++) { global.gc(); await sleep(50); }
        out[how] = { collected, before, peak, after: threads() };
        collected = 0;
      }
      console.log(JSON.stringify(out));
    })();
  `;
  const r = await runNode(script, { args: ['--expose-gc'], ms: 25000 });
  assert.equal(r.code, 0, r.stderr);
  const out = JSON.parse(r.stdout.trim());
  for (const how of ['close', 'shutdown', 'force_close']) {
    const o = out[how];
    assert.equal(o.collected, 8, `${how}: every stopped server was collected: ${JSON.stringify(o)}`);
    assert.ok(o.peak > o.before, `${how}: a listening server has its runtime thread: ${JSON.stringify(o)}`);
    // One more thread at most: the process-wide closer thread, started by the first connection.
    assert.ok(o.after <= o.before + 1, `${how}: the runtime threads are gone: ${JSON.stringify(o)}`);
  }
});

test('a listen() that fails (port in use) lets go of the native side it made: no thread left, the Server can be collected, a later listen() works', { timeout: 30000 }, async () => {
  const script = `
    ${GC_PRELUDE}
    const net = require('node:net');
    (async () => {
      const blocker = net.createServer();
      await new Promise((r) => blocker.listen(0, '127.0.0.1', r));
      const port = blocker.address().port;
      const before = threads();
      let failures = 0;
      for (let i = 0; i < 10; i++) {
        let app = new Server();
        app.get('/', (req, res) => res.send('ok'));
        await app.listen(port, '127.0.0.1').catch((e) => { if (typeof e === 'string') failures++; });
        reg.register(app, i);
        app = null;
        await sleep(20);
      }
      for (let i = 0; i < 10 && collected < 10; i++) { global.gc(); await sleep(50); }
      const after = threads();
      // The same Server can listen once the port is free.
      const app = new Server();
      app.get('/', (req, res) => res.send('ok'));
      await app.listen(port, '127.0.0.1').catch(() => {});
      blocker.close();
      await sleep(50);
      const again = await app.listen(0, '127.0.0.1').then(() => true, () => false);
      const res = again ? await fetch('http://127.0.0.1:' + app.port + '/').then((r) => r.text()) : null;
      app.close();
      console.log(JSON.stringify({ failures, collected, before, after, res }));
    })();
  `;
  const r = await runNode(script, { args: ['--expose-gc'], ms: 25000 });
  assert.equal(r.code, 0, r.stderr);
  const out = JSON.parse(r.stdout.trim());
  assert.equal(out.failures, 10, JSON.stringify(out));
  assert.equal(out.collected, 10, `every Server whose listen() failed was collected: ${JSON.stringify(out)}`);
  assert.ok(out.after <= out.before, `no runtime thread left behind: ${JSON.stringify(out)}`);
  assert.equal(out.res, 'ok');
});

test('a Server stopped and idle listens again with a new native side: routes, requests and SSE work', T, async () => {
  const { Server } = lib();
  const app = new Server();
  app.get('/', (req, res) => res.send('again'));
  app.get('/sse', (req, res) => res.sse.send('x'));
  onCleanup(() => app.force_close());
  for (let round = 0; round < 3; round++) {
    await app.listen(0, '127.0.0.1');
    const r = await request(app.port, { path: '/' });
    assert.equal(r.text, 'again');
    r.client.destroy();
    const sse = await openSSE(app.port, '/sse');
    await sse.waitUntil((c) => c.text.includes('data: x'), 2000, 'the event');
    sse.destroy();
    if (round === 1) await app.shutdown(1000);
    else app.close();
    await until(() => app._disposed, 3000, 'the native side to be disposed');
  }
});
