'use strict';
/**
 * Channel: native SSE fan-out with history and `Last-Event-ID` replay.
 *
 * One `send()` is one JS call whatever the number of subscribers: the event is encoded once in
 * Rust and queued to every subscribed stream. Ids assigned by the channel (when `send` gets no
 * id) are `String(n)`, increasing from `'1'`.
 *
 * Replay: `subscribe(res.sse)` reads the client's last seen id from the `Last-Event-ID` request
 * header (sent by EventSource when it reconnects), else from a `last_event_id` query parameter
 * (for a first connect). Every event after that id still in history is sent first, then live
 * events, with no gap and no duplicate. When the id is not in history, the stream first receives
 * an event named `replay-unavailable` (see README), then the whole history.
 */
const native = require('./native');
const { OPEN, touch } = require('./state');
const SSEventStream = require('./SSEventStream');
const { sendArgs } = require('./sendArgs');
const { coded, describe } = require('./shared');

/** The most events a Channel keeps (the native side counts in 32 bits). */
const MAX_HISTORY = 2 ** 32 - 1;

const RESPONSE = SSEventStream.RESPONSE;

function responseOf(sse) {
  const res = sse !== null && typeof sse === 'object' ? sse[RESPONSE] : undefined;
  if (res === undefined) throw coded(TypeError, 'ERR_INVALID_ARG_TYPE', 'hyper-sse: expected an SSEventStream (res.sse)');
  return res;
}

function rethrow(err) {
  const message = err && typeof err.message === 'string' ? err.message : String(err);
  if (message.startsWith('ERR_SSE_INVALID_FIELD')) {
    const e = SSEventStream.invalidField(message.replace(/^ERR_SSE_INVALID_FIELD:\s*/, ''));
    throw e;
  }
  throw err;
}

class Channel {
  /**
   * @param {object} [options]
   * @param {number} [options.history=0] number of most recent events kept for replay (0 = none)
   */
  constructor(options = {}) {
    if (options === null || typeof options !== 'object') {
      throw coded(TypeError, 'ERR_INVALID_ARG_TYPE', 'hyper-sse: new Channel(options) expects an options object');
    }
    const history = options.history === undefined ? 0 : options.history;
    if (!Number.isSafeInteger(history) || history < 0 || history > MAX_HISTORY) {
      throw coded(RangeError, 'ERR_OUT_OF_RANGE', `hyper-sse: Channel history must be an integer from 0 to ${MAX_HISTORY}, got ${describe(history, 64)}`);
    }
    /** @private */
    this._native = new (native.load().NativeChannel)(history);
    /** Number of events kept for replay. */
    this.history = history;
    /** @private `close()` was called */
    this._closed = false;
  }

  /**
   * Adds a stream: sends the SSE headers if not yet sent, replays the events after the client's
   * `Last-Event-ID` (header, else `last_event_id` query parameter), then delivers live events.
   * A stream may be in several channels and may still use its own `sse.send()`.
   * @param {import('./SSEventStream')} sse `res.sse`
   * @returns {boolean} false when the stream has already ended, or the channel was closed (the
   *   response is then left as it was)
   * @throws {Error} `code = 'ERR_INVALID_STATE'` when the response was started as a plain
   *   stream (`write()`), not as an SSE stream
   */
  subscribe(sse) {
    const res = responseOf(sse);
    if (this._closed) return false;
    if (res.initiated && !res._sse_mode && !res.completed) {
      const err = new Error('hyper-sse: Channel.subscribe() needs an SSE stream; this response was started as a plain stream (write())');
      err.code = 'ERR_INVALID_STATE';
      throw err;
    }
    if (SSEventStream.writable(sse) === null) return false;
    const req = res._req;
    let last = req.headers['last-event-id'];
    if (last === undefined || last === '') {
      const q = req.query_parameters.last_event_id;
      last = Array.isArray(q) ? q[q.length - 1] : q;
    }
    if (last === undefined || last === '') last = null;
    const n = this._native.subscribe(res._native, res._id, last);
    touch();
    return n !== -1;
  }

  /**
   * Removes a stream (it stays open).
   * @param {import('./SSEventStream')} sse
   * @returns {boolean} whether it was subscribed
   */
  unsubscribe(sse) {
    const res = responseOf(sse);
    const out = this._native.unsubscribe(res._id);
    touch();
    return out;
  }

  /**
   * Broadcasts one event: `send(data)`, `send(event, data)`, `send(id, event, data)` (overloads
   * by argument count, same encoding and validation as `sse.send`). Without an id the channel
   * assigns the next `String(n)`.
   * @returns {string} the event id; `''` after `close()` (nothing is sent or kept then)
   * @throws {TypeError} `code = 'ERR_SSE_INVALID_FIELD'` for CR/LF in event or id, NUL in id
   */
  send(a, b, c) {
    const { id, event, data } = sendArgs(arguments.length, a, b, c);
    if (this._closed) return '';
    let sent;
    try {
      sent = this._native.send(id, event, data);
    } catch (err) {
      return rethrow(err);
    }
    touch();
    return sent;
  }

  /** Live subscribers. @type {number} */
  get size() {
    return this._native.size;
  }

  /**
   * Ends every subscribed stream from the server side: each response emits `finish` then
   * `close` (`close_reason = 'server'`).
   * @returns {number} how many streams were ended
   */
  close() {
    this._closed = true;
    const ids = this._native.close();
    touch();
    let count = 0;
    for (const id of ids) {
      const res = OPEN.get(id);
      if (res !== undefined && !res.completed) {
        res._finish('server');
        count++;
      }
    }
    return count;
  }
}

module.exports = Channel;
