// Real SSE clients (issue 3, Must show 2): the `eventsource` npm package and a headless
// Chromium driven by playwright-core.
import { test, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { EventSource } from 'eventsource';
import { startServer, cleanup, onCleanup, until, sleep, recordEvents, checkInvariants } from './helpers.mjs';

afterEach(cleanup);

function eventSource(url, types = []) {
  const es = new EventSource(url);
  onCleanup(() => es.close());
  const got = [];
  const push = (e) => got.push({ type: e.type, data: e.data, lastEventId: e.lastEventId });
  es.addEventListener('message', push);
  for (const t of types) es.addEventListener(t, push);
  return { es, got };
}

test('the eventsource package receives multi-line, unicode and empty data, ids and event names intact', { timeout: 15000 }, async () => {
  let rec;
  const { url } = await startServer((app) =>
    app.get('/events', (req, res) => {
      rec = recordEvents(req, res);
      res.sse.send('first line\nsecond line\r\nthird line');
      res.sse.send('héllo ✓ 🚀 日本語');
      res.sse.send('');
      res.sse.send('id-1', 'named', 'with id');
      res.sse.send('other', 'no id here');
      res.sse.send('id-2', null, 'plain with id');
    }),
  );
  const { es, got } = eventSource(`${url}/events`, ['named', 'other']);
  await until(() => got.length >= 6, 5000, () => `six events, got ${JSON.stringify(got)}`);
  assert.deepEqual(got, [
    { type: 'message', data: 'first line\nsecond line\nthird line', lastEventId: '' },
    { type: 'message', data: 'héllo ✓ 🚀 日本語', lastEventId: '' },
    { type: 'message', data: '', lastEventId: '' },
    { type: 'named', data: 'with id', lastEventId: 'id-1' },
    // The eventsource package reports only the event's own id (WHATWG keeps 'id-1';
    // the Chromium test below checks that the id persists on the wire).
    { type: 'other', data: 'no id here', lastEventId: '' },
    { type: 'message', data: 'plain with id', lastEventId: 'id-2' },
  ]);
  es.close();
  await until(() => rec.closed(), 5000, 'abort and close on the server after es.close()');
  await sleep(30);
  assert.deepEqual(rec.names, ['prepare', 'abort', 'close']);
  checkInvariants(assert, rec);
});

test('a stream opened with open() is accepted by the eventsource package (SSE headers sent, D5)', { timeout: 15000 }, async () => {
  const { url } = await startServer((app) =>
    app.get('/events', (req, res) => {
      res.sse.open();
      setTimeout(() => res.sse.send('after-open'), 30);
    }),
  );
  const { es, got } = eventSource(`${url}/events`);
  let errors = 0;
  es.addEventListener('error', () => errors++);
  await until(() => got.length >= 1, 5000, 'an event');
  assert.equal(got[0].data, 'after-open');
  assert.equal(errors, 0);
});

test('the eventsource package reconnects after the retry time and sends Last-Event-ID, visible in req.headers', { timeout: 15000 }, async () => {
  const seen = [];
  const { url } = await startServer((app) =>
    app.get('/events', (req, res) => {
      seen.push(req.headers['last-event-id']);
      if (seen.length === 1) {
        res.sse.retry(50);
        res.sse.send('7', 'tick', 'a');
        setTimeout(() => res.sse.close(), 30);
      } else {
        res.sse.send('8', 'tick', 'b');
      }
    }),
  );
  const { got } = eventSource(`${url}/events`, ['tick']);
  await until(() => got.length >= 2, 5000, () => `two events, got ${JSON.stringify(got)}`);
  assert.deepEqual(seen, [undefined, '7']);
  assert.deepEqual(
    got.map((e) => [e.data, e.lastEventId]),
    [
      ['a', '7'],
      ['b', '8'],
    ],
  );
});

const CHROMIUM = '/usr/bin/chromium';

test('a headless Chromium EventSource page receives events, closes, and the server sees abort then close', { timeout: 60000, skip: !fs.existsSync(CHROMIUM) && `${CHROMIUM} missing` }, async () => {
  const { chromium } = await import('playwright-core');
  const recs = [];
  const { url } = await startServer((app) => {
    app.get('/', (req, res) =>
      res.html(`<!doctype html><meta charset="utf-8"><title>sse</title>
<script>
window.got = [];
window.es = new EventSource('/events');
window.es.onmessage = (e) => window.got.push({ data: e.data, id: e.lastEventId });
window.es.addEventListener('named', (e) => window.got.push({ type: 'named', data: e.data, id: e.lastEventId }));
</script>`),
    );
    app.get('/events', (req, res) => {
      recs.push(recordEvents(req, res));
      res.sse.open();
      res.sse.send('1', null, 'one');
      res.sse.send('two\nlines ✓');
      res.sse.send('3', 'named', 'three');
    });
  });
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
    timeout: 30000,
  });
  onCleanup(() => browser.close());
  const page = await browser.newPage();
  await page.goto(url + '/', { timeout: 15000 });
  await page.waitForFunction(() => window.got.length >= 3, null, { timeout: 10000 });
  const got = await page.evaluate(() => window.got);
  assert.deepEqual(got, [
    { data: 'one', id: '1' },
    { data: 'two\nlines ✓', id: '1' },
    { type: 'named', data: 'three', id: '3' },
  ]);
  assert.equal(recs.length, 1, 'one EventSource connection');
  await page.evaluate(() => window.es.close());
  const rec = recs[0];
  await until(() => rec.closed(), 5000, () => `abort and close after es.close(), saw ${JSON.stringify(rec.names)}`);
  await sleep(30);
  assert.deepEqual(rec.names, ['prepare', 'abort', 'close']);
  assert.equal(rec.res.close_reason, 'client');
  checkInvariants(assert, rec);
  await browser.close();
});
