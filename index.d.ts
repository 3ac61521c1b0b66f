// Type definitions for hyper-sse: the Hyper-Express 6.14.12 API plus hyper-sse extensions
// (Channel, close_reason, sse.retry, shutdown/force_close, server options).
/// <reference types="node" />

import { EventEmitter } from 'events';
import { Readable, ReadableOptions, WritableOptions } from 'stream';

// ------------------------------------------------------------------ shared

/** A response body or chunk. */
export type SendableData = string | Buffer | ArrayBuffer | Uint8Array;

/** Why a response ended (`res.close_reason`); `null` while open. */
export type CloseReason = 'finished' | 'client' | 'timeout' | 'slow_client' | 'server' | 'shutdown';

export type DefaultRequestLocals = { [key: string]: any };
export type DefaultResponseLocals = { [key: string]: any };

export interface ParamsDictionary {
  [key: string]: string;
}

export interface ParsedQs {
  [key: string]: undefined | string | string[];
}

export interface StreamingOptions {
  readable?: ReadableOptions;
  writable?: WritableOptions;
}

// ------------------------------------------------------------------ middleware / routes

/** `next()` continues the chain; `next(err)` passes `err` to the error handler. */
export type MiddlewareNext = (error?: Error) => void;

export type MiddlewarePromise = Promise<Error | any>;

/**
 * `(req, res, next)`. An async middleware (returning a promise) continues the chain when the
 * promise resolves: do not also call `next()`.
 */
export type MiddlewareHandler = (
  request: Request<DefaultRequestLocals>,
  response: Response<DefaultResponseLocals>,
  next: MiddlewareNext
) => MiddlewarePromise | any;

/** `(req, res)`; a returned promise that rejects goes to the error handler. */
export type UserRouteHandler = (request: Request, response: Response) => any;

/**
 * hyper-sse: the response of a GET route, whose `sse` is always there (`res.sse` is an
 * `SSEventStream` for every GET request; HEAD requests do not reach GET routes).
 */
export type GetResponse<Locals = DefaultResponseLocals> = Response<Locals> & { readonly sse: SSEventStream };

/** hyper-sse: a handler or middleware given to `get()`: its `res.sse` is typed as always there. */
export type GetRouteHandler = (request: Request, response: GetResponse, next: MiddlewareNext) => any;

export interface UserRouteOptions {
  /** Max request body bytes for this route (default: the server's `max_body_length`). */
  max_body_length?: number;
  /** Route middlewares, run before those given as arguments. */
  middlewares?: MiddlewareHandler[];
  streaming?: StreamingOptions;
}

export interface RouteRecord {
  method: string;
  pattern: string;
  options: UserRouteOptions;
  handler: UserRouteHandler;
}

export interface MiddlewareRecord {
  pattern: string;
  middleware: MiddlewareHandler;
}

/** A compiled route of a Server (`server.routes[method][pattern]`). */
export interface Route {
  id: number;
  app: Server;
  method: string;
  pattern: string;
  handler: UserRouteHandler;
  options: UserRouteOptions;
  streaming: StreamingOptions;
  max_body_length: number;
  /** The route's own response high-water mark (`streaming.writable.highWaterMark`); 0: the server's. */
  hwm: number;
  path: string;
}

type RouteArgument = UserRouteOptions | MiddlewareHandler | MiddlewareHandler[];
type GetRouteArgument = UserRouteOptions | GetRouteHandler | GetRouteHandler[];
type UseArgument = Router | MiddlewareHandler | MiddlewareHandler[] | { middleware: MiddlewareHandler };

/** WebSocket route options (WebSockets are not supported yet). */
export interface WSRouteOptions {
  message_type?: 'String' | 'Buffer' | 'ArrayBuffer';
  compression?: number;
  idle_timeout?: number;
  max_backpressure?: number;
  max_payload_length?: number;
}

/** Route registration shared by Router and Server. */
declare abstract class RouterBase {
  /**
   * Registers middlewares, arrays of them, Routers (mounted with `path` as prefix) or objects
   * with `.middleware`. `path` (default `'/'`) may not contain `*` or `:`.
   */
  use(path: string, ...handlers: UseArgument[]): this;
  use(...handlers: UseArgument[]): this;

  /** A chain bound to `pattern`: `router.route('/p').get(h).post(h)`. */
  route(pattern: string): Router;

  any(pattern: string, ...args: RouteArgument[]): this;
  all(pattern: string, ...args: RouteArgument[]): this;
  get(pattern: string, ...args: GetRouteArgument[]): this;
  post(pattern: string, ...args: RouteArgument[]): this;
  put(pattern: string, ...args: RouteArgument[]): this;
  delete(pattern: string, ...args: RouteArgument[]): this;
  patch(pattern: string, ...args: RouteArgument[]): this;
  options(pattern: string, ...args: RouteArgument[]): this;
  head(pattern: string, ...args: RouteArgument[]): this;
  trace(pattern: string, ...args: RouteArgument[]): this;
  connect(pattern: string, ...args: RouteArgument[]): this;

  /** Not supported yet: throws. */
  upgrade(pattern: string, ...args: RouteArgument[]): never;
  /** Not supported yet: throws. */
  ws<TUserData = unknown>(pattern: string, ...args: any[]): never;
}

/** A mountable collection of routes and middlewares. */
export class Router extends RouterBase {
  constructor();
  /** On a `route(p)` chain the pattern may be omitted. */
  any(...args: RouteArgument[]): this;
  any(pattern: string, ...args: RouteArgument[]): this;
  all(...args: RouteArgument[]): this;
  all(pattern: string, ...args: RouteArgument[]): this;
  get(...args: GetRouteArgument[]): this;
  get(pattern: string, ...args: GetRouteArgument[]): this;
  post(...args: RouteArgument[]): this;
  post(pattern: string, ...args: RouteArgument[]): this;
  put(...args: RouteArgument[]): this;
  put(pattern: string, ...args: RouteArgument[]): this;
  delete(...args: RouteArgument[]): this;
  delete(pattern: string, ...args: RouteArgument[]): this;
  patch(...args: RouteArgument[]): this;
  patch(pattern: string, ...args: RouteArgument[]): this;
  options(...args: RouteArgument[]): this;
  options(pattern: string, ...args: RouteArgument[]): this;
  head(...args: RouteArgument[]): this;
  head(pattern: string, ...args: RouteArgument[]): this;
  trace(...args: RouteArgument[]): this;
  trace(pattern: string, ...args: RouteArgument[]): this;
  connect(...args: RouteArgument[]): this;
  connect(pattern: string, ...args: RouteArgument[]): this;

  /** Route records in registration order. */
  readonly routes: RouteRecord[];
  /** Middleware records in registration order. */
  readonly middlewares: MiddlewareRecord[];
}

// ------------------------------------------------------------------ server

export interface ServerConstructorOptions {
  /** Max request body bytes; above → 413. Default 256000. */
  max_body_length?: number;
  /** Accepted for compatibility (bodies are read natively). Default 16384. */
  max_body_buffer?: number;
  /** Drop the connection instead of answering 413. Default false. */
  fast_abort?: boolean;
  /** Use X-Forwarded-For/-Host/-Proto for ip, hostname, protocol, ips. Default false. */
  trust_proxy?: boolean;
  /** Call `close()` on process exit, SIGINT, SIGUSR1, SIGUSR2, SIGTERM (a signal nobody else listens for is raised again, except SIGUSR1). Default true. */
  auto_close?: boolean;
  /** Accepted, no effect. */
  fast_buffers?: boolean;
  /** `writable.highWaterMark` (default 16384) is the response high-water mark. */
  streaming?: StreamingOptions;
  /** TLS is not supported yet (giving key and cert throws). */
  key_file_name?: string;
  cert_file_name?: string;
  passphrase?: string;
  dh_params_file_name?: string;
  ssl_prefer_low_memory_usage?: boolean;

  /** hyper-sse: tokio worker threads, 1-64. Default 1. */
  worker_threads?: number;
  /** hyper-sse: max request head bytes, 1024-1048576; above → 431 (so is a head with more than 100 header fields). Default 16384. */
  max_header_size?: number;
  /** hyper-sse: ms without a write after which an SSE stream gets a `:` comment; 0 = off. Default 15000. */
  sse_heartbeat?: number;
  /** hyper-sse: per response, queued bytes above which a client that does not read is evicted (`'slow_client'`); a write that finds 4x this queued evicts in any case. The largest single write larger than this (a big chunk, a channel's history replay) is kept whole and not counted. Default 1048576. */
  max_queued_bytes?: number;
  /** hyper-sse: ms a socket write may make no progress before the connection ends (`'timeout'`). Default 30000. */
  write_timeout?: number;
  /** hyper-sse: ms (about: checked once a second, up to ~1.5 s late) a client has to send a whole request head; also the longest an idle keep-alive connection stays open, and the longest gap inside a request body (then 408). 0 = off. Default 30000. */
  header_timeout?: number;
}

export type GlobalErrorHandler = (request: Request, response: Response, error: Error) => any;
export type GlobalNotFoundHandler = (request: Request, response: Response) => any;

/** Opaque listen-socket object resolved by `listen()`. */
export interface ListenSocket {
  readonly host: string;
  readonly port: number;
}

export class Server extends RouterBase {
  constructor(options?: ServerConstructorOptions);

  /** Options merged over the defaults. */
  _options: Required<Pick<ServerConstructorOptions, 'max_body_length' | 'fast_abort' | 'trust_proxy' | 'auto_close'>> &
    ServerConstructorOptions;

  /** App-wide data. */
  locals: { [key: string]: any };

  /**
   * Starts listening (host default `'0.0.0.0'`, port 0 = any free port). Rejects with a string
   * when the bind fails. Routes cannot be added afterwards.
   */
  listen(port: number, callback?: (socket: ListenSocket) => void): Promise<ListenSocket>;
  listen(port: number, host?: string, callback?: (socket: ListenSocket) => void): Promise<ListenSocket>;

  /** Stops listening; open connections stay. False if it was not listening. */
  close(socket?: ListenSocket): boolean;

  /**
   * hyper-sse: graceful stop. Stops accepting, ends every open SSE stream (`finish`, `close`,
   * reason `'shutdown'`), waits for in-flight responses up to `timeout_ms` (default 10000), then
   * drops the rest.
   */
  shutdown(timeout_ms?: number): Promise<void>;

  /** hyper-sse: hard stop. Drops every connection now; each open response emits `close` (`'shutdown'`). */
  force_close(): void;

  /** Bound port; throws when not listening. */
  readonly port: number;
  /** Listen socket while listening, else null. */
  readonly socket: ListenSocket | null;

  set_error_handler(handler: GlobalErrorHandler): void;
  set_not_found_handler(handler: GlobalNotFoundHandler): void;
  readonly handlers: { on_not_found: GlobalNotFoundHandler; on_error: GlobalErrorHandler };

  /** Routes by lowercase method (`del` for DELETE), then pattern. */
  readonly routes: { [method: string]: { [pattern: string]: Route } };
  /** Middlewares by scope (`'/'` = global). */
  readonly middlewares: { [pattern: string]: Array<{ id: number; pattern: string; handler: MiddlewareHandler }> };

  /** Not supported: throws. */
  readonly uws_instance: never;
  /** Not supported: throws. */
  readonly hosts: never;
  /** Not supported (WebSockets): throws. */
  publish(topic: string, message: SendableData, is_binary?: boolean, compress?: boolean): never;
  /** Not supported (WebSockets): throws. */
  num_of_subscribers(topic: string): never;
}

// ------------------------------------------------------------------ request

export interface Request<Locals = DefaultRequestLocals> extends NodeJS.ReadableStream {}

/** The incoming request. Body readers resolve at once (the body is complete before the handler). */
export class Request<Locals = DefaultRequestLocals> {
  private constructor();

  readonly route: Route;
  readonly app: Server;
  /** Native request id (only meaningful while the response is open). */
  readonly raw: number;
  /** Always true: the body is complete before the handler runs. */
  readonly received: boolean;
  readonly paused: boolean;

  readonly method: string;
  readonly url: string;
  readonly path: string;
  readonly path_query: string;
  headers: { [name: string]: string };
  readonly cookies: { [name: string]: string };
  readonly path_parameters: ParamsDictionary;
  readonly params: ParamsDictionary;
  /**
   * The parsed query (`node:querystring` semantics). Typed as Hyper-Express 6.14.12 types it, so
   * code written for it compiles unchanged; at run time a key given more than once holds a
   * `string[]` (`?a=1&a=2` → `{ a: ['1', '2'] }`), as in Hyper-Express: check with
   * `Array.isArray` where a key may repeat (or read `query`, typed with the arrays).
   */
  readonly query_parameters: { [key: string]: string };
  /** Same object as `query_parameters`, typed as it is at run time (and as Hyper-Express types `query`). */
  readonly query: ParsedQs;
  readonly ip: string;
  readonly proxy_ip: string;
  readonly ips: string[];
  readonly hostname: string | undefined;
  readonly protocol: string;
  readonly secure: boolean;
  readonly subdomains: string[];
  readonly xhr: boolean;
  readonly baseUrl: string;
  readonly originalUrl: string;
  locals: Locals;
  /** Free for middlewares (e.g. a parsed body); used by `param()`. */
  body?: any;

  /** Throw ERR_INCOMPATIBLE_CALL. */
  readonly fresh: never;
  readonly stale: never;
  readonly signedCookies: never;

  get(name: string): string | undefined;
  header(name: string): string | undefined;
  /** No argument: the client's types in order of preference. */
  accepts(): string[];
  accepts(types: string[]): string | false;
  accepts(...types: string[]): string | false;
  acceptsCharsets(): string[];
  acceptsCharsets(charsets: string[]): string | false;
  acceptsCharsets(...charsets: string[]): string | false;
  acceptsEncodings(): string[];
  acceptsEncodings(encodings: string[]): string | false;
  acceptsEncodings(...encodings: string[]): string | false;
  acceptsLanguages(): string[];
  acceptsLanguages(languages: string[]): string | false;
  acceptsLanguages(...languages: string[]): string | false;
  is(types: string | string[], ...more: string[]): string | false | null;
  range(size: number, options?: { combine?: boolean }): -1 | -2 | ({ start: number; end: number }[] & { type: string }) | undefined;
  param(name: string, default_value?: any): any;
  sign(value: string, secret: string): string;
  unsign(signed_value: string, secret: string): string | undefined;

  buffer(): Promise<Buffer>;
  text(): Promise<string>;
  /** The body parsed as JSON; `{}` when it is empty or not valid JSON. */
  json<T = any>(): Promise<T>;
  /** The body parsed as JSON; `default_value` when it is empty or not valid JSON. */
  json<T = any, D = Partial<T>>(default_value: D): Promise<T | D>;
  /** The body parsed with `node:querystring` (repeated keys give arrays). */
  urlencoded<T = ParsedQs>(): Promise<T>;
  /** Not supported yet: throws. */
  multipart(...args: any[]): never;

  pause(): this;
  resume(): this;
  pipe<T extends NodeJS.WritableStream>(destination: T, options?: { end?: boolean }): T;
  /** Stops reading the body (the response is not affected). */
  destroy(error?: Error): this;
  readonly destroyed: boolean;
  readonly readableEnded: boolean;
  readonly readableFlowing: boolean | null;
  readonly readableLength: number;
  readonly readableHighWaterMark: number;
  readonly readableEncoding: BufferEncoding | null;
  readonly readableObjectMode: boolean;
  readonly readableAborted: boolean;
  readonly readableDidRead: boolean;
  readonly errored: Error | null;
  readonly closed: boolean;
  // Readable's helpers, over the body stream (written out rather than taken from `Readable`, so
  // that older @types/node versions compile these declarations too).
  iterator(options?: { destroyOnReturn?: boolean }): AsyncIterableIterator<any>;
  map(fn: (data: any, options?: StreamOperatorOptions) => any, options?: StreamArrayOptions): Readable;
  filter(fn: (data: any, options?: StreamOperatorOptions) => boolean | Promise<boolean>, options?: StreamArrayOptions): Readable;
  forEach(fn: (data: any, options?: StreamOperatorOptions) => void | Promise<void>, options?: StreamArrayOptions): Promise<void>;
  toArray(options?: StreamOperatorOptions): Promise<any[]>;
  some(fn: (data: any, options?: StreamOperatorOptions) => boolean | Promise<boolean>, options?: StreamArrayOptions): Promise<boolean>;
  find(fn: (data: any, options?: StreamOperatorOptions) => boolean | Promise<boolean>, options?: StreamArrayOptions): Promise<any>;
  every(fn: (data: any, options?: StreamOperatorOptions) => boolean | Promise<boolean>, options?: StreamArrayOptions): Promise<boolean>;
  flatMap(fn: (data: any, options?: StreamOperatorOptions) => any, options?: StreamArrayOptions): Readable;
  drop(limit: number, options?: StreamOperatorOptions): Readable;
  take(limit: number, options?: StreamOperatorOptions): Readable;
  reduce<T = any>(fn: (previous: any, data: any, options?: StreamOperatorOptions) => T, initial?: undefined, options?: StreamOperatorOptions): Promise<T>;
  reduce<T = any>(fn: (previous: T, data: any, options?: StreamOperatorOptions) => T, initial: T, options?: StreamOperatorOptions): Promise<T>;
}

/** Options of Readable's helpers (`signal` to abort them). */
export interface StreamOperatorOptions {
  signal?: AbortSignal;
}

/** Options of Readable's mapping helpers. */
export interface StreamArrayOptions extends StreamOperatorOptions {
  concurrency?: number;
  highWaterMark?: number;
}

// ------------------------------------------------------------------ response

export interface CookieOptions {
  domain?: string;
  path?: string;
  maxAge?: number;
  expires?: Date;
  secure?: boolean;
  httpOnly?: boolean;
  sameSite?: boolean | 'none' | 'lax' | 'strict';
  partitioned?: boolean;
  priority?: 'low' | 'medium' | 'high';
  /** Signs the value (as `req.sign`). */
  secret?: string;
}

export type ResponseEvent = 'prepare' | 'finish' | 'abort' | 'close';

/**
 * The response. An EventEmitter, Writable-compatible enough for `readable.pipe(res)`.
 * Events, each at most once, listeners get `(req, res)`: `prepare` (before the head is committed),
 * `finish` (successful completion, then `close`), `abort` (client gone, then `close`), `close`
 * (always last). Also `drain` after `write()`/`sse.send()` returned false.
 */
export class Response<Locals = DefaultResponseLocals> extends EventEmitter implements NodeJS.WritableStream {
  private constructor();

  readonly route: Route;
  readonly app: Server;
  readonly raw: number;
  /** Status line and headers were committed. */
  readonly initiated: boolean;
  readonly headersSent: boolean;
  /** Finished, client gone, or closed. */
  readonly completed: boolean;
  /** Same as `completed` (compatibility). */
  readonly aborted: boolean;
  /** hyper-sse: why the response ended; `null` while open. */
  readonly close_reason: CloseReason | null;
  /**
   * The status the app set; `undefined` before (as in Hyper-Express), then what was sent once the
   * head went out. Setting it calls `status()` (so `undefined` throws).
   */
  statusCode: number | undefined;
  /** The app's reason phrase; `undefined` before, then the phrase sent once the head went out. */
  statusMessage: string | undefined;
  locals: Locals;
  readonly upgrade_socket: null;
  /** Body bytes written; -1 once completed. */
  readonly write_offset: number;
  /** An SSEventStream for GET requests, else undefined. */
  readonly sse: SSEventStream | undefined;

  readonly writable: boolean;
  readonly writableEnded: boolean;
  readonly writableFinished: boolean;
  readonly writableNeedDrain: boolean;
  readonly writableHighWaterMark: number;
  /** Always false. */
  readonly writableObjectMode: boolean;
  readonly destroyed: boolean;
  /** Same as `destroyed`. */
  readonly writableAborted: boolean;
  /** Same as `completed`. */
  readonly closed: boolean;
  /** Always null (see `close_reason`). */
  readonly errored: null;
  /** Always 0 (`cork()` is a no-op). */
  readonly writableCorked: number;

  on(event: ResponseEvent, listener: (request: Request, response: Response<Locals>) => void): this;
  on(event: 'drain', listener: () => void): this;
  on(event: string | symbol, listener: (...args: any[]) => void): this;
  once(event: ResponseEvent, listener: (request: Request, response: Response<Locals>) => void): this;
  once(event: 'drain', listener: () => void): this;
  once(event: string | symbol, listener: (...args: any[]) => void): this;

  /**
   * Sets the status (and a custom reason). `code` must be an integer from 200 to 999: anything
   * else throws a `RangeError` with `code: 'ERR_HTTP_INVALID_STATUS_CODE'`. The message must not
   * contain control characters (`TypeError`, `'ERR_INVALID_CHAR'`); it is sent as UTF-8.
   * A 204, 205 or 304 response has no body: `write()` is then ignored, `send(body)` sends the
   * head alone, and an SSE call throws `'ERR_HTTP_BODY_NOT_ALLOWED'`.
   */
  status(code: number, message?: string): this;
  /**
   * Sets a header (lowercased name). An invalid name or a value with control characters throws a
   * `TypeError` (`'ERR_INVALID_CHAR'`); `undefined`/`null` throws `'ERR_HTTP_INVALID_HEADER_VALUE'`.
   * Values are sent as UTF-8.
   */
  header(name: string, value: string | number | Array<string | number>, overwrite?: boolean): this;
  type(type: string): this;
  cookie(name: string, value: string | null, expiry_ms?: number | null, options?: CookieOptions, sign_cookie?: boolean): this;

  write(chunk: SendableData, callback?: (error?: Error | null) => void): boolean;
  write(chunk: SendableData, encoding?: BufferEncoding, callback?: (error?: Error | null) => void): boolean;
  send(body?: SendableData, close_connection?: boolean): this;
  end(callback?: () => void): this;
  end(chunk: SendableData, callback?: () => void): this;
  end(chunk: SendableData, encoding?: BufferEncoding, callback?: () => void): this;
  json(body: any): this;
  jsonp(body: any, name?: string): this;
  html(body: string): this;
  /** `url` only (a string or URL); `redirect(301, url)` throws (`'ERR_INVALID_ARG_TYPE'`). */
  redirect(url: string | URL): this | false;
  /**
   * Streams `readable` as the body (chunked, or with `content-length: total_size`, completing as
   * soon as `total_size` bytes went out). A chunk past `total_size`, a readable that ends short of
   * it, or one that fails after the response started, drops the connection (if started) and
   * passes an `Error` to the error handler (`'ERR_HTTP_CONTENT_LENGTH_MISMATCH'` for a wrong
   * size). Resolves when done.
   */
  stream(readable: NodeJS.ReadableStream, total_size?: number): Promise<void>;
  close(): void;
  atomic(handler: () => void): this;
  drain(handler: (offset: number) => boolean): void;
  throw(error: Error | unknown): this;
  sendStatus(code: number): this;

  append(name: string, value: string | number | Array<string | number>): this;
  setHeader(name: string, value: string | number | Array<string | number>): this;
  set(name: string, value: string | number | Array<string | number>): this;
  set(headers: { [name: string]: string | number | Array<string | number> }): this;
  writeHeaders(headers: { [name: string]: string | number | Array<string | number> }): this;
  setHeaders(headers: { [name: string]: string | number | Array<string | number> }): this;
  writeHeaderValues(name: string, values: Array<string | number>): this;
  getHeader(name: string): string | string[] | undefined;
  get(name: string): string | string[] | undefined;
  hasHeader(name: string): boolean;
  getHeaders(): { [name: string]: string | string[] };
  getHeaderNames(): string[];
  removeHeader(name: string): this;
  location(url: string): this;
  links(links: { [rel: string]: string }): this;
  vary(name: string): this;
  setCookie(name: string, value: string | null, options?: CookieOptions): this;
  hasCookie(name: string): boolean;
  removeCookie(name: string): this;
  clearCookie(name: string): this;
  attachment(path?: string, name?: string): this;
  cork(): void;
  uncork(): void;
  setDefaultEncoding(encoding: BufferEncoding): this;
  destroy(error?: Error): this;

  /** Not supported yet: throw. */
  file(path: string, callback?: (...args: any[]) => void): never;
  sendFile(path: string): never;
  download(path: string, filename?: string): never;
  upgrade(context?: any): never;
  /** Throw ERR_INCOMPATIBLE_CALL. */
  format(...args: any[]): never;
  render(...args: any[]): never;
}

// ------------------------------------------------------------------ SSE

/**
 * `res.sse`. The first call of any kind sends the SSE headers. Write methods return false above
 * the high-water mark (`drain` follows on the response) and once the stream ended.
 * Applications may store their own properties on it: `id` is declared (the common pool key);
 * declare others by augmentation, so that typos still fail to compile:
 * `declare module 'hyper-sse' { interface SSEventStream { user?: string } }`.
 */
export class SSEventStream {
  private constructor();
  /** Writes `: open`. */
  open(): boolean;
  /** Writes `: text` (one `: ` per line; no text → `:`). */
  comment(text?: string): boolean;
  /** Overloads by argument count; `null`/`undefined`/`''` id or event omit the field. Throws ERR_SSE_INVALID_FIELD. */
  send(data: unknown): boolean;
  send(event: string | null | undefined, data: unknown): boolean;
  send(id: string | number | null | undefined, event: string | null | undefined, data: unknown): boolean;
  /** No argument: a bare line (no event), as Hyper-Express writes. */
  send(): boolean;
  /** hyper-sse: writes `retry: ms` (non-negative integer). */
  retry(ms: number): boolean;
  /** Ends the stream (`finish`, `close`); returns the Response. */
  close(): Response;
  /** True until the response completed. */
  readonly active: boolean;
  /** Free for the application (e.g. a key into a pool of streams); not used by hyper-sse. */
  id?: any;
}

// ------------------------------------------------------------------ Channel

export interface ChannelOptions {
  /** Events kept for `Last-Event-ID` replay. Default 0. */
  history?: number;
}

/** hyper-sse: native SSE fan-out with history and `Last-Event-ID` replay. */
export class Channel {
  constructor(options?: ChannelOptions);
  readonly history: number;
  /**
   * Adds `res.sse` (sends SSE headers if needed, replays after Last-Event-ID / `last_event_id`).
   * `false` when the stream already ended or the channel was closed; throws (`ERR_INVALID_STATE`)
   * for a response started as a plain stream with `write()`.
   */
  subscribe(sse: SSEventStream): boolean;
  unsubscribe(sse: SSEventStream): boolean;
  /** Broadcasts; returns the event id (`String(n)` increasing from '1' when not given). */
  send(data: unknown): string;
  send(event: string | null | undefined, data: unknown): string;
  send(id: string | number | null | undefined, event: string | null | undefined, data: unknown): string;
  /** Live subscribers. */
  readonly size: number;
  /** Ends every subscribed stream (`finish`, `close`, reason `'server'`); returns how many. Afterwards `send()` returns `''` and sends nothing. */
  close(): number;
}

// ------------------------------------------------------------------ not supported yet (names only)

/** Not supported yet (file helpers). */
export interface LiveFile {
  readonly path: string;
  readonly is_ready: boolean;
}

/** Not supported yet (multipart). */
export interface MultipartField {
  readonly name: string;
  readonly value?: string;
}

/** Not supported yet (WebSockets). */
export interface Websocket<TUserData = unknown> extends EventEmitter {
  context: TUserData;
}

/** WebSocket compression presets (numeric values as in uWebSockets.js). */
export const compressors: {
  readonly DISABLED: number;
  readonly SHARED_COMPRESSOR: number;
  readonly SHARED_DECOMPRESSOR: number;
  readonly DEDICATED_DECOMPRESSOR: number;
  readonly DEDICATED_DECOMPRESSOR_32KB: number;
  readonly DEDICATED_DECOMPRESSOR_16KB: number;
  readonly DEDICATED_DECOMPRESSOR_8KB: number;
  readonly DEDICATED_DECOMPRESSOR_4KB: number;
  readonly DEDICATED_DECOMPRESSOR_2KB: number;
  readonly DEDICATED_DECOMPRESSOR_1KB: number;
  readonly DEDICATED_DECOMPRESSOR_512B: number;
  readonly DEDICATED_COMPRESSOR: number;
  readonly DEDICATED_COMPRESSOR_3KB: number;
  readonly DEDICATED_COMPRESSOR_4KB: number;
  readonly DEDICATED_COMPRESSOR_8KB: number;
  readonly DEDICATED_COMPRESSOR_16KB: number;
  readonly DEDICATED_COMPRESSOR_32KB: number;
  readonly DEDICATED_COMPRESSOR_64KB: number;
  readonly DEDICATED_COMPRESSOR_128KB: number;
  readonly DEDICATED_COMPRESSOR_256KB: number;
};

// Only what is exported above is public (RouterBase and the argument unions are not).
export {};
