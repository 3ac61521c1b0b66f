// The `npm start` demo (issue 5): it starts, prints its URL, serves a page whose EventSource shows
// live Channel events, reflects a second page's disconnect (abort, close, close_reason) on the
// first page within a second, and exits cleanly on SIGTERM/SIGINT through server.shutdown().
// Driven with Debian's chromium through playwright-core, over 127.0.0.1 only.
import test from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

/** fetch() with a bounded wait (5 s) for plain requests. */
const request = (url, init = {}) => fetch(url, { signal: AbortSignal.timeout(5000), ...init });
const CHROMIUM = '/usr/bin/chromium';
const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

/**
 * Starts `node demo/server.js ...args` (or `npm start -- ...args` with `viaNpm`); resolves once it
 * printed its URL (bounded).
 */
function startDemo(args = [], env = {}, { ms = 10000, viaNpm = false } = {}) {
  const npmCli = process.env.npm_execpath;
  const [command, argv] = !viaNpm
    ? [process.execPath, [path.join(ROOT, 'demo', 'server.js'), ...args]]
    : npmCli && /\.c?js$/.test(npmCli)
      ? [process.execPath, [npmCli, 'start', '--silent', '--', ...args]]
      : ['npm', ['start', '--silent', '--', ...args]];
  // Through npm, the demo runs in its own process group and signals go to the whole group, the
  // way Ctrl+C in a terminal does (npm itself does not forward SIGINT to the script).
  const child = spawn(command, argv, {
    cwd: ROOT,
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: viaNpm,
  });
  const sendSignal = (name) => {
    try {
      if (viaNpm) process.kill(-child.pid, name);
      else child.kill(name);
    } catch {
      // already gone
    }
  };
  let out = '';
  const exited = new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
  const url = new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`demo printed no URL within ${ms} ms; output:\n${out}`)), ms);
    const onData = (chunk) => {
      out += chunk;
      const m = /http:\/\/\S+/.exec(out);
      if (m) {
        clearTimeout(timer);
        resolve(m[0].endsWith('/') ? m[0] : `${m[0]}/`);
      }
    };
    child.stdout.setEncoding('utf8').on('data', onData);
    child.stderr.setEncoding('utf8').on('data', onData);
    exited.then(({ code, signal }) => {
      clearTimeout(timer);
      reject(new Error(`demo exited early (${code ?? signal}); output:\n${out}`));
    });
  });
  url.catch(() => {});
  return {
    child,
    url,
    exited,
    output: () => out,
    /** Whether any process of the npm process group is still running. */
    groupAlive() {
      try {
        process.kill(viaNpm ? -child.pid : child.pid, 0);
        return true;
      } catch {
        return false;
      }
    },
    /** Sends signal `name` and waits (bounded) for the exit; SIGKILL as a last resort. */
    async stop(name = 'SIGTERM', waitMs = 8000) {
      if (child.exitCode !== null || child.signalCode !== null) {
        if (viaNpm) sendSignal('SIGKILL'); // anything left in the group
        return exited;
      }
      sendSignal(name);
      let timer;
      const late = new Promise((resolve) => {
        timer = setTimeout(() => resolve('late'), waitMs);
      });
      const result = await Promise.race([exited, late]);
      clearTimeout(timer);
      if (result === 'late') {
        sendSignal('SIGKILL');
        await exited;
        throw new Error(`demo did not exit within ${waitMs} ms of ${name}; output:\n${out}`);
      }
      return result;
    },
  };
}

/** Reads an SSE response body until `predicate(text)` holds (bounded), then aborts it. */
async function readSSE(url, predicate, ms = 5000, headers = {}) {
  const ac = new AbortController();
  const timer = setTimeout(() => ac.abort(), ms);
  let text = '';
  try {
    const res = await fetch(url, { signal: ac.signal, headers });
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('content-type'), 'text/event-stream');
    const decoder = new TextDecoder();
    for await (const chunk of res.body) {
      text += decoder.decode(chunk, { stream: true });
      if (predicate(text)) return text;
    }
    throw new Error(`stream ended before the expected events; got:\n${text}`);
  } catch (err) {
    if (ac.signal.aborted && !predicate(text)) {
      throw new Error(`expected events not seen within ${ms} ms; got:\n${text}`);
    }
    if (predicate(text)) return text;
    throw err;
  } finally {
    clearTimeout(timer);
    ac.abort();
  }
}

test('package.json: `npm start` runs the demo', () => {
  const pkg = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8'));
  assert.equal(pkg.scripts.start, 'node demo/server.js');
});

test('demo over HTTP: page, live SSE feed, posted message, stats; SIGTERM ends open streams and the process exits 0', { timeout: 30000 }, async () => {
  const demo = startDemo([], { PORT: '0', HOST: '127.0.0.1' });
  try {
    const base = await demo.url;
    assert.match(base, /^http:\/\/127\.0\.0\.1:\d+\/$/);

    const page = await request(base);
    assert.equal(page.status, 200);
    assert.match(page.headers.get('content-type'), /^text\/html/);
    assert.match(await page.text(), /new EventSource\('\/events'\)/);

    // Live: a hello, our own join, then ticks from the Channel (one per second).
    const feed = await readSSE(`${base}events`, (t) => (t.match(/event: tick\n/g) || []).length >= 2, 6000);
    assert.match(feed, /^retry: 2000\n\n/);
    assert.match(feed, /event: hello\ndata: \{"client":"[0-9a-f]{8}"\}\n\n/);
    assert.match(feed, /id: \d+\nevent: joined\ndata: \{"client":"[0-9a-f]{8}","clients":1\}\n\n/);

    // A posted message reaches a live subscriber, with the id the POST returned.
    const ac = new AbortController();
    const timer = setTimeout(() => ac.abort(), 5000);
    try {
      const live = await fetch(`${base}events`, { signal: ac.signal });
      const reader = live.body.getReader();
      const decoder = new TextDecoder();
      let text = '';
      while (!text.includes('event: hello')) text += decoder.decode((await reader.read()).value, { stream: true });
      const posted = await request(`${base}messages`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ from: 'test', text: 'hello everyone' }),
      });
      assert.equal(posted.status, 201);
      const { id } = await posted.json();
      assert.match(id, /^\d+$/);
      while (!text.includes('event: message')) text += decoder.decode((await reader.read()).value, { stream: true });
      assert.match(text, new RegExp(`id: ${id}\nevent: message\ndata: \\{"from":"test","text":"hello everyone","at":"[^"]+"\\}\n\n`));

      const bad = await request(`${base}messages`, { method: 'POST', body: 'not json' });
      assert.equal(bad.status, 400);

      const stats = await (await request(`${base}stats`)).json();
      assert.equal(stats.clients, 1);
      assert.equal(stats.pool.length, 1);

      // SIGTERM with this stream still open: shutdown() ends it from the server side (the body
      // ends cleanly), and the process exits by itself with code 0.
      const ended = (async () => {
        for (;;) {
          const { done } = await reader.read();
          if (done) return 'ended';
        }
      })();
      ended.catch(() => {});
      const exit = await demo.stop('SIGTERM');
      assert.equal(await ended, 'ended');
      assert.deepEqual(exit, { code: 0, signal: null }, demo.output());
      assert.match(demo.output(), /SIGTERM: shutting down/);
      assert.match(demo.output(), /demo stopped/);
    } finally {
      clearTimeout(timer);
      ac.abort();
    }
  } finally {
    await demo.stop('SIGKILL').catch(() => {});
  }
});

test('`npm start -- --port 0 --host 127.0.0.1` serves the demo; Ctrl+C (SIGINT to the process group) stops it cleanly', { timeout: 30000 }, async () => {
  const demo = startDemo(['--port', '0', '--host', '127.0.0.1'], {}, { ms: 20000, viaNpm: true });
  try {
    const base = await demo.url;
    assert.match(base, /^http:\/\/127\.0\.0\.1:\d+\/$/);
    const res = await request(`${base}stats`);
    assert.equal(res.status, 200);
    assert.deepEqual(await res.json(), { clients: 0, subscribers: 0, pool: [] });
    const exit = await demo.stop('SIGINT');
    // npm itself ends by the signal (its own behaviour); the demo must have shut down cleanly.
    assert.ok(exit.code === 0 || exit.signal === 'SIGINT', JSON.stringify(exit));
    const deadline = Date.now() + 5000;
    while (demo.groupAlive() && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    assert.equal(demo.groupAlive(), false, 'a process of the npm start group is still running');
    assert.match(demo.output(), /SIGINT: shutting down/);
    assert.match(demo.output(), /demo stopped/);
    assert.doesNotMatch(demo.output(), /did not exit by itself/);
  } finally {
    await demo.stop('SIGKILL').catch(() => {});
  }
});

test('node demo/server.js --port 0: SIGINT ends the process with code 0', { timeout: 20000 }, async () => {
  const demo = startDemo(['--port', '0', '--host', '127.0.0.1']);
  try {
    await demo.url;
    assert.deepEqual(await demo.stop('SIGINT'), { code: 0, signal: null }, demo.output());
  } finally {
    await demo.stop('SIGKILL').catch(() => {});
  }
});

test(
  'demo in headless Chromium: live events; a second page closing is shown on the first within a second',
  { timeout: 60000, skip: !fs.existsSync(CHROMIUM) && `${CHROMIUM} missing` },
  async (t) => {
    const { chromium } = await import('playwright-core');
    const demo = startDemo(['--port', '0', '--host', '127.0.0.1']);
    let browser;
    try {
      const base = await demo.url;
      browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS, timeout: 30000 });
      const context = await browser.newContext();
      const pageErrors = [];
      context.on('weberror', (e) => pageErrors.push(String(e.error())));
      const first = await context.newPage();
      await first.goto(base, { timeout: 10000 });

      // Live events: the connection opens and the ticker advances.
      await first.waitForFunction(() => document.getElementById('status').textContent === 'open', null, { timeout: 5000 });
      await first.waitForFunction(() => /^#\d+$/.test(document.getElementById('tick').textContent), null, { timeout: 5000 });
      const tick1 = Number((await first.textContent('#tick')).slice(1));
      await first.waitForFunction(
        (n) => Number(document.getElementById('tick').textContent.slice(1)) > n,
        tick1,
        { timeout: 3000 }
      );
      assert.equal(await first.textContent('#clients'), '1');

      // A message posted from the page comes back through the feed.
      await first.fill('input[name=from]', 'chromium');
      await first.fill('input[name=text]', 'hi from the first page');
      await first.click('#post button');
      await first.waitForSelector('li.message:has-text("chromium: hi from the first page")', { timeout: 3000 });

      // A second page connects: the first one sees it join.
      const second = await context.newPage();
      await second.goto(base, { timeout: 10000 });
      await second.waitForFunction(() => /^[0-9a-f]{8}$/.test(document.getElementById('me').textContent), null, { timeout: 5000 });
      const secondId = await second.textContent('#me');
      await first.waitForSelector(`li.joined:has-text("client ${secondId} connected")`, { timeout: 3000 });
      await first.waitForFunction(() => document.getElementById('clients').textContent === '2', null, { timeout: 3000 });

      // The second page closes: the first page shows the server's abort + close within a second.
      const t0 = Date.now();
      await second.close();
      const left = await first.waitForSelector(`li.left:has-text("client ${secondId} left")`, { timeout: 3000 });
      const elapsed = Date.now() - t0;
      t.diagnostic(`second page's disconnect shown on the first page after ${elapsed} ms`);
      assert.ok(elapsed < 1000, `disconnect shown after ${elapsed} ms`);
      const text = await left.textContent();
      assert.match(text, /events abort → close, close_reason 'client'/);
      await first.waitForFunction(() => document.getElementById('clients').textContent === '1', null, { timeout: 2000 });

      const stats = await (await request(`${base}stats`)).json();
      assert.equal(stats.clients, 1);
      assert.equal(stats.pool[0].client, await first.textContent('#me'));
      assert.deepEqual(pageErrors, [], 'uncaught errors in the page');
    } finally {
      if (browser) await browser.close().catch(() => {});
      await demo.stop('SIGTERM').catch(() => demo.stop('SIGKILL').catch(() => {}));
    }
  }
);
