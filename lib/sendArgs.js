'use strict';
/**
 * The argument rules of `send(data)`, `send(event, data)`, `send(id, event, data)`, shared by
 * `SSEventStream.send` and `Channel.send`: overloads go by argument count (D6), `null`/`undefined`
 * or `''` id or event omit the field (as Hyper-Express omits falsy ones; an `id:` line with no
 * value would reset the client's last event id), data is `String(data)` (`null`/`undefined` →
 * empty data).
 * @param {number} count arguments.length of the caller
 * @returns {{ id: string | null, event: string | null, data: string }}
 */
function sendArgs(count, a, b, c) {
  let id = null;
  let event = null;
  let data;
  if (count >= 3) {
    id = field(a);
    event = field(b);
    data = c;
  } else if (count === 2) {
    event = field(a);
    data = b;
  } else {
    data = a;
  }
  return { id, event, data: data === undefined || data === null ? '' : String(data) };
}

/** An id or event argument: `null` when the field is omitted. */
function field(v) {
  if (v === undefined || v === null || v === '') return null;
  return String(v);
}

module.exports = { sendArgs };
