'use strict';
/**
 * Router: a mountable collection of routes and middlewares with the Hyper-Express 6.14.12 API
 * (spec sections 3.1, 3.3 and 3.4). A `Server` is a Router whose registrations become live routes;
 * a plain Router only records them and replays them into whatever it is mounted on, including
 * registrations made after mounting.
 */

const WS_UNSUPPORTED = 'hyper-sse: WebSocket routes are not supported yet';

/**
 * Joins a mount prefix and a relative pattern the way Hyper-Express does
 * (`'/mount'` + `'/r1'` → `'/mount/r1'`, `'/'` + `'/x'` → `'/x'`).
 * @param {string} base
 * @param {string} path
 * @returns {string}
 */
function joinPaths(base, path) {
  if (base === '/' && path === '/') return '/';
  if (path.charCodeAt(0) !== 47) path = '/' + path;
  if (base === '/' || base === '') return path;
  if (path === '/') return base;
  if (base.endsWith('/')) base = base.slice(0, -1);
  return base + path;
}

/** Drops one trailing `/` from a middleware scope (`'/'` → `''`, `'/api/'` → `'/api'`). */
function trimScope(pattern) {
  return pattern.endsWith('/') ? pattern.slice(0, -1) : pattern;
}

class Router {
  constructor() {
    /** @private */
    this._records = { routes: [], middlewares: [] };
    /** @private listeners notified of every registration (mount points) */
    this._subscribers = [];
    /** @private pattern of a `route(p)` chain, else null */
    this._context = null;
    /** @private `method pattern` keys already registered on this router */
    this._keys = new Set();
  }

  /**
   * Parses `(pattern?, ...functions | function[] | options)` into a route record and registers it.
   * @private
   */
  _register_route(method, args) {
    let pattern;
    let start = 0;
    const first = args[0];
    if (typeof first === 'string') {
      pattern = this._context !== null ? joinPaths(this._context, first) : first;
      start = 1;
    } else if (this._context !== null) {
      pattern = this._context;
    } else {
      throw new TypeError(
        'hyper-sse: a route pattern string is required (it may only be omitted on a router.route(pattern) chain)'
      );
    }

    let options;
    const callbacks = [];
    for (let i = start; i < args.length; i++) {
      const arg = args[i];
      if (typeof arg === 'function') callbacks.push(arg);
      else if (Array.isArray(arg)) {
        for (const fn of arg) {
          if (typeof fn !== 'function') throw new TypeError('hyper-sse: route middlewares must be functions');
          callbacks.push(fn);
        }
      } else if (arg !== null && typeof arg === 'object') options = arg;
    }

    const handler = callbacks.pop();
    if (typeof handler !== 'function') {
      throw new TypeError(`hyper-sse: route ${method.toUpperCase()} ${pattern} needs a handler function`);
    }

    // No `streaming` default here: a route without its own takes the server's (Server._create_route).
    options = Object.assign({}, options);
    const middlewares = [];
    if (Array.isArray(options.middlewares)) {
      for (const fn of options.middlewares) {
        if (typeof fn !== 'function') throw new TypeError('hyper-sse: options.middlewares must be functions');
        middlewares.push(fn);
      }
    }
    for (const fn of callbacks) middlewares.push(fn);
    options.middlewares = middlewares;

    if (pattern.charCodeAt(0) === 42 /* '*' */) pattern = '/' + pattern;
    return this._add_route({ method, pattern, options, handler });
  }

  /** @private */
  _add_route(record) {
    const key = record.method + ' ' + record.pattern;
    if (this._keys.has(key)) {
      throw new Error(
        `hyper-sse: duplicate routes are not allowed [${record.method.toUpperCase()} ${record.pattern}]`
      );
    }
    if (this._is_app()) {
      this._create_route(record);
      this._keys.add(key);
      this._records.routes.push(record);
    } else {
      this._keys.add(key);
      this._records.routes.push(record);
      for (const subscriber of this._subscribers) subscriber('route', record);
    }
    return this;
  }

  /** @private */
  _register_middleware(pattern, middleware) {
    const record = { pattern: trimScope(pattern), middleware };
    if (this._is_app()) {
      this._create_middleware(record);
      this._records.middlewares.push(record);
    } else {
      this._records.middlewares.push(record);
      for (const subscriber of this._subscribers) subscriber('middleware', record);
    }
  }

  /** @private */
  _register_router(prefix, router) {
    if (router === this) throw new Error('hyper-sse: a router cannot be mounted on itself');
    router._subscribe((kind, record) => {
      if (kind === 'route') {
        this._add_route({
          method: record.method,
          pattern: joinPaths(prefix, record.pattern),
          options: record.options,
          handler: record.handler,
        });
      } else {
        this._register_middleware(joinPaths(prefix, record.pattern), record.middleware);
      }
    });
  }

  /**
   * Replays every record to `listener`, then keeps it informed of later registrations.
   * @private
   */
  _subscribe(listener) {
    for (const record of this._records.routes) listener('route', record);
    for (const record of this._records.middlewares) listener('middleware', record);
    this._subscribers.push(listener);
  }

  /** @private true for a Server (registrations become live routes) */
  _is_app() {
    return false;
  }

  /**
   * Registers middlewares and routers, optionally scoped to a path.
   *
   * `use([path,] ...handlers)`: `path` defaults to `'/'` (global); it may not contain `*` or `:`;
   * a trailing `/` is dropped. A path-scoped middleware runs for `path` and `path/...` but not for
   * `path-x`. Handlers may be functions `(req, res, next)`, arrays of them, `Router` instances
   * (mounted with `path` as prefix) or objects with a `.middleware` function.
   * @returns {this}
   */
  use(...args) {
    if (this._context !== null) {
      throw new Error('hyper-sse: use() is not available on a router.route(pattern) chain');
    }
    let pattern = '/';
    let start = 0;
    if (typeof args[0] === 'string') {
      pattern = args[0];
      start = 1;
      if (pattern.includes('*') || pattern.includes(':')) {
        throw new Error(
          'hyper-sse: use() paths may not contain "*" or ":param"; mount middlewares on a literal path prefix'
        );
      }
      if (pattern === '') pattern = '/';
      if (pattern.charCodeAt(0) !== 47) pattern = '/' + pattern;
    }
    for (let i = start; i < args.length; i++) {
      const candidate = args[i];
      if (typeof candidate === 'function') this._register_middleware(pattern, candidate);
      else if (Array.isArray(candidate)) {
        for (const fn of candidate) {
          if (typeof fn === 'function') this._register_middleware(pattern, fn);
          else if (fn instanceof Router) this._register_router(pattern, fn);
          else throw new TypeError('hyper-sse: use() arrays may only contain middleware functions');
        }
      } else if (candidate instanceof Router) this._register_router(pattern, candidate);
      else if (candidate !== null && typeof candidate === 'object' && typeof candidate.middleware === 'function') {
        this._register_middleware(pattern, candidate.middleware);
      } else {
        throw new TypeError(
          'hyper-sse: use() accepts a path, middleware functions, arrays of them, Routers and objects with .middleware'
        );
      }
    }
    return this;
  }

  /**
   * Returns a chain bound to `pattern`: `router.route('/p').get(h).post(h)`.
   * Patterns given to the chain's methods are joined to `pattern`. `use()` on a chain throws.
   * @param {string} pattern
   * @returns {Router}
   */
  route(pattern) {
    if (typeof pattern !== 'string' || pattern === '') {
      throw new TypeError('hyper-sse: route(pattern) needs a pattern string');
    }
    const chain = new Router();
    chain._context = pattern;
    this._register_router('/', chain);
    return chain;
  }

  /** Route for every HTTP method. Same argument forms as `get()`. @returns {this} */
  any(...args) {
    return this._register_route('any', args);
  }

  /** Alias of `any()`. @returns {this} */
  all(...args) {
    return this._register_route('any', args);
  }

  /**
   * Registers a GET route: `get(pattern, [options], ...middlewares, handler)`.
   * `options`: `{ max_body_length?, middlewares?, streaming? }`. The last function is the handler
   * `(req, res) => any | Promise`; earlier functions are route middlewares.
   * @returns {this}
   */
  get(...args) {
    return this._register_route('get', args);
  }

  /** @returns {this} */
  post(...args) {
    return this._register_route('post', args);
  }

  /** @returns {this} */
  put(...args) {
    return this._register_route('put', args);
  }

  /** @returns {this} */
  delete(...args) {
    return this._register_route('del', args);
  }

  /** @returns {this} */
  patch(...args) {
    return this._register_route('patch', args);
  }

  /** @returns {this} */
  options(...args) {
    return this._register_route('options', args);
  }

  /** HEAD route. GET routes do not answer HEAD (as in Hyper-Express). @returns {this} */
  head(...args) {
    return this._register_route('head', args);
  }

  /** @returns {this} */
  trace(...args) {
    return this._register_route('trace', args);
  }

  /** @returns {this} */
  connect(...args) {
    return this._register_route('connect', args);
  }

  /** Not supported yet: throws. */
  upgrade() {
    throw new Error(WS_UNSUPPORTED);
  }

  /** Not supported yet: throws. */
  ws() {
    throw new Error(WS_UNSUPPORTED);
  }

  /** Route records `{ method, pattern, options, handler }` in registration order. */
  get routes() {
    return this._records.routes;
  }

  /** Middleware records `{ pattern, middleware }` in registration order. */
  get middlewares() {
    return this._records.middlewares;
  }
}

module.exports = Router;
