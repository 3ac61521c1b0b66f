'use strict';
/**
 * Response: the Hyper-Express 6.14.12 response API (spec section 5) over the native addon.
 *
 * It is an EventEmitter, not a real `stream.Writable` (one per request would cost too much), but
 * it is Writable-compatible enough for `readable.pipe(res)`: `write()` returns false at the
 * high-water mark and `'drain'` follows, `end()` ends the response after every queued write.
 *
 * Events (each at most once, listeners get `(req, res)`; nothing is emitted after `close`):
 * - `prepare` just before the status line and headers are committed (headers may still change);
 * - `finish` when the response completed successfully (send/end/json/sse.close/stream, also when
 *   it was streamed), before `close`; never together with `abort`;
 * - `abort` when the client went away (or was cut for a write timeout / slow reading) before the
 *   response completed; `close` follows at once;
 * - `close` last event of every response, exactly once;
 * - `drain` after a `write()`/`sse.send()` returned false, once the queue fell below the mark.
 * A listener that throws (or rejects) is reported to the server's error handler, never crashes.
 *
 * Memory: one Response stays alive per open stream, so its own fields are only the hot ones;
 * rarely used state lives in a `ResponseExtra` created on first use, and the listener table is
 * created on the first listener.
 */
const { EventEmitter } = require('node:events');
const { STATUS_CODES } = require('node:http');
const cookie = require('cookie');
const mime = require('mime-types');
const { OPEN, queueRelease, touch } = require('./state');
const { sign } = require('./signature');
const SSEventStream = require('./SSEventStream');
const { addSharedAccessors, describe, coded } = require('./shared');

/** `close_reason` of a response the native side ended, by its end code (docs/NATIVE.md onEvents). */
const END_REASONS = [undefined, 'client', 'timeout', 'slow_client'];

const EMPTY = Object.freeze([]);
const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
// Header values and status messages: any character but control characters (tab allowed).
// They go out as UTF-8, as Hyper-Express sends them (node:http sends Latin-1 and rejects the rest).
const INVALID_VALUE = /[\x00-\x08\x0a-\x1f\x7f]/;
/** Statuses whose responses have no body (RFC 9110 sections 15.3.5, 15.3.6, 15.4.5). */
const NO_BODY = new Set([204, 205, 304]);
const INCOMPATIBLE = (name) =>
  new Error(`ERR_INCOMPATIBLE_CALL: Response.${name} is not supported by hyper-sse (as in Hyper-Express).`);
const UNSUPPORTED = (name) => new Error(`hyper-sse: Response.${name} is not supported yet`);

/** The longest header name the HTTP layer takes. */
const MAX_NAME = 65535;

function invalidChar(what, name) {
  const err = new TypeError(`hyper-sse: invalid character in ${what} ${JSON.stringify(describe(name, 64))}`);
  err.code = 'ERR_INVALID_CHAR';
  return err;
}

function checkValue(name, value) {
  if (value === undefined || value === null) {
    const err = new TypeError(`hyper-sse: invalid value ${String(value)} for header ${JSON.stringify(describe(name, 64))}`);
    err.code = 'ERR_HTTP_INVALID_HEADER_VALUE';
    throw err;
  }
  const str = typeof value === 'string' ? value : String(value);
  if (INVALID_VALUE.test(str)) throw invalidChar('header value of', name);
  return str;
}

/** Converts a body/chunk into what the addon accepts: `Buffer | string | null`. */
function toBody(body, encoding) {
  if (body === undefined || body === null) return null;
  if (typeof body === 'string') {
    if (encoding !== undefined && encoding !== null && encoding !== 'utf8' && encoding !== 'utf-8') {
      return Buffer.from(body, encoding);
    }
    return body;
  }
  if (Buffer.isBuffer(body)) return body;
  if (body instanceof ArrayBuffer) return Buffer.from(body);
  if (ArrayBuffer.isView(body)) return Buffer.from(body.buffer, body.byteOffset, body.byteLength);
  if (typeof body === 'object' || typeof body === 'function') {
    // As Hyper-Express and node:http: '[object Object]' would hide the bug.
    const what = typeof body === 'function' ? 'a function' : `an object (${(body.constructor && body.constructor.name) || 'Object'})`;
    throw coded(TypeError, 'ERR_INVALID_ARG_TYPE', `hyper-sse: a response body must be a string, Buffer, ArrayBuffer or typed array, got ${what} (res.json() sends an object as JSON)`);
  }
  return String(body);
}

/** A head the native side refused (too many headers, say): its error, with a Node-style code. */
function refused(err) {
  if (err && err.code === 'InvalidArg') err.code = 'ERR_INVALID_ARG_VALUE';
  return err;
}

function writeAfterEnd() {
  const err = new Error('hyper-sse: write after the response completed');
  err.code = 'ERR_STREAM_WRITE_AFTER_END';
  return err;
}

/** Bits of `Response._flags`. */
const PREPARED = 1; // `prepare` was emitted (or skipped): nothing may emit it again
const SSE_MODE = 2; // started as an SSE stream (resHead sse=true)
const NEED_DRAIN = 4; // a write returned false; cleared by the next drain
const LISTENER_THREW = 8; // a listener threw synchronously (read and cleared by `_prepare`)
const FINISHING = 16; // the response was delivered and `finish` is being emitted
const STATUS_SET = 32; // the app set the status (`statusCode` reads undefined before, as in Hyper-Express)

/**
 * A fast-mode object with no inherited keys, for the listener table of a Response.
 * (EventEmitter's own `{ __proto__: null }` starts in V8's larger, slower dictionary mode.)
 */
function Listeners() {}
Listeners.prototype = Object.create(null);

/** Same, for the response headers (name → string | string[]). */
function HeaderMap() {}
HeaderMap.prototype = Object.create(null);

/**
 * The headers of an SSE response that had no headers of its own, shared by all of them (an open
 * stream holds no header object of its own); `_own_headers()` copies it before any change.
 */
const SSE_HEADERS = new HeaderMap();
SSE_HEADERS['content-type'] = 'text/event-stream';
SSE_HEADERS['cache-control'] = 'no-cache';
SSE_HEADERS.connection = 'keep-alive';
SSE_HEADERS['x-accel-buffering'] = 'no';
Object.freeze(SSE_HEADERS);

/** @private rarely used response state, created on first use (see `Response._more()`) */
class ResponseExtra {
  constructor() {
    /** custom reason phrase */
    this.message = null;
    /** name → serialized cookie */
    this.cookies = null;
    /** explicit Content-Length for stream(readable, total) */
    this.length = -1;
    /** body bytes written so far */
    this.written = 0;
    /** `res.locals` */
    this.locals = undefined;
    /** `res.drain(handler)` */
    this.drain_handler = null;
  }
}

function reportListenerError(res, err) {
  try {
    res.app._handle_error(res._req, res, err);
  } catch (e) {
    console.error(e);
  }
}

function invoke(res, fn, n, a, b, args) {
  try {
    let out;
    if (n === 0) out = fn.call(res);
    else if (n === 1) out = fn.call(res, a);
    else if (n === 2) out = fn.call(res, a, b);
    else out = Reflect.apply(fn, res, Array.prototype.slice.call(args, 1));
    if (out !== undefined && out !== null && typeof out.then === 'function') {
      out.then(undefined, (err) => reportListenerError(res, err));
    }
  } catch (err) {
    res._flags |= LISTENER_THREW;
    reportListenerError(res, err);
  }
}

/**
 * A Response is an EventEmitter (its prototype chain is set up below the class), but it does not
 * run the EventEmitter constructor, which would give every response five more fields and a
 * dictionary-mode listener table: `_events` stays undefined until the first listener is added.
 */
class Response {
  /**
   * Created by the server for each request; not meant to be constructed by applications.
   * The NativeServer and its release queue are the app's (`route.app`).
   * @param {object} route matched route record
   * @param {import('./Request')} req
   * @param {number} id native request id
   */
  constructor(route, req, id) {
    /** @private EventEmitter listener table (a `Listeners`), created by the first `on()` */
    this._events = undefined;
    /** @private EventEmitter bookkeeping */
    this._eventsCount = 0;
    /** The matched route record. */
    this.route = route;
    /** @private */ this._req = req;
    /** @private */ this._id = id;
    /** @private */ this._status = 200;
    /** @private name → string | string[] (a `HeaderMap`) */ this._headers = null;
    /** @private PREPARED | SSE_MODE | NEED_DRAIN */ this._flags = 0;
    /** @private send() in progress or done */ this._sending = false;
    /** @private */ this._sse = undefined;
    /** @private rarely used state (`ResponseExtra`), see `_more()` */ this._extra = null;
    /** Status line and headers were handed to the native side (alias: `headersSent`). */
    this.initiated = false;
    /** The response finished, the client left, or `close()` was called (alias: `aborted`). */
    this.completed = false;
    /**
     * Why the response ended: `null` while open, then `'finished'` (completed normally),
     * `'client'` (client disconnected), `'timeout'` (a write made no progress for `write_timeout`),
     * `'slow_client'` (more than `max_queued_bytes` queued: evicted), `'server'` (`res.close()` or
     * `channel.close()`), `'shutdown'` (`server.shutdown()` / `server.force_close()`).
     * @type {null | 'finished' | 'client' | 'timeout' | 'slow_client' | 'server' | 'shutdown'}
     */
    this.close_reason = null;
  }

  // ---------------------------------------------------------------- events

  /** @private the rarely used state, created on first use */
  _more() {
    if (this._extra === null) this._extra = new ResponseExtra();
    return this._extra;
  }

  /** @private the NativeServer serving this response (the app's) */
  get _native() {
    return this.route.app._native;
  }

  /** @private streamed as SSE (resHead sse=true) */
  get _sse_mode() {
    return (this._flags & SSE_MODE) !== 0;
  }

  /** Same as EventEmitter's (creates the listener table on first use). @returns {this} */
  on(type, listener) {
    if (this._events === undefined) this._events = new Listeners();
    return EventEmitter.prototype.on.call(this, type, listener);
  }

  /** Same as EventEmitter's (creates the listener table on first use). @returns {this} */
  addListener(type, listener) {
    return this.on(type, listener);
  }

  /** Same as EventEmitter's (creates the listener table on first use). @returns {this} */
  prependListener(type, listener) {
    if (this._events === undefined) this._events = new Listeners();
    return EventEmitter.prototype.prependListener.call(this, type, listener);
  }

  /**
   * Emits like EventEmitter, but a listener that throws or rejects is reported to the server's
   * error handler `(req, res, err)` instead of propagating; the other listeners still run.
   * @returns {boolean}
   */
  emit(type, a, b) {
    const events = this._events;
    const handler = events === undefined ? undefined : events[type];
    if (handler === undefined) {
      if (type === 'error') reportListenerError(this, a instanceof Error ? a : new Error(String(a)));
      return false;
    }
    const n = arguments.length - 1;
    if (typeof handler === 'function') invoke(this, handler, n, a, b, arguments);
    else {
      const list = handler.slice();
      for (let i = 0; i < list.length; i++) invoke(this, list[i], n, a, b, arguments);
    }
    return true;
  }

  /**
   * @private emits `prepare` once, before anything is committed.
   * @returns {boolean} true when a `prepare` listener threw: the caller then sends nothing, and the
   *   error handler's answer is the response (in Hyper-Express the throw leaves `send()` before
   *   anything is written)
   */
  _prepare() {
    if ((this._flags & PREPARED) !== 0) return false;
    this._flags |= PREPARED;
    const events = this._events;
    if (events === undefined || events.prepare === undefined) return false;
    this._flags &= ~LISTENER_THREW;
    this.emit('prepare', this._req, this);
    const threw = (this._flags & LISTENER_THREW) !== 0;
    this._flags &= ~LISTENER_THREW;
    return threw;
  }

  /** @private emits `close` (the last event), then forgets this response */
  _emit_close() {
    if (this._events !== undefined && this._events.close !== undefined) this.emit('close', this._req, this);
    const app = this.route.app;
    OPEN.delete(this._id);
    try {
      this._req._keep_body();
    } catch (err) {
      // The body is then lost for late readers; the response must still be released.
      console.error(err);
    }
    queueRelease(app._release, this._id);
    app._response_closed();
  }

  /** @private successful completion: `finish` then `close` */
  _finish(reason) {
    this.close_reason = reason;
    this._sending = true;
    if (this._events !== undefined && this._events.finish !== undefined) {
      this._flags |= FINISHING;
      this.emit('finish', this._req, this);
      this._flags &= ~FINISHING;
      if (this.completed) return;
    }
    this.completed = true;
    this._emit_close();
  }

  /** @private the client is gone: `abort` then `close` */
  _abort(reason) {
    if (this.completed) return;
    this.completed = true;
    this.close_reason = reason;
    if (this._events !== undefined && this._events.abort !== undefined) this.emit('abort', this._req, this);
    this._emit_close();
  }

  /** @private ended by the server without a normal completion: `close` only */
  _terminate(reason) {
    if (this.completed) return;
    this.completed = true;
    this.close_reason = reason;
    this._emit_close();
  }

  /** @private native lifecycle event (docs/NATIVE.md onEvents codes) */
  _onNative(code) {
    if (this.completed) return;
    switch (code) {
      case 1:
      case 2:
      case 3:
        return this._abort(END_REASONS[code]);
      case 4:
        this._flags &= ~NEED_DRAIN;
        if (this._events !== undefined && this._events.drain !== undefined) this.emit('drain');
        if (this._extra !== null && this._extra.drain_handler !== null && !this.completed) this._run_drain_handler();
        return;
    }
  }

  /**
   * @private a call found the response ended by the native side before its event arrived (the
   * event is then ignored): abort with the reason the native side recorded
   */
  _gone() {
    if (this.completed) return;
    this._abort(END_REASONS[this._native.endReason(this._id)] || 'client');
  }

  // ---------------------------------------------------------------- head

  /**
   * @private flat `[name, value, ...]` for the native side. `emptyBody`: the response goes out
   * whole without a body (`send()`), so an answer to HEAD says `content-length: 0`, as the same
   * answer to GET does (hyper announces no length for an empty HEAD body), unless the app gave one.
   */
  _header_list(emptyBody = false) {
    const headers = this._headers;
    const extra = this._extra;
    const cookies = extra === null ? null : extra.cookies;
    const length = extra === null ? -1 : extra.length;
    const zero = emptyBody && this._req.method === 'HEAD' && this._status !== 204 && this._status !== 304;
    if (headers === null && cookies === null && length < 0 && !zero) return EMPTY;
    const out = [];
    let announced = null;
    if (headers !== null) {
      for (const name in headers) {
        if (name === 'transfer-encoding') continue;
        const value = headers[name];
        if (name === 'content-length') {
          // Framing is the server's, except the length a HEAD response announces: one value, the
          // app's last, if it is a length at all.
          const last = typeof value === 'string' ? value : value[value.length - 1];
          if (this._req.method === 'HEAD' && this._status !== 204 && /^\d{1,15}$/.test(String(last).trim())) announced = String(last).trim();
          continue;
        }
        if (typeof value === 'string') out.push(name, value);
        else for (let i = 0; i < value.length; i++) out.push(name, value[i]);
      }
    }
    if (cookies !== null) for (const name in cookies) out.push('set-cookie', cookies[name]);
    if (length >= 0) out.push('content-length', String(length));
    else if (announced !== null) out.push('content-length', announced);
    else if (zero) out.push('content-length', '0');
    return out;
  }

  /**
   * @private starts a chunked (or SSE) response: `prepare`, then status + headers.
   * @returns {boolean} false when the response cannot be written any more
   */
  _start(sse) {
    if (sse && NO_BODY.has(this._status) && !this.completed && !this.initiated && !this._sending) {
      throw coded(Error, 'ERR_HTTP_BODY_NOT_ALLOWED', `hyper-sse: a ${this._status} response has no body: it cannot be an SSE stream`);
    }
    if (sse && this._headers === null) {
      this._headers = SSE_HEADERS;
    } else if (sse) {
      for (const name in SSE_HEADERS) this.header(name, SSE_HEADERS[name], true);
    }
    if (this._prepare() || this.completed || this.initiated || this._sending) return false;
    const headers = this._header_list();
    this.initiated = true;
    if (sse) this._flags |= SSE_MODE;
    let ok;
    try {
      ok = this._native.resHead(this._id, this._status, this._reason(), headers, sse, this.route.hwm);
    } catch (err) {
      // Refused by the native side (nothing was sent): the response stays open, as it was.
      this.initiated = false;
      this._flags &= ~SSE_MODE;
      throw refused(err);
    }
    touch();
    if (!ok) {
      this._gone();
      return false;
    }
    // A stream started while the server shuts down (its handler was still running) is ended
    // like the streams open when shutdown() began, once this tick's writes are queued.
    if (sse && this.route.app._shutting_down) setImmediate(() => this._end_if_streaming('shutdown'));
    return true;
  }

  /** @private ends an open streamed response from the server side (`finish`, `close`) */
  _end_if_streaming(reason) {
    if (this._sse_mode && !this.completed && !this._sending) this._end_stream(null, reason);
  }

  /**
   * @private interprets a native write result (bytes queued, or -1 when gone).
   * @returns {boolean} Writable semantics: false above the high-water mark or when gone
   */
  _queued(n) {
    // -1: the native side ended the stream (client gone, evicted, timed out); its event follows
    // in a later callback, which emits `abort` and `close` (never inside the caller's write, which
    // may be iterating over its own list of streams).
    if (n < 0) return false;
    if (n >= this.writableHighWaterMark) {
      this._flags |= NEED_DRAIN;
      return false;
    }
    return true;
  }

  /** @private the headers, made this response's own (and writable) first */
  _own_headers() {
    const headers = this._headers;
    if (headers === null) {
      this._headers = new HeaderMap();
    } else if (headers === SSE_HEADERS) {
      this._headers = Object.assign(new HeaderMap(), SSE_HEADERS);
    }
    return this._headers;
  }

  /** @private the custom reason phrase, or null for the standard one */
  _reason() {
    return this._extra === null ? null : this._extra.message;
  }

  /**
   * Sets the status code (and optionally a custom reason phrase). Ignored once initiated.
   * @param {number} code 100–999
   * @param {string} [message] reason phrase; default the standard one for `code`
   * @returns {this}
   */
  status(code, message) {
    if (this.initiated) return this;
    const n = Number(code);
    if (!Number.isInteger(n) || n < 200 || n > 999) {
      // 1xx are interim responses, never a response's final status (hyper would send a 500).
      const err = new RangeError(`hyper-sse: invalid status code ${JSON.stringify(code)} (expected 200-999)`);
      err.code = 'ERR_HTTP_INVALID_STATUS_CODE';
      throw err;
    }
    // Validated before anything changes: a rejected call leaves the response as it was.
    const text = message !== undefined && message !== null ? String(message) : null;
    if (text !== null && INVALID_VALUE.test(text)) throw invalidChar('status message', text);
    this._status = n;
    this._flags |= STATUS_SET;
    if (text !== null) this._more().message = text;
    else if (this._extra !== null) this._extra.message = null;
    return this;
  }

  /**
   * Sets a header. Names are lowercased; by default a second call with the same name adds
   * another header line (arrays add one line per value); `overwrite` replaces.
   * CR, LF or other invalid characters throw a TypeError with `code = 'ERR_INVALID_CHAR'`.
   * Ignored once the response is initiated.
   * @param {string} name
   * @param {string | number | Array<string | number>} value
   * @param {boolean} [overwrite=false]
   * @returns {this}
   */
  header(name, value, overwrite) {
    if (typeof name !== 'string' || !TOKEN.test(name)) throw invalidChar('header name', name);
    if (name.length > MAX_NAME) {
      throw coded(RangeError, 'ERR_OUT_OF_RANGE', `hyper-sse: header name ${JSON.stringify(describe(name, 64))} is longer than ${MAX_NAME} characters`);
    }
    let v;
    if (Array.isArray(value)) {
      v = new Array(value.length);
      for (let i = 0; i < value.length; i++) v[i] = checkValue(name, value[i]);
    } else {
      v = checkValue(name, value);
    }
    if (this.initiated) return this;
    const key = name.toLowerCase();
    const headers = this._own_headers();
    const current = headers[key];
    if (overwrite === true || current === undefined) {
      headers[key] = Array.isArray(v) && v.length === 1 ? v[0] : v;
    } else if (typeof current === 'string') {
      headers[key] = Array.isArray(v) ? [current, ...v] : [current, v];
    } else if (Array.isArray(v)) {
      for (const item of v) current.push(item);
    } else {
      current.push(v);
    }
    return this;
  }

  /**
   * Sets `content-type` from an extension (`'json'`, `'.html'`) or a mime type; unknown → `text/plain`.
   * Text types get `; charset=utf-8` (mime-types `contentType()`).
   * @param {string} type
   * @returns {this}
   */
  type(type) {
    let t = String(type);
    if (t.charCodeAt(0) === 46) t = t.slice(1);
    return this.header('content-type', mime.contentType(t) || 'text/plain');
  }

  /**
   * Sets a cookie (one `set-cookie` line per name; the same name again replaces it).
   * Without `options`: `Path=/; Secure; SameSite=None`. `value === null` deletes (`Max-Age=0`).
   * With `options.secret` (and `sign`), the value is signed like `req.sign()`.
   * @param {string} name
   * @param {string | null} value
   * @param {number} [expiry_ms] sets `Max-Age` (seconds, rounded) and `Expires`
   * @param {object} [options] `cookie` serialize options plus `secret`
   * @param {boolean} [sign_cookie=true]
   * @returns {this}
   */
  cookie(name, value, expiry_ms, options, sign_cookie = true) {
    if (name && value === null) return this.cookie(name, '', null, { maxAge: 0 }, false);
    const opts = options ? Object.assign({}, options) : { secure: true, sameSite: 'none', path: '/' };
    if (typeof expiry_ms === 'number') {
      if (!opts.expires) opts.expires = new Date(Date.now() + expiry_ms);
      if (!opts.maxAge) opts.maxAge = Math.round(expiry_ms / 1000);
    }
    let val = value === undefined ? '' : String(value);
    if (sign_cookie && typeof opts.secret === 'string') val = sign(val, opts.secret);
    delete opts.secret;
    let serialized;
    try {
      serialized = cookie.serialize(name, val, opts);
    } catch (err) {
      // The `cookie` package's own message ("argument name is invalid") names neither the call
      // nor the cookie.
      throw coded(TypeError, 'ERR_INVALID_ARG_VALUE', `hyper-sse: Response.cookie(${JSON.stringify(String(name))}): ${err.message}`);
    }
    if (INVALID_VALUE.test(serialized)) throw invalidChar('cookie', name);
    if (this.initiated) return this;
    const extra = this._more();
    if (extra.cookies === null) extra.cookies = Object.create(null);
    extra.cookies[name] = serialized;
    return this;
  }

  // ---------------------------------------------------------------- body

  /**
   * Writable-style write. The first write commits status + headers (`prepare` first) and starts
   * a chunked body. Returns false when the queued bytes reach the high-water mark (`'drain'`
   * follows) and after the response completed (nothing is written then).
   * @param {string | Buffer | ArrayBuffer | Uint8Array} chunk
   * @param {BufferEncoding | Function} [encoding]
   * @param {Function} [callback]
   * @returns {boolean}
   */
  write(chunk, encoding, callback) {
    if (typeof encoding === 'function') {
      callback = encoding;
      encoding = undefined;
    }
    // After the end, a write is refused whatever it is (a pipe may still be flowing: it must
    // not throw now).
    if (this.completed || this._sending) {
      if (typeof callback === 'function') process.nextTick(callback, writeAfterEnd());
      return false;
    }
    // Checked before anything else: a rejected chunk changes nothing.
    const body = toBody(chunk, encoding);
    if (!this.initiated && NO_BODY.has(this._status)) {
      // A 204, 205 or 304 response has no body: writes are ignored (as node:http does) and
      // send()/end() sends the head alone.
      if (typeof callback === 'function') process.nextTick(callback, null);
      return true;
    }
    if (!this.initiated && !this._start(false)) {
      if (typeof callback === 'function') process.nextTick(callback, writeAfterEnd());
      return false;
    }
    let ok = true;
    if (body !== null && body.length !== 0) {
      const n = this.route.app._fast.resWrite(this._id, body);
      touch();
      if (n < 0) {
        if (typeof callback === 'function') process.nextTick(callback, writeAfterEnd());
        return false;
      }
      this._more().written += typeof body === 'string' ? Buffer.byteLength(body) : body.length;
      ok = this._queued(n);
    }
    if (typeof callback === 'function') process.nextTick(callback, null);
    return ok;
  }

  /**
   * Ends the response. Without prior writes: one response with `Content-Length`; after writes:
   * the last chunk then the end of the chunked body. `prepare` (if not yet), `finish`, `close`.
   * No-op once completed (still returns the Response).
   * @param {string | Buffer | ArrayBuffer | Uint8Array} [body]
   * @param {boolean} [close_connection] adds `connection: close`
   * @returns {this}
   */
  send(body, close_connection) {
    // A no-op once completed, whatever the body; else the body is checked first: a rejected
    // body changes nothing.
    if (this.completed || this._sending) return this;
    const data = toBody(body);
    if (close_connection === true && !this.initiated) this.header('connection', 'close', true);
    // `prepare` listeners run first; one may answer, start a stream (`write()`), or throw (the
    // error handler answers).
    if (!this.initiated && (this._prepare() || this.completed || this._sending)) return this;
    if (!this.initiated) {
      // This body's own length, never a pending stream()'s total (a send() that answers while a
      // stream waits for its first chunk).
      if (this._extra !== null) this._extra.length = -1;
      const headers = this._header_list(data === null || data.length === 0);
      this._sending = true;
      this.initiated = true;
      let ok;
      try {
        ok = this.route.app._fast.resEnd(this._id, this._status, this._reason(), headers, data);
      } catch (err) {
        // Refused by the native side (nothing was sent): the response stays open, as it was.
        this._sending = false;
        this.initiated = false;
        throw refused(err);
      }
      touch();
      if (!ok) return this._gone(), this;
    } else {
      return this._end_stream(data, 'finished');
    }
    this._finish('finished');
    return this;
  }

  /**
   * @private ends a started (streamed) response after `body` as its last chunk: `finish` then
   * `close` with `reason` (or `abort`, `close` when the client is already gone)
   * @returns {this}
   */
  _end_stream(body, reason) {
    this._sending = true;
    const ok = this._native.resFinish(this._id, toBody(body));
    touch();
    if (!ok) return this._gone(), this;
    this._finish(reason);
    return this;
  }

  /**
   * Alias of `send(body)` with Writable's `end(chunk, encoding, cb)` shape. Writes queued before
   * are delivered first (D8).
   * @returns {this}
   */
  end(chunk, encoding, callback) {
    if (typeof chunk === 'function') {
      callback = chunk;
      chunk = undefined;
    } else if (typeof encoding === 'function') {
      callback = encoding;
      encoding = undefined;
    }
    // Checked before anything else (while the response is open): a rejected chunk registers no
    // callback.
    const data = this.completed || this._sending ? null : toBody(chunk, encoding);
    if (typeof callback === 'function') {
      if (this.completed) process.nextTick(callback);
      else this.once('close', () => callback());
    }
    return this.send(data);
  }

  /**
   * `type('json')` + `send(JSON.stringify(body))`.
   * @returns {this}
   */
  json(body) {
    if (this.completed) return this;
    // Serialized before the content type is set: a throwing value (a BigInt, a cycle) changes nothing.
    const text = JSON.stringify(body);
    return this.type('json').send(text);
  }

  /**
   * JSONP: `callback(<json>)` with the name from `?callback=` or `name`.
   * @returns {this}
   */
  jsonp(body, name) {
    if (this.completed) return this;
    const query = this._req.query_parameters.callback;
    const fn = (Array.isArray(query) ? query[0] : query) || name || 'callback';
    const text = `${fn}(${JSON.stringify(body)})`;
    return this.type('js').send(text);
  }

  /**
   * `type('html').send(body)`.
   * @returns {this}
   */
  html(body) {
    if (this.completed) return this;
    // Checked before the content type is set: a rejected body changes nothing.
    const data = toBody(body);
    return this.type('html').send(data);
  }

  /**
   * `302 Found` with `location: url`; returns false when already completed.
   * @returns {this | false}
   */
  redirect(url) {
    if (this.completed) return false;
    if (typeof url !== 'string' && !(url instanceof URL)) {
      // `redirect(301, url)` (Express's form) would otherwise send `location: 301`.
      throw coded(TypeError, 'ERR_INVALID_ARG_TYPE', `hyper-sse: res.redirect(url) takes the URL only (a string), got ${typeof url}; for another status: res.status(301).header('location', url).send()`);
    }
    // The location first: a rejected url leaves the status as it was.
    return this.header('location', url, true).status(302).send();
  }

  /**
   * Streams `readable` as the body (chunked, or `Content-Length: total` when given), honouring
   * backpressure, then ends the response. Resolves when done (also when the client left).
   * @param {import('stream').Readable} readable
   * @param {number} [total] total byte size
   * @returns {Promise<void>}
   */
  stream(readable, total) {
    if (this.completed) return Promise.resolve();
    if (readable === null || typeof readable !== 'object' || typeof readable.on !== 'function') {
      this.throw(coded(TypeError, 'ERR_INVALID_ARG_TYPE', 'hyper-sse: Response.stream(readable, total) needs a Readable stream'));
      return Promise.resolve();
    }
    if (total !== undefined && total !== null && !(Number.isSafeInteger(total) && total >= 0)) {
      this.throw(coded(RangeError, 'ERR_OUT_OF_RANGE', `hyper-sse: Response.stream(readable, total): total must be a non-negative integer, got ${describe(total, 64)}`));
      return Promise.resolve();
    }
    const length = typeof total === 'number' && !this.initiated && !NO_BODY.has(this._status) ? total : -1;
    if (length >= 0) this._more().length = length;
    return new Promise((resolve) => {
      let settled = false;
      let bytes = 0;
      // The body cannot be completed: if it started, the connection is dropped first (the client
      // sees a cut body) so the error handler cannot add to it; if not, the error handler
      // answers, without the announced length.
      const fail = (err) => {
        if (this.initiated) this.close();
        else if (length >= 0) this._extra.length = -1;
        this.throw(err);
      };
      // The readable gave more or less than the `total` promised in Content-Length.
      const mismatch = (n) => {
        fail(coded(Error, 'ERR_HTTP_CONTENT_LENGTH_MISMATCH', `hyper-sse: Response.stream(): the readable gave ${n} bytes, ${n > length ? 'more' : 'fewer'} than the total of ${length}`));
      };
      const done = () => {
        if (settled) return;
        settled = true;
        readable.removeListener('data', onData);
        readable.removeListener('end', onEnd);
        readable.removeListener('error', onError);
        this.removeListener('drain', onDrain);
        this.removeListener('close', onClose);
        resolve();
      };
      const onData = (item) => {
        let chunk;
        try {
          // An object-mode readable may give what is not a body (an object): its error.
          chunk = toBody(item);
        } catch (err) {
          done();
          if (typeof readable.destroy === 'function') readable.destroy();
          fail(err);
          return;
        }
        if (chunk === null) return;
        if (length >= 0) {
          bytes += typeof chunk === 'string' ? Buffer.byteLength(chunk) : chunk.length;
          if (bytes > length) {
            done();
            if (typeof readable.destroy === 'function') readable.destroy();
            mismatch(bytes);
            return;
          }
        }
        if (!this.write(chunk) && !this.completed) readable.pause();
        // All `total` bytes are out: complete now. hyper ends a body of known length at its
        // last byte, before the readable's `end` (which may come a tick or more later): waiting
        // for it would find the response ended without JS, as if the client had left.
        if (length >= 0 && bytes === length && !this.completed) {
          done();
          this.send();
          // Let the readable run to its end (it has nothing more to give, or its excess is
          // dropped), so that it finishes and releases what it holds (a file descriptor).
          if (typeof readable.resume === 'function') readable.resume();
        }
      };
      const onDrain = () => readable.resume();
      const onEnd = () => {
        done();
        if (length >= 0 && bytes !== length) mismatch(bytes);
        else this.send();
      };
      const onError = (err) => {
        done();
        fail(err);
      };
      const onClose = () => {
        done();
        if (typeof readable.destroy === 'function' && !readable.destroyed) readable.destroy();
      };
      this.on('drain', onDrain);
      this.once('close', onClose);
      readable.on('error', onError);
      readable.on('end', onEnd);
      readable.on('data', onData);
      if (typeof readable.resume === 'function') readable.resume();
    });
  }

  /**
   * Drops the connection now, without (the rest of) a response. Emits `close` once
   * (`close_reason = 'server'`).
   */
  close() {
    // Inside a `finish` listener the response is already delivered: `close` follows it at once,
    // with close_reason 'finished'.
    if (this.completed || (this._flags & FINISHING) !== 0) return;
    this._native.resClose(this._id);
    touch();
    this._terminate('server');
  }

  /**
   * Runs `fn` at once (writes are already batched by the native side). Kept for compatibility.
   * @returns {this}
   */
  atomic(fn) {
    if (!this.completed) fn();
    return this;
  }

  /**
   * Low-level backpressure hook (uWS style): `handler(write_offset)` is called on every drain
   * until it returns true.
   * @param {(offset: number) => boolean} handler
   */
  drain(handler) {
    if (typeof handler !== 'function') {
      throw coded(TypeError, 'ERR_INVALID_ARG_TYPE', `hyper-sse: Response.drain(handler) needs a function, got ${describe(handler, 64)}`);
    }
    this._more().drain_handler = handler;
  }

  /** @private */
  _run_drain_handler() {
    const extra = this._extra;
    const handler = extra.drain_handler;
    let out;
    try {
      out = handler(this.write_offset);
    } catch (err) {
      return this.throw(err);
    }
    if (typeof out !== 'boolean') {
      this.throw(new Error('hyper-sse: Response.drain(handler): handler must return a boolean'));
    } else if (out && extra.drain_handler === handler) extra.drain_handler = null;
  }

  /**
   * Passes `error` to the server's error handler (non-Errors are wrapped
   * `ERR_CAUGHT_NON_ERROR_TYPE: ...`).
   * @returns {this}
   */
  throw(error) {
    if (!(error instanceof Error)) error = new Error(`ERR_CAUGHT_NON_ERROR_TYPE: ${describe(error)}`);
    this.route.app._handle_error(this._req, this, error);
    return this;
  }

  /**
   * Sets the status only (as Hyper-Express does; it does not send).
   * @returns {this}
   */
  sendStatus(code) {
    return this.status(code);
  }

  // ---------------------------------------------------------------- aliases (Express / Node)

  /** Same as `header(name, value)` (appends). @returns {this} */
  append(name, value) {
    return this.header(name, value);
  }

  /** Same as `header(name, value)` (appends, as in Hyper-Express). @returns {this} */
  setHeader(name, value) {
    return this.header(name, value);
  }

  /** `set(name, value)` or `set({ name: value, ... })`, appending like `header()`. @returns {this} */
  set(field, value) {
    if (field !== null && typeof field === 'object') return this.writeHeaders(field);
    return this.header(field, value);
  }

  /** Sets every `name: value` of `headers`. @returns {this} */
  writeHeaders(headers) {
    if (headers === null || typeof headers !== 'object' || Array.isArray(headers)) {
      throw coded(TypeError, 'ERR_INVALID_ARG_TYPE', `hyper-sse: Response.writeHeaders(headers) needs an object of name: value, got ${describe(headers, 64)}`);
    }
    for (const name of Object.keys(headers)) this.header(name, headers[name]);
    return this;
  }

  /** Alias of `writeHeaders()`. @returns {this} */
  setHeaders(headers) {
    return this.writeHeaders(headers);
  }

  /** One header line per value. @returns {this} */
  writeHeaderValues(name, values) {
    for (const value of values) this.header(name, value);
    return this;
  }

  /** @returns {string | string[] | undefined} */
  getHeader(name) {
    return this._headers === null ? undefined : this._headers[String(name).toLowerCase()];
  }

  /** Alias of `getHeader()`. */
  get(name) {
    return this.getHeader(name);
  }

  /** @returns {boolean} */
  hasHeader(name) {
    return this.getHeader(name) !== undefined;
  }

  /** @returns {Record<string, string | string[]>} */
  getHeaders() {
    return Object.assign({}, this._headers);
  }

  /** @returns {string[]} */
  getHeaderNames() {
    return this._headers === null ? [] : Object.keys(this._headers);
  }

  /** @returns {this} */
  removeHeader(name) {
    if (this._headers !== null && !this.initiated) delete this._own_headers()[String(name).toLowerCase()];
    return this;
  }

  /** `location: url`. @returns {this} */
  location(url) {
    return this.header('location', url, true);
  }

  /** `link: <url>; rel="name", ...`. @returns {this} */
  links(links) {
    const parts = Object.keys(links).map((rel) => `<${links[rel]}>; rel="${rel}"`);
    return this.header('link', parts.join(', '));
  }

  /** Adds a `vary` value. @returns {this} */
  vary(name) {
    return this.header('vary', name);
  }

  /** `cookie(name, value, undefined, options)`. @returns {this} */
  setCookie(name, value, options) {
    return this.cookie(name, value, undefined, options);
  }

  /** @returns {boolean} */
  hasCookie(name) {
    const cookies = this._extra === null ? null : this._extra.cookies;
    return cookies !== null && cookies[name] !== undefined;
  }

  /** Deletion cookie (`Max-Age=0`). @returns {this} */
  removeCookie(name) {
    return this.cookie(name, null);
  }

  /** Alias of `removeCookie()`. @returns {this} */
  clearCookie(name) {
    return this.removeCookie(name);
  }

  /** `content-disposition: attachment[; filename="..."]` (+ type from the extension). @returns {this} */
  attachment(path, name) {
    if (path === undefined) return this.header('content-disposition', 'attachment', true);
    const file = name !== undefined && name !== null && name !== '' ? String(name) : String(path).split('/').pop();
    const ext = file.includes('.') ? file.split('.').pop() : '';
    // A quoted-string (RFC 9110 section 5.6.4): `"` and `\` escaped, so a name cannot add parameters.
    this.header('content-disposition', `attachment; filename="${file.replace(/["\\]/g, '\\$&')}"`, true);
    return ext ? this.type(ext) : this;
  }

  /** Not supported yet: throws. */
  file() {
    throw UNSUPPORTED('file()');
  }

  /** Not supported yet: throws. */
  sendFile() {
    throw UNSUPPORTED('sendFile()');
  }

  /** Not supported yet: throws. */
  download() {
    throw UNSUPPORTED('download()');
  }

  /** WebSockets are not supported yet: throws. */
  upgrade() {
    throw new Error('hyper-sse: WebSocket upgrades are not supported yet');
  }

  /** Throws `ERR_INCOMPATIBLE_CALL` (as in Hyper-Express). */
  format() {
    throw INCOMPATIBLE('format()');
  }

  /** Throws `ERR_INCOMPATIBLE_CALL` (as in Hyper-Express). */
  render() {
    throw INCOMPATIBLE('render()');
  }

  /** Writable compatibility: no-op. */
  cork() {}

  /** Writable compatibility: no-op. */
  uncork() {}

  /** Writable compatibility: no-op. @returns {this} */
  setDefaultEncoding() {
    return this;
  }

  /**
   * Writable compatibility: drops the connection (like `close()`).
   * @returns {this}
   */
  destroy() {
    this.close();
    return this;
  }

  // ---------------------------------------------------------------- properties

  /** Same as `initiated`. */
  get headersSent() {
    return this.initiated;
  }

  /** Same as `completed` (kept equal for Hyper-Express compatibility; see `close_reason`). */
  get aborted() {
    return this.completed;
  }

  /**
   * The status set by the app, `undefined` before (as in Hyper-Express: an error handler's
   * `res.status(res.statusCode || 500)` sends 500); once the head went out, the status sent.
   */
  get statusCode() {
    return this._flags & STATUS_SET || this.initiated ? this._status : undefined;
  }

  set statusCode(code) {
    this.status(code, this._reason());
  }

  /** The app's reason phrase, else `undefined` (as in Hyper-Express); once sent, the phrase sent. */
  get statusMessage() {
    const message = this._reason();
    if (message !== null) return message;
    return this.initiated ? STATUS_CODES[this._status] : undefined;
  }

  set statusMessage(message) {
    // Only the phrase: a status the app did not set stays unset.
    const set = this._flags & STATUS_SET;
    this.status(this._status, message);
    if (!set) this._flags &= ~STATUS_SET;
  }

  // `locals`, `app` and `raw` are defined by lib/shared.js.

  /** WebSockets are not supported: always null. */
  get upgrade_socket() {
    return null;
  }

  /** Body bytes written so far; -1 once completed. */
  get write_offset() {
    if (this.completed) return -1;
    return this._extra === null ? 0 : this._extra.written;
  }

  /**
   * The Server-Sent Events stream of this response: an `SSEventStream` for GET requests (the same
   * object on every access; creating it writes nothing), `undefined` otherwise.
   * @type {SSEventStream | undefined}
   */
  get sse() {
    if (this._sse === undefined) {
      if (this._req.method !== 'GET') return undefined;
      this._sse = new SSEventStream(this);
    }
    return this._sse;
  }

  /** Writable compatibility: true while writes are accepted. */
  get writable() {
    return !this.completed && !this._sending;
  }

  /** Writable compatibility. */
  get writableEnded() {
    return this._sending || this.completed;
  }

  /** Writable compatibility: true once completed successfully. */
  get writableFinished() {
    return this.close_reason === 'finished';
  }

  /** Writable compatibility: true after a write returned false until `drain`. */
  get writableNeedDrain() {
    return (this._flags & NEED_DRAIN) !== 0;
  }

  /** Writable compatibility: the route's high-water mark (`streaming.writable.highWaterMark`), else the server's. */
  get writableHighWaterMark() {
    return this.route.hwm || this.route.app._hwm;
  }

  /** Writable compatibility. */
  get writableObjectMode() {
    return false;
  }

  /** Writable compatibility: true once ended without finishing. */
  get destroyed() {
    return this.completed && this.close_reason !== 'finished';
  }

  /** Writable compatibility: same as `destroyed` (ended before finishing). */
  get writableAborted() {
    return this.destroyed;
  }

  /** Writable compatibility: true once `close` was emitted (same as `completed`). */
  get closed() {
    return this.completed;
  }

  /** Writable compatibility: always null (an ended response reports why in `close_reason`). */
  get errored() {
    return null;
  }

  /** Writable compatibility: 0 (`cork()` is a no-op: writes are batched per event-loop turn anyway). */
  get writableCorked() {
    return 0;
  }
}

// Response is an EventEmitter without running its constructor (see the class comment): every
// EventEmitter method works on `_events` / `_eventsCount` and the prototype's defaults.
Object.setPrototypeOf(Response.prototype, EventEmitter.prototype);
Object.setPrototypeOf(Response, EventEmitter);

addSharedAccessors(Response);

module.exports = Response;
