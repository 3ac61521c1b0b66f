//! In-flight requests: what JS may still ask about a request, and how its response is delivered.
//!
//! Owns the registry of requests by id (head, complete body, peer address, the channel that hands
//! the response to hyper, the stream of a streamed response) and the exactly-once bookkeeping of
//! how a response ended. It does not build responses (`response.rs`) or talk to Node (`bridge.rs`):
//! it reports through the [`JsEvents`] trait.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http::HeaderMap;
use tokio::sync::oneshot;

use crate::response::{lock, ConnCtl, EndReason, Ender, Reply, Stream};
use crate::storm::EndRate;

/// Ids are unique in the process (several servers share the counter), so JS can keep one map.
static NEXT_ID: AtomicU64 = AtomicU64::new(1);

pub fn next_id() -> u64 {
  NEXT_ID.fetch_add(1, Ordering::Relaxed)
}

/// What Rust tells JS. Implemented with threadsafe functions in `bridge.rs`.
pub trait JsEvents: Send + Sync {
  /// Hands a batch of requests to JS (one crossing). `false` if JS can no longer be called (the
  /// server is going away).
  fn dispatch(&self, batch: Vec<Dispatch>) -> bool;
  /// Reports an event code for a request (see [`EndReason`] and [`crate::response::EVENT_DRAIN`]).
  fn event(&self, id: u64, code: u8);
  /// Lets go of the calls into JS (the server was disposed); later calls do nothing.
  fn release(&self) {}
}

/// The primitives JS receives for a new request.
pub struct Dispatch {
  pub id: u64,
  pub route: i32,
  /// How many route parameters follow the url in `text`.
  pub params: u32,
  /// The method, the url and the route parameters, each followed by a NUL: one allocation per
  /// request, handed to JS as it is when a batch holds one request (`bridge::batch_args`).
  pub text: String,
  /// The peer's IP address then the headers (see [`head_text`]): the request's own JS string,
  /// so the request keeps them after its response completed (as Hyper-Express, which copies
  /// them), without holding the strings of other requests of its batch.
  pub head: String,
  /// Bytes in the request body (read by JS on demand).
  pub body_len: usize,
}

impl Dispatch {
  pub fn new(id: u64, route: i32, method: &str, url: &str, params: &[&str]) -> Dispatch {
    let len = method.len() + url.len() + 2 + params.iter().map(|p| p.len() + 1).sum::<usize>();
    let mut text = String::with_capacity(len);
    for field in [method, url].into_iter().chain(params.iter().copied()) {
      text.push_str(field);
      text.push('\0');
    }
    Dispatch {
      id,
      route,
      params: u32::try_from(params.len()).unwrap_or(u32::MAX),
      text,
      head: String::new(),
      body_len: 0,
    }
  }
}

/// The peer's IP address and the request headers as one string: `ip\0name\0value\0...`, names
/// lowercase, in wire order. Header names cannot contain NUL; a value with NUL is made lossily
/// (NUL → space), as is a value that is not UTF-8. `host`, when given (the authority of an
/// absolute-form target), stands in for the `Host` header's value.
pub fn head_text(ip: IpAddr, map: &HeaderMap, host: Option<&str>) -> String {
  use std::fmt::Write;
  let mut s = String::with_capacity(16 + map.len() * 32);
  let _ = write!(s, "{ip}");
  s.push('\0');
  let mut host = host;
  if let Some(h) = host {
    if !map.contains_key(http::header::HOST) {
      s.push_str("host\0");
      s.push_str(h);
      s.push('\0');
      host = None;
    }
  }
  for (name, value) in map {
    s.push_str(name.as_str());
    s.push('\0');
    if name == http::header::HOST {
      if let Some(h) = host.take() {
        s.push_str(h);
        s.push('\0');
        continue;
      }
    }
    let value = String::from_utf8_lossy(value.as_bytes());
    if value.contains('\0') {
      s.push_str(&value.replace('\0', " "));
    } else {
      s.push_str(&value);
    }
    s.push('\0');
  }
  s
}

/// One in-flight request.
pub struct Entry {
  /// HTTP/1.1 (else 1.0): decides chunked framing of an SSE stream.
  pub http11: bool,
  /// The client asked to close the connection after this request.
  pub req_close: bool,
  /// The complete request body (read before JS is called).
  pub body: Bytes,
  pub conn: Arc<ConnCtl>,
  /// Hands the response to the waiting hyper service; taken by the first response call.
  pub responder: Option<oneshot::Sender<Reply>>,
  /// The queue of a streamed response.
  pub stream: Option<Arc<Stream>>,
  /// JS completed or closed the response: no end event may be reported any more.
  pub js_done: bool,
  /// The end reported to JS (at most once), if any: also what JS asks when a call finds the
  /// response gone before the event arrived.
  pub reported: Option<EndReason>,
}

/// Hashes request ids (sequential integers) with one multiplication: SipHash showed up in
/// profiles of the request path, and ids are not attacker-chosen.
#[derive(Default, Clone, Copy)]
pub struct IdHasher(u64);

impl std::hash::Hasher for IdHasher {
  fn finish(&self) -> u64 {
    self.0
  }
  fn write(&mut self, bytes: &[u8]) {
    for b in bytes {
      self.0 = (self.0.rotate_left(8) ^ u64::from(*b)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }
  }
  fn write_u64(&mut self, n: u64) {
    self.0 = n.wrapping_mul(0x9E37_79B9_7F4A_7C15);
  }
}

/// A map keyed by ids.
pub type IdMap<V> = HashMap<u64, V, std::hash::BuildHasherDefault<IdHasher>>;

/// All in-flight requests of one server.
pub struct Registry {
  /// Boxed: the map's buckets stay small (an idle SSE stream costs a pointer there, not an entry).
  entries: Mutex<IdMap<Box<Entry>>>,
  events: Arc<dyn JsEvents>,
  /// Reported ends per millisecond: the runtime naps during disconnect storms (`crate::storm`).
  ends: Arc<EndRate>,
}

impl Registry {
  pub fn new(events: Arc<dyn JsEvents>) -> Arc<Registry> {
    Arc::new(Registry {
      entries: Mutex::new(IdMap::default()),
      events,
      ends: Arc::default(),
    })
  }

  /// The rate of reported ends, read by the runtime before it waits for events.
  pub fn end_rate(&self) -> Arc<EndRate> {
    self.ends.clone()
  }

  pub fn events(&self) -> &Arc<dyn JsEvents> {
    &self.events
  }

  pub fn insert(&self, id: u64, entry: Entry) {
    lock(&self.entries).insert(id, Box::new(entry));
  }

  /// Runs `f` on the entry, if it is still registered.
  pub fn with<R>(&self, id: u64, f: impl FnOnce(&mut Entry) -> R) -> Option<R> {
    lock(&self.entries).get_mut(&id).map(|e| f(e))
  }

  /// The [`EndReason`] code of the end of `id`: the reported one, else the one recorded on its
  /// connection when that is ending (an eviction records its reason at once, and is reported a
  /// little later by the runtime); 0 when neither (or the id is unknown).
  pub fn end_code(&self, id: u64) -> u8 {
    self
      .with(id, |e| {
        e.reported
          .map_or_else(|| e.conn.reason_code(), |reason| reason as u8)
      })
      .unwrap_or(0)
  }

  /// Forgets requests JS has finished with.
  pub fn release(&self, ids: &[u64]) {
    let mut map = lock(&self.entries);
    for id in ids {
      map.remove(id);
    }
  }

  /// The one place a response gets completed: JS finishing it, or the server ending it. Runs `f`
  /// on the entry and marks it done — once, and only while the response is still open (not
  /// completed by JS, not reported ended). `None` otherwise.
  pub fn complete<R>(&self, id: u64, f: impl FnOnce(&mut Entry) -> R) -> Option<R> {
    self
      .with(id, |e| {
        if e.js_done || e.reported.is_some() {
          return None;
        }
        e.js_done = true;
        Some(f(e))
      })
      .flatten()
  }

  /// Reports that the response of `id` ended without JS finishing it — once, and never after JS
  /// completed it.
  pub fn report_end(&self, id: u64, reason: EndReason) {
    let report = self
      .with(id, |e| {
        if e.js_done || e.reported.is_some() {
          return false;
        }
        e.reported = Some(reason);
        e.responder = None;
        true
      })
      .unwrap_or(false);
    if report {
      self.ends.note();
      self.events.event(id, reason as u8);
    }
  }

  /// The SSE streams of all in-flight responses (for the heartbeat task).
  pub fn sse_streams(&self) -> Vec<Arc<Stream>> {
    lock(&self.entries)
      .values()
      .filter_map(|e| e.stream.as_ref().filter(|s| s.sse).cloned())
      .collect()
  }
}

impl Ender for Registry {
  fn ended(&self, id: u64, reason: EndReason) {
    self.report_end(id, reason);
  }

  fn drained(&self, id: u64) {
    self.events.event(id, crate::response::EVENT_DRAIN);
  }
}

/// Held by the hyper service future while JS has not answered: if the future is dropped (the
/// client left), the request's end is reported.
pub struct PendingGuard {
  pub id: u64,
  pub registry: Arc<Registry>,
  pub conn: Arc<ConnCtl>,
  pub armed: bool,
}

impl Drop for PendingGuard {
  fn drop(&mut self) {
    if self.armed {
      self.registry.report_end(self.id, self.conn.reason());
    }
  }
}

#[cfg(test)]
mod tests {
  use super::*;

  #[test]
  fn dispatch_text_is_method_url_params_each_nul_terminated() {
    let d = Dispatch::new(7, 3, "GET", "/users/ab/posts/1?x=%20", &["ab", "p1"]);
    assert_eq!((d.id, d.route, d.params), (7, 3, 2));
    assert_eq!(d.text, "GET\0/users/ab/posts/1?x=%20\0ab\0p1\0");
    // Sized exactly: no reallocation while it is built.
    assert_eq!(d.text.capacity(), d.text.len());
    let none = Dispatch::new(1, -1, "POST", "/", &[]);
    assert_eq!((none.params, none.text.as_str()), (0, "POST\0/\0"));
  }

  #[derive(Default)]
  struct Log(Mutex<Vec<(u64, u8)>>);
  impl JsEvents for Log {
    fn dispatch(&self, _batch: Vec<Dispatch>) -> bool {
      true
    }
    fn event(&self, id: u64, code: u8) {
      lock(&self.0).push((id, code));
    }
  }

  #[test]
  fn head_text_is_ip_then_headers_in_order() {
    let mut map = HeaderMap::new();
    map.append("x-multi", "1".parse().unwrap());
    map.append("host", "a:1".parse().unwrap());
    map.append("x-multi", "2".parse().unwrap());
    map.append("x-empty", "".parse().unwrap());
    assert_eq!(
      head_text("127.0.0.1".parse().unwrap(), &map, None),
      "127.0.0.1\x00x-multi\x001\x00x-multi\x002\x00host\x00a:1\x00x-empty\x00\x00"
    );
    assert_eq!(
      head_text("::1".parse().unwrap(), &HeaderMap::new(), None),
      "::1\x00"
    );
  }

  #[test]
  fn head_text_takes_the_host_of_an_absolute_target() {
    let mut map = HeaderMap::new();
    map.append("x-a", "1".parse().unwrap());
    map.append("host", "good.example".parse().unwrap());
    assert_eq!(
      head_text("127.0.0.1".parse().unwrap(), &map, Some("other.example:81")),
      "127.0.0.1\x00x-a\x001\x00host\x00other.example:81\x00"
    );
    // No Host header (HTTP/1.0): the target's authority is the host.
    assert_eq!(
      head_text(
        "127.0.0.1".parse().unwrap(),
        &HeaderMap::new(),
        Some("h.example")
      ),
      "127.0.0.1\x00host\x00h.example\x00"
    );
  }

  fn entry() -> Entry {
    Entry {
      http11: true,
      req_close: false,
      body: Bytes::new(),
      conn: ConnCtl::new(),
      responder: None,
      stream: None,
      js_done: false,
      reported: None,
    }
  }

  #[test]
  fn an_end_is_reported_once_and_never_after_js_completed() {
    let log = Arc::new(Log::default());
    let reg = Registry::new(log.clone());
    reg.insert(1, entry());
    reg.insert(2, entry());
    reg.report_end(1, EndReason::Client);
    reg.report_end(1, EndReason::Timeout);
    reg.with(2, |e| e.js_done = true);
    reg.report_end(2, EndReason::Client);
    reg.report_end(3, EndReason::Client);
    assert_eq!(*lock(&log.0), vec![(1, 1)]);
    // The first reason stays; nothing for a response JS completed, or an unknown id.
    assert_eq!(
      (reg.end_code(1), reg.end_code(2), reg.end_code(3)),
      (1, 0, 0)
    );
    reg.insert(5, entry());
    reg.report_end(5, EndReason::SlowClient);
    assert_eq!(reg.end_code(5), EndReason::SlowClient as u8);
    // Not reported yet, but recorded on the connection (an eviction, before the runtime reports).
    let e = entry();
    e.conn.kill(Some(EndReason::SlowClient));
    reg.insert(6, e);
    assert_eq!(reg.end_code(6), EndReason::SlowClient as u8);
    assert_eq!(reg.complete(2, |_| ()), None, "JS completed it already");
    assert_eq!(reg.complete(1, |_| ()), None, "reported ended already");
    reg.insert(4, entry());
    assert_eq!(reg.complete(4, |_| 7), Some(7));
    assert_eq!(reg.complete(4, |_| 7), None, "only once");
    reg.release(&[1, 2, 4]);
    assert!(reg.with(1, |_| ()).is_none());
  }

  #[test]
  fn ids_are_unique_and_increasing() {
    let a = next_id();
    let b = next_id();
    assert!(b > a);
  }
}
