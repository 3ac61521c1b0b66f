//! hyper-sse: a Hyper-Express-compatible HTTP server with first-class Server-Sent Events.
//!
//! Rust owns sockets, HTTP/1.1, routing, bodies, SSE encoding, buffering, fan-out, timers and
//! disconnect detection; the JS layer (`index.js`, `lib/`) is the Hyper-Express skin.
//!
//! Layout:
//! - `server`   tokio runtime, listener, connections, write deadline, shutdown, request service
//! - `routing`  Hyper-Express patterns → route ids and parameter values
//! - `request`  in-flight requests by id, exactly-once end reporting
//! - `response` response bodies, streamed-response queues, backpressure, heartbeats
//! - `sse`      the pure SSE encoder
//! - `sse_writer` serves an SSE stream on the raw socket (hyper's buffers released)
//! - `channel`  fan-out channels with history and replay
//! - `timer`    the coarse clock, hyper's header-read timeout, idle keep-alive parking and close
//! - `error`    the crate's error type
//! - `bridge`   the napi classes and threadsafe functions
//! - `fast`     plain Node-API functions for the per-response calls (no napi-rs per-call cost)

#[cfg(feature = "node")]
mod bridge;
pub mod channel;
pub mod error;
#[cfg(feature = "node")]
mod fast;
pub mod request;
pub mod response;
pub mod routing;
pub mod server;
pub mod sse;
pub mod sse_writer;
pub mod storm;
pub mod timer;

/// mimalloc keeps allocations of different sizes on separate pages and returns freed pages to the
/// OS, so the buffers a connection frees when its SSE stream leaves hyper do not stay resident
/// between the small objects of long-lived streams.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;
