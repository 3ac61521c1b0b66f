'use strict';
/**
 * Loads the Rust addon (`hyper-sse.node` at the package root) on first use.
 * The contract between this addon and the JS layer is docs/NATIVE.md.
 */
const path = require('node:path');

const ADDON = path.join(__dirname, '..', 'hyper-sse.node');
let binding = null;

/**
 * @returns {{ NativeServer: Function, NativeChannel: Function }}
 * @throws {Error} when the addon has not been built yet
 */
function load() {
  if (binding !== null) return binding;
  try {
    binding = require(ADDON);
  } catch (err) {
    if (err && err.code === 'MODULE_NOT_FOUND' && String(err.message).includes('hyper-sse.node')) {
      const e = new Error(
        'hyper-sse: native addon not built; run npm install (it builds the addon with cargo). ' +
          'As a dependency under npm 11+, whose install scripts are blocked by default, approve ' +
          'it first: npm install-scripts approve hyper-sse && npm rebuild hyper-sse'
      );
      e.code = 'ERR_HYPER_SSE_NOT_BUILT';
      e.cause = err;
      throw e;
    }
    throw err;
  }
  return binding;
}

module.exports = { load };
