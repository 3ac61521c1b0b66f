// Every app in examples/ starts and serves real requests (issue 5, "Must show" 2). Each example
// runs in its own process with PORT=0 on 127.0.0.1 and prints its URL; every wait is bounded.
import test from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

/** fetch() with a bounded wait (5 s) for plain requests. */
const request = (url, init = {}) => fetch(url, { signal: AbortSignal.timeout(5000), ...init });
const EXAMPLES = path.join(ROOT, 'examples');

/** Starts `node examples/<file>` on a free port; resolves its base URL (http://127.0.0.1:<port>). */
function startExample(file, ms = 10000) {
  const child = spawn(process.execPath, [path.join(EXAMPLES, file)], {
    cwd: ROOT,
    env: { ...process.env, PORT: '0', HOST: '127.0.0.1' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout.setEncoding('utf8').on('data', (d) => (out += d));
  child.stderr.setEncoding('utf8').on('data', (d) => (out += d));
  const exited = new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
  const base = new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${file} printed no URL within ${ms} ms; output:\n${out}`)), ms);
    const poll = setInterval(() => {
      const m = /http:\/\/127\.0\.0\.1:(\d+)/.exec(out);
      if (m) {
        clearInterval(poll);
        clearTimeout(timer);
        resolve(`http://127.0.0.1:${m[1]}`);
      }
    }, 10);
    exited.then(({ code, signal }) => {
      clearInterval(poll);
      clearTimeout(timer);
      reject(new Error(`${file} exited early (${code ?? signal}); output:\n${out}`));
    });
  });
  base.catch(() => {});
  return {
    base,
    output: () => out,
    async stop(signal = 'SIGTERM', waitMs = 8000) {
      if (child.exitCode !== null || child.signalCode !== null) return exited;
      child.kill(signal);
      let timer;
      const late = new Promise((resolve) => (timer = setTimeout(() => resolve('late'), waitMs)));
      const result = await Promise.race([exited, late]);
      clearTimeout(timer);
      if (result === 'late') {
        child.kill('SIGKILL');
        await exited;
        throw new Error(`${file} did not exit within ${waitMs} ms of ${signal}; output:\n${out}`);
      }
      return result;
    },
  };
}

/**
 * Opens an SSE stream and reads until `predicate(text)` (bounded). Returns
 * `{ text, more(predicate), close() }` so a test can act and then read further.
 */
async function openSSE(url, headers = {}, ms = 5000) {
  const ac = new AbortController();
  const timer = setTimeout(() => ac.abort(), ms);
  const res = await fetch(url, { headers, signal: ac.signal });
  assert.equal(res.status, 200);
  assert.equal(res.headers.get('content-type'), 'text/event-stream');
  const reader = res.body.getReader();
  const decoder = new TextDecoder();
  const stream = {
    text: '',
    ended: false,
    async until(predicate) {
      try {
        while (!predicate(stream.text)) {
          const { done, value } = await reader.read();
          if (done) {
            stream.ended = true;
            break;
          }
          stream.text += decoder.decode(value, { stream: true });
        }
      } catch (err) {
        if (!ac.signal.aborted) throw err;
      }
      if (!predicate(stream.text)) throw new Error(`expected SSE data not seen within ${ms} ms; got:\n${stream.text}`);
      return stream.text;
    },
    close() {
      clearTimeout(timer);
      ac.abort();
    },
  };
  return stream;
}

const json = (body) => ({ method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });

test('examples/README.md lists every example, one line each', () => {
  const readme = fs.readFileSync(path.join(EXAMPLES, 'README.md'), 'utf8');
  const files = fs.readdirSync(EXAMPLES).filter((f) => f.endsWith('.js'));
  assert.ok(files.length >= 3, `examples: ${files}`);
  for (const file of files) {
    const lines = readme.split('\n').filter((l) => l.startsWith(`- [\`${file}\`]`));
    assert.equal(lines.length, 1, `${file} in examples/README.md`);
  }
});

test('examples/chat.js: notifications are broadcast and replayed after Last-Event-ID', { timeout: 30000 }, async () => {
  const app = startExample('chat.js');
  const streams = [];
  try {
    const base = await app.base;
    const page = await request(`${base}/`);
    assert.equal(page.status, 200);
    assert.match(await page.text(), /new EventSource\('\/feed'\)/);

    const live = await openSSE(`${base}/feed`);
    streams.push(live);
    const first = await request(`${base}/notify`, json({ from: 'ann', text: 'first' }));
    assert.equal(first.status, 201);
    const a = await first.json();
    assert.equal(a.id, '1');
    assert.equal(a.subscribers, 1);
    await live.until((t) => t.includes('"text":"first"'));
    assert.match(live.text, /^id: 1\nevent: notification\ndata: \{"from":"ann","text":"first","at":\d+\}\n\n/);

    const b = await (await request(`${base}/notify`, json({ text: 'second' }))).json();
    const c = await (await request(`${base}/notify`, json({ text: 'third' }))).json();
    assert.deepEqual([b.id, c.id], ['2', '3']);
    assert.equal((await request(`${base}/notify`, json({}))).status, 400);

    // A reconnecting client that saw id 1 gets exactly 2 and 3, in order.
    const again = await openSSE(`${base}/feed`, { 'last-event-id': '1' });
    streams.push(again);
    await again.until((t) => t.includes('"text":"third"'));
    const ids = [...again.text.matchAll(/^id: (.*)$/gm)].map((m) => m[1]);
    assert.deepEqual(ids, ['2', '3']);
    assert.doesNotMatch(again.text, /"text":"first"/);

    // An id the channel never had: the documented signal, then the whole history.
    const unknown = await openSSE(`${base}/feed?last_event_id=999`);
    streams.push(unknown);
    await unknown.until((t) => t.includes('"text":"third"'));
    assert.match(unknown.text, /^event: replay-unavailable\ndata: \{"requested":"999"\}\n\n/);
    assert.deepEqual([...unknown.text.matchAll(/^id: (.*)$/gm)].map((m) => m[1]), ['1', '2', '3']);
  } finally {
    for (const s of streams) s.close();
    await app.stop().catch(() => {});
  }
});

test('examples/chat.js: SIGTERM shuts down (open streams end from the server side) and the process exits 0', { timeout: 20000 }, async () => {
  const app = startExample('chat.js');
  let live;
  try {
    const base = await app.base;
    live = await openSSE(`${base}/feed`, {}, 8000);
    await request(`${base}/notify`, json({ text: 'before shutdown' }));
    await live.until((t) => t.includes('before shutdown'));
    const exit = await app.stop('SIGTERM');
    await live.until(() => live.ended);
    assert.deepEqual(exit, { code: 0, signal: null }, app.output());
  } finally {
    if (live) live.close();
    await app.stop('SIGKILL').catch(() => {});
  }
});

test('examples/rest-sse.js: REST routes, middleware, handlers, and changes pushed over SSE', { timeout: 30000 }, async () => {
  const app = startExample('rest-sse.js');
  let events;
  try {
    const base = await app.base;
    events = await openSSE(`${base}/api/events`);
    await events.until((t) => t.startsWith(': open\n'));

    const created = await request(`${base}/api/todos`, json({ title: 'write docs' }));
    assert.equal(created.status, 201);
    assert.match(created.headers.get('x-response-time'), /^\d+us$/);
    assert.deepEqual(await created.json(), { id: 1, title: 'write docs', done: false });
    await events.until((t) => t.includes('event: created\n'));
    assert.match(events.text, /event: created\ndata: \{"id":1,"title":"write docs","done":false\}\n\n/);

    const patched = await request(`${base}/api/todos/1`, { ...json({ done: true }), method: 'PATCH' });
    assert.equal(patched.status, 200);
    assert.equal((await patched.json()).done, true);
    await events.until((t) => t.includes('event: updated\n'));

    assert.deepEqual(await (await request(`${base}/api/todos/1`)).json(), { id: 1, title: 'write docs', done: true });
    assert.equal((await request(`${base}/api/todos`, json({ nope: 1 }))).status, 400);
    assert.equal((await request(`${base}/api/todos/99`)).status, 404);
    const deleted = await request(`${base}/api/todos/1`, { method: 'DELETE' });
    assert.equal(deleted.status, 204);
    await events.until((t) => t.includes('event: deleted\n'));
    assert.deepEqual(await (await request(`${base}/api/todos`)).json(), []);

    const missing = await request(`${base}/nowhere`);
    assert.equal(missing.status, 404);
    assert.deepEqual(await missing.json(), { error: 'no route for GET /nowhere' });
  } finally {
    if (events) events.close();
    await app.stop().catch(() => {});
  }
});

test("examples/llm-stream.js: tokens stream in order and end with `done`; a client that leaves is seen with close_reason client", { timeout: 30000 }, async () => {
  const app = startExample('llm-stream.js');
  let partial;
  try {
    const base = await app.base;
    const stream = await openSSE(`${base}/v1/stream?prompt=why%20is%20the%20sky%20blue`, {}, 10000);
    await stream.until(() => stream.ended);
    stream.close();
    const tokens = [...stream.text.matchAll(/^event: token\ndata: (.*)$/gm)].map((m) => JSON.parse(m[1]));
    assert.ok(tokens.length > 5, stream.text);
    assert.deepEqual(tokens.map((t) => t.index), tokens.map((_, i) => i));
    assert.match(tokens.map((t) => t.token).join(''), /^You asked: "why is the sky blue"\. /);
    assert.match(stream.text, new RegExp(`event: done\ndata: \\{"tokens":${tokens.length}\\}\n\n$`));

    // Leave after the first token: the server sees the disconnect and logs close_reason 'client'.
    partial = await openSSE(`${base}/v1/stream?prompt=bye`, {}, 10000);
    await partial.until((t) => t.includes('event: token'));
    partial.close();
    const deadline = Date.now() + 3000;
    while (!app.output().includes('stream ended: client') && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    assert.match(app.output(), /stream ended: finished\n/);
    assert.match(app.output(), /stream ended: client\n/);
  } finally {
    if (partial) partial.close();
    await app.stop().catch(() => {});
  }
});
