// Idle keep-alive connections are parked (hyper's state and buffers dropped) and resume when the
// client sends again; nothing in flight is ever parked. `app._native.parked` counts them.
import { test, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, connect, buildRequest, cleanup, sleep, until } from './helpers.mjs';

afterEach(cleanup);

const T = { timeout: 20000 };

/** Number of complete `HTTP/1.1 200` responses in a raw client's data. */
const responses = (client) => client.text.split('HTTP/1.1 200').length - 1;

/** A server answering `ok <x-n header>`, and a raw connection that got its first response. */
async function echoConnection() {
  const { app, port } = await startServer((a) => a.get('/', (req, res) => res.send(`ok ${req.headers['x-n']}`)));
  const c = await connect(port);
  c.write(buildRequest({ path: '/', headers: { 'x-n': '1' } }));
  await c.waitUntil((x) => x.text.includes('ok 1'), 3000, 'first response');
  return { app, c };
}

/** Sends request `x-n: n` in two writes (the first `at` bytes, a pause, the rest); waits for `ok n`. */
async function sendSplit(c, n, at, pauseMs) {
  const req = buildRequest({ path: '/', headers: { 'x-n': String(n) } });
  c.write(req.subarray(0, at));
  await sleep(pauseMs);
  c.write(req.subarray(at));
  await c.waitUntil((x) => x.text.includes(`ok ${n}`), 3000, `the response to split request ${n}`);
}

test('an idle keep-alive connection is parked and the next request on it is answered', T, async () => {
  const { app, c } = await echoConnection();
  assert.equal(app._native.parked, 0, 'not parked right after a response');
  await until(() => app._native.parked === 1, 5000, 'the idle connection to be parked');
  assert.equal(c.closed, false);
  c.write(buildRequest({ path: '/', headers: { 'x-n': '2' } }));
  await c.waitUntil((x) => x.text.includes('ok 2'), 3000, 'the response after parking');
  assert.equal(app._native.parked, 0, 'resumed');
  assert.equal(app._native.connections, 1, 'on the same connection');
  // Parked again, and again resumed: a request split in two writes around the park.
  await until(() => app._native.parked === 1, 5000, 'parked a second time');
  await sendSplit(c, 3, 10, 50);
  assert.equal(responses(c), 3);
});

test('a request head that stops half way across a park is answered once the rest arrives', T, async () => {
  const { app, c } = await echoConnection();
  // The pause is long enough for the housekeeping task to ask for a park twice over.
  await sendSplit(c, 2, 20, 3200);
  assert.equal(responses(c), 2);
  assert.equal(c.closed, false);
  assert.equal(app._native.connections, 1);
});

test('nothing in flight is parked: a 3 s handler and a streamed body with 2.5 s pauses complete on a kept-alive connection', T, async () => {
  const setup = (a) => {
    a.get('/slow', async (req, res) => {
      await sleep(3000);
      res.send('slow done');
    });
    a.get('/stream', async (req, res) => {
      res.write('part1 ');
      await sleep(2500);
      res.write('part2 ');
      await sleep(2500);
      res.end('end');
    });
    a.get('/', (req, res) => res.send('ok'));
  };
  // One server per case: `parked` counts the server's connections, and each case watches it
  // only while its one connection has its request in flight.
  const cases = [
    ['/slow', 'slow done', 6000],
    ['/stream', 'end', 8000],
  ];
  await Promise.all(
    cases.map(async ([target, last, ms]) => {
      const { app, port } = await startServer(setup);
      const c = await connect(port);
      c.write(buildRequest({ path: target }));
      let parkedWhileBusy = 0;
      const watch = setInterval(() => {
        parkedWhileBusy = Math.max(parkedWhileBusy, app._native.parked);
      }, 50);
      try {
        await c.waitUntil((x) => x.text.includes(last), ms, `the ${target} response`);
      } finally {
        clearInterval(watch);
      }
      assert.equal(parkedWhileBusy, 0, `${target}: not parked while its request was in flight`);
      assert.doesNotMatch(c.text, /connection: close/i, `${target}: keep-alive was not given up`);
      if (target === '/stream') assert.match(c.text, /part1 [\s\S]*part2 [\s\S]*end/);
      c.write(buildRequest({ path: '/' }));
      await c.waitUntil((x) => x.text.endsWith('ok'), 3000, `${target}: a next request on the same connection`);
      assert.equal(c.closed, false);
    }),
  );
});

test('shutdown() and force_close() end parked connections at once', T, async () => {
  for (const how of ['shutdown', 'force_close']) {
    const { app, port } = await startServer((a) => a.get('/', (req, res) => res.send('ok')));
    const c = await connect(port);
    c.write(buildRequest({ path: '/' }));
    await c.response();
    await until(() => app._native.parked === 1, 5000, 'the connection to be parked');
    const t0 = Date.now();
    if (how === 'shutdown') await app.shutdown();
    else app.force_close();
    await c.waitClosed(2000);
    assert.ok(Date.now() - t0 < 1500, `${how}: closed after ${Date.now() - t0} ms`);
    assert.equal(c.text.split('HTTP/1.1').length - 1, 1, `${how}: nothing more was sent`);
  }
});

test('a request body paused for 2.5 s mid-upload is not parked: answered, and the connection stays keep-alive', T, async () => {
  const { app, port } = await startServer((a) => {
    a.post('/up', async (req, res) => res.send(`got ${(await req.text()).length}`));
    a.get('/', (req, res) => res.send('ok'));
  });
  const c = await connect(port);
  c.write('POST /up HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n12345');
  let parkedWhileBusy = 0;
  const watch = setInterval(() => {
    parkedWhileBusy = Math.max(parkedWhileBusy, app._native.parked);
  }, 50);
  try {
    await sleep(2500);
    c.write('67890');
    await c.waitUntil((x) => x.text.includes('got 10'), 3000, 'the upload response');
  } finally {
    clearInterval(watch);
  }
  assert.equal(parkedWhileBusy, 0);
  assert.doesNotMatch(c.text, /connection: close/i);
  c.write(buildRequest({ path: '/' }));
  await c.waitUntil((x) => x.text.endsWith('ok'), 3000, 'a next request on the same connection');
});

test('a large response waiting for a client that does not read is neither parked nor closed as idle', T, async () => {
  const big = Buffer.alloc(8 * 1024 * 1024, 'x');
  const { app, port } = await startServer(
    (a) => {
      a.get('/big', (req, res) => res.send(big));
      a.get('/', (req, res) => res.send('ok'));
    },
    { header_timeout: 1500 },
  );
  const c = await connect(port);
  c.socket.pause(); // the kernel buffers fill, then the server's write waits
  c.write(buildRequest({ path: '/big' }));
  let parked = 0;
  const watch = setInterval(() => {
    parked = Math.max(parked, app._native.parked);
  }, 50);
  await sleep(3500); // longer than header_timeout, with the write blocked all along
  clearInterval(watch);
  assert.equal(c.closed, false, 'not closed as idle');
  assert.equal(parked, 0, 'not parked');
  c.socket.resume();
  await c.waitUntil((x) => x.length >= big.length, 10000, 'the whole body');
  c.write(buildRequest({ path: '/' }));
  await c.waitUntil((x) => x.text.endsWith('ok'), 3000, 'a next request on the same connection');
});
