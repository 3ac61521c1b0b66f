'use strict';
/**
 * The argument rules of `send(data)`, `send(event, data)`, `send(id, event, data)`, shared by
 * `SSEventStream.send` and `Channel.send`: overloads go by argument count (D6), `null`/`undefined`
 * id or event omit the field, data is `String(data)` (`null`/`undefined` → empty data).
 * @param {number} count arguments.length of the caller
 * @returns {{ id: string | null, event: string | null, data: string }}
 */
function sendArgs(count, a, b, c) {
  let id = null;
  let event = null;
  let data;
  if (count >= 3) {
    id = a === undefined || a === null ? null : String(a);
    event = b === undefined || b === null ? null : String(b);
    data = c;
  } else if (count === 2) {
    event = a === undefined || a === null ? null : String(a);
    data = b;
  } else {
    data = a;
  }
  return { id, event, data: data === undefined || data === null ? '' : String(data) };
}

module.exports = { sendArgs };
