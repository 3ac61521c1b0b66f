'use strict';
/**
 * Server: the Hyper-Express 6.14.12 app (spec section 2) on the native hyper server.
 *
 * Routes and middlewares are compiled at `listen()` into the native route table; each request is
 * dispatched here (`_on_request`) through the middleware chain to the route handler.
 */
const Router = require('./Router');
const Request = require('./Request');
const Response = require('./Response');
const native = require('./native');
const { describe, coded } = require('./shared');
const { OPEN, LIVE, onEvents, addNative, removeNative } = require('./state');

const SIGNALS = ['SIGINT', 'SIGUSR1', 'SIGUSR2', 'SIGTERM'];
const METHOD_NAMES = ['any', 'get', 'post', 'del', 'head', 'options', 'patch', 'put', 'trace', 'connect', 'upgrade', 'ws'];
const NOT_SUPPORTED = (what) => new Error(`hyper-sse: ${what} is not supported (no WebSockets / uWS in hyper-sse)`);
const DOUBLE_NEXT =
  'ERR_DOUBLE_MIDDLEWARE_EXEUCTION_DETECTED: Please ensure you are not calling the next() iterator inside of an ' +
  'ASYNC middleware. You must only call next() ONCE per middleware inside of SYNCHRONOUS middlewares only!';

function defaults() {
  return {
    is_ssl: false,
    auto_close: true,
    fast_abort: false,
    trust_proxy: false,
    fast_buffers: false,
    max_body_buffer: 16 * 1024,
    max_body_length: 250 * 1024,
    streaming: {},
    worker_threads: 1,
    max_header_size: 16384,
    sse_heartbeat: 15000,
    max_queued_bytes: 1024 * 1024,
    write_timeout: 30000,
    header_timeout: 30000,
  };
}

/** Deep-merges `source` into `target` (arrays and non-objects replace). */
function merge(target, source) {
  for (const key of Object.keys(source)) {
    if (key === '__proto__' || key === 'constructor' || key === 'prototype') continue;
    const value = source[key];
    if (value !== null && typeof value === 'object' && !Array.isArray(value)) {
      if (target[key] === null || typeof target[key] !== 'object' || Array.isArray(target[key])) target[key] = {};
      merge(target[key], value);
    } else {
      target[key] = value;
    }
  }
  return target;
}

/** The longest time option in ms: 2^31 - 1 (about 24.8 days), as for Node's timers. */
const MAX_MS = 2 ** 31 - 1;

/**
 * A numeric server option, floored: a TypeError (`ERR_INVALID_ARG_TYPE`) when it is not a number,
 * a RangeError (`ERR_OUT_OF_RANGE`) outside `[min, max]`.
 */
function numberOption(options, name, min, max = Number.MAX_SAFE_INTEGER) {
  const value = options[name];
  if (typeof value !== 'number') {
    const err = new TypeError(`hyper-sse: option ${name} must be a number, got ${value === null ? 'null' : typeof value}`);
    err.code = 'ERR_INVALID_ARG_TYPE';
    throw err;
  }
  if (!Number.isFinite(value) || value < min || value > max) {
    const err = new RangeError(`hyper-sse: option ${name} must be between ${min} and ${max}, got ${String(value)}`);
    err.code = 'ERR_OUT_OF_RANGE';
    throw err;
  }
  return Math.floor(value);
}

/** Names of the parameters of a pattern in order (`:name` → name, `*` → null). */
function paramNames(pattern) {
  const names = [];
  for (const segment of pattern.split('/')) {
    if (segment.length > 1 && segment.charCodeAt(0) === 58) names.push(segment.slice(1));
    else if (segment === '*') names.push(null);
  }
  return names;
}

/** Listening servers with `auto_close`; one set of process hooks serves them all. */
const AUTO_CLOSE = new Set();
let hooked = false;

function closeAll() {
  for (const server of Array.from(AUTO_CLOSE)) server.close();
}

function onSignal(signal) {
  // Runs first (prepended), so every other listener, `once` ones included, is still registered:
  // they are the app's own handling of the signal.
  const others = process.listenerCount(signal) - 1;
  closeAll();
  // Keep the default behaviour of the signal (terminate) when nothing else listens for it. Not for
  // SIGUSR1: Node's default there (starting the inspector) cannot be restored once a listener was
  // added, and re-raising would kill the process; the servers are closed, as in Hyper-Express.
  if (others <= 0 && signal !== 'SIGUSR1') process.kill(process.pid, signal);
}

function autoClose(server) {
  AUTO_CLOSE.add(server);
  if (hooked) return;
  hooked = true;
  process.on('exit', closeAll);
  for (const signal of SIGNALS) process.prependListener(signal, onSignal);
}

function autoCloseDone(server) {
  AUTO_CLOSE.delete(server);
  if (!hooked || AUTO_CLOSE.size !== 0) return;
  hooked = false;
  process.removeListener('exit', closeAll);
  for (const signal of SIGNALS) process.removeListener(signal, onSignal);
}

/**
 * Keeps the event loop alive (a ref'd timer) until the native server has no open connection,
 * then lets `server` dispose of it if it is idle (see `_dispose_if_idle`).
 * @param {Server} server
 * @param {object} nat NativeServer
 */
function holdWhileConnected(server, nat) {
  const check = () => {
    if (nat.connections > 0) setTimeout(check, 20);
    else setImmediate(() => server._dispose_if_idle(nat));
  };
  check();
}

function noop() {}

/** A `max_body_length`: Infinity (no limit, as Hyper-Express takes it) is the largest length. */
function finiteLimit(value) {
  return value === Infinity ? Number.MAX_SAFE_INTEGER : value;
}

/** The longest delay setTimeout takes. */
const MAX_TIMER = 2 ** 31 - 1;

function sleep(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function scopeMatches(scope, path) {
  return path.startsWith(scope) && (path.length === scope.length || path.charCodeAt(scope.length) === 47);
}

/**
 * Runs the middleware chain of `route` from `cursor`, then the handler (spec 3.3).
 * @private
 */
function run(route, req, res, cursor) {
  if (res.completed) return;
  const chain = route.chain;
  while (cursor < chain.length) {
    const mw = chain[cursor];
    if (mw.scope === null || scopeMatches(mw.scope, req.path)) return runMiddleware(route, req, res, mw.fn, cursor);
    cursor++;
  }
  let out;
  try {
    out = route.handler(req, res);
  } catch (err) {
    res.throw(err);
    return;
  }
  settle(out, undefined, (err) => res.throw(err));
}

/**
 * Follows what a handler or middleware returned when it is a thenable: `then(onFulfilled,
 * onRejected)`. A `then` that throws (or a throwing `then` getter) is a rejection.
 */
function settle(out, onFulfilled, onRejected) {
  if (out === undefined || out === null || (typeof out !== 'object' && typeof out !== 'function')) return;
  try {
    const then = out.then;
    if (typeof then === 'function') then.call(out, onFulfilled, onRejected);
  } catch (err) {
    onRejected(err);
  }
}

function runMiddleware(route, req, res, fn, cursor) {
  let done = false;
  const next = (err) => {
    if (done) {
      if (!res.completed) res.throw(new Error(DOUBLE_NEXT));
      return;
    }
    done = true;
    if (err instanceof Error) res.throw(err);
    else run(route, req, res, cursor + 1);
  };
  let out;
  try {
    out = fn(req, res, next);
  } catch (err) {
    done = true;
    res.throw(err);
    return;
  }
  settle(out, next, (err) => {
    done = true;
    res.throw(err);
  });
}

class Server extends Router {
  /**
   * @param {object} [options]
   * @param {number} [options.max_body_length=256000] max request body bytes (413 above)
   * @param {number} [options.max_body_buffer=16384] accepted for compatibility (bodies are read natively)
   * @param {boolean} [options.fast_abort=false] drop the connection instead of answering 413
   * @param {boolean} [options.trust_proxy=false] use X-Forwarded-For/-Host/-Proto
   * @param {boolean} [options.auto_close=true] `close()` on process exit, SIGINT, SIGUSR1, SIGUSR2, SIGTERM;
   *   a signal nothing else listens for then keeps its default effect (the process terminates)
   * @param {boolean} [options.fast_buffers=false] accepted, no effect
   * @param {{ readable?: object, writable?: object }} [options.streaming] stream options;
   *   `writable.highWaterMark` (default 16384) is the response high-water mark
   * @param {number} [options.worker_threads=1] extension: tokio worker threads
   * @param {number} [options.max_header_size=16384] extension: max request head bytes (431 above)
   * @param {number} [options.sse_heartbeat=15000] extension: ms without a write after which an SSE
   *   stream gets a `:` comment; 0 = off
   * @param {number} [options.max_queued_bytes=1048576] extension: per response, bytes queued but not
   *   taken by the socket above which the client is evicted (`abort`, `close`, reason `'slow_client'`)
   * @param {number} [options.write_timeout=30000] extension: ms a socket write may make no progress
   *   before the connection is ended (`abort`, `close`, reason `'timeout'`)
   * @param {number} [options.header_timeout=30000] extension: ms (about, ±1 s) a client has to send a
   *   whole request head, and the longest an idle keep-alive connection stays open; 0 = off
   */
  constructor(options = {}) {
    if (options === null || typeof options !== 'object') {
      throw coded(TypeError, 'ERR_INVALID_ARG_TYPE', 'hyper-sse: new Server(options) only accepts an object for options');
    }
    super();
    /** Options, deep-merged over the defaults (read/write until `listen()`). */
    this._options = merge(defaults(), options);
    if (this._options.key_file_name || this._options.cert_file_name) {
      throw coded(Error, 'ERR_NOT_SUPPORTED', 'hyper-sse: TLS (key_file_name / cert_file_name) is not supported yet; terminate TLS in a proxy');
    }
    // Checked now, so a bad value is a clear error here rather than a rejected listen().
    this._native_options();
    /** App-wide data. */
    this.locals = {};
    /** @private */ this._handlers = {
      on_not_found: (req, res) => res.status(404).send(),
      on_error: (req, res, err) => {
        console.error(err);
        return res.status(500).send('HyperExpress: Uncaught Exception Occured');
      },
    };
    /** @private */ this._next_id = 0;
    /** @private */ this._route_table = {};
    for (const name of METHOD_NAMES) this._route_table[name] = {};
    /** @private */ this._middleware_table = { '/': [] };
    /** @private */ this._middleware_list = [];
    /** @private */ this._route_list = [];
    /** @private */ this._locked = false;
    /** @private */ this._not_found = null;
    /** @private */ this._native = null;
    /** @private */ this._release = null;
    /** @private the native side was disposed (see `_dispose_if_idle`) */ this._disposed = false;
    /** @private resEnd, resWrite, sseSend of the native server, without napi-rs's per-call cost */
    this._fast = null;
    /** @private */ this._socket = null;
    /** @private */ this._port = -1;
    /** @private */ this._open = 0;
    /** @private */ this._idle_waiter = null;
    /** @private shutdown() runs: an SSE stream that starts now is ended right after its start */
    this._shutting_down = false;
    /** @private */ this._hwm = 16384;
    /** @private ref'd timer keeping the loop alive while listening */ this._keepalive = null;
  }

  /** @private */
  _is_app() {
    return true;
  }

  /** @private */
  _assert_unlocked(what) {
    if (this._locked) {
      throw new Error(`hyper-sse: routes and middlewares cannot be added after listen() [${what}]`);
    }
  }

  /** @private */
  _create_route(record) {
    const { method, pattern, options, handler } = record;
    this._assert_unlocked(`${method.toUpperCase()} ${pattern}`);
    // The router's rules (src/routing.rs), checked here so that a bad pattern fails where it is
    // registered rather than at listen(), when nothing can be added any more.
    const segments = pattern.split('/');
    if (pattern.charCodeAt(0) !== 47 || segments.slice(0, -1).includes('*')) {
      throw coded(Error, 'ERR_INVALID_ARG_VALUE', `hyper-sse: invalid route pattern ${JSON.stringify(pattern)} [${method.toUpperCase()}]: it must start with '/', and a '*' wildcard must be the last segment`);
    }
    if (this._route_table[method][pattern] !== undefined) {
      throw new Error(`hyper-sse: duplicate routes are not allowed [${method.toUpperCase()} ${pattern}]`);
    }
    const max = finiteLimit(options.max_body_length);
    if (max !== undefined && (!Number.isSafeInteger(max) || max < 0)) {
      throw new RangeError(`hyper-sse: route option max_body_length must be a non-negative integer or Infinity [${pattern}]`);
    }
    const upper = method === 'del' ? 'DELETE' : method.toUpperCase();
    // The route's own response high-water mark (`streaming.writable.highWaterMark`); 0: the server's.
    const writable = options.streaming && options.streaming.writable;
    let hwm = 0;
    if (writable && writable.highWaterMark !== undefined) {
      hwm = writable.highWaterMark;
      if (!Number.isSafeInteger(hwm) || hwm < 1) {
        throw new RangeError(
          `hyper-sse: route option streaming.writable.highWaterMark must be a positive integer, got ${String(hwm)} [${pattern}]`
        );
      }
    }
    const route = {
      id: this._next_id++,
      app: this,
      method: upper,
      pattern,
      handler,
      options,
      streaming: options.streaming || this._options.streaming || {},
      max_body_length: max || 0,
      hwm,
      param_names: paramNames(pattern),
      path: pattern.includes('*') || pattern.includes(':') ? '' : pattern,
      chain: null,
    };
    this._route_table[method][pattern] = route;
    return route;
  }

  /** @private */
  _create_middleware(record) {
    this._assert_unlocked(`use ${record.pattern || '/'}`);
    const scope = record.pattern;
    const entry = { id: this._next_id++, pattern: scope === '' ? '/' : scope, handler: record.middleware };
    const key = entry.pattern;
    if (this._middleware_table[key] === undefined) this._middleware_table[key] = [];
    this._middleware_table[key].push(entry);
    this._middleware_list.push({ id: entry.id, scope: scope === '' ? null : scope, fn: record.middleware });
  }

  /** @private builds the middleware chain of a route (registration-id order, spec 3.3) */
  _compile_route(route) {
    const chain = [];
    let placed = false;
    const own = route.options.middlewares || [];
    const placeOwn = () => {
      placed = true;
      for (const fn of own) chain.push({ scope: null, fn });
    };
    for (const mw of this._middleware_list) {
      if (!placed && mw.id > route.id) placeOwn();
      // A static route only ever sees its own path: decide path-scoped middlewares now.
      if (mw.scope !== null && route.path !== '') {
        if (scopeMatches(mw.scope, route.path)) chain.push({ scope: null, fn: mw.fn });
      } else {
        chain.push({ scope: mw.scope, fn: mw.fn });
      }
    }
    if (!placed) placeOwn();
    route.chain = chain;
  }

  /** @private compiles routes once; locks registrations */
  _compile() {
    if (this._locked) return;
    if (this._route_table.any['/*'] === undefined) {
      const route = this._create_route({
        method: 'any',
        pattern: '/*',
        options: { middlewares: [] },
        handler: (req, res) => this._handlers.on_not_found(req, res),
      });
      this._not_found = route;
    } else {
      this._not_found = this._route_table.any['/*'];
    }
    this._locked = true;
    for (const method of METHOD_NAMES) {
      for (const pattern of Object.keys(this._route_table[method])) {
        const route = this._route_table[method][pattern];
        this._compile_route(route);
        this._route_list.push(route);
      }
    }
  }

  /** @private */
  _native_options() {
    const o = this._options;
    const writable = o.streaming && o.streaming.writable;
    const hwm = writable && writable.highWaterMark !== undefined ? writable.highWaterMark : 16384;
    this._hwm = numberOption({ 'streaming.writable.highWaterMark': hwm }, 'streaming.writable.highWaterMark', 1);
    return {
      workerThreads: numberOption(o, 'worker_threads', 1, 64),
      maxHeaderSize: numberOption(o, 'max_header_size', 1024, 1024 * 1024),
      maxBodyLength: numberOption({ max_body_length: finiteLimit(o.max_body_length) }, 'max_body_length', 0),
      fastAbort: Boolean(o.fast_abort),
      sseHeartbeatMs: numberOption(o, 'sse_heartbeat', 0, MAX_MS),
      maxQueuedBytes: numberOption(o, 'max_queued_bytes', 1),
      highWaterMark: this._hwm,
      writeTimeoutMs: numberOption(o, 'write_timeout', 0, MAX_MS),
      headerTimeoutMs: numberOption(o, 'header_timeout', 0, MAX_MS),
    };
  }

  /**
   * The entry point of the native side for a batch of requests (hot path, docs/NATIVE.md
   * `onRequests`): `nums` is `[id, routeId, paramCount, bodyLength, ...]`, `text` each request's
   * method, url and parameters, each followed by a NUL, `heads` each request's peer address and
   * headers (`ip\0name\0value\0...`).
   * @private
   */
  _on_requests(nums, text, heads) {
    // A batch queued before the native side was disposed: its connections are gone (disposal
    // waits for the last one), so there is nobody to answer.
    if (this._disposed) return;
    let pos = 0;
    for (let i = 0, r = 0; i + 3 < nums.length; i += 4, r++) {
      let end = text.indexOf('\0', pos);
      const method = text.slice(pos, end);
      pos = end + 1;
      end = text.indexOf('\0', pos);
      const url = text.slice(pos, end);
      pos = end + 1;
      const count = nums[i + 2];
      let params = null;
      if (count > 0) {
        params = new Array(count);
        for (let k = 0; k < count; k++) {
          end = text.indexOf('\0', pos);
          params[k] = text.slice(pos, end);
          pos = end + 1;
        }
      }
      try {
        this._on_request(nums[i], nums[i + 1], method, url, params, heads[r], nums[i + 3]);
      } catch (err) {
        // _on_request reports errors itself; this only keeps the rest of the batch flowing.
        console.error(err);
      }
    }
  }

  /**
   * One request of a batch (see `_on_requests`).
   * @private
   */
  _on_request(id, routeId, method, url, params, head, bodyLength) {
    let route = routeId >= 0 ? this._route_list[routeId] : undefined;
    if (route === undefined) route = this._not_found;
    // The route's own method and path strings when they are the same: the strings made for this
    // call are then garbage at once instead of being held by the request (an open SSE stream).
    if (method === route.method) method = route.method;
    if (url === route.path) url = route.path;
    const req = new Request(route, id, method, url, params, head, bodyLength);
    const res = new Response(route, req, id);
    OPEN.set(id, res);
    this._open++;
    try {
      run(route, req, res, 0);
    } catch (err) {
      // run() reports errors itself; this only guards the native callback.
      console.error(err);
    }
  }

  /** @private called once per response after its `close` */
  _response_closed() {
    this._open--;
    if (this._open === 0 && this._socket === null && !this._disposed) {
      const nat = this._native;
      setImmediate(() => this._dispose_if_idle(nat));
    }
    if (this._open === 0 && this._idle_waiter !== null) {
      const resolve = this._idle_waiter;
      this._idle_waiter = null;
      resolve();
    }
  }

  /**
   * Calls the error handler; a handler that throws or rejects is logged and the response is
   * answered 500 (or dropped if already started).
   * @private
   */
  _handle_error(req, res, error) {
    const fallback = (err) => {
      console.error(err);
      if (res.completed) return;
      if (res.initiated || res._sending) return res.close();
      // Twice at most: the app's headers may be what cannot be sent (too many, say), then a plain
      // 500 without them; else the connection is dropped.
      for (let attempt = 0; attempt < 2; attempt++) {
        try {
          res.status(500).send('HyperExpress: Uncaught Exception Occured');
          return;
        } catch (sendErr) {
          console.error(sendErr);
          res._headers = null;
          if (res._extra !== null) res._extra.cookies = null;
        }
      }
      res.close();
    };
    try {
      settle(this._handlers.on_error(req, res, error), undefined, fallback);
    } catch (err) {
      fallback(err);
    }
  }

  /**
   * Starts listening. `listen(port, host?, cb?)` or `listen(port, cb)`; host defaults to
   * `'0.0.0.0'`; port 0 picks a free port (see `server.port`). Compiles the routes: afterwards
   * routes and middlewares cannot be added. Resolves with an opaque listen-socket object
   * (`cb(socket)` is called first); rejects with a **string** when the bind fails.
   * @param {number} port
   * @param {string | Function} [host]
   * @param {Function} [callback]
   * @returns {Promise<object>}
   */
  listen(port, host, callback) {
    if (typeof host === 'function') {
      callback = host;
      host = undefined;
    }
    if (typeof host !== 'string' || host === '') host = '0.0.0.0';
    if (this._socket !== null) return Promise.reject('hyper-sse: listen(): this server is already listening');
    let bound;
    try {
      // A number, or a string of digits (an environment variable); not `true`, `123n` or `[80]`.
      const p = typeof port === 'number' || (typeof port === 'string' && /^\s*\d+\s*$/.test(port)) ? Number(port) : NaN;
      if (!Number.isInteger(p) || p < 0 || p > 65535) throw new Error(`invalid port ${describe(port, 64)}`);
      this._compile();
      if (this._native === null || this._disposed) {
        const { NativeServer } = native.load();
        this._disposed = false;
        this._native = new NativeServer(
          this._native_options(),
          (nums, text, heads) => this._on_requests(nums, text, heads),
          onEvents
        );
        // The per-response and per-message calls as plain Node-API functions (src/fast.rs):
        // about 450 ns less per call than the NativeServer methods they stand in for.
        this._fast = {
          resEnd: this._native.nativeFn('resEnd'),
          resWrite: this._native.nativeFn('resWrite'),
          sseSend: this._native.nativeFn('sseSend'),
        };
        this._release = { native: this._native, ids: [], queued: false };
        addNative(this._native);
        this._native.setRoutes(
          this._route_list.map((route, i) => ({
            id: i,
            method: route.method,
            pattern: route.pattern,
            maxBodyLength: route.max_body_length,
          }))
        );
      }
      bound = this._native.listen(host, p);
    } catch (err) {
      // Nothing listens and nothing is connected: the native side made for this call (or kept
      // from an earlier listen) is let go of, as after close().
      if (this._native !== null) this._dispose_if_idle(this._native);
      const reason = err && err.message ? err.message : String(err);
      return Promise.reject(`hyper-sse: listen(${String(port)}, ${host}) failed: ${reason}`);
    }
    this._port = bound;
    this._shutting_down = false;
    this._socket = { host, port: bound };
    LIVE.add(this);
    // The native callbacks do not keep the event loop alive: a ref'd timer does, while listening.
    this._keepalive = setInterval(noop, 2 ** 30);
    if (this._options.auto_close) autoClose(this);
    if (typeof callback === 'function') callback(this._socket);
    return Promise.resolve(this._socket);
  }

  /**
   * A server that stopped listening and has no connection and no open response left lets go of
   * its native side: the runtime thread, and the threadsafe functions whose callbacks hold this
   * Server (without this, a closed Server could never be garbage-collected). A later `listen()`
   * makes a new one.
   * @private
   */
  _dispose_if_idle(nat) {
    if (this._native !== nat || this._disposed || this._socket !== null) return;
    if (this._open > 0 || nat.connections > 0) return;
    this._disposed = true;
    nat.flush();
    removeNative(nat);
    nat.dispose();
  }

  /** @private stops accepting; returns whether the server was listening */
  _stop_listening() {
    if (this._socket === null) return false;
    this._socket = null;
    clearInterval(this._keepalive);
    this._keepalive = null;
    this._native.close();
    // Connections still open (a response being written, a stream, a keep-alive client) keep the
    // process alive, as sockets do in node:http: otherwise a response sent just before close()
    // could be cut off by the process exiting.
    holdWhileConnected(this, this._native);
    autoCloseDone(this);
    LIVE.delete(this);
    return true;
  }

  /**
   * Stops listening (synchronous). Open connections and streams stay open (reference semantics);
   * see `shutdown()` and `force_close()` to end them.
   * @returns {boolean} true, or false if the server was not listening
   */
  close() {
    return this._stop_listening();
  }

  /** @private open responses of this server */
  _open_responses() {
    const list = [];
    for (const res of OPEN.values()) if (res.route.app === this) list.push(res);
    return list;
  }

  /**
   * Graceful stop: stops accepting, closes idle keep-alive connections, ends every open SSE
   * stream from the server side (each emits `finish`, `close`, `close_reason = 'shutdown'`; a
   * stream that a still-running handler starts meanwhile too, after the writes of that tick),
   * waits for the other in-flight responses and then for the connections to close, up to
   * `timeout_ms` in all; whatever is left is then dropped (open responses emit `close`, reason
   * `'shutdown'`). Resolves when done; afterwards the process can exit by itself.
   * @param {number} [timeout_ms=10000]
   * @returns {Promise<void>}
   */
  async shutdown(timeout_ms = 10000) {
    // Checked before anything stops. Infinity (or more than a timer can wait) waits for good.
    if (typeof timeout_ms !== 'number' || Number.isNaN(timeout_ms) || timeout_ms < 0) {
      throw coded(TypeError, 'ERR_INVALID_ARG_VALUE', `hyper-sse: shutdown(timeout_ms) needs a non-negative number of ms, got ${typeof timeout_ms === 'number' ? timeout_ms : typeof timeout_ms}`);
    }
    const nat = this._native;
    this._stop_listening();
    if (nat === null) return;
    this._shutting_down = true;
    const deadline = Date.now() + timeout_ms;
    nat.closeIdle();
    for (const res of this._open_responses()) res._end_if_streaming('shutdown');
    nat.flush();
    if (this._open > 0) {
      let timer;
      await new Promise((resolve) => {
        this._idle_waiter = resolve;
        // setTimeout takes at most 2^31-1 ms (longer is 1 ms); a longer wait has no timer.
        const wait = Math.max(0, deadline - Date.now());
        if (wait <= MAX_TIMER) timer = setTimeout(resolve, wait);
      });
      clearTimeout(timer);
      this._idle_waiter = null;
    }
    if (this._open > 0) return this._force(nat);
    // Every response is complete: let the connections deliver their last bytes and close.
    nat.flush();
    nat.closeIdle();
    while (nat.connections > 0 && Date.now() < deadline) await sleep(5);
    if (nat.connections > 0) this._force(nat);
  }

  /** @private */
  _force(nat) {
    for (const res of this._open_responses()) res._terminate('shutdown');
    nat.forceClose();
    nat.flush();
  }

  /**
   * Hard stop: stops accepting and drops every connection now; each open response emits `close`
   * (`close_reason = 'shutdown'`). Afterwards the process can exit by itself.
   */
  force_close() {
    const nat = this._native;
    this._stop_listening();
    if (nat !== null) this._force(nat);
  }

  /** The bound port; throws when not listening. @type {number} */
  get port() {
    if (this._socket === null) {
      throw new Error('hyper-sse: Server.port is only available while the server is listening');
    }
    return this._port;
  }

  /** The listen socket object while listening, else null. */
  get socket() {
    return this._socket;
  }

  /**
   * Sets the error handler `(req, res, err)`. Default: `console.error(err)`, then 500 with body
   * `HyperExpress: Uncaught Exception Occured`.
   */
  set_error_handler(handler) {
    if (typeof handler !== 'function') throw coded(TypeError, 'ERR_INVALID_ARG_TYPE', 'hyper-sse: set_error_handler(handler) needs a function');
    this._handlers.on_error = handler;
  }

  /** Sets the not-found handler `(req, res)`. Default: 404 with an empty body. */
  set_not_found_handler(handler) {
    if (typeof handler !== 'function') throw coded(TypeError, 'ERR_INVALID_ARG_TYPE', 'hyper-sse: set_not_found_handler(handler) needs a function');
    this._handlers.on_not_found = handler;
  }

  /** `{ on_not_found, on_error }`. */
  get handlers() {
    return this._handlers;
  }

  /** Routes by lowercase method (`del` for DELETE), then pattern. */
  get routes() {
    return this._route_table;
  }

  /** Middlewares by scope pattern (`'/'` = global): `[{ id, pattern, handler }]`. */
  get middlewares() {
    return this._middleware_table;
  }

  /** Not supported (no uWS): throws. */
  get uws_instance() {
    throw NOT_SUPPORTED('Server.uws_instance');
  }

  /** Not supported (no HostManager / TLS yet): throws. */
  get hosts() {
    throw NOT_SUPPORTED('Server.hosts');
  }

  /** Not supported (WebSockets): throws. */
  publish() {
    throw NOT_SUPPORTED('Server.publish()');
  }

  /** Not supported (WebSockets): throws. */
  num_of_subscribers() {
    throw NOT_SUPPORTED('Server.num_of_subscribers()');
  }
}

module.exports = Server;
