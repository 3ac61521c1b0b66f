// How SSE streams end (spec 7.1–7.4, D1, D7, D10; issue 3): client FIN/RST, idle or
// mid-write, server ends, 1,000 clients at once, slow clients, dead peers.
import { test, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import crypto from 'node:crypto';
import fs from 'node:fs';
import {
  startServer,
  openSSE,
  connect,
  buildRequest,
  cleanup,
  onCleanup,
  sleep,
  until,
  waitFor,
  recordEvents,
  checkInvariants,
} from './helpers.mjs';

afterEach(cleanup);

const T = { timeout: 15000 };

/** A server whose GET /sse records events and runs `start(res)`. */
async function sseServer(start = (res) => res.sse.open(), options = {}) {
  const recs = [];
  const s = await startServer((app) =>
    app.get('/sse', (req, res) => {
      const rec = recordEvents(req, res);
      recs.push(rec);
      start(res, rec);
    }),
  options);
  return { ...s, recs };
}

const flags = (res) => ({ completed: res.completed, aborted: res.aborted, active: res.sse.active, reason: res.close_reason });

for (const [how, leave] of [
  ['FIN (end())', (c) => c.socket.end()],
  ['RST (resetAndDestroy())', (c) => c.socket.resetAndDestroy()],
]) {
  test(`a client leaving an idle stream with ${how} gives abort then close, with close_reason client`, T, async () => {
    const { port, recs } = await sseServer();
    const client = await openSSE(port, '/sse');
    await client.waitBody((b) => b === ': open\n');
    const rec = recs[0];
    assert.equal(rec.res.close_reason, null, 'close_reason is null while open');
    assert.equal(rec.res.sse.active, true);
    const t0 = Date.now();
    leave(client);
    await until(() => rec.closed(), 2000, 'close');
    const took = Date.now() - t0;
    await sleep(50);
    assert.deepEqual(rec.names, ['prepare', 'abort', 'close']);
    assert.deepEqual(flags(rec.res), { completed: true, aborted: true, active: false, reason: 'client' });
    assert.ok(took < 1000, `events ${took} ms after the disconnect`);
    assert.equal(rec.res.sse.send('late'), false, 'send after the end returns false');
    await sleep(30);
    checkInvariants(assert, rec);
  });
}

test('a client that keeps sending on an event stream is ended as client after 1 MiB discarded, not before', T, async () => {
  const { port, recs } = await sseServer();
  const client = await openSSE(port, '/sse');
  await client.waitBody((b) => b === ': open\n');
  const rec = recs[0];
  client.socket.write(Buffer.alloc(512 * 1024, 'x'));
  await sleep(300);
  assert.equal(rec.closed(), false, 'half a MiB is discarded and the stream stays open');
  assert.equal(rec.res.sse.send('still'), true);
  await client.waitBody((b) => b.endsWith('data: still\n\n'));
  client.socket.write(Buffer.alloc(1024 * 1024, 'x'));
  await until(() => rec.closed(), 3000, 'close after more than 1 MiB');
  assert.deepEqual(rec.names, ['prepare', 'abort', 'close']);
  assert.equal(rec.res.close_reason, 'client');
  await client.waitClosed(3000);
  checkInvariants(assert, rec);
});

test('a client leaving mid-stream (server sending every 10 ms) gives abort then close right away and no error', T, async () => {
  const errors = [];
  const { port, recs } = await sseServer((res) => {
    res.on('error', (e) => errors.push(e));
    let n = 0;
    const timer = setInterval(() => {
      const ok = res.sse.send(`m${n++}`);
      if (res.completed) {
        clearInterval(timer);
        res.locals.lateSend = ok;
      }
    }, 10);
  });
  const client = await openSSE(port, '/sse');
  await client.waitEvents(5);
  client.destroy();
  const rec = recs[0];
  await until(() => rec.closed(), 2000, 'close');
  await until(() => rec.res.locals.lateSend !== undefined, 1000, 'a send after the end');
  assert.deepEqual(rec.names.filter((n) => n !== 'drain'), ['prepare', 'abort', 'close']);
  assert.equal(rec.res.locals.lateSend, false);
  assert.equal(rec.res.close_reason, 'client');
  assert.deepEqual(errors, []);
  checkInvariants(assert, rec);
});

test('sse.close() gives finish then close, close_reason finished, and the client sees the last chunk', T, async () => {
  const { port, recs } = await sseServer((res) => {
    res.sse.open();
    res.sse.send('one');
    setTimeout(() => res.sse.close(), 20);
  });
  const client = await openSSE(port, '/sse');
  await client.waitTerminated();
  const rec = recs[0];
  await until(() => rec.closed(), 1000, 'close');
  await sleep(30);
  assert.deepEqual(rec.names, ['prepare', 'finish', 'close']);
  assert.deepEqual(flags(rec.res), { completed: true, aborted: true, active: false, reason: 'finished' });
  assert.equal(client.body, ': open\ndata: one\n\n');
  checkInvariants(assert, rec);
});

test('res.close() on an open stream gives close only and cuts the connection', T, async () => {
  const { port, recs } = await sseServer((res) => {
    res.sse.send('one');
    setTimeout(() => res.close(), 20);
  });
  const client = await openSSE(port, '/sse');
  await client.waitClosed(2000);
  assert.equal(client.terminated, false, 'no last chunk');
  const rec = recs[0];
  await until(() => rec.closed(), 1000, 'close');
  await sleep(30);
  assert.deepEqual(rec.names, ['prepare', 'close']);
  assert.equal(rec.res.close_reason, 'server');
  assert.equal(rec.res.sse.active, false);
  checkInvariants(assert, rec);
});

test('the connection-pool pattern (id on res.sse, delete on close) empties when clients leave', T, async () => {
  const pool = {};
  const { port } = await startServer((app) =>
    app.get('/sse', (req, res) => {
      res.sse.id = crypto.randomUUID();
      pool[res.sse.id] = res.sse;
      res.once('close', () => delete pool[res.sse.id]);
      res.sse.open();
    }),
  );
  const clients = [];
  for (let i = 0; i < 50; i++) clients.push(await openSSE(port, '/sse'));
  await until(() => Object.keys(pool).length === 50, 3000, 'fifty pooled streams');
  for (const c of clients) await c.waitBody((b) => b.length > 0);
  for (const sse of Object.values(pool)) assert.equal(sse.send('broadcast'), true);
  clients.forEach((c, i) => (i % 2 ? c.socket.end() : c.socket.resetAndDestroy()));
  await until(() => Object.keys(pool).length === 0, 3000, () => `an empty pool, ${Object.keys(pool).length} left`);
});

test('1,000 clients leaving at once give 1,000 abort and 1,000 close, each exactly once, abort first', { timeout: 60000 }, async () => {
  const N = 1000;
  const { port, recs } = await sseServer();
  // Client and server share this process: every socket of either side counts here.
  const fds = () => (process.platform === 'linux' ? fs.readdirSync('/proc/self/fd').length : 0);
  const baseline = fds();
  const clients = [];
  for (let i = 0; i < N; i += 100) {
    const batch = await Promise.all(Array.from({ length: Math.min(100, N - i) }, () => openSSE(port, '/sse', {}, { keep: true })));
    clients.push(...batch);
  }
  await until(() => recs.length === N, 15000, () => `${N} handlers, saw ${recs.length}`);
  await until(() => clients.every((c) => c.bodyLength > 0), 15000, 'every client opened');
  const t0 = Date.now();
  clients.forEach((c, i) => (i % 2 ? c.socket.end() : c.socket.resetAndDestroy()));
  await until(() => recs.every((r) => r.closed()), 15000, () => `all closed, ${recs.filter((r) => r.closed()).length}/${N}`);
  const took = Date.now() - t0;
  await sleep(100);
  let aborts = 0;
  let closes = 0;
  for (const rec of recs) {
    aborts += rec.count('abort');
    closes += rec.count('close');
    assert.deepEqual(rec.names, ['prepare', 'abort', 'close']);
    assert.equal(rec.res.close_reason, 'client');
  }
  assert.equal(aborts, N);
  assert.equal(closes, N);
  assert.ok(took < 10000, `all events within 10 s (took ${took} ms)`);
  // Every socket is closed after the burst, the reset ones too (held by the closer thread until
  // the burst is over, at most 250 ms).
  await until(() => fds() <= baseline, 5000, () => `file descriptors back to ${baseline}, ${fds()} open`);
});

test('a 20,000-byte SSE event returns false and drain follows', T, async () => {
  let result;
  let drained = false;
  const { port } = await sseServer((res) => {
    result = res.sse.send('x'.repeat(20000));
    waitFor(res, 'drain', 3000).then(() => {
      drained = true;
      res.sse.send('after-drain');
    });
  });
  const client = await openSSE(port, '/sse');
  await client.waitEvents(2);
  assert.equal(result, false);
  assert.equal(drained, true);
  assert.equal(client.events[0].data.length, 20000);
  assert.equal(client.events[1].data, 'after-drain');
});

test('a write larger than the cap reaches a reading client whole, with the writes right behind it; a backlog of 4x the cap evicts, and ending the response afterwards still reports slow_client', T, async () => {
  const cap = 64 * 1024;
  const { port, recs } = await sseServer((res) => res.sse.send('first'), { max_queued_bytes: cap, sse_heartbeat: 0 });
  // A reading client gets one 1 MiB event (16x the cap) and the small event sent right after it,
  // in the same tick (as a channel's history replay followed by a live event).
  const reader = await openSSE(port, '/sse');
  await reader.waitEvents(1);
  const big = 'z'.repeat(1024 * 1024);
  assert.equal(recs[0].res.sse.send(big), false, 'over the high-water mark: false, then drain');
  recs[0].res.sse.send('right behind');
  await reader.waitEvents(3, 5000);
  assert.equal(reader.events[1].data.length, big.length);
  assert.equal(reader.events[2].data, 'right behind');
  assert.deepEqual(recs[0].names.filter((n) => n !== 'drain'), ['prepare']);
  // Writes of 40 KiB in one tick, ignoring backpressure: the one that finds 4x the cap of backlog
  // evicts; sse.close() right after, before the eviction event arrived, reports the eviction.
  const second = await openSSE(port, '/sse');
  await second.waitEvents(1);
  const rec = recs[1];
  const chunk = 'w'.repeat(40 * 1024);
  const results = [];
  for (let i = 0; i < 8; i++) results.push(rec.res.sse.send(chunk));
  assert.equal(results.length, 8);
  assert.equal(results[7], false);
  // Nothing is emitted inside the caller's write: abort and close come in a later callback.
  assert.deepEqual(rec.names.filter((n) => n !== 'drain'), ['prepare']);
  rec.res.sse.close();
  await until(() => rec.closed(), 3000, 'close after eviction');
  await sleep(30);
  assert.deepEqual(rec.names.filter((n) => n !== 'drain'), ['prepare', 'abort', 'close']);
  assert.equal(rec.res.close_reason, 'slow_client');
});

test('a client that stops reading while the server keeps sending is evicted at the queue cap as slow_client, a reading client is not, and memory stays bounded', { timeout: 30000 }, async (t) => {
  // Bursts of 32 KiB every 2 ms stay under the 64 KiB cap for a client that reads (the server
  // side drains them long before the next burst), so only a client that stops reading lets
  // the queue grow past it.
  const payload = 'y'.repeat(16 * 1024);
  const LIMIT = 128 * 1024 * 1024;
  let sent = 0;
  let falseSeen = false;
  let peakRss = 0;
  const { port, recs } = await sseServer((res) => res.sse.send('first'), { max_queued_bytes: 64 * 1024, sse_heartbeat: 0 });
  const stalled = await openSSE(port, '/sse?who=stalled', {}, { keep: false });
  const reading = await openSSE(port, '/sse?who=reading', {}, { keep: false });
  reading.parser.keepEvents = false;
  await stalled.waitEvents(1);
  await reading.waitEvents(1);
  stalled.socket.pause();
  const find = (who) => recs.find((r) => r.req.query_parameters.who === who);
  const rec = find('stalled');
  const control = find('reading');
  const rss0 = process.memoryUsage().rss;
  const t0 = Date.now();
  let extra = 0;
  while (extra < 20 && sent < LIMIT) {
    for (let i = 0; i < 2; i++) {
      if (!rec.res.completed && !rec.res.sse.send(payload)) falseSeen = true;
      control.res.sse.send(payload);
      sent += payload.length;
    }
    if (rec.res.completed) extra++;
    peakRss = Math.max(peakRss, process.memoryUsage().rss);
    await sleep(2);
  }
  const took = Date.now() - t0;
  await until(() => rec.closed(), 3000, 'close after eviction');
  await sleep(30);
  assert.ok(rec.res.completed, `evicted before ${LIMIT} bytes were sent (sent ${sent})`);
  assert.deepEqual(rec.names.filter((n) => n !== 'drain'), ['prepare', 'abort', 'close']);
  assert.equal(rec.res.close_reason, 'slow_client');
  assert.equal(falseSeen, true, 'send() returned false before the eviction');
  assert.equal(rec.res.sse.send(payload), false);
  assert.deepEqual(control.names.filter((n) => n !== 'drain'), ['prepare'], `the reading client stays (reason ${control.res.close_reason})`);
  await reading.waitEvents(1 + sent / payload.length, 5000);
  const growth = peakRss - rss0;
  t.diagnostic(`evicted after ${Math.round(sent / 1024)} KiB sent in ${took} ms; RSS growth ${Math.round(growth / 1024)} KiB`);
  assert.ok(growth < 48 * 1024 * 1024, `RSS grew ${Math.round(growth / 1048576)} MB while ${Math.round(sent / 1048576)} MB were sent`);
  assert.ok(took < 15000, `evicted after ${took} ms`);
  checkInvariants(assert, rec);
});

test('a client that stays connected but stops reading, sent less than the queue cap, ends as timeout once writes stall for write_timeout', { timeout: 20000 }, async () => {
  // ~500 KB/s in 1 KB events: the client's and the server's socket buffers fill, and the kernel
  // (TCP_USER_TIMEOUT) or the write deadline gives up on the peer after write_timeout.
  let rec;
  let started = 0;
  const { port } = await startServer(
    (app) =>
      app.get('/sse', (req, res) => {
        rec = recordEvents(req, res);
        started = Date.now();
        const timer = setInterval(() => {
          if (!res.sse.active) return clearInterval(timer);
          res.sse.send('x'.repeat(1000));
        }, 2);
      }),
    { write_timeout: 1000, sse_heartbeat: 0 },
  );
  const client = await connect(port);
  client.write(buildRequest({ path: '/sse' }));
  client.socket.pause();
  await until(() => rec && rec.closed(), 12000, 'the stream to end');
  const took = Date.now() - started;
  assert.equal(rec.res.close_reason, 'timeout', `ended as ${rec.res.close_reason} after ${took} ms`);
  assert.deepEqual(rec.names.filter((n) => n !== 'drain'), ['prepare', 'abort', 'close']);
  assert.ok(took < 1000 + 5000, `ended after ${took} ms`);
});

test('a peer that vanishes without FIN (a proxy that stops forwarding and reading) is ended as timeout within the write_timeout bound', { timeout: 30000 }, async () => {
  const WRITE_TIMEOUT = 1000;
  const payload = 'z'.repeat(16 * 1024);
  const { port, recs } = await sseServer(
    (res) => {
      const pump = () => {
        for (let i = 0; i < 64; i++) {
          if (res.completed) return;
          if (!res.sse.send(payload)) {
            res.once('drain', pump);
            return;
          }
        }
        setImmediate(pump);
      };
      pump();
    },
    { write_timeout: WRITE_TIMEOUT, sse_heartbeat: 0 },
  );
  // The proxy: client <-> proxy <-> server; `stall()` freezes the server-facing side.
  let upstream;
  const proxy = net.createServer((down) => {
    upstream = net.connect({ port, host: '127.0.0.1' });
    down.pipe(upstream);
    upstream.pipe(down);
    down.on('error', () => {});
    upstream.on('error', () => {});
    onCleanup(() => {
      down.destroy();
      upstream.destroy();
    });
  });
  await new Promise((r) => proxy.listen(0, '127.0.0.1', r));
  onCleanup(() => proxy.close());
  const client = await openSSE(proxy.address().port, '/sse', {}, { keep: false });
  await client.waitUntil((c) => c.bodyLength > 256 * 1024, 5000, 'data flowing through the proxy');
  const rec = recs[0];
  upstream.unpipe();
  upstream.pause();
  const stalledAt = Date.now();
  await until(() => rec.closed(), WRITE_TIMEOUT + 8000, 'close after the peer vanished');
  const took = Date.now() - stalledAt;
  await sleep(30);
  assert.deepEqual(rec.names.filter((n) => n !== 'drain'), ['prepare', 'abort', 'close']);
  assert.equal(rec.res.close_reason, 'timeout');
  assert.ok(took >= WRITE_TIMEOUT * 0.8, `not before the write timeout (took ${took} ms)`);
  assert.ok(took < WRITE_TIMEOUT + 3000, `ended within write_timeout + 3 s (took ${took} ms)`);
  checkInvariants(assert, rec);
});

test('write_timeout never ends a healthy idle stream, with or without heartbeats', T, async () => {
  const quiet = await sseServer((res) => res.sse.open(), { write_timeout: 300, sse_heartbeat: 0 });
  const beating = await sseServer((res) => res.sse.open(), { write_timeout: 300, sse_heartbeat: 100 });
  const a = await openSSE(quiet.port, '/sse');
  const b = await openSSE(beating.port, '/sse');
  await a.waitBody((x) => x.length > 0);
  await b.waitBody((x) => x.length > 0);
  await sleep(1200);
  assert.deepEqual(quiet.recs[0].names, ['prepare']);
  assert.deepEqual(beating.recs[0].names, ['prepare']);
  assert.equal(quiet.recs[0].res.sse.send('still-here'), true);
  assert.equal(beating.recs[0].res.sse.send('still-here'), true);
  await a.waitEvents(1);
  await b.waitEvents(1);
  assert.ok(b.parser.comments.length >= 5, `heartbeats kept flowing (${b.parser.comments.length})`);
});

test('a client that reads in bursts with pauses shorter than write_timeout is not timed out or evicted', { timeout: 15000 }, async () => {
  const payload = 'q'.repeat(8 * 1024);
  const { port, recs } = await sseServer(
    (res) => {
      const pump = () => {
        for (let i = 0; i < 32; i++) {
          if (res.completed || res.locals.stop) return;
          if (!res.sse.send(payload)) {
            res.once('drain', pump);
            return;
          }
        }
        setImmediate(pump);
      };
      pump();
    },
    { write_timeout: 1000, sse_heartbeat: 0 },
  );
  const client = await openSSE(port, '/sse', {}, { keep: false });
  client.parser.keepEvents = false;
  await client.waitEvents(1);
  const t0 = Date.now();
  while (Date.now() - t0 < 2500) {
    client.socket.pause();
    await sleep(300);
    client.socket.resume();
    await sleep(50);
  }
  const rec = recs[0];
  rec.res.locals.stop = true;
  assert.deepEqual(rec.names.filter((n) => n !== 'drain'), ['prepare'], `still open, reason ${rec.res.close_reason}`);
  assert.ok(client.parser.count > 100, `data kept flowing (${client.parser.count} events)`);
});

/** Pumps 16 KiB events honouring backpressure until the response ends or `res.locals.stop`. */
function pumpWithBackpressure(res) {
  const payload = 'w'.repeat(16 * 1024);
  const pump = () => {
    for (let i = 0; i < 64; i++) {
      if (res.completed || res.locals.stop) return;
      if (!res.sse.send(payload)) {
        res.locals.blocked = true;
        res.once('drain', pump);
        return;
      }
    }
    setImmediate(pump);
  };
  pump();
}

test('a client that leaves while its queue is full gives abort then close with close_reason client', T, async () => {
  const { port, recs } = await sseServer(pumpWithBackpressure, { sse_heartbeat: 0 });
  const client = await openSSE(port, '/sse', {}, { keep: false });
  client.parser.keepEvents = false;
  await client.waitEvents(1);
  client.socket.pause();
  const rec = recs[0];
  await until(() => rec.res.locals.blocked, 5000, 'a full queue');
  await sleep(50);
  client.socket.resetAndDestroy();
  await until(() => rec.closed(), 2000, 'close after the client left');
  await sleep(30);
  assert.deepEqual(rec.names.filter((n) => n !== 'drain'), ['prepare', 'abort', 'close']);
  assert.equal(rec.res.close_reason, 'client');
  checkInvariants(assert, rec);
});

test('shutdown(timeout) with a stuck stream (client not reading, queue full) resolves within its bound and the stream closes once', { timeout: 15000 }, async () => {
  const { app, port, recs } = await sseServer(pumpWithBackpressure, { sse_heartbeat: 0 });
  const client = await openSSE(port, '/sse', {}, { keep: false });
  client.parser.keepEvents = false;
  await client.waitEvents(1);
  client.socket.pause();
  const rec = recs[0];
  await until(() => rec.res.locals.blocked, 5000, 'a full queue');
  const t0 = Date.now();
  await app.shutdown(500);
  const took = Date.now() - t0;
  assert.ok(took < 2000, `shutdown(500) took ${took} ms`);
  await until(() => rec.closed(), 2000, 'close of the stuck stream');
  await sleep(30);
  checkInvariants(assert, rec);
  assert.equal(rec.res.close_reason, 'shutdown');
  client.socket.resume();
  await client.waitClosed(3000);
});

test('a client leaving after sse.close() causes no further event', T, async () => {
  const { port, recs } = await sseServer((res) => {
    res.sse.send('x');
    res.sse.close();
  });
  const client = await openSSE(port, '/sse');
  await client.waitTerminated();
  client.socket.resetAndDestroy();
  await sleep(100);
  assert.deepEqual(recs[0].names, ['prepare', 'finish', 'close']);
  assert.equal(recs[0].res.close_reason, 'finished');
});

test('a client reset racing with the server ending the stream still gives exactly one close and never both finish and abort', { timeout: 30000 }, async () => {
  const N = 300;
  const { port, recs } = await sseServer((res) => res.sse.open(), { sse_heartbeat: 0 });
  const clients = [];
  for (let i = 0; i < N; i += 50) {
    const batch = Array.from({ length: Math.min(50, N - i) }, (_, k) => openSSE(port, `/sse?i=${i + k}`, {}, { keep: false }));
    clients.push(...(await Promise.all(batch)));
  }
  await until(() => recs.length === N, 10000, () => `${N} handlers, saw ${recs.length}`);
  await until(() => clients.every((c) => c.bodyLength > 0), 10000, 'every stream opened');
  const ends = ['sse.close', 'res.close', 'res.send'];
  recs.forEach((rec, i) => {
    // the socket of this very response
    const c = clients[Number(rec.req.query_parameters.i)];
    const end = ends[i % 3];
    const serverFirst = i % 2 === 0;
    if (!serverFirst) c.socket.resetAndDestroy();
    if (end === 'sse.close') rec.res.sse.close();
    else if (end === 'res.close') rec.res.close();
    else rec.res.send('bye');
    if (serverFirst) c.socket.resetAndDestroy();
  });
  await until(() => recs.every((r) => r.closed()), 10000, () => `all closed, ${recs.filter((r) => r.closed()).length}/${N}`);
  await sleep(200);
  for (const rec of recs) checkInvariants(assert, rec);
});
