'use strict';
/**
 * Process-wide state shared by every Server: the open responses (request ids are unique across all
 * servers of the process, docs/NATIVE.md "Ids") and the batched `release()` queue.
 */

/** @type {Map<number, import('./Response')>} request id → open Response */
const OPEN = new Map();

/** Servers strongly held while listening (a listening server must not be garbage-collected). */
const LIVE = new Set();

/** @type {Array<{ native: any, ids: number[], queued: boolean }>} */
let queues = [];
let scheduled = false;
/** NativeServers not disposed yet. */
const natives = new Set();
/** One of `natives`: its `flush()` hands this thread's deferred native work to a runtime. */
let flusher = null;

/**
 * Once per event-loop turn (setImmediate): hands the native calls of this turn to the runtime
 * (`flush()`, docs/NATIVE.md), then releases the ids of closed responses.
 */
function tick() {
  scheduled = false;
  if (flusher !== null) {
    try {
      flusher.flush();
    } catch (err) {
      console.error(err);
    }
  }
  if (queues.length === 0) return;
  const pending = queues;
  queues = [];
  for (const entry of pending) {
    entry.queued = false;
    const ids = entry.ids;
    entry.ids = [];
    try {
      entry.native.release(new Float64Array(ids));
    } catch (err) {
      console.error(err);
    }
  }
}

/** Must follow every native response/SSE/channel call: schedules the per-turn `flush()`. */
function touch() {
  if (!scheduled) {
    scheduled = true;
    setImmediate(tick);
  }
}

/** Registers a new NativeServer; the latest one does the `flush()` (deferral is per thread, any server will do). */
function addNative(native) {
  natives.add(native);
  flusher = native;
}

/** A NativeServer is being disposed: another one (if any) takes over the `flush()`. */
function removeNative(native) {
  natives.delete(native);
  if (flusher === native) flusher = natives.size === 0 ? null : natives.values().next().value;
}

/**
 * Queues `id` for `native.release([...])`; all ids are released once per setImmediate.
 * @param {{ native: any, ids: number[], queued: boolean }} entry per-native release queue
 * @param {number} id
 */
function queueRelease(entry, id) {
  entry.ids.push(id);
  if (!entry.queued) {
    entry.queued = true;
    queues.push(entry);
  }
  touch();
}

/**
 * Routes a burst of native lifecycle events to the open Responses with those ids (unknown ids are
 * ignored). One call per burst: `pairs` is `[id, code, id, code, ...]`.
 * Codes: 1 client gone, 2 write timeout, 3 slow client evicted, 4 drain.
 * @param {Float64Array} pairs
 */
function onEvents(pairs) {
  for (let i = 0; i + 1 < pairs.length; i += 2) {
    const res = OPEN.get(pairs[i]);
    if (res === undefined) continue;
    try {
      res._onNative(pairs[i + 1]);
    } catch (err) {
      // Listener errors are handled inside; this only keeps the rest of the burst flowing.
      console.error(err);
    }
  }
}

module.exports = { OPEN, LIVE, queueRelease, onEvents, touch, addNative, removeNative };
