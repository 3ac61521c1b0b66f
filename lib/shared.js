'use strict';
/**
 * Accessors that Request and Response share. Both keep their route (`route`), their native id
 * (`_id`) and a lazily created bag of rarely used state (`_more()`).
 */

const ACCESSORS = {
  /** Per-request (or per-response) data. */
  locals: {
    get() {
      const extra = this._more();
      if (extra.locals === undefined) extra.locals = {};
      return extra.locals;
    },
    set(value) {
      this._more().locals = value;
    },
  },
  /** The owning Server. */
  app: {
    get() {
      return this.route.app;
    },
  },
  /** The native request id. */
  raw: {
    get() {
      return this._id;
    },
  },
};

/** Defines `locals`, `app` and `raw` on `cls.prototype` (as class getters would be). */
function addSharedAccessors(cls) {
  for (const [name, accessor] of Object.entries(ACCESSORS)) {
    Object.defineProperty(cls.prototype, name, { ...accessor, enumerable: false, configurable: true });
  }
}

/**
 * `String(value)` that cannot throw (a null-prototype object, a Symbol in a template literal, a
 * throwing `toString`), clipped to `max` characters for error messages.
 * @param {unknown} value
 * @param {number} [max]
 * @returns {string}
 */
function describe(value, max = 200) {
  let text;
  try {
    text = typeof value === 'symbol' ? value.toString() : String(value);
  } catch {
    try {
      text = Object.prototype.toString.call(value);
    } catch {
      text = typeof value;
    }
  }
  return text.length > max ? `${text.slice(0, max)}... (${text.length} characters)` : text;
}

/**
 * An error of class `Kind` with `code`.
 * @param {ErrorConstructor} Kind
 * @param {string} code
 * @param {string} message
 */
function coded(Kind, code, message) {
  const err = new Kind(message);
  err.code = code;
  return err;
}

module.exports = { addSharedAccessors, describe, coded };
