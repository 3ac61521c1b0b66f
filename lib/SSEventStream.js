'use strict';
/**
 * SSEventStream: `res.sse`, Server-Sent Events over a response (spec section 6, WHATWG HTML
 * "Server-sent events": https://html.spec.whatwg.org/multipage/server-sent-events.html).
 *
 * The first call of any kind (`open`, `comment`, `send`, `retry`) commits the response with the
 * SSE headers (`content-type: text/event-stream`, `cache-control: no-cache`,
 * `connection: keep-alive`, `x-accel-buffering: no`; they replace user values of the same name,
 * other user headers and the status are kept). Messages are encoded natively: multi-line data is
 * split into one `data:` line per line; CR/LF in `event`/`id` (or NUL in `id`) throw a TypeError
 * with `code = 'ERR_SSE_INVALID_FIELD'`, nothing is written and the stream stays open.
 *
 * Write methods return Writable-style booleans: false above the high-water mark (the response
 * emits `'drain'` later) and false once the stream ended (nothing is written then).
 * Applications may store their own properties on this object (e.g. `res.sse.id = randomUUID()`).
 */

const { touch } = require('./state');
const { sendArgs } = require('./sendArgs');

const RESPONSE = Symbol('hyper-sse.response');
const BAD_EVENT = /[\r\n]/;
const BAD_ID = /[\r\n\0]/;

function invalidField(message) {
  const err = new TypeError(`hyper-sse: ${message}`);
  err.code = 'ERR_SSE_INVALID_FIELD';
  return err;
}

const BAD_EVENT_MESSAGE = 'SSE event names may not contain CR or LF';
const BAD_ID_MESSAGE = 'SSE ids may not contain CR, LF or NUL';

/** @private validates fields in JS before the first write so that a bad call commits nothing */
function checkFields(id, event) {
  if (event !== null && BAD_EVENT.test(event)) throw invalidField(BAD_EVENT_MESSAGE);
  if (id !== null && BAD_ID.test(id)) throw invalidField(BAD_ID_MESSAGE);
}

/**
 * @private
 * @returns {import('./Response') | null} the response if it can still be written to
 */
function writable(sse) {
  const res = sse[RESPONSE];
  if (res.completed || res._sending) return null;
  if (!res.initiated && !res._start(true)) return null;
  return res;
}

function result(res, n) {
  if (n === -2) throw invalidField(BAD_EVENT_MESSAGE);
  if (n === -3) throw invalidField(BAD_ID_MESSAGE);
  return res._queued(n);
}

class SSEventStream {
  /**
   * Created by `res.sse`; not meant to be constructed by applications.
   * @param {import('./Response')} response
   */
  constructor(response) {
    Object.defineProperty(this, RESPONSE, { value: response });
  }

  /**
   * Writes the comment `: open` (commits the SSE headers if not yet sent).
   * @returns {boolean}
   */
  open() {
    return this.comment('open');
  }

  /**
   * Writes a comment: every line of `text` gets its own `: ` prefix; no text writes `:` alone.
   * @param {string} [text]
   * @returns {boolean}
   */
  comment(text) {
    const res = writable(this);
    if (res === null) return false;
    const n = res._native.sseComment(res._id, text === undefined || text === null ? null : String(text));
    touch();
    return res._queued(n);
  }

  /**
   * Sends one event. Overloads by argument count: `send(data)`, `send(event, data)`,
   * `send(id, event, data)`; `send()` writes a bare line (no event, as in Hyper-Express). `null`/`undefined` id or event omit that field; `data` is
   * `String(data)` (`null`/`undefined` → empty data, still dispatched by the client).
   * @returns {boolean} false above the high-water mark or once ended
   * @throws {TypeError} `code = 'ERR_SSE_INVALID_FIELD'` for CR/LF in event or id, NUL in id
   */
  send(a, b, c) {
    // No argument: a bare line, byte-identical to Hyper-Express (which apps use to start a stream);
    // clients dispatch no event for it.
    if (arguments.length === 0) return this._blank_line();
    const { id, event, data } = sendArgs(arguments.length, a, b, c);
    const res = this[RESPONSE];
    if (res.completed || res._sending) return false;
    if (!res.initiated) {
      checkFields(id, event);
      if (!res._start(true)) return false;
    }
    const n = res.route.app._fast.sseSend(res._id, id, event, data);
    touch();
    return result(res, n);
  }

  /** @private `send()` with no argument */
  _blank_line() {
    const res = writable(this);
    if (res === null) return false;
    const n = res.route.app._fast.resWrite(res._id, '\n');
    touch();
    return res._queued(n);
  }

  /**
   * Extension: writes `retry: <ms>` (the client's reconnection delay).
   * @param {number} ms non-negative integer
   * @returns {boolean}
   */
  retry(ms) {
    if (!Number.isSafeInteger(ms) || ms < 0) {
      const err = new TypeError(`hyper-sse: sse.retry(ms) needs a non-negative integer, got ${String(ms)}`);
      err.code = 'ERR_INVALID_ARG_VALUE';
      throw err;
    }
    const res = writable(this);
    if (res === null) return false;
    const n = res._native.sseRetry(res._id, ms);
    touch();
    return res._queued(n);
  }

  /**
   * Ends the stream from the server side (`res.send()`: `finish` then `close`, reason
   * `'finished'`; the connection stays usable for keep-alive).
   * @returns {import('./Response')} the Response
   */
  close() {
    return this[RESPONSE].send();
  }

  /** True until the response completed (closed by either side). */
  get active() {
    return !this[RESPONSE].completed;
  }
}

SSEventStream.RESPONSE = RESPONSE;
SSEventStream.invalidField = invalidField;
SSEventStream.writable = writable;
module.exports = SSEventStream;
