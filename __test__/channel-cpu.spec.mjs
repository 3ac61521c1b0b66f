// Issue 4, Must show 2: the JS thread's work per broadcast does not grow with the number
// of subscribers. A structural check, not a benchmark: the time the JS thread spends inside
// channel.send() is compared at 100 and 10,000 subscribers. The subscribers live in a child process so that their reading
// costs nothing on this thread and each process stays under the file-descriptor limit.
import { test, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { lib, startServer, cleanup, onCleanup, until } from './helpers.mjs';

afterEach(cleanup);

const CLIENTS = `
const net = require('net');
const port = Number(process.argv[1]);
let total = 0;
let headed = 0;
const sockets = [];
function open() {
  return new Promise((resolve) => {
    const s = net.connect({ port, host: '127.0.0.1' });
    let head = false;
    let lastNl = false;
    s.on('connect', () => { s.write('GET /ch HTTP/1.1\\r\\nHost: x\\r\\n\\r\\n'); resolve(); });
    s.on('data', (d) => {
      const t = d.toString('latin1');
      if (!head && t.includes('HTTP/1.1 200')) { head = true; headed++; }
      let i = -1;
      if (lastNl && t[0] === '\\n') total++;
      while ((i = t.indexOf('\\n\\n', i + 1)) !== -1) total++;
      lastNl = t[t.length - 1] === '\\n';
    });
    s.on('error', () => resolve());
    sockets.push(s);
  });
}
let buf = '';
process.stdin.on('data', async (d) => {
  buf += d;
  let nl;
  while ((nl = buf.indexOf('\\n')) !== -1) {
    const line = buf.slice(0, nl);
    buf = buf.slice(nl + 1);
    const [cmd, arg] = line.split(' ');
    if (cmd === 'OPEN') {
      const want = sockets.length + Number(arg);
      while (sockets.length < want) {
        const batch = [];
        for (let i = 0; i < 200 && sockets.length < want; i++) batch.push(open());
        await Promise.all(batch);
      }
      const wait = () => (headed >= want ? process.stdout.write('OPENED ' + headed + '\\n') : setTimeout(wait, 10));
      wait();
    }
  }
});
process.stdin.on('end', () => process.exit(0));
setInterval(() => process.stdout.write('COUNT ' + total + '\\n'), 100);
`;

function clientProcess(port) {
  const child = spawn(process.execPath, ['-e', CLIENTS, String(port)], { stdio: ['pipe', 'pipe', 'inherit'] });
  onCleanup(() => {
    child.stdin.end();
    child.kill('SIGKILL');
  });
  const state = { opened: 0, count: 0 };
  let out = '';
  child.stdout.on('data', (d) => {
    out += d;
    let nl;
    while ((nl = out.indexOf('\n')) !== -1) {
      const [cmd, n] = out.slice(0, nl).split(' ');
      out = out.slice(nl + 1);
      if (cmd === 'OPENED') state.opened = Number(n);
      if (cmd === 'COUNT') state.count = Number(n);
    }
  });
  return {
    state,
    open: (n) => child.stdin.write(`OPEN ${n}\n`),
  };
}

/**
 * JS-thread time (ns) per channel.send(): the synchronous loop runs only on this thread, so its
 * wall time is this thread's work plus any preemption; the minimum over `rounds` rounds filters
 * the preemption out. (/proc/thread-self/schedstat is only updated at scheduler ticks, too coarse
 * for a loop of a few hundred microseconds.)
 */
function timePerSend(channel, m, rounds) {
  let best = Infinity;
  for (let r = 0; r < rounds; r++) {
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < m; i++) channel.send('x');
    const t1 = process.hrtime.bigint();
    best = Math.min(best, Number(t1 - t0) / m);
  }
  return best;
}

test('the JS thread CPU time per channel.send() does not grow with the number of subscribers (100 vs 10,000)', { timeout: 120000 }, async (t) => {
  const { Channel } = lib();
  const ch = new Channel();
  onCleanup(() => ch.close());
  const { port } = await startServer((app) => app.get('/ch', (req, res) => ch.subscribe(res.sse)), { sse_heartbeat: 0 });
  const clients = clientProcess(port);
  const M = 50;
  const ROUNDS = 8;
  let expected = 0;

  clients.open(100);
  await until(() => clients.state.opened === 100 && ch.size === 100, 20000, () => `100 subscribers (${clients.state.opened}, size ${ch.size})`);
  for (let i = 0; i < 20; i++) ch.send('warm-up');
  expected += 20 * 100;
  const small = timePerSend(ch, M, ROUNDS);
  expected += M * ROUNDS * 100;
  await until(() => clients.state.count >= expected, 20000, () => `${expected} events delivered at 100 subscribers, got ${clients.state.count}`);

  clients.open(9900);
  await until(() => clients.state.opened === 10000 && ch.size === 10000, 60000, () => `10,000 subscribers (${clients.state.opened}, size ${ch.size})`);
  for (let i = 0; i < 20; i++) ch.send('warm-up');
  expected += 20 * 10000;
  const large = timePerSend(ch, M, ROUNDS);
  expected += M * ROUNDS * 10000;
  await until(() => clients.state.count >= expected, 60000, () => `${expected} events delivered at 10,000 subscribers, got ${clients.state.count}`);

  await new Promise((r) => setTimeout(r, 300));
  const ratio = large / small;
  t.diagnostic(`JS-thread time per send: ${(small / 1000).toFixed(2)} µs at 100, ${(large / 1000).toFixed(2)} µs at 10,000 subscribers (ratio ${ratio.toFixed(2)})`);
  assert.equal(clients.state.count, expected, 'every subscriber got every event exactly once');
  assert.ok(ratio < 5, `100× more subscribers cost ${ratio.toFixed(2)}× more JS-thread time per send (limit 5×)`);
});
