// Shared helpers for the hyper-sse test suite.
//
// Everything here talks to 127.0.0.1 only, every wait is bounded, and every
// server, socket, child process or browser created through these helpers is
// registered for `cleanup()`, which each spec file runs in `afterEach`.

import net from 'node:net';
import { spawn } from 'node:child_process';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import path from 'node:path';

const require = createRequire(import.meta.url);

/** Absolute path of the package root (the directory holding index.js). */
export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

let loaded;
/** The package under test (`require('hyper-sse')`), loaded lazily. */
export function lib() {
  if (!loaded) loaded = require(path.join(ROOT, 'index.js'));
  return loaded;
}

export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

// ---------------------------------------------------------------------------
// Cleanup registry

const resources = [];

/** Registers `fn` to run at the next `cleanup()` (last registered runs first). */
export function onCleanup(fn) {
  resources.push(fn);
  return fn;
}

/** Closes every server, socket, child and browser registered since the last call. */
export async function cleanup() {
  const list = resources.splice(0).reverse();
  for (const fn of list) {
    let timer;
    try {
      await Promise.race([
        Promise.resolve().then(fn),
        new Promise((resolve) => {
          timer = setTimeout(resolve, 5000);
        }),
      ]);
    } catch {
      // cleanup must never fail a test on its own
    } finally {
      clearTimeout(timer);
    }
  }
}

// ---------------------------------------------------------------------------
// Waiting

/**
 * Resolves with the argument array of the next `event` emitted by `emitter`;
 * rejects after `ms` milliseconds.
 */
export function waitFor(emitter, event, ms = 2000) {
  return new Promise((resolve, reject) => {
    const onEvent = (...args) => {
      clearTimeout(timer);
      resolve(args);
    };
    const timer = setTimeout(() => {
      emitter.removeListener(event, onEvent);
      reject(new Error(`timed out after ${ms} ms waiting for '${event}'`));
    }, ms);
    emitter.once(event, onEvent);
  });
}

/**
 * Polls `predicate` every few milliseconds until it returns a truthy value
 * (resolved with it); rejects after `ms` with `label` in the message.
 */
export async function until(predicate, ms = 2000, label = 'condition') {
  const deadline = Date.now() + ms;
  for (;;) {
    const value = await predicate();
    if (value) return value;
    if (Date.now() > deadline) {
      const extra = typeof label === 'function' ? label() : label;
      throw new Error(`timed out after ${ms} ms waiting for ${extra}`);
    }
    await sleep(5);
  }
}

// ---------------------------------------------------------------------------
// Servers

/**
 * Creates a Server with `options`, lets `setup(app)` register routes, listens
 * on 127.0.0.1 port 0 and returns `{ app, port, url }`. The server is
 * force-closed at cleanup.
 */
export async function startServer(setup, options = {}) {
  const { Server } = lib();
  const app = new Server(options);
  onCleanup(() => {
    try {
      if (typeof app.force_close === 'function') app.force_close();
    } catch {}
    try {
      app.close();
    } catch {}
  });
  if (setup) await setup(app);
  await app.listen(0, '127.0.0.1');
  const port = app.port;
  return { app, port, url: `http://127.0.0.1:${port}` };
}

/** Replaces console.error with a recorder until cleanup (default error handler prints). */
export function quietConsoleError() {
  const original = console.error;
  const calls = [];
  console.error = (...args) => calls.push(args);
  onCleanup(() => {
    console.error = original;
  });
  return calls;
}

// ---------------------------------------------------------------------------
// Raw HTTP over net

/**
 * A raw TCP client that keeps every received byte in `data`.
 * `ended` is set on FIN from the server, `closed` when the socket is gone.
 */
export class RawClient {
  constructor(socket, { keep = true } = {}) {
    this.socket = socket;
    this.keep = keep;
    this.chunks = [];
    this.length = 0;
    this._data = null;
    this.ended = false;
    this.closed = false;
    this.error = null;
    this.listeners = [];
    socket.on('data', (chunk) => {
      if (this.keep) this.chunks.push(chunk);
      this.length += chunk.length;
      this._data = null;
      for (const fn of this.listeners) fn(chunk);
    });
    socket.on('end', () => {
      this.ended = true;
    });
    socket.on('error', (err) => {
      this.error = err;
    });
    socket.on('close', () => {
      this.closed = true;
    });
  }

  get data() {
    if (!this._data) {
      this._data = Buffer.concat(this.chunks);
      this.chunks = [this._data];
    }
    return this._data;
  }

  get text() {
    return this.data.toString('latin1');
  }

  write(bytes) {
    return this.socket.write(bytes);
  }

  /** Waits until `predicate(this)` is truthy. */
  waitUntil(predicate, ms = 2000, label = 'data') {
    return until(() => predicate(this), ms, () => `${label}; got ${JSON.stringify(this.text.slice(-400))}`);
  }

  /** Waits until the socket has been closed (by either side). */
  waitClosed(ms = 2000) {
    return this.waitUntil((c) => c.closed, ms, 'the socket to close');
  }

  /** Waits until a complete HTTP response is in `data`; returns it parsed. */
  async response(ms = 3000, { head = false } = {}) {
    let parsed;
    await this.waitUntil(
      (c) => {
        parsed = parseResponse(c.data, { eof: c.ended || c.closed, head });
        return parsed && parsed.complete;
      },
      ms,
      'a complete HTTP response',
    );
    return parsed;
  }

  destroy() {
    this.socket.destroy();
  }
}

/** Opens a TCP connection to 127.0.0.1:port; resolves with a tracked RawClient. */
export function connect(port, ms = 3000) {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ port, host: '127.0.0.1' });
    const client = new RawClient(socket);
    onCleanup(() => socket.destroy());
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`connect to port ${port} timed out`));
    }, ms);
    socket.once('connect', () => {
      clearTimeout(timer);
      socket.setNoDelay(true);
      resolve(client);
    });
    socket.once('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
  });
}

/** Resolves with the error code of a connection attempt (`null` if it connected). */
export function connectError(port, ms = 2000) {
  return new Promise((resolve) => {
    const socket = net.connect({ port, host: '127.0.0.1' });
    onCleanup(() => socket.destroy());
    const timer = setTimeout(() => {
      socket.destroy();
      resolve('TIMEOUT');
    }, ms);
    socket.once('connect', () => {
      clearTimeout(timer);
      socket.destroy();
      resolve(null);
    });
    socket.once('error', (err) => {
      clearTimeout(timer);
      resolve(err.code);
    });
  });
}

/**
 * Builds the bytes of one HTTP/1.1 request.
 * `body` with `chunked: true` is sent as a chunked body split in `chunks` (array) or one chunk.
 */
export function buildRequest({ method = 'GET', path: target = '/', headers = {}, body, chunked = false, chunks } = {}) {
  const lines = [`${method} ${target} HTTP/1.1`];
  const hdrs = Array.isArray(headers) ? headers.slice() : Object.entries(headers);
  if (!hdrs.some(([n]) => n.toLowerCase() === 'host')) lines.push('Host: 127.0.0.1');
  for (const [n, v] of hdrs) lines.push(`${n}: ${v}`);
  let payload = Buffer.alloc(0);
  if (chunked) {
    lines.push('Transfer-Encoding: chunked');
    const parts = chunks || (body !== undefined ? [body] : []);
    const out = [];
    for (const p of parts) {
      const b = Buffer.from(p);
      if (b.length === 0) continue;
      out.push(Buffer.from(b.length.toString(16) + '\r\n'), b, Buffer.from('\r\n'));
    }
    out.push(Buffer.from('0\r\n\r\n'));
    payload = Buffer.concat(out);
  } else if (body !== undefined) {
    payload = Buffer.from(body);
    if (!hdrs.some(([n]) => n.toLowerCase() === 'content-length')) lines.push(`Content-Length: ${payload.length}`);
  }
  return Buffer.concat([Buffer.from(lines.join('\r\n') + '\r\n\r\n', 'latin1'), payload]);
}

/**
 * Sends one request on a fresh connection and resolves with the parsed response
 * (see `parseResponse`), plus `client` (the RawClient, still open).
 */
export async function request(port, opts = {}, ms = 3000) {
  const client = await connect(port);
  client.write(Buffer.isBuffer(opts) ? opts : buildRequest(opts));
  const res = await client.response(ms, { head: opts.method === 'HEAD' });
  res.client = client;
  return res;
}

/** Decodes a chunked body. Returns `{ body: Buffer, complete, consumed, chunks }`. */
export function decodeChunked(buf, start = 0) {
  let pos = start;
  const parts = [];
  let chunks = 0;
  for (;;) {
    const eol = buf.indexOf('\r\n', pos, 'latin1');
    if (eol === -1) return { body: Buffer.concat(parts), complete: false, consumed: pos, chunks };
    const size = parseInt(buf.toString('latin1', pos, eol).split(';')[0].trim(), 16);
    if (Number.isNaN(size)) throw new Error(`bad chunk size line: ${JSON.stringify(buf.toString('latin1', pos, eol))}`);
    if (size === 0) {
      // last-chunk, optional trailers, CRLF
      const end = buf.indexOf('\r\n\r\n', eol, 'latin1');
      if (end === -1) return { body: Buffer.concat(parts), complete: false, consumed: pos, chunks };
      return { body: Buffer.concat(parts), complete: true, consumed: end + 4, chunks };
    }
    if (buf.length < eol + 2 + size + 2) return { body: Buffer.concat(parts), complete: false, consumed: pos, chunks };
    parts.push(buf.subarray(eol + 2, eol + 2 + size));
    chunks++;
    pos = eol + 2 + size + 2;
  }
}

/**
 * Parses one HTTP/1.1 response at the start of `buf`.
 * Returns null while the head is incomplete, else
 * `{ statusLine, status, reason, headers: [[lowercase name, value]], header(name), headerAll(name),
 *    raw (head text), body: Buffer, text, complete, chunked, rest: Buffer }`.
 */
export function parseResponse(buf, { eof = false, head = false } = {}) {
  const headEnd = buf.indexOf('\r\n\r\n', 0, 'latin1');
  if (headEnd === -1) return null;
  const raw = buf.toString('latin1', 0, headEnd);
  const [statusLine, ...lines] = raw.split('\r\n');
  const m = /^HTTP\/1\.[01] (\d{3})(?: (.*))?$/.exec(statusLine);
  const headers = lines.map((l) => {
    const i = l.indexOf(':');
    return [l.slice(0, i).toLowerCase(), l.slice(i + 1).trim()];
  });
  const headerAll = (n) => headers.filter(([k]) => k === n.toLowerCase()).map(([, v]) => v);
  const header = (n) => {
    const all = headerAll(n);
    return all.length ? all[all.length - 1] : undefined;
  };
  const status = m ? Number(m[1]) : NaN;
  const start = headEnd + 4;
  const te = (header('transfer-encoding') || '').toLowerCase();
  const cl = header('content-length');
  let body;
  let complete;
  let rest = Buffer.alloc(0);
  let chunked = false;
  if (head || status === 204 || status === 304 || (status >= 100 && status < 200)) {
    body = Buffer.alloc(0);
    complete = true;
    rest = buf.subarray(start);
  } else if (te.includes('chunked')) {
    chunked = true;
    const d = decodeChunked(buf, start);
    body = d.body;
    complete = d.complete;
    rest = buf.subarray(d.consumed);
  } else if (cl !== undefined) {
    const n = Number(cl);
    body = buf.subarray(start, start + n);
    complete = buf.length >= start + n;
    rest = buf.subarray(start + n);
  } else {
    body = buf.subarray(start);
    complete = eof;
  }
  return {
    statusLine,
    status,
    reason: m ? m[2] ?? '' : undefined,
    headers,
    header,
    headerAll,
    raw,
    body,
    text: body.toString('utf8'),
    complete,
    chunked,
    rest,
  };
}

// ---------------------------------------------------------------------------
// SSE over raw sockets

/**
 * Incremental parser for the `text/event-stream` format (WHATWG rules: lines end
 * in CRLF, LF or CR; `name: value`; comments start with `:`; blank line dispatches).
 */
export class SSEParser {
  constructor() {
    this.pending = '';
    this.events = [];
    this.comments = [];
    this.retry = [];
    this.lastEventId = '';
    this._reset();
    this.onEvent = null;
    this.keepEvents = true;
    this.count = 0;
  }

  _reset() {
    this.data = '';
    this.dataSeen = false;
    this.type = '';
    this.id = undefined;
    this.fields = [];
  }

  push(text) {
    this.pending += text;
    let idx;
    for (;;) {
      const m = /\r\n|\n|\r/.exec(this.pending);
      if (!m) break;
      idx = m.index;
      if (m[0] === '\r' && idx === this.pending.length - 1) break; // maybe CRLF split
      const line = this.pending.slice(0, idx);
      this.pending = this.pending.slice(idx + m[0].length);
      this._line(line);
    }
  }

  _line(line) {
    if (line === '') {
      if (this.id !== undefined) this.lastEventId = this.id;
      if (this.dataSeen) {
        const ev = {
          event: this.type || 'message',
          data: this.data.endsWith('\n') ? this.data.slice(0, -1) : this.data,
          id: this.id,
          lastEventId: this.lastEventId,
          fields: this.fields,
        };
        this.count++;
        if (this.keepEvents) this.events.push(ev);
        if (this.onEvent) this.onEvent(ev);
      }
      this._reset();
      return;
    }
    if (line.startsWith(':')) {
      this.comments.push(line.slice(1));
      return;
    }
    const i = line.indexOf(':');
    const name = i === -1 ? line : line.slice(0, i);
    let value = i === -1 ? '' : line.slice(i + 1);
    if (value.startsWith(' ')) value = value.slice(1);
    this.fields.push([name, value]);
    if (name === 'data') {
      this.data += value + '\n';
      this.dataSeen = true;
    } else if (name === 'event') this.type = value;
    else if (name === 'id') {
      if (!value.includes('\0')) this.id = value;
    } else if (name === 'retry') this.retry.push(value);
  }
}

/**
 * A raw SSE client: sends `GET path` and decodes the chunked response as it
 * arrives. Properties: `head` (parsed head, once received), `body` (decoded
 * payload as a UTF-8 string), `terminated` (saw the last chunk), `parser`
 * (SSEParser with `events`/`comments`).
 */
export class SSEClient extends RawClient {
  constructor(socket, { keep = true } = {}) {
    super(socket, { keep });
    this.head = null;
    this.bodyBytes = [];
    this.bodyLength = 0;
    this.terminated = false;
    this.parser = new SSEParser();
    this.decoder = new TextDecoder('utf-8');
    this._buf = Buffer.alloc(0);
    this._state = 'head';
    this.listeners.push((chunk) => this._feed(chunk));
  }

  _feed(chunk) {
    if (this._state === 'done') {
      this.afterEnd = Buffer.concat([this.afterEnd, chunk]);
      return;
    }
    this._buf = this._buf.length ? Buffer.concat([this._buf, chunk]) : chunk;
    if (this._state === 'head') {
      const end = this._buf.indexOf('\r\n\r\n', 0, 'latin1');
      if (end === -1) return;
      this.head = parseResponse(this._buf.subarray(0, end + 4));
      this._buf = this._buf.subarray(end + 4);
      this._state = (this.head.header('transfer-encoding') || '').includes('chunked') ? 'size' : 'raw';
    }
    if (this._state === 'raw') {
      this._emit(this._buf);
      this._buf = Buffer.alloc(0);
      return;
    }
    for (;;) {
      if (this._state === 'size') {
        const eol = this._buf.indexOf('\r\n', 0, 'latin1');
        if (eol === -1) return;
        const size = parseInt(this._buf.toString('latin1', 0, eol), 16);
        this._buf = this._buf.subarray(eol + 2);
        if (size === 0) {
          this._state = 'trailer';
        } else {
          this._need = size;
          this._state = 'chunk';
        }
      }
      if (this._state === 'chunk') {
        if (this._buf.length < this._need + 2) return;
        this._emit(this._buf.subarray(0, this._need));
        this._buf = this._buf.subarray(this._need + 2);
        this._state = 'size';
        continue;
      }
      if (this._state === 'trailer') {
        const eol = this._buf.indexOf('\r\n', 0, 'latin1');
        if (eol === -1) return;
        this._buf = this._buf.subarray(eol + 2);
        if (eol === 0) {
          this.terminated = true;
          this._state = 'done';
          this.afterEnd = this._buf;
          return;
        }
        continue;
      }
      return;
    }
  }

  _emit(bytes) {
    this.bodyLength += bytes.length;
    if (this.keep) this.bodyBytes.push(Buffer.from(bytes));
    this.parser.push(this.decoder.decode(bytes, { stream: true }));
  }

  /** The decoded SSE payload received so far, as a UTF-8 string. */
  get body() {
    return Buffer.concat(this.bodyBytes).toString('utf8');
  }

  get events() {
    return this.parser.events;
  }

  waitHead(ms = 3000) {
    return this.waitUntil((c) => c.head, ms, 'response head');
  }

  waitBody(predicate, ms = 3000, label = 'SSE body') {
    return until(() => predicate(this.body, this), ms, () => `${label}; body so far ${JSON.stringify(this.body.slice(-400))}`);
  }

  waitEvents(n, ms = 3000) {
    return until(() => this.parser.count >= n, ms, () => `${n} events; got ${this.parser.count}`);
  }

  waitTerminated(ms = 3000) {
    return until(() => this.terminated, ms, () => `the terminating chunk; body so far ${JSON.stringify(this.body.slice(-400))}`);
  }
}

/**
 * Opens a raw SSE request to `path`; resolves once connected and the request is written.
 * `keep: false` keeps no raw bytes/body text (events are still parsed).
 */
export function openSSE(port, target = '/sse', headers = {}, { ms = 3000, keep = true } = {}) {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ port, host: '127.0.0.1' });
    const client = new SSEClient(socket, { keep });
    onCleanup(() => socket.destroy());
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error('SSE connect timed out'));
    }, ms);
    socket.once('connect', () => {
      clearTimeout(timer);
      socket.setNoDelay(true);
      socket.write(buildRequest({ method: 'GET', path: target, headers }));
      resolve(client);
    });
    socket.once('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
  });
}

const SSE_HEADERS = {
  'content-type': 'text/event-stream',
  'cache-control': 'no-cache',
  connection: 'keep-alive',
  'x-accel-buffering': 'no',
};

/** Asserts the status line and the four SSE headers (each once), chunked, with a date. */
export function assertSSEHead(assert, head, status = 'HTTP/1.1 200 OK') {
  assert.equal(head.statusLine, status);
  for (const [name, value] of Object.entries(SSE_HEADERS)) {
    assert.deepEqual(head.headerAll(name), [value], `${name} appears once with ${value}`);
  }
  assert.equal(head.header('transfer-encoding'), 'chunked');
  assert.equal(head.header('content-length'), undefined);
  assert.ok(head.header('date'), 'a date header is sent');
}

// ---------------------------------------------------------------------------
// Response events

const EVENT_NAMES = ['prepare', 'finish', 'abort', 'close', 'drain'];

/**
 * Attaches listeners for the lifecycle events of `res` and records, in order,
 * each event with the flags seen inside the listener and its arguments.
 */
export function recordEvents(req, res, names = EVENT_NAMES) {
  const rec = { req, res, list: [], names: [] };
  for (const name of names) {
    res.on(name, (...args) => {
      rec.names.push(name);
      rec.list.push({
        name,
        args,
        at: Date.now(),
        completed: res.completed,
        initiated: res.initiated,
        aborted: res.aborted,
        close_reason: res.close_reason,
      });
    });
  }
  rec.count = (name) => rec.names.filter((n) => n === name).length;
  rec.closed = () => rec.names.includes('close');
  return rec;
}

/**
 * Asserts the invariants of spec section 8 on a record from `recordEvents`:
 * close exactly once and last; abort at most once and only before completion;
 * finish at most once and never with abort; prepare at most once and first;
 * listeners got `(req, res)`.
 */
export function checkInvariants(assert, rec) {
  const names = rec.names.filter((n) => n !== 'drain');
  assert.equal(rec.count('close'), 1, `close exactly once, saw ${JSON.stringify(rec.names)}`);
  assert.equal(names[names.length - 1], 'close', `close is the last event, saw ${JSON.stringify(rec.names)}`);
  assert.equal(rec.names[rec.names.length - 1], 'close', `nothing after close, saw ${JSON.stringify(rec.names)}`);
  assert.ok(rec.count('abort') <= 1, 'abort at most once');
  assert.ok(rec.count('finish') <= 1, 'finish at most once');
  assert.ok(!(rec.count('abort') && rec.count('finish')), `finish and abort never together, saw ${JSON.stringify(rec.names)}`);
  assert.ok(rec.count('prepare') <= 1, 'prepare at most once');
  if (rec.count('prepare')) assert.equal(names[0], 'prepare', 'prepare comes first');
  for (const e of rec.list) {
    if (e.name === 'drain') continue;
    assert.equal(e.args[0], rec.req, `${e.name} listener gets req first`);
    assert.equal(e.args[1], rec.res, `${e.name} listener gets res second`);
  }
}

// ---------------------------------------------------------------------------
// Child processes

/**
 * Runs `node -e script` (cwd = package root) and resolves with
 * `{ code, signal, stdout, stderr, timedOut, ms }`. The child is killed after `ms`.
 * `onStdout(text, child)` is called for every stdout chunk.
 */
export function runNode(script, { ms = 10000, onStdout, args = [] } = {}) {
  return new Promise((resolve) => {
    const started = Date.now();
    const child = spawn(process.execPath, [...args, '-e', script], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    let timedOut = false;
    onCleanup(() => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    });
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, ms);
    child.stdout.on('data', (d) => {
      stdout += d;
      if (onStdout) onStdout(stdout, child);
    });
    child.stderr.on('data', (d) => {
      stderr += d;
    });
    child.on('exit', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr, timedOut, ms: Date.now() - started });
    });
  });
}
