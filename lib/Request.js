'use strict';
/**
 * Request: the Hyper-Express 6.14.12 request API (spec section 4) over the native addon.
 *
 * The native side hands over the peer address and the headers as one string with the request;
 * they are parsed on first use. The body is fetched from the native side on first use; it is
 * complete before the handler runs (chunked bodies included), so
 * `buffer()`/`text()`/`json()`/`urlencoded()` resolve at once. A Readable stream over the body is
 * created on first use of a stream method (`pipe`, `on('data')`, `read`, ...); it emits
 * `'received'(totalBytes)`.
 *
 * Request data stays readable after the response completed, as in Hyper-Express (which copies
 * it): headers and ip are this object's own string, and a body not read yet is fetched when
 * the response closes (at the end of that tick, before the native side forgets the request).
 *
 * Memory: a Request stays alive per open stream, so its own fields are only what the native
 * call gave; everything computed lazily lives in a `RequestExtra` created on first use.
 */
const { Readable } = require('node:stream');
const querystring = require('node:querystring');
const { isIP } = require('node:net');
const cookie = require('cookie');
const accepts = require('accepts');
const typeis = require('type-is');
const parseRange = require('range-parser');
const signature = require('./signature');
const { addSharedAccessors } = require('./shared');

/** A body as text: UTF-8, without a leading byte order mark (as TextDecoder and fetch's text() do). */
function utf8(buf) {
  const text = buf.toString('utf8');
  return text.charCodeAt(0) === 0xfeff ? text.slice(1) : text;
}

const INCOMPATIBLE = (name) =>
  new Error(`ERR_INCOMPATIBLE_CALL: Request.${name} is not supported by hyper-sse (as in Hyper-Express).`);

/** @private lazily computed request data, created on first use (see `Request._more()`) */
class RequestExtra {
  constructor() {
    /** raw path (null until the url was split) */
    this.path = null;
    /** query string without `?` */
    this.query = null;
    this.url = null;
    this.query_parameters = undefined;
    this.path_parameters = undefined;
    this.cookies = undefined;
    /** body Buffer */
    this.body = null;
    this.text = undefined;
    /** `{ value }` of the parsed JSON body */
    this.json = undefined;
    /** body Readable */
    this.readable = null;
    this.locals = undefined;
    this.ip = null;
    this.paused = false;
  }
}

class Request {
  /**
   * Created by the server for each request; not meant to be constructed by applications.
   * The NativeServer is the app's (`route.app`).
   * @param {object} route matched route record
   * @param {number} id native request id
   * @param {string} method uppercase method
   * @param {string} url raw request target
   * @param {string[] | null} params raw path-parameter values
   * @param {string} head peer address then headers: `ip\0name\0value\0...`
   * @param {number} bodyLength bytes in the body
   */
  constructor(route, id, method, url, params, head, bodyLength) {
    /** The matched route record. */
    this.route = route;
    /** @private */ this._id = id;
    /** @private */ this._method = method;
    /** @private */ this._raw_url = url;
    /** @private */ this._params = params;
    /** @private peer address and headers, parsed on first use */ this._head = head;
    /** @private */ this._body_length = bodyLength;
    /** @private lazily computed data (`RequestExtra`), see `_more()` */ this._extra = null;
  }

  /** @private the lazily computed data, created on first use */
  _more() {
    if (this._extra === null) this._extra = new RequestExtra();
    return this._extra;
  }

  /** @private the NativeServer serving this request (the app's) */
  get _native() {
    return this.route.app._native;
  }

  /** @private the RequestExtra with path and query split from the raw url */
  _split() {
    const extra = this._more();
    if (extra.path === null) {
      const url = this._raw_url;
      const q = url.indexOf('?');
      if (q < 0) {
        extra.path = url;
        extra.query = '';
      } else {
        extra.path = url.slice(0, q);
        extra.query = url.slice(q + 1);
      }
    }
    return extra;
  }

  /**
   * The body was received completely (always true: bodies are read before the handler).
   * Assignable, as in Hyper-Express (then an own data property).
   * @type {boolean}
   */
  get received() {
    return true;
  }

  set received(value) {
    Object.defineProperty(this, 'received', { value, writable: true, enumerable: true, configurable: true });
  }

  /** Uppercase method (`'DELETE'`, never `'DEL'`). @type {string} */
  get method() {
    return this._method;
  }

  /** Path + (`'?' + query` when the query is not empty), not decoded. @type {string} */
  get url() {
    const extra = this._split();
    if (extra.url === null) extra.url = extra.query === '' ? extra.path : extra.path + '?' + extra.query;
    return extra.url;
  }

  /** Raw path without the query, not decoded. @type {string} */
  get path() {
    return this._split().path;
  }

  /** Query string without `?` (`''` when none). @type {string} */
  get path_query() {
    return this._split().query;
  }

  /**
   * Request headers: lowercase names; for a repeated header the last value wins.
   * Built on first access, then an own data property (assignable).
   * @type {Record<string, string>}
   */
  get headers() {
    // One string `ip\0name\0value\0...` from the native side: ~3x faster than 2n strings.
    const list = this._head.split('\0');
    const headers = {};
    for (let i = 1; i + 1 < list.length; i += 2) headers[list[i]] = list[i + 1];
    Object.defineProperty(this, 'headers', { value: headers, writable: true, enumerable: true, configurable: true });
    return headers;
  }

  set headers(value) {
    Object.defineProperty(this, 'headers', { value, writable: true, enumerable: true, configurable: true });
  }

  /**
   * `node:querystring` parse of the query (repeated keys → arrays); cached.
   * @type {Record<string, string | string[]>}
   */
  get query_parameters() {
    const extra = this._split();
    if (extra.query_parameters === undefined) {
      extra.query_parameters = extra.query === '' ? {} : querystring.parse(extra.query);
    }
    return extra.query_parameters;
  }

  /** Alias of `query_parameters`. */
  get query() {
    return this.query_parameters;
  }

  /**
   * Path parameters by name (`/users/:id` → `{ id }`), raw (not percent-decoded); `{}` if none.
   * @type {Record<string, string>}
   */
  get path_parameters() {
    const extra = this._more();
    if (extra.path_parameters === undefined) {
      const out = {};
      const names = this.route.param_names;
      const values = this._params;
      if (names !== undefined && values !== null && values !== undefined) {
        for (let i = 0; i < names.length && i < values.length; i++) {
          if (names[i] !== null) out[names[i]] = values[i];
        }
      }
      extra.path_parameters = out;
    }
    return extra.path_parameters;
  }

  /** Alias of `path_parameters`. */
  get params() {
    return this.path_parameters;
  }

  /** Parsed `Cookie` header (values percent-decoded); `{}` if absent. @type {Record<string, string>} */
  get cookies() {
    const extra = this._more();
    if (extra.cookies === undefined) {
      const header = this.headers.cookie;
      extra.cookies = header ? cookie.parse(header) : {};
    }
    return extra.cookies;
  }

  /** Peer address (`'127.0.0.1'`); with `trust_proxy`, the first `X-Forwarded-For` item. */
  get ip() {
    const extra = this._more();
    if (extra.ip === null) {
      const xff = this.route.app._options.trust_proxy ? this.headers['x-forwarded-for'] : undefined;
      extra.ip = xff ? xff.split(',')[0].trim() : this._head.slice(0, this._head.indexOf('\0'));
    }
    return extra.ip;
  }

  /** PROXY-protocol address: not supported, always `''`. */
  get proxy_ip() {
    return '';
  }

  /** With `trust_proxy`: every `X-Forwarded-For` item; else `[ip]`. @type {string[]} */
  get ips() {
    const xff = this.route.app._options.trust_proxy ? this.headers['x-forwarded-for'] : undefined;
    if (xff) return xff.split(',').map((s) => s.trim());
    return [this.ip, this.proxy_ip].filter((ip) => ip);
  }

  /** `Host` without port (IPv6 literals kept); `X-Forwarded-Host` first when trusted. */
  get hostname() {
    let host = this.route.app._options.trust_proxy ? this.headers['x-forwarded-host'] : undefined;
    if (host) host = host.split(',')[0].trim();
    else host = this.headers.host;
    if (!host) return undefined;
    const offset = host.charCodeAt(0) === 91 ? host.indexOf(']') + 1 : 0;
    const colon = host.indexOf(':', offset);
    return colon === -1 ? host : host.slice(0, colon);
  }

  /** `'http'` (or the first `X-Forwarded-Proto` item when trusted). */
  get protocol() {
    const xfp = this.route.app._options.trust_proxy ? this.headers['x-forwarded-proto'] : undefined;
    if (xfp) return xfp.split(',')[0].trim();
    return 'http';
  }

  /** `protocol === 'https'`. */
  get secure() {
    return this.protocol === 'https';
  }

  /** Express semantics (offset 2). @type {string[]} */
  get subdomains() {
    const hostname = this.hostname;
    if (!hostname) return [];
    const parts = isIP(hostname) ? [hostname] : hostname.split('.').reverse();
    return parts.slice(2);
  }

  /** `X-Requested-With: XMLHttpRequest`. */
  get xhr() {
    return (this.headers['x-requested-with'] || '').toLowerCase() === 'xmlhttprequest';
  }

  /** Same as `path`. */
  get baseUrl() {
    return this.path;
  }

  /** Same as `url`. */
  get originalUrl() {
    return this.url;
  }

  // `locals`, `app` and `raw` are defined by lib/shared.js.

  /** Whether `pause()` was called without `resume()`. */
  get paused() {
    return this._extra !== null && this._extra.paused;
  }

  /** Throws `ERR_INCOMPATIBLE_CALL` (as in Hyper-Express). */
  get fresh() {
    throw INCOMPATIBLE('fresh');
  }

  /** Throws `ERR_INCOMPATIBLE_CALL` (as in Hyper-Express). */
  get stale() {
    throw INCOMPATIBLE('stale');
  }

  /** Throws `ERR_INCOMPATIBLE_CALL` (as in Hyper-Express). */
  get signedCookies() {
    throw INCOMPATIBLE('signedCookies');
  }

  // ---------------------------------------------------------------- methods

  /**
   * Case-insensitive header value; `referer`/`referrer` are interchangeable.
   * @param {string} name
   * @returns {string | undefined}
   */
  get(name) {
    const key = String(name).toLowerCase();
    if (key === 'referer' || key === 'referrer') return this.headers.referer || this.headers.referrer;
    return this.headers[key];
  }

  /** Alias of `get()`. */
  header(name) {
    return this.get(name);
  }

  /** `accepts` package: best of the given types, or false. */
  accepts(...types) {
    const a = accepts(this);
    return a.types.apply(a, types);
  }

  acceptsCharsets(...charsets) {
    const a = accepts(this);
    return a.charsets.apply(a, charsets);
  }

  acceptsEncodings(...encodings) {
    const a = accepts(this);
    return a.encodings.apply(a, encodings);
  }

  acceptsLanguages(...languages) {
    const a = accepts(this);
    return a.languages.apply(a, languages);
  }

  /** `type-is` against the `content-type` header. */
  is(types, ...rest) {
    return typeis(this, Array.isArray(types) ? types : [types, ...rest]);
  }

  /** `range-parser` of the `Range` header; undefined when absent. */
  range(size, options) {
    const range = this.headers.range;
    if (!range) return undefined;
    return parseRange(size, range, options);
  }

  /** Path parameter, then `req.body[name]` (when an object), then query parameter, else `dflt`. */
  param(name, dflt) {
    const params = this.path_parameters;
    if (Object.prototype.hasOwnProperty.call(params, name) && params[name] != null) return params[name];
    const body = this.body;
    if (body !== null && typeof body === 'object' && body[name] != null) return body[name];
    const query = this.query_parameters;
    if (query[name] != null) return query[name];
    return dflt;
  }

  /** Signs `value` (cookie-signature format). */
  sign(value, secret) {
    return signature.sign(value, secret);
  }

  /** Returns the value of a signed string, or undefined when the signature does not match. */
  unsign(signed, secret) {
    return signature.unsign(signed, secret);
  }

  // ---------------------------------------------------------------- body

  /** @private */
  _buffer() {
    const extra = this._more();
    if (extra.body === null) {
      extra.body = this._body_length === 0 ? Buffer.alloc(0) : this._native.reqBody(this._id) || Buffer.alloc(0);
    }
    return extra.body;
  }

  /**
   * @private called when the response closed, before the native side forgets the request: keeps
   * a body not read yet, so that it stays readable afterwards
   */
  _keep_body() {
    if (this._body_length > 0 && (this._extra === null || this._extra.body === null)) this._buffer();
  }

  /** The body as a Buffer (empty when none). @returns {Promise<Buffer>} */
  buffer() {
    return Promise.resolve(this._buffer());
  }

  /** The body decoded as UTF-8 (`''` when none). @returns {Promise<string>} */
  text() {
    const extra = this._more();
    if (extra.text === undefined) extra.text = utf8(this._buffer());
    return Promise.resolve(extra.text);
  }

  /**
   * The body parsed as JSON; `dflt` when empty or invalid.
   * @param {any} [dflt={}]
   * @returns {Promise<any>}
   */
  json(dflt = {}) {
    const extra = this._more();
    if (extra.json === undefined) {
      const buf = this._buffer();
      if (buf.length === 0) return Promise.resolve(dflt);
      try {
        extra.json = { value: JSON.parse(utf8(buf)) };
      } catch {
        return Promise.resolve(dflt);
      }
    }
    return Promise.resolve(extra.json.value);
  }

  /** `node:querystring` parse of the body text (`{}` when empty). @returns {Promise<object>} */
  urlencoded() {
    const buf = this._buffer();
    return Promise.resolve(buf.length === 0 ? {} : querystring.parse(utf8(buf)));
  }

  /** Not supported yet: throws. */
  multipart() {
    throw new Error('hyper-sse: Request.multipart() is not supported yet');
  }

  // ---------------------------------------------------------------- stream

  /** @private the body Readable, created on first use */
  _stream() {
    const extra = this._more();
    if (extra.readable === null) {
      const options = this.route.streaming && this.route.streaming.readable;
      const readable = new Readable(Object.assign({}, options, { read() {} }));
      const body = this._buffer();
      if (body.length > 0) readable.push(body);
      readable.push(null);
      if (extra.paused) readable.pause();
      extra.readable = readable;
      process.nextTick(() => readable.emit('received', body.length));
    }
    return extra.readable;
  }

  /** Pauses the body stream. @returns {this} */
  pause() {
    const extra = this._more();
    extra.paused = true;
    if (extra.readable !== null) extra.readable.pause();
    return this;
  }

  /** Resumes the body stream. @returns {this} */
  resume() {
    const extra = this._more();
    extra.paused = false;
    if (extra.readable !== null) extra.readable.resume();
    return this;
  }

  /** Pipes the body into `destination`. @returns the destination */
  pipe(destination, options) {
    return this._stream().pipe(destination, options);
  }
}

// Readable/EventEmitter methods forward to the lazily created body stream.
const CHAINABLE = ['on', 'once', 'addListener', 'prependListener', 'prependOnceListener', 'off', 'removeListener',
  'removeAllListeners', 'setMaxListeners', 'setEncoding', 'unpipe', 'unshift', 'wrap'];
const PASSTHROUGH = ['emit', 'listeners', 'rawListeners', 'listenerCount', 'eventNames', 'getMaxListeners', 'read',
  'isPaused',
  // Readable's iterator helpers (those this Node has: some are newer or experimental).
  ...['iterator', 'map', 'filter', 'forEach', 'toArray', 'some', 'find', 'every', 'flatMap', 'drop', 'take', 'reduce',
    'asIndexedPairs', 'compose'].filter((name) => typeof Readable.prototype[name] === 'function')];
for (const name of CHAINABLE) {
  Request.prototype[name] = function (...args) {
    const readable = this._stream();
    const out = readable[name](...args);
    return out === readable ? this : out;
  };
}
for (const name of PASSTHROUGH) {
  Request.prototype[name] = function (...args) {
    return this._stream()[name](...args);
  };
}
/**
 * Stops reading the body; the response is not affected. An `error` given here reaches the body
 * stream's `error` listeners, if it has any: without one it is not thrown (as node:http, whose
 * request is destroyed with its socket).
 */
Request.prototype.destroy = function (error) {
  const readable = this._stream();
  if (error && readable.listenerCount('error') === 0) readable.once('error', () => {});
  readable.destroy(error);
  return this;
};
Request.prototype[Symbol.asyncIterator] = function () {
  return this._stream()[Symbol.asyncIterator]();
};
for (const name of ['readable', 'readableEnded', 'readableFlowing', 'readableLength', 'readableHighWaterMark',
  'readableEncoding', 'readableObjectMode', 'readableAborted', 'readableDidRead', 'errored', 'closed', 'destroyed']) {
  Object.defineProperty(Request.prototype, name, {
    configurable: true,
    get() {
      return this._stream()[name];
    },
  });
}

addSharedAccessors(Request);

module.exports = Request;
