//! The crate's error type. Owns the messages callers see; `bridge.rs` turns it into a JS `Error`.

use std::fmt;

/// Everything that can go wrong in a call from JS.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Error {
  /// The caller passed something invalid (bad status, header, pattern, SSE field).
  InvalidArg(String),
  /// The server could not listen.
  Listen(String),
  /// The tokio runtime could not start.
  Runtime(String),
}

impl fmt::Display for Error {
  fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    match self {
      Error::InvalidArg(m) => write!(f, "hyper-sse: {m}"),
      Error::Listen(m) => write!(f, "{m}"),
      Error::Runtime(m) => write!(f, "hyper-sse: could not start the runtime: {m}"),
    }
  }
}

impl std::error::Error for Error {}
