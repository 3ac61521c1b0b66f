'use strict';
/**
 * Cookie-signature compatible signing: `value.<HMAC-SHA256(value, secret) in base64 without '='>`.
 */
const crypto = require('node:crypto');

/**
 * @param {string} value
 * @param {string} secret
 * @returns {string}
 */
function sign(value, secret) {
  if (typeof value !== 'string') throw new TypeError('hyper-sse: the value to sign must be a string');
  if (typeof secret !== 'string' || secret === '') throw new TypeError('hyper-sse: a secret string is required');
  const mac = crypto.createHmac('sha256', secret).update(value).digest('base64').replace(/=+$/, '');
  return value + '.' + mac;
}

/**
 * @param {string} signed
 * @param {string} secret
 * @returns {string | undefined} the value, or undefined when the signature does not match
 */
function unsign(signed, secret) {
  if (typeof signed !== 'string') throw new TypeError('hyper-sse: the signed value must be a string');
  if (typeof secret !== 'string' || secret === '') throw new TypeError('hyper-sse: a secret string is required');
  const dot = signed.lastIndexOf('.');
  if (dot < 0) return undefined;
  const value = signed.slice(0, dot);
  const expected = Buffer.from(sign(value, secret));
  const actual = Buffer.from(signed);
  if (expected.length !== actual.length) return undefined;
  return crypto.timingSafeEqual(expected, actual) ? value : undefined;
}

module.exports = { sign, unsign };
