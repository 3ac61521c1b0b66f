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

module.exports = { addSharedAccessors };
