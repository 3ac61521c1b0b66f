// Channel: native fan-out with history and Last-Event-ID replay (issue 4, Must show 1).
import { test, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { EventSource } from 'eventsource';
import {
  lib,
  startServer,
  openSSE,
  cleanup,
  onCleanup,
  sleep,
  until,
  recordEvents,
  checkInvariants,
  assertSSEHead,
  runNode,
} from './helpers.mjs';

afterEach(cleanup);

const T = { timeout: 15000 };

/**
 * A server with GET /ch that subscribes every request's stream to `channel`.
 * Returns `{ port, url, recs, subs }` where subs[i] is what subscribe returned.
 */
async function channelServer(channel, options = {}, before = () => {}) {
  const recs = [];
  const subs = [];
  const s = await startServer((app) =>
    app.get('/ch', (req, res) => {
      const rec = recordEvents(req, res);
      recs.push(rec);
      before(req, res);
      subs.push(channel.subscribe(res.sse));
    }),
  options);
  return { ...s, recs, subs };
}

function newChannel(opts) {
  const { Channel } = lib();
  const ch = new Channel(opts);
  onCleanup(() => {
    try {
      ch.close();
    } catch {}
  });
  return ch;
}

test('subscribe() sends the SSE headers and channel.send writes id, event and data with increasing string ids', T, async () => {
  const ch = newChannel();
  const { port, recs } = await channelServer(ch);
  const client = await openSSE(port, '/ch');
  await client.waitHead();
  await until(() => ch.size === 1, 2000, 'one subscriber');
  assertSSEHead(assert, client.head);
  const ids = [ch.send('hello'), ch.send('ev', 'd'), ch.send('multi\nline'), ch.send('x-id', 'ev3', 'd3')];
  assert.deepEqual(ids, ['1', '2', '3', 'x-id']);
  await client.waitEvents(4);
  assert.equal(
    client.body,
    'id: 1\ndata: hello\n\n' + 'id: 2\nevent: ev\ndata: d\n\n' + 'id: 3\ndata: multi\ndata: line\n\n' + 'id: x-id\nevent: ev3\ndata: d3\n\n',
  );
  assert.deepEqual(recs[0].names, ['prepare']);
});

test('channel.send rejects CR/LF in event or id and NUL in id with a TypeError coded ERR_SSE_INVALID_FIELD, writing nothing', T, async () => {
  const ch = newChannel();
  const { port } = await channelServer(ch);
  const client = await openSSE(port, '/ch');
  await until(() => ch.size === 1, 2000, 'one subscriber');
  for (const args of [
    ['ev\nx', 'd'],
    ['ev\r', 'd'],
    ['1\n', 'ev', 'd'],
    ['1\0', 'ev', 'd'],
  ]) {
    assert.throws(
      () => ch.send(...args),
      (e) => e instanceof TypeError && e.code === 'ERR_SSE_INVALID_FIELD' && e.message.length > 0,
      JSON.stringify(args),
    );
  }
  ch.send('ok');
  await client.waitEvents(1);
  await sleep(30);
  assert.deepEqual(
    client.events.map((e) => e.data),
    ['ok'],
  );
  assert.ok(!client.body.includes('ev\n'), client.body);
});

test('size counts subscribers; unsubscribe() stops delivery while the stream stays open for its own sse.send', T, async () => {
  const ch = newChannel();
  const { port, recs } = await channelServer(ch);
  const a = await openSSE(port, '/ch?who=a');
  const b = await openSSE(port, '/ch?who=b');
  await until(() => ch.size === 2, 2000, 'two subscribers');
  const resA = recs.find((r) => r.req.query_parameters.who === 'a').res;
  ch.send('to-both');
  await a.waitEvents(1);
  await b.waitEvents(1);
  assert.equal(ch.unsubscribe(resA.sse), true);
  assert.equal(ch.size, 1);
  assert.equal(ch.unsubscribe(resA.sse), false, 'a second unsubscribe returns false');
  ch.send('to-b-only');
  resA.sse.send('own-send');
  await b.waitEvents(2);
  await a.waitEvents(2);
  await sleep(30);
  assert.deepEqual(
    a.events.map((e) => e.data),
    ['to-both', 'own-send'],
  );
  assert.deepEqual(
    b.events.map((e) => e.data),
    ['to-both', 'to-b-only'],
  );
  assert.equal(resA.sse.active, true);
  assert.equal(recs.find((r) => r.res === resA).closed(), false);
});

test('subscribe() of a stream that already ended returns false and leaves the channel unchanged', T, async () => {
  const ch = newChannel();
  let result;
  const { port } = await startServer((app) =>
    app.get('/ended', (req, res) => {
      res.sse.send('only');
      res.sse.close();
      result = ch.subscribe(res.sse);
    }),
  );
  const client = await openSSE(port, '/ended');
  await client.waitTerminated();
  ch.send('not for you');
  await sleep(30);
  assert.equal(result, false);
  assert.equal(ch.size, 0);
  assert.equal(client.afterEnd.length, 0);
});

test('after close(), subscribe() returns false and leaves the response untouched, and send() sends nothing and returns an empty id', T, async () => {
  const ch = newChannel({ history: 10 });
  ch.send('before close');
  ch.close();
  assert.equal(ch.send('after close'), '');
  let result;
  let initiated;
  const { port } = await startServer((app) =>
    app.get('/late', (req, res) => {
      result = ch.subscribe(res.sse);
      initiated = res.initiated;
      res.send('plain answer');
    }),
  );
  const r = await fetch(`http://127.0.0.1:${port}/late`, { signal: AbortSignal.timeout(3000) });
  assert.equal(await r.text(), 'plain answer');
  assert.doesNotMatch(r.headers.get('content-type') || '', /event-stream/);
  assert.equal(result, false);
  assert.equal(initiated, false, 'no SSE head was sent');
  assert.equal(ch.size, 0);
});

test('subscribe() of a response started as a plain stream with write() throws ERR_INVALID_STATE and writes nothing', T, async () => {
  const ch = newChannel();
  let code;
  const { port } = await startServer((app) =>
    app.get('/plain', (req, res) => {
      res.write('plain ');
      try {
        ch.subscribe(res.sse);
      } catch (err) {
        code = err.code;
      }
      ch.send('not for a plain stream');
      res.end('end');
    }),
  );
  const r = await fetch(`http://127.0.0.1:${port}/plain`, { signal: AbortSignal.timeout(3000) });
  assert.equal(await r.text(), 'plain end');
  assert.equal(code, 'ERR_INVALID_STATE');
  assert.equal(ch.size, 0);
});

test('a stream may be subscribed to several channels and gets the events of each', T, async () => {
  const news = newChannel();
  const alerts = newChannel();
  const { port } = await startServer((app) =>
    app.get('/both', (req, res) => {
      news.subscribe(res.sse);
      alerts.subscribe(res.sse);
    }),
  );
  const client = await openSSE(port, '/both');
  await until(() => news.size === 1 && alerts.size === 1, 2000, 'both subscriptions');
  news.send('news', 'n1');
  alerts.send('alert', 'a1');
  news.send('news', 'n2');
  await client.waitEvents(3);
  await sleep(30);
  // Order is guaranteed within a channel; across channels the spec promises nothing.
  const of = (name) => client.events.filter((e) => e.event === name).map((e) => e.data);
  assert.equal(client.events.length, 3);
  assert.deepEqual(of('news'), ['n1', 'n2']);
  assert.deepEqual(of('alert'), ['a1']);
});

test('1,000 subscribers each receive every one of 1,000 events in order, without loss or duplicate', { timeout: 90000 }, async () => {
  const N = 1000;
  const EVENTS = 1000;
  const ch = newChannel();
  const { port, recs } = await channelServer(ch, { sse_heartbeat: 0 });
  const state = [];
  const clients = [];
  for (let i = 0; i < N; i += 100) {
    const batch = await Promise.all(Array.from({ length: Math.min(100, N - i) }, () => openSSE(port, '/ch', {}, { keep: false })));
    for (const c of batch) {
      const st = { next: 1, bad: null };
      c.parser.keepEvents = false;
      c.parser.onEvent = (ev) => {
        if (st.bad) return;
        const want = String(st.next);
        if (ev.id !== want || ev.data !== `payload-${want}` || ev.event !== 'tick') st.bad = `expected id ${want}, got ${JSON.stringify(ev)}`;
        st.next++;
      };
      state.push(st);
      clients.push(c);
    }
  }
  await until(() => ch.size === N, 20000, () => `${N} subscribers, have ${ch.size}`);
  for (let i = 1; i <= EVENTS; i++) {
    const id = ch.send('tick', `payload-${i}`);
    assert.equal(id, String(i));
    if (i % 50 === 0) await new Promise((r) => setImmediate(r));
  }
  await until(() => state.every((s) => s.next > EVENTS || s.bad), 40000, () => {
    const done = state.filter((s) => s.next > EVENTS).length;
    return `every client to get ${EVENTS} events (${done}/${N} done)`;
  });
  const bad = state.filter((s) => s.bad);
  assert.equal(bad.length, 0, bad.slice(0, 3).map((s) => s.bad).join('\n'));
  assert.ok(state.every((s) => s.next === EVENTS + 1));
  // channel.close() ends every stream from the server side: finish, close.
  ch.close();
  await until(() => clients.every((c) => c.terminated), 20000, 'every stream ended with the last chunk');
  await until(() => recs.every((r) => r.closed()), 5000, 'close on every response');
  await sleep(50);
  assert.equal(ch.size, 0);
  for (const rec of recs) {
    assert.deepEqual(rec.names.filter((n) => n !== 'drain'), ['prepare', 'finish', 'close']);
    assert.equal(rec.res.close_reason, 'server');
  }
  assert.equal(clients.reduce((n, c) => n + c.parser.count, 0), N * EVENTS);
});

test('channel.close() gives finish then close on each subscriber, ends each stream and empties the channel', T, async () => {
  const ch = newChannel();
  const { port, recs } = await channelServer(ch);
  const clients = [];
  for (let i = 0; i < 10; i++) clients.push(await openSSE(port, '/ch'));
  await until(() => ch.size === 10, 2000, 'ten subscribers');
  ch.send('bye-soon');
  ch.close();
  for (const c of clients) await c.waitTerminated();
  await until(() => recs.every((r) => r.closed()), 2000, 'close everywhere');
  await sleep(50);
  assert.equal(ch.size, 0);
  for (const [i, rec] of recs.entries()) {
    assert.deepEqual(rec.names, ['prepare', 'finish', 'close']);
    assert.equal(rec.res.close_reason, 'server');
    assert.equal(rec.res.sse.active, false);
    assert.deepEqual(
      clients[i].events.map((e) => e.data),
      ['bye-soon'],
    );
    checkInvariants(assert, rec);
  }
});

test('subscribers that disconnect are removed and their responses emit abort then close exactly once', T, async () => {
  const ch = newChannel({ history: 10 });
  const { port, recs } = await channelServer(ch);
  const clients = [];
  for (let i = 0; i < 100; i++) clients.push(await openSSE(port, '/ch', {}, { keep: false }));
  await until(() => ch.size === 100, 5000, 'a hundred subscribers');
  ch.send('before');
  for (const c of clients) await c.waitEvents(1);
  clients.forEach((c, i) => (i % 2 ? c.socket.end() : c.socket.resetAndDestroy()));
  ch.send('during');
  await until(() => recs.every((r) => r.closed()), 5000, () => `all closed, ${recs.filter((r) => r.closed()).length}/100`);
  await until(() => ch.size === 0, 3000, () => `an empty channel, size ${ch.size}`);
  for (let i = 0; i < 5; i++) ch.send('after');
  await sleep(100);
  for (const rec of recs) {
    assert.deepEqual(rec.names.filter((n) => n !== 'drain'), ['prepare', 'abort', 'close']);
    assert.equal(rec.res.close_reason, 'client');
    checkInvariants(assert, rec);
  }
});

test('a reconnecting eventsource client gets exactly the missed events from history via Last-Event-ID', { timeout: 20000 }, async () => {
  const ch = newChannel({ history: 100 });
  const seenHeaders = [];
  const { url, recs, subs } = await channelServer(ch, {}, (req, res) => {
    seenHeaders.push(req.headers['last-event-id']);
    res.sse.retry(300);
  });
  const es = new EventSource(`${url}/ch`);
  onCleanup(() => es.close());
  const got = [];
  es.addEventListener('message', (e) => got.push([e.lastEventId, e.data]));
  await until(() => ch.size === 1, 3000, 'the first subscription');
  for (let i = 1; i <= 3; i++) ch.send(`m${i}`);
  await until(() => got.length === 3, 3000, 'three live events');
  // The server ends the stream; events sent while the client is away must be replayed.
  recs[0].res.sse.close();
  for (let i = 4; i <= 6; i++) ch.send(`m${i}`);
  await until(() => subs.length === 2, 5000, 'the reconnection');
  ch.send('m7');
  await until(() => got.length >= 7, 3000, () => `seven events, got ${JSON.stringify(got)}`);
  await sleep(50);
  assert.deepEqual(seenHeaders, [undefined, '3']);
  assert.deepEqual(
    got,
    Array.from({ length: 7 }, (_, i) => [String(i + 1), `m${i + 1}`]),
  );
});

test('a last_event_id query parameter replays history on a first connect', T, async () => {
  const ch = newChannel({ history: 50 });
  const { port, subs } = await channelServer(ch);
  for (let i = 1; i <= 5; i++) ch.send(`q${i}`);
  const client = await openSSE(port, '/ch?last_event_id=2');
  await until(() => ch.size === 1, 2000, 'the subscription');
  ch.send('q6');
  await client.waitEvents(4);
  await sleep(50);
  assert.deepEqual(
    client.events.map((e) => [e.id, e.data]),
    [
      ['3', 'q3'],
      ['4', 'q4'],
      ['5', 'q5'],
      ['6', 'q6'],
    ],
  );
  assert.notEqual(subs[0], false, 'subscribe() succeeded');
});

test('a Last-Event-ID older than the history gets a replay-unavailable event, then the whole history, then live events', T, async () => {
  const ch = newChannel({ history: 3 });
  const { port } = await channelServer(ch);
  for (let i = 1; i <= 10; i++) ch.send(`h${i}`);
  const client = await openSSE(port, '/ch', { 'Last-Event-ID': '2' });
  await until(() => ch.size === 1, 2000, 'the subscription');
  ch.send('h11');
  await client.waitEvents(5);
  await sleep(50);
  const [first, ...rest] = client.events;
  assert.equal(first.event, 'replay-unavailable');
  assert.deepEqual(JSON.parse(first.data), { requested: '2' });
  assert.deepEqual(
    rest.map((e) => [e.id, e.data]),
    [
      ['8', 'h8'],
      ['9', 'h9'],
      ['10', 'h10'],
      ['11', 'h11'],
    ],
  );
});

test('an unknown Last-Event-ID gets replay-unavailable naming it', T, async () => {
  const ch = newChannel({ history: 5 });
  const { port } = await channelServer(ch);
  ch.send('u1');
  const client = await openSSE(port, '/ch', { 'Last-Event-ID': 'no-such-id' });
  await client.waitEvents(2);
  assert.equal(client.events[0].event, 'replay-unavailable');
  assert.deepEqual(JSON.parse(client.events[0].data), { requested: 'no-such-id' });
  assert.deepEqual([client.events[1].id, client.events[1].data], ['1', 'u1']);
});

test('replay switches to live events with no gap and no duplicate while broadcasting continues', { timeout: 20000 }, async () => {
  const ch = newChannel({ history: 100000 });
  const { port } = await channelServer(ch, { sse_heartbeat: 0 });
  let sent = 0;
  let stop = false;
  const broadcaster = (async () => {
    while (!stop) {
      for (let i = 0; i < 5; i++) ch.send(`b${++sent}`);
      await new Promise((r) => setImmediate(r));
    }
  })();
  await until(() => sent >= 200, 5000, '200 events sent');
  const clients = [];
  for (const from of ['50', '150', String(sent)]) clients.push({ from: Number(from), c: await openSSE(port, '/ch', { 'Last-Event-ID': from }, { keep: false }) });
  await until(() => ch.size === 3, 3000, 'three subscriptions');
  await sleep(200);
  stop = true;
  await broadcaster;
  const last = sent;
  for (const { c } of clients) await until(() => c.events.length && c.events[c.events.length - 1].id === String(last), 5000, 'the last event');
  for (const { from, c } of clients) {
    const ids = c.events.map((e) => Number(e.id));
    const expected = Array.from({ length: last - from }, (_, i) => from + 1 + i);
    assert.equal(ids.length, expected.length, `from ${from}: ${ids.length} events, expected ${expected.length}`);
    assert.deepEqual(ids, expected);
    assert.ok(c.events.every((e) => e.data === `b${e.id}`));
  }
});

test('one subscriber that stops reading does not delay the others and is evicted at the cap as slow_client', { timeout: 60000 }, async () => {
  const ch = newChannel();
  // Cap 128 KiB; each batch below is 16 KiB, so a subscriber that reads is never near the cap.
  const { port, recs } = await channelServer(ch, { max_queued_bytes: 128 * 1024, sse_heartbeat: 0 });
  const stalled = await openSSE(port, '/ch', {}, { keep: false });
  await until(() => ch.size === 1, 2000, 'the stalled subscriber');
  const normal = [];
  for (let i = 0; i < 5; i++) {
    const c = await openSSE(port, '/ch', {}, { keep: false });
    c.parser.keepEvents = false;
    normal.push(c);
  }
  await until(() => ch.size === 6, 2000, 'six subscribers');
  ch.send('start');
  await stalled.waitEvents(1);
  stalled.socket.pause();
  const stalledRec = recs[0];
  const payload = 'p'.repeat(2048);
  let sent = 1;
  let maxWait = 0;
  let extraBatches = 0;
  for (let batch = 0; batch < 3000 && extraBatches < 10; batch++) {
    for (let i = 0; i < 8; i++) {
      ch.send(payload);
      sent++;
    }
    const t0 = Date.now();
    await until(() => normal.every((c) => c.parser.count === sent), 3000, () => `normal subscribers to get ${sent} events: ${normal.map((c) => c.parser.count)}`);
    maxWait = Math.max(maxWait, Date.now() - t0);
    if (stalledRec.res.completed) extraBatches++;
  }
  assert.ok(stalledRec.res.completed, 'the stalled subscriber was evicted');
  await until(() => stalledRec.closed(), 2000, 'close of the stalled subscriber');
  assert.deepEqual(stalledRec.names.filter((n) => n !== 'drain'), ['prepare', 'abort', 'close']);
  assert.equal(stalledRec.res.close_reason, 'slow_client');
  assert.equal(ch.size, 5);
  assert.ok(maxWait < 1000, `normal subscribers waited at most ${maxWait} ms for a batch`);
  for (const rec of recs.slice(1)) assert.equal(rec.closed(), false);
  checkInvariants(assert, stalledRec);
});

test('client resets racing with channel.close() still give exactly one close per subscriber, never both finish and abort', { timeout: 20000 }, async () => {
  const N = 200;
  const ch = newChannel();
  const { port, recs } = await channelServer(ch, { sse_heartbeat: 0 });
  const clients = [];
  for (let i = 0; i < N; i += 50) {
    clients.push(...(await Promise.all(Array.from({ length: Math.min(50, N - i) }, () => openSSE(port, '/ch', {}, { keep: false })))));
  }
  await until(() => ch.size === N, 10000, () => `${N} subscribers, have ${ch.size}`);
  ch.send('x');
  for (const c of clients) await c.waitEvents(1);
  clients.slice(0, N / 2).forEach((c) => c.socket.resetAndDestroy());
  ch.close();
  clients.slice(N / 2).forEach((c) => c.socket.resetAndDestroy());
  await until(() => recs.every((r) => r.closed()), 10000, () => `all closed, ${recs.filter((r) => r.closed()).length}/${N}`);
  await sleep(200);
  for (const rec of recs) checkInvariants(assert, rec);
  assert.equal(ch.size, 0);
});

test('an id the app used twice replays from its latest use, so a client that saw it gets no duplicate', T, async () => {
  const ch = newChannel({ history: 10 });
  const { port } = await channelServer(ch);
  ch.send('a', null, 'first a');
  ch.send('b', null, 'b');
  ch.send('a', null, 'second a');
  ch.send('c', null, 'c');
  const client = await openSSE(port, '/ch', { 'Last-Event-ID': 'a' });
  await until(() => ch.size === 1, 2000, 'the subscription');
  await client.waitEvents(1);
  await sleep(50);
  assert.deepEqual(client.events.map((e) => [e.id, e.data]), [['c', 'c']]);
});

test('replay from the oldest id still in history, or from an explicit id, sends exactly the later events and no replay-unavailable', T, async () => {
  const ch = newChannel({ history: 3 });
  const { port } = await channelServer(ch);
  for (let i = 1; i <= 10; i++) ch.send(`o${i}`);
  const oldest = await openSSE(port, '/ch', { 'Last-Event-ID': '8' });
  await until(() => ch.size === 1, 2000, 'the first subscription');
  await oldest.waitEvents(2);
  ch.send('custom-id', 'ev', 'c');
  ch.send('after-custom');
  const fromCustom = await openSSE(port, '/ch', { 'Last-Event-ID': 'custom-id' });
  await until(() => ch.size === 2, 2000, 'the second subscription');
  await fromCustom.waitEvents(1);
  ch.send('live');
  await oldest.waitEvents(5);
  await fromCustom.waitEvents(2);
  await sleep(50);
  assert.deepEqual(
    oldest.events.map((e) => [e.id, e.data]),
    [
      ['9', 'o9'],
      ['10', 'o10'],
      ['custom-id', 'c'],
      ['11', 'after-custom'],
      ['12', 'live'],
    ],
  );
  assert.deepEqual(
    fromCustom.events.map((e) => [e.id, e.data]),
    [
      ['11', 'after-custom'],
      ['12', 'live'],
    ],
  );
});

test('one channel can serve subscribers of two servers in the same process', T, async () => {
  const ch = newChannel({ history: 5 });
  const a = await channelServer(ch);
  const b = await channelServer(ch);
  const ca = await openSSE(a.port, '/ch');
  const cb = await openSSE(b.port, '/ch');
  await until(() => ch.size === 2, 2000, 'two subscribers on two servers');
  ch.send('to-both');
  await ca.waitEvents(1);
  await cb.waitEvents(1);
  ch.close();
  await ca.waitTerminated();
  await cb.waitTerminated();
  await until(() => a.recs[0].closed() && b.recs[0].closed(), 2000, 'close on both');
  assert.deepEqual(a.recs[0].names, ['prepare', 'finish', 'close']);
  assert.deepEqual(b.recs[0].names, ['prepare', 'finish', 'close']);
});

test('channel.send overloads follow the argument count and empty data is still an event', T, async () => {
  const ch = newChannel();
  const { port } = await channelServer(ch);
  const client = await openSSE(port, '/ch');
  await until(() => ch.size === 1, 2000, 'one subscriber');
  const ids = [ch.send(''), ch.send(null, 'e', 'd'), ch.send(undefined, null, 0), ch.send('ev', undefined)];
  await client.waitEvents(4);
  assert.deepEqual(ids, ['1', '2', '3', '4']);
  assert.deepEqual(
    client.events.map((e) => [e.id, e.event, e.data]),
    [
      ['1', 'message', ''],
      ['2', 'e', 'd'],
      ['3', 'message', '0'],
      ['4', 'ev', ''],
    ],
  );
});

test('a Channel history is counted by the garbage collector: dropped channels are finalized without an explicit gc(), and close() frees it at once', { timeout: 60000 }, async () => {
  const script = `
    const { Channel } = require('.');
    let finalized = 0;
    const reg = new FinalizationRegistry(() => finalized++);
    const rss = () => Math.round(process.memoryUsage().rss / 1048576);
    (async () => {
      const out = {};
      for (const mode of ['drop', 'close']) {
        finalized = 0;
        const before = rss();
        let peak = before;
        for (let round = 0; round < 6; round++) {
          for (let i = 0; i < 500; i++) {
            const ch = new Channel({ history: 100 });
            for (let k = 0; k < 100; k++) ch.send('x'.repeat(1024));
            if (mode === 'close') ch.close();
            reg.register(ch, i);
          }
          await new Promise((r) => setImmediate(r));
          peak = Math.max(peak, rss());
        }
        out[mode] = { finalized, before, peak };
      }
      console.log(JSON.stringify(out));
    })();
  `;
  const r = await runNode(script, { ms: 55000 });
  assert.equal(r.code, 0, r.stderr);
  const out = JSON.parse(r.stdout.trim());
  // 3,000 channels of ~110 KiB history each: ~330 MiB if nothing were freed.
  assert.ok(out.drop.finalized >= 1500, `dropped channels are finalized as they pile up: ${JSON.stringify(out)}`);
  assert.ok(out.drop.peak - out.drop.before < 250, `memory stays bounded: ${JSON.stringify(out)}`);
  assert.ok(out.close.peak - out.close.before < 60, `close() frees the history at once: ${JSON.stringify(out)}`);
});
