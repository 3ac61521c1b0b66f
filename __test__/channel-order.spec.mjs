// A stream subscribed to several channels receives their events in the order JS sent them, and
// unsubscribe() takes effect exactly between the events sent before and after it.
import test from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
const { Server, Channel } = require('..');

function sseData(text) {
  return [...text.matchAll(/^data: (.*)$/gm)].map((m) => m[1]);
}

async function withStream(setup, body) {
  const app = new Server({ auto_close: false });
  const channels = setup(app);
  await app.listen(0, '127.0.0.1');
  const sock = net.connect(app.port, '127.0.0.1');
  let text = '';
  sock.on('data', (d) => (text += d));
  try {
    await new Promise((resolve, reject) => {
      sock.once('connect', resolve);
      sock.once('error', reject);
    });
    sock.write('GET /s HTTP/1.1\r\nHost: x\r\n\r\n');
    const t0 = Date.now();
    while (!text.includes('\r\n\r\n') && Date.now() - t0 < 3000) await new Promise((r) => setTimeout(r, 10));
    await new Promise((r) => setTimeout(r, 30));
    return await body(channels, () => text);
  } finally {
    sock.destroy();
    app.force_close();
  }
}

async function waitCount(read, n, ms = 3000) {
  const t0 = Date.now();
  while (sseData(read()).length < n && Date.now() - t0 < ms) await new Promise((r) => setTimeout(r, 10));
  return sseData(read());
}

/** One channel `a`; `stream()` gives the subscribed `res.sse` once the request arrived. */
function oneChannel(app) {
  const a = new Channel();
  let sse;
  app.get('/s', (req, res) => {
    sse = res.sse;
    a.subscribe(res.sse);
  });
  return { a, stream: () => sse };
}

test('events of two channels reach a stream subscribed to both in send order', { timeout: 10000 }, async () => {
  await withStream(
    (app) => {
      const a = new Channel();
      const b = new Channel();
      app.get('/s', (req, res) => {
        a.subscribe(res.sse);
        b.subscribe(res.sse);
      });
      return { a, b };
    },
    async ({ a, b }, read) => {
      const want = [];
      for (let i = 0; i < 300; i++) {
        a.send('a' + i);
        b.send('b' + i);
        want.push('a' + i, 'b' + i);
        if (i % 7 === 0) {
          a.send('x' + i);
          want.push('x' + i);
        }
      }
      assert.deepEqual(await waitCount(read, want.length), want);
    },
  );
});

test('unsubscribe() between two sends: the first arrives, the second does not', { timeout: 10000 }, async () => {
  await withStream(
    oneChannel,
    async ({ a, stream }, read) => {
      const sse = stream();
      a.send('before');
      a.unsubscribe(sse);
      a.send('after');
      sse.send('own');
      assert.deepEqual(await waitCount(read, 2), ['before', 'own']);
      await new Promise((r) => setTimeout(r, 100));
      assert.deepEqual(sseData(read()), ['before', 'own']);
    },
  );
});

test('sse.close() right after channel.send() ends the stream after that event', { timeout: 10000 }, async () => {
  await withStream(
    oneChannel,
    async ({ a, stream }, read) => {
      const sse = stream();
      a.send('last words');
      sse.close();
      const t0 = Date.now();
      while (!read().includes('0\r\n\r\n') && Date.now() - t0 < 3000) await new Promise((r) => setTimeout(r, 10));
      const text = read();
      assert.ok(text.includes('0\r\n\r\n'), 'the chunked body ended');
      assert.ok(text.indexOf('data: last words') >= 0, 'the event arrived');
      assert.ok(text.indexOf('data: last words') < text.indexOf('0\r\n\r\n'), 'before the end');
    },
  );
});
