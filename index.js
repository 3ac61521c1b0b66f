'use strict';
/**
 * hyper-sse: a Hyper-Express-compatible HTTP server with first-class Server-Sent Events,
 * on a Rust (hyper) core. `require('hyper-sse').Server` is a drop-in for
 * `require('hyper-express').Server` (HTTP routes and `res.sse`; no WebSockets yet).
 */
const Server = require('./lib/Server');
const Router = require('./lib/Router');
const Channel = require('./lib/Channel');
const Request = require('./lib/Request');
const Response = require('./lib/Response');
const SSEventStream = require('./lib/SSEventStream');

/**
 * WebSocket compression presets, with the numeric values uWebSockets.js uses. Exported for
 * compatibility with `require('hyper-express').compressors`; WebSockets are not supported yet.
 */
const compressors = Object.freeze({
  DISABLED: 0,
  SHARED_COMPRESSOR: 1,
  SHARED_DECOMPRESSOR: 1 << 13,
  DEDICATED_DECOMPRESSOR_32KB: 15 << 8,
  DEDICATED_DECOMPRESSOR_16KB: 14 << 8,
  DEDICATED_DECOMPRESSOR_8KB: 13 << 8,
  DEDICATED_DECOMPRESSOR_4KB: 12 << 8,
  DEDICATED_DECOMPRESSOR_2KB: 11 << 8,
  DEDICATED_DECOMPRESSOR_1KB: 10 << 8,
  DEDICATED_DECOMPRESSOR_512B: 9 << 8,
  DEDICATED_DECOMPRESSOR: 15 << 8,
  DEDICATED_COMPRESSOR_3KB: (9 << 4) | 1,
  DEDICATED_COMPRESSOR_4KB: (9 << 4) | 2,
  DEDICATED_COMPRESSOR_8KB: (10 << 4) | 3,
  DEDICATED_COMPRESSOR_16KB: (11 << 4) | 4,
  DEDICATED_COMPRESSOR_32KB: (12 << 4) | 5,
  DEDICATED_COMPRESSOR_64KB: (13 << 4) | 6,
  DEDICATED_COMPRESSOR_128KB: (14 << 4) | 7,
  DEDICATED_COMPRESSOR_256KB: (15 << 4) | 8,
  DEDICATED_COMPRESSOR: (15 << 4) | 8,
});

module.exports = { Server, Router, Channel, Request, Response, SSEventStream, compressors };
