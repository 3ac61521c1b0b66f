'use strict';
// Soak check (not part of `npm test`): random client behaviour against one in-process server,
// for a few rounds of 8 s with 300 concurrent clients. Prints per round the responses opened and
// closed, responses still pending, open connections, RSS, and how many event invariants broke
// (an event after `close`, `close` twice, `abort` together with `finish`). Every round should end
// with pending 0, conns 0 and bad 0, and RSS should stay flat. Exits 1 otherwise.
//
//   node --expose-gc scripts/soak.js [rounds=5]      (W=2: two runtime workers)

const net = require('node:net');
const HyperExpress = require('..');

const app = new HyperExpress.Server({
  max_body_length: 1 << 20,
  worker_threads: Number(process.env.W || 1),
});
const pending = new Set();
const bad = [];
let opened = 0;
let closed = 0;

/** Records the lifecycle events of one response and checks the invariants as they come. */
function track(req, res) {
  const rec = { url: req.url, names: [] };
  opened++;
  pending.add(rec);
  for (const name of ['prepare', 'abort', 'finish', 'close']) {
    res.on(name, () => {
      if (rec.names.includes('close')) bad.push(`${name} after close on ${rec.url}: ${rec.names}`);
      rec.names.push(name);
      if (name !== 'close') return;
      closed++;
      pending.delete(rec);
      if (rec.names.includes('abort') && rec.names.includes('finish')) bad.push(`abort and finish on ${rec.url}`);
    });
  }
}

app.get('/hello', (req, res) => {
  track(req, res);
  res.send('Hello World');
});
app.get('/sse', (req, res) => {
  track(req, res);
  const n = Number(req.query.n || 5);
  const ms = Number(req.query.ms || 5);
  let i = 0;
  res.sse.open();
  const timer = setInterval(() => {
    if (i++ >= n) {
      clearInterval(timer);
      res.sse.close();
      return;
    }
    res.sse.send('ev', String(i), 'x'.repeat(i % 50) + '\nline2');
  }, ms);
  res.once('close', () => clearInterval(timer));
});
app.post('/echo', async (req, res) => {
  track(req, res);
  res.send(await req.text());
});
app.get('/stream', (req, res) => {
  track(req, res);
  let left = 50;
  const chunk = Buffer.alloc(16384, 97);
  const pump = () => {
    while (left > 0) {
      left--;
      if (!res.write(chunk)) {
        res.once('drain', pump);
        return;
      }
    }
    res.end();
  };
  pump();
});

const rnd = (n) => Math.floor(Math.random() * n);

/** One client connection doing one random thing; resolves when its socket closed (≤ 0.8 s). */
function client(port) {
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1');
    s.on('error', () => {});
    const timer = setTimeout(() => s.destroy(), 800);
    s.on('close', () => {
      clearTimeout(timer);
      resolve();
    });
    const leave = () => [() => s.end(), () => s.destroy(), () => s.resetAndDestroy()][rnd(3)]();
    const later = (fn, ms) => setTimeout(fn, rnd(ms));
    s.on('connect', () => {
      switch (rnd(8)) {
        case 0: // keep-alive GETs, then leave at a random moment
          for (let i = 0; i < 1 + rnd(4); i++) s.write('GET /hello HTTP/1.1\r\nHost: x\r\n\r\n');
          later(leave, 20);
          break;
        case 1: // an SSE stream: leave early (FIN/RST), or read to its end; sometimes send junk
          s.write(`GET /sse?n=${rnd(20)}&ms=${1 + rnd(10)} HTTP/1.1\r\nHost: x\r\n\r\n`);
          if (rnd(2)) later(leave, 150);
          else s.on('data', (d) => d.includes('0\r\n\r\n') && s.end());
          if (rnd(4) === 0) later(() => s.write('junk'), 50);
          break;
        case 2: // a chunked body, sometimes never finished
          s.write('POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n');
          if (rnd(2)) later(() => s.write('0\r\n\r\n'), 20);
          later(leave, 40);
          break;
        case 3: // malformed
          s.write('BLAH / HTTP/1.1\r\n\x00\r\n\r\n');
          setTimeout(leave, 50);
          break;
        case 4: // a large streamed body, read slowly or abandoned
          s.write('GET /stream HTTP/1.1\r\nHost: x\r\n\r\n');
          if (rnd(2)) {
            s.pause();
            later(() => {
              s.resume();
              later(leave, 50);
            }, 100);
          } else later(leave, 100);
          break;
        case 5: // an HTTP/1.0 SSE stream
          s.write('GET /sse?n=3&ms=2 HTTP/1.0\r\nHost: x\r\n\r\n');
          s.resume();
          if (rnd(2)) later(leave, 30);
          break;
        case 6: // pipelined requests around an SSE request
          s.write(
            'GET /hello HTTP/1.1\r\nHost: x\r\n\r\n' +
              'GET /sse?n=2&ms=1 HTTP/1.1\r\nHost: x\r\n\r\n' +
              'GET /hello HTTP/1.1\r\nHost: x\r\n\r\n',
          );
          later(leave, 60);
          break;
        default: // not found, Connection: close
          s.write('GET /nope HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
          s.resume();
      }
    });
  });
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

(async () => {
  await app.listen(0, '127.0.0.1');
  let failed = false;
  for (let round = 0; round < Number(process.argv[2] || 5); round++) {
    const until = Date.now() + 8000;
    await Promise.all(
      Array.from({ length: 300 }, async () => {
        while (Date.now() < until) await client(app.port);
      }),
    );
    await sleep(1500);
    if (global.gc) global.gc();
    await sleep(500);
    const conns = app._native.connections;
    const rss = Math.round(process.memoryUsage.rss() / 1048576);
    console.log(
      `round ${round}: opened ${opened} closed ${closed} pending ${pending.size} conns ${conns} rss ${rss} MiB bad ${bad.length}`,
    );
    for (const rec of [...pending].slice(0, 3)) console.log('  pending', rec.url, rec.names.join(' '));
    if (pending.size > 0 || conns > 0 || bad.length > 0) failed = true;
  }
  for (const b of bad.slice(0, 10)) console.log('  bad:', b);
  await app.close();
  process.exitCode = failed ? 1 : 0;
})();
