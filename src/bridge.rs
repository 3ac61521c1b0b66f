//! The napi-rs side of the addon: the `NativeServer` and `NativeChannel` classes JS calls, and the
//! threadsafe functions Rust calls JS through (`src/fast.rs` has the few plain Node-API functions
//! for the per-response calls).
//!
//! Every export is wrapped in `catch_unwind` (a panic must never cross into Node) and turns
//! [`crate::error::Error`] into a JS `Error`. Both callbacks into JS are weak, non-blocking
//! threadsafe functions: one call per burst of requests, one per burst of events. The contract
//! with the JS layer is `docs/NATIVE.md`.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use napi::bindgen_prelude::*;
use napi::threadsafe_function::{ThreadsafeFunction, ThreadsafeFunctionCallMode};
use napi_derive::napi;

use crate::channel::{Channel, Subscribed};
use crate::error::Error as CrateError;
use crate::request::{Dispatch, JsEvents};
use crate::response::lock;
use crate::routing::RouteSpec;
use crate::server::{Config, Head, Outcome, Server};
use crate::sse::{self, FieldError};

impl From<CrateError> for napi::Error {
  fn from(e: CrateError) -> Self {
    let status = match e {
      CrateError::InvalidArg(_) => Status::InvalidArg,
      _ => Status::GenericFailure,
    };
    napi::Error::new(status, e.to_string())
  }
}

/// A batch of requests for `onRequests(nums, text)` (see [`batch_args`]).
type DispatchArgs = FnArgs<(Float64Array, String, Vec<String>)>;
type DispatchFn = ThreadsafeFunction<Vec<Dispatch>, (), DispatchArgs, Status, false, true>;
type EventArgs = FnArgs<(Float64Array,)>;
type EventFn = ThreadsafeFunction<(), (), EventArgs, Status, false, true>;

/// Events waiting for JS. A burst (10,000 clients leaving at once) becomes few threadsafe calls.
#[derive(Default)]
struct EventQueue {
  items: Vec<(u64, u8)>,
  /// A threadsafe call is on its way and will take `items`.
  in_flight: bool,
  /// A delayed call is armed (see [`COALESCE`]).
  armed: bool,
  last_call: Option<Instant>,
}

/// Ends reported within this long of the previous call to JS wait for the next call, at most this
/// long: while clients leave one after another, JS is woken about once per millisecond with all of
/// them instead of once per client (each wake-up costs both threads a context switch). A lone end
/// and every `drain` are reported at once.
const COALESCE: Duration = Duration::from_millis(1);

/// The calls into JS. `None` once released ([`JsEvents::release`]): each holds its JS callback,
/// which holds the JS server.
struct Callbacks {
  on_request: Mutex<Option<DispatchFn>>,
  on_event: Mutex<Option<Arc<EventFn>>>,
  events: Arc<Mutex<EventQueue>>,
}

/// Makes the threadsafe call that hands `queue` to JS (the queue is locked by the caller).
fn call_js(on_event: &EventFn, q: &mut EventQueue) {
  q.in_flight = true;
  q.last_call = Some(Instant::now());
  if on_event.call((), ThreadsafeFunctionCallMode::NonBlocking) != Status::Ok {
    q.in_flight = false;
  }
}

impl JsEvents for Callbacks {
  fn dispatch(&self, batch: Vec<Dispatch>) -> bool {
    lock(&self.on_request)
      .as_ref()
      .is_some_and(|f| f.call(batch, ThreadsafeFunctionCallMode::NonBlocking) == Status::Ok)
  }

  fn release(&self) {
    let on_request = lock(&self.on_request).take();
    let on_event = lock(&self.on_event).take();
    drop((on_request, on_event));
  }

  fn event(&self, id: u64, code: u8) {
    let Some(on_event) = lock(&self.on_event).clone() else {
      return;
    };
    let mut q = lock(&self.events);
    q.items.push((id, code));
    if q.in_flight {
      return;
    }
    let recent = q.last_call.is_some_and(|t| t.elapsed() < COALESCE);
    if code != crate::response::EVENT_DRAIN && recent {
      if q.armed {
        return;
      }
      if let Ok(rt) = tokio::runtime::Handle::try_current() {
        q.armed = true;
        let queue = self.events.clone();
        rt.spawn(async move {
          tokio::time::sleep(COALESCE).await;
          let mut q = lock(&queue);
          q.armed = false;
          if !q.in_flight && !q.items.is_empty() {
            call_js(&on_event, &mut q);
          }
        });
        return;
      }
    }
    call_js(&on_event, &mut q);
  }
}

/// Server options, all optional (units and defaults in `docs/NATIVE.md`).
#[napi(object)]
pub struct NativeOptions {
  /// tokio worker threads (default 1).
  pub worker_threads: Option<u32>,
  /// Max request head bytes; above → 431 (default 16384).
  pub max_header_size: Option<u32>,
  /// Default request body limit in bytes (default 256000).
  pub max_body_length: Option<f64>,
  /// Drop the connection instead of answering 413 (default false).
  pub fast_abort: Option<bool>,
  /// Heartbeat interval of idle SSE streams in ms; 0 = off (default 15000).
  pub sse_heartbeat_ms: Option<f64>,
  /// Per-response cap on bytes queued for a client (default 1 MiB).
  pub max_queued_bytes: Option<f64>,
  /// Queue size from which writes report backpressure (default 16384).
  pub high_water_mark: Option<f64>,
  /// Write deadline in ms for a stalled socket; 0 = off (default 30000).
  pub write_timeout_ms: Option<f64>,
  /// Time a client has to send a whole request head, in ms; 0 = off (default 30000).
  pub header_timeout_ms: Option<f64>,
}

fn ms(v: f64) -> Option<Duration> {
  (v.is_finite() && v > 0.0).then(|| Duration::from_millis(v as u64))
}

fn to_config(o: Option<NativeOptions>) -> Config {
  let mut c = Config::default();
  let Some(o) = o else { return c };
  if let Some(v) = o.worker_threads {
    c.worker_threads = v.max(1) as usize;
  }
  if let Some(v) = o.max_header_size {
    c.max_header_size = v as usize;
  }
  if let Some(v) = o.max_body_length.filter(|v| v.is_finite() && *v >= 0.0) {
    c.max_body_length = v as u64;
  }
  if let Some(v) = o.fast_abort {
    c.fast_abort = v;
  }
  if let Some(v) = o.sse_heartbeat_ms {
    c.sse_heartbeat = ms(v);
  }
  if let Some(v) = o.max_queued_bytes.filter(|v| v.is_finite() && *v > 0.0) {
    c.max_queued_bytes = v as usize;
  }
  if let Some(v) = o.high_water_mark.filter(|v| v.is_finite() && *v > 0.0) {
    c.high_water_mark = v as usize;
  }
  if let Some(v) = o.write_timeout_ms {
    c.write_timeout = ms(v);
  }
  if let Some(v) = o.header_timeout_ms {
    c.header_timeout = ms(v);
  }
  c
}

/// One route for `setRoutes`.
#[napi(object)]
pub struct NativeRoute {
  pub id: i32,
  pub method: String,
  pub pattern: String,
  pub max_body_length: Option<f64>,
}

pub(crate) fn head_of<'a>(status: u32, reason: Option<&'a str>, headers: &'a [String]) -> Head<'a> {
  Head {
    status: status.min(u32::from(u16::MAX)) as u16,
    reason,
    headers,
  }
}

/// A batch of requests as the arguments of one JS call: `nums` is
/// `[id, routeId, paramCount, bodyLength, ...]` (four numbers per request), `text` holds each
/// request's method, url and parameters in that order, each followed by a NUL (none of them can
/// contain one: methods are tokens, the url and the parameters, taken raw from it, are URI
/// characters), and `heads` holds one string per request: its peer address and headers
/// ([`crate::request::head_text`]). One call per batch instead of a call and several values per
/// request; the heads are separate strings so that a request kept open (an SSE stream) holds its
/// own, not a slice of the whole batch.
fn batch_args(batch: Vec<Dispatch>) -> DispatchArgs {
  let mut nums = Vec::with_capacity(batch.len() * 4);
  let mut heads = Vec::with_capacity(batch.len());
  let text_len: usize = batch.iter().map(|d| d.text.len()).sum();
  let mut text = String::new();
  for d in batch {
    nums.push(d.id as f64);
    nums.push(f64::from(d.route));
    nums.push(f64::from(d.params));
    nums.push(d.body_len as f64);
    heads.push(d.head);
    if text.is_empty() {
      // The first request's text, moved: a batch of one is not copied.
      text = d.text;
      text.reserve(text_len - text.len());
    } else {
      text.push_str(&d.text);
    }
  }
  (Float64Array::new(nums), text, heads).into()
}

/// A JS number as an id or count: negative, NaN and infinite values are 0.
pub(crate) fn id_of(id: f64) -> u64 {
  if id.is_finite() && id >= 0.0 {
    id as u64
  } else {
    0
  }
}

/// The native half of a `Server`.
#[napi]
pub struct NativeServer {
  server: Server,
}

#[napi]
impl NativeServer {
  /// Creates the runtime. `onRequests(nums, text)` (a batch of requests, see [`batch_args`]) and
  /// `onEvents(pairs)` are called on the JS thread.
  #[napi(constructor, catch_unwind)]
  pub fn new(
    options: Option<NativeOptions>,
    on_request: Function<'_, DispatchArgs, ()>,
    on_event: Function<'_, EventArgs, ()>,
  ) -> Result<Self> {
    // One threadsafe call, and one JS call, per batch of requests.
    let on_request: DispatchFn = on_request
      .build_threadsafe_function::<Vec<Dispatch>>()
      .weak::<true>()
      .callee_handled::<false>()
      .build_callback(move |ctx| Ok(batch_args(ctx.value)))?;
    let events = Arc::new(Mutex::new(EventQueue::default()));
    let queue = events.clone();
    let on_event: EventFn = on_event
      .build_threadsafe_function::<()>()
      .weak::<true>()
      .callee_handled::<false>()
      .build_callback(move |_ctx| {
        let items = {
          let mut q = lock(&queue);
          q.in_flight = false;
          std::mem::take(&mut q.items)
        };
        // The whole burst in one call: `[id, code, id, code, ...]`.
        let mut flat = Vec::with_capacity(items.len() * 2);
        for (id, code) in items {
          flat.push(id as f64);
          flat.push(f64::from(code));
        }
        Ok((Float64Array::new(flat),).into())
      })?;
    let server = Server::new(
      to_config(options),
      Arc::new(Callbacks {
        on_request: Mutex::new(Some(on_request)),
        on_event: Mutex::new(Some(Arc::new(on_event))),
        events,
      }),
    )?;
    crate::response::defer_on_this_thread();
    Ok(NativeServer { server })
  }

  /// Hands over the responses and wake-ups queued by calls from this thread (call once per
  /// event-loop turn after writing, e.g. from `setImmediate`). Returns how many ran.
  #[napi(catch_unwind)]
  pub fn flush(&self) -> u32 {
    crate::response::flush_deferred(&self.server.shared.pump) as u32
  }

  /// A plain Node-API function bound to this server for a call made once per response, SSE
  /// message or header read: `resEnd`, `resWrite`, `sseSend`, `reqHeaderText` (`src/fast.rs`;
  /// as methods, napi-rs would spend ~300-450 ns more per call).
  #[napi(catch_unwind)]
  pub fn native_fn(&self, env: Env, name: String) -> Result<crate::fast::RawValue> {
    crate::fast::make(env.raw(), &self.server.shared, &name)
  }

  /// Replaces the route table.
  #[napi(catch_unwind)]
  pub fn set_routes(&self, routes: Vec<NativeRoute>) -> Result<()> {
    let specs: Vec<RouteSpec> = routes
      .into_iter()
      .map(|r| RouteSpec {
        id: r.id,
        method: r.method,
        pattern: r.pattern,
        max_body_length: r
          .max_body_length
          .filter(|v| v.is_finite() && *v > 0.0)
          .map_or(0, |v| v as u64),
      })
      .collect();
    self.server.set_routes(&specs)?;
    Ok(())
  }

  /// Binds and starts accepting; returns the bound port.
  #[napi(catch_unwind)]
  pub fn listen(&self, host: String, port: u32) -> Result<u32> {
    let port =
      u16::try_from(port).map_err(|_| CrateError::Listen(format!("invalid port {port}")))?;
    Ok(u32::from(self.server.listen(&host, port)?))
  }

  /// Stops accepting; `false` if nothing was listening.
  #[napi(catch_unwind)]
  pub fn close(&self) -> bool {
    self.server.close()
  }

  /// Closes keep-alive connections once their current response is done.
  #[napi(catch_unwind)]
  pub fn close_idle(&self) {
    self.server.close_idle();
  }

  /// Drops every connection now.
  #[napi(catch_unwind)]
  pub fn force_close(&self) {
    self.server.force_close();
  }

  /// Releases a closed server's runtime, its thread and its calls into JS (see
  /// `Server::dispose`); JS calls it once the server stopped listening and has no connection
  /// and no open response left. Afterwards `listen` fails: JS makes a new `NativeServer`.
  #[napi(catch_unwind)]
  pub fn dispose(&self) {
    self.server.dispose();
  }

  /// Open connections.
  #[napi(getter, catch_unwind)]
  pub fn connections(&self) -> u32 {
    self.server.connections() as u32
  }

  /// Open connections parked while idle (hyper's state dropped until the client sends again).
  #[napi(getter, catch_unwind)]
  pub fn parked(&self) -> u32 {
    self.server.parked() as u32
  }

  /// Why the response of `id` ended, when it ended without JS completing it: 1 the client left,
  /// 2 write timeout, 3 slow client evicted; 0 when no end was reported or the id is unknown.
  #[napi(catch_unwind)]
  pub fn end_reason(&self, id: f64) -> u32 {
    u32::from(self.server.shared.registry.end_code(id_of(id)))
  }

  /// The complete request body.
  #[napi(catch_unwind)]
  pub fn req_body(&self, id: f64) -> Buffer {
    let body = self
      .server
      .shared
      .registry
      .with(id_of(id), |e| e.body.clone())
      .unwrap_or_default();
    Buffer::from(body.to_vec())
  }

  /// Starts a streamed (chunked) response; `sse` enables heartbeats. `highWaterMark` (bytes,
  /// a route's own) replaces the server's; absent, 0 or not finite: the server's.
  #[napi(catch_unwind)]
  pub fn res_head(
    &self,
    id: f64,
    status: u32,
    reason: Option<String>,
    headers: Option<Vec<String>>,
    sse: bool,
    high_water_mark: Option<f64>,
  ) -> Result<bool> {
    let headers = headers.unwrap_or_default();
    let head = head_of(status, reason.as_deref(), &headers);
    let hwm = high_water_mark
      .filter(|v| v.is_finite() && *v >= 1.0)
      .map(|v| v as usize);
    Ok(
      self
        .server
        .shared
        .start_stream(id_of(id), &head, sse, hwm)?
        == Outcome::Done,
    )
  }

  /// Queues an optional last chunk and ends the streamed body.
  #[napi(catch_unwind)]
  pub fn res_finish(&self, id: f64, chunk: Option<Either<Buffer, String>>) -> bool {
    let last = chunk.as_ref().map(as_bytes);
    self.server.shared.finish(id_of(id), last) == Outcome::Done
  }

  /// Drops the request's connection now.
  #[napi(catch_unwind)]
  pub fn res_close(&self, id: f64) -> bool {
    self.server.shared.close(id_of(id)) == Outcome::Done
  }

  /// Forgets requests whose responses JS closed. A `Float64Array`: one conversion for the
  /// whole batch (an array of numbers cost 72 ns per id in napi-rs's element-by-element read).
  #[napi(catch_unwind)]
  pub fn release(&self, ids: Float64Array) {
    let ids: Vec<u64> = ids.iter().copied().map(id_of).collect();
    self.server.shared.registry.release(&ids);
  }

  /// Queues a comment (`: text` per line; `null` → `:`).
  #[napi(catch_unwind)]
  pub fn sse_comment(&self, id: f64, text: Option<String>) -> i64 {
    self.server.shared.write_js(id_of(id), |buf| {
      sse::encode_comment_into(buf, text.as_deref())
    })
  }

  /// Queues `retry: <ms>` (a negative or non-finite value is 0).
  #[napi(catch_unwind)]
  pub fn sse_retry(&self, id: f64, ms: f64) -> i64 {
    self
      .server
      .shared
      .write_js(id_of(id), |buf| sse::encode_retry_into(buf, id_of(ms)))
  }
}

fn as_bytes(chunk: &Either<Buffer, String>) -> &[u8] {
  match chunk {
    Either::A(buf) => buf,
    Either::B(s) => s.as_bytes(),
  }
}

pub(crate) fn field_code(e: FieldError) -> i64 {
  match e {
    FieldError::Event => -2,
    FieldError::Id => -3,
  }
}

/// The native half of a `Channel`. Its history is reported to V8 as external memory, so that the
/// garbage collector counts it when it decides to run (a dropped channel's history is freed when
/// its JS object is finalized).
#[napi(custom_finalize)]
pub struct NativeChannel {
  channel: Channel,
  /// Bytes reported with `napi_adjust_external_memory` so far.
  reported: std::sync::atomic::AtomicI64,
}

impl NativeChannel {
  /// Reports the change of the history's size since the last report.
  fn report(&self, env: &Env) {
    use std::sync::atomic::Ordering::Relaxed;
    let now = i64::try_from(self.channel.history_bytes()).unwrap_or(i64::MAX);
    let delta = now - self.reported.swap(now, Relaxed);
    if delta != 0 {
      let _ = env.adjust_external_memory(delta);
    }
  }
}

impl ObjectFinalize for NativeChannel {
  fn finalize(self, env: Env) -> Result<()> {
    let reported = self.reported.load(std::sync::atomic::Ordering::Relaxed);
    if reported != 0 {
      let _ = env.adjust_external_memory(-reported);
    }
    Ok(())
  }
}

#[napi]
impl NativeChannel {
  /// A channel keeping the last `history` events.
  #[napi(constructor, catch_unwind)]
  pub fn new(history: Option<u32>) -> Self {
    NativeChannel {
      channel: Channel::new(history.unwrap_or(0) as usize),
      reported: std::sync::atomic::AtomicI64::new(0),
    }
  }

  /// Subscribes the started SSE response `id` of `server`. Returns the number of replayed events,
  /// -1 if the stream is gone, -2 if `lastEventId` was not in history (`replay-unavailable` sent),
  /// -4 if it was already subscribed.
  #[napi(catch_unwind)]
  pub fn subscribe(&self, server: &NativeServer, id: f64, last_event_id: Option<String>) -> i64 {
    let shared = server.server.shared.clone();
    let Some(stream) = shared.stream(id_of(id)) else {
      return -1;
    };
    match self
      .channel
      .subscribe(shared, stream, last_event_id.as_deref())
    {
      Subscribed::Replayed(n) => n as i64,
      Subscribed::Unavailable(_) => -2,
      Subscribed::Gone => -1,
      Subscribed::Already => -4,
    }
  }

  /// Removes the response `id`; `false` if it was not subscribed.
  #[napi(catch_unwind)]
  pub fn unsubscribe(&self, id: f64) -> bool {
    self.channel.unsubscribe(id_of(id))
  }

  /// Broadcasts one event; returns its id.
  #[napi(catch_unwind)]
  pub fn send(
    &self,
    env: Env,
    sse_id: Option<String>,
    event: Option<String>,
    data: String,
  ) -> Result<String> {
    let id = self
      .channel
      .send(sse_id.as_deref(), event.as_deref(), &data)
      .map_err(|e| {
        napi::Error::new(
          Status::InvalidArg,
          format!("ERR_SSE_INVALID_FIELD: {}", e.message()),
        )
      })?;
    self.report(&env);
    Ok(id)
  }

  /// Live subscribers.
  #[napi(getter, catch_unwind)]
  pub fn size(&self) -> u32 {
    self.channel.size() as u32
  }

  /// Ends every subscribed stream; returns their request ids.
  #[napi(catch_unwind)]
  pub fn close(&self, env: Env) -> Vec<f64> {
    let ids = self
      .channel
      .close()
      .into_iter()
      .map(|id| id as f64)
      .collect();
    self.report(&env);
    ids
  }
}
