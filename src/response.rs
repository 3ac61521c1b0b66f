//! Response bodies and the life of a streamed response.
//!
//! Owns the body hyper writes for each response: a complete body (`Content-Length`), or a stream
//! fed from JS through a shared queue ([`Stream`]). Writes from the JS thread are appended to the
//! queue without a round trip and coalesced: hyper takes everything queued as one frame, so many
//! small SSE events become one socket write. This module also owns the per-stream limits
//! (high-water mark → drain, queue cap → eviction). SSE streams are written by `sse_writer.rs`
//! from the same [`Stream`] queue.
//!
//! The end of a hyper-written streamed response is observed in exactly one place: [`StreamBody`]'s
//! `Drop`. If the body is dropped before JS finished it, the client went away (or was
//! evicted/timed out) and the [`Ender`] is told once, with the reason recorded on the connection.
//! (SSE streams are ended in `sse_writer::SseConnection::finish`.)

use std::pin::Pin;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use http_body::{Body, Frame, SizeHint};
use tokio::time::Instant;

/// Why a response ended without JS finishing it. The numbers are the event codes JS receives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum EndReason {
  /// The client closed or reset the connection.
  Client = 1,
  /// Writes made no progress within the write timeout (dead peer).
  Timeout = 2,
  /// More than the queue cap was waiting for a client that does not read.
  SlowClient = 3,
}

/// Event code: the queue fell below the high-water mark after a write reached it.
pub const EVENT_DRAIN: u8 = 4;

impl EndReason {
  /// The reason a socket error ends a connection: `ETIMEDOUT` (write deadline, TCP_USER_TIMEOUT,
  /// keepalive) is a dead peer, anything else a client that left.
  pub fn from_io(e: &std::io::Error) -> EndReason {
    if e.kind() == std::io::ErrorKind::TimedOut {
      EndReason::Timeout
    } else {
      EndReason::Client
    }
  }

  fn from_u8(v: u8) -> Option<EndReason> {
    match v {
      1 => Some(EndReason::Client),
      2 => Some(EndReason::Timeout),
      3 => Some(EndReason::SlowClient),
      _ => None,
    }
  }
}

/// Cross-thread work produced by a call from JS. Waking a tokio task from the JS thread costs a
/// syscall (the runtime's eventfd) per task; the JS thread therefore defers wake-ups and hands
/// them to the server's [`Pump`] in one batch (`flush`, once per event-loop turn): a burst of
/// responses or SSE writes wakes the runtime once, and the pump wakes the tasks from inside it.
pub enum Deferred {
  Wake(Waker),
  Respond(tokio::sync::oneshot::Sender<Reply>, Reply),
}

/// What JS answers a request with.
pub enum Reply {
  /// A response hyper writes (complete or streamed body).
  Http(http::Response<ResBody>),
  /// An SSE stream: the connection leaves hyper and is served by `sse_writer`.
  Sse(Takeover),
}

/// An SSE response to be served on the raw socket.
pub struct Takeover {
  /// Status line and headers, encoded, ending with the blank line.
  pub head: Vec<u8>,
  pub stream: Arc<Stream>,
  /// HTTP/1.1: chunked framing; HTTP/1.0: close-delimited body.
  pub chunked: bool,
  /// The connection may serve further requests after the stream ends.
  pub keep_alive: bool,
}

thread_local! {
  static DEFERS: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
  static PENDING: std::cell::RefCell<Vec<Deferred>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Makes the current thread (the JS thread) defer its wake-ups until [`flush_deferred`].
pub fn defer_on_this_thread() {
  DEFERS.with(|d| d.set(true));
}

/// Runs `d` now, or queues it when this thread defers.
pub fn run_or_defer(d: Deferred) {
  if DEFERS.with(|c| c.get()) {
    PENDING.with(|p| p.borrow_mut().push(d));
  } else {
    d.run();
  }
}

/// Hands everything this thread deferred to `pump`; returns how many items there were.
pub fn flush_deferred(pump: &Pump) -> usize {
  let items = PENDING.with(|p| std::mem::take(&mut *p.borrow_mut()));
  let n = items.len();
  if n > 0 {
    pump.hand_over(items);
  }
  n
}

/// A task on the server's runtime that runs the wake-ups JS deferred: one cross-thread wake-up
/// (of the pump) per batch instead of one per woken task. Any task of any runtime may be woken
/// from here; when the runtime is gone, handed-over work runs on the caller's thread.
pub struct Pump {
  inbox: Mutex<Inbox>,
  waker: atomic_waker::AtomicWaker,
}

struct Inbox {
  items: Vec<Deferred>,
  /// The pump task is alive and will run what is put here.
  open: bool,
}

impl Pump {
  pub fn new() -> Arc<Pump> {
    Arc::new(Pump {
      inbox: Mutex::new(Inbox {
        items: Vec::new(),
        open: true,
      }),
      waker: atomic_waker::AtomicWaker::new(),
    })
  }

  fn hand_over(&self, mut items: Vec<Deferred>) {
    let mut inbox = lock(&self.inbox);
    if !inbox.open {
      drop(inbox);
      items.into_iter().for_each(Deferred::run);
      return;
    }
    // A non-empty inbox means the pump was woken and has not taken it yet.
    let wake = inbox.items.is_empty();
    inbox.items.append(&mut items);
    drop(inbox);
    if wake {
      self.waker.wake();
    }
  }

  /// The pump task: spawn it once on the runtime. When the runtime drops it, the inbox closes and
  /// what it still holds runs at once, so no wake-up is ever lost.
  pub async fn run(self: Arc<Self>) {
    struct Close(Arc<Pump>);
    impl Drop for Close {
      fn drop(&mut self) {
        let items = {
          let mut inbox = lock(&self.0.inbox);
          inbox.open = false;
          std::mem::take(&mut inbox.items)
        };
        items.into_iter().for_each(Deferred::run);
      }
    }
    let pump = Close(self);
    std::future::poll_fn(|cx| {
      // Registered before taking: items handed over after the take wake this task again.
      pump.0.waker.register(cx.waker());
      let items = std::mem::take(&mut lock(&pump.0.inbox).items);
      items.into_iter().for_each(Deferred::run);
      Poll::<()>::Pending
    })
    .await;
  }
}

impl Deferred {
  fn run(self) {
    match self {
      Deferred::Wake(w) => w.wake(),
      Deferred::Respond(tx, res) => {
        // A closed receiver means the client left: the response is dropped here and a streamed
        // body reports the end itself.
        let _ = tx.send(res);
      }
    }
  }
}

/// Locks a mutex, ignoring poisoning: the data behind our locks stays consistent because no code
/// path panics while holding them, and a poisoned lock must never take the server down.
pub fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
  m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Control of one TCP connection, shared by its task, its IO and its responses.
pub struct ConnCtl {
  /// Set when the connection must be dropped at once; `kill_waker` wakes its task (for a kill,
  /// a takeover, a graceful close or a park: see `poll_signal`).
  killed: std::sync::atomic::AtomicBool,
  kill_waker: atomic_waker::AtomicWaker,
  /// An SSE response waiting to take the connection over from hyper (`has_takeover` says so
  /// without locking).
  /// Boxed: held by every connection, used once per SSE stream.
  takeover: Mutex<Option<Box<Takeover>>>,
  has_takeover: std::sync::atomic::AtomicBool,
  /// Close once the current response is done (`close_idle`/`shutdown`).
  graceful: std::sync::atomic::AtomicBool,
  /// A write to the socket is waiting for the client to read: only then is a full queue a slow
  /// client (a burst that the runtime has not written yet is not).
  blocked: std::sync::atomic::AtomicBool,
  /// Why the connection is being dropped (an [`EndReason`] as u8; 0 = unknown → client).
  reason: AtomicU8,
  /// An answer went out while the request's body was still arriving: the connection closes
  /// with a lingering close (see `server::linger`).
  linger: std::sync::atomic::AtomicBool,
  /// The socket reported an error (a reset, a timed-out peer): nothing is owed to the peer, so
  /// the closer may hold it until a disconnect burst is over (see `server::close_later`).
  errored: std::sync::atomic::AtomicBool,
  /// hyper's pending header-read timer (see `crate::timer`).
  pub head: crate::timer::HeadSlot,
  /// Activity seen by the housekeeping task (parking, idle close; see `crate::timer`).
  pub idle: crate::timer::Idle,
}

impl ConnCtl {
  pub fn new() -> Arc<ConnCtl> {
    Arc::new(ConnCtl {
      killed: std::sync::atomic::AtomicBool::new(false),
      kill_waker: atomic_waker::AtomicWaker::new(),
      takeover: Mutex::new(None),
      blocked: std::sync::atomic::AtomicBool::new(false),
      has_takeover: std::sync::atomic::AtomicBool::new(false),
      graceful: std::sync::atomic::AtomicBool::new(false),
      reason: AtomicU8::new(0),
      linger: std::sync::atomic::AtomicBool::new(false),
      errored: std::sync::atomic::AtomicBool::new(false),
      head: crate::timer::HeadSlot::default(),
      idle: crate::timer::Idle::default(),
    })
  }

  /// Records why the connection ends; the first reason recorded wins.
  pub fn set_reason(&self, reason: EndReason) {
    let _ = self
      .reason
      .compare_exchange(0, reason as u8, Ordering::AcqRel, Ordering::Acquire);
  }

  /// Asks for a lingering close once the current response is out (see `server::linger`).
  pub fn set_linger(&self) {
    self.linger.store(true, Ordering::Release);
  }

  /// True when the connection must close with a lingering close.
  pub fn wants_linger(&self) -> bool {
    self.linger.load(Ordering::Acquire)
  }

  /// Records that the socket reported an error (see the field).
  pub fn set_errored(&self) {
    self.errored.store(true, Ordering::Release);
  }

  /// True when the socket reported an error.
  pub fn is_errored(&self) -> bool {
    self.errored.load(Ordering::Acquire)
  }

  /// The recorded reason's code, 0 when none was recorded (yet).
  pub fn reason_code(&self) -> u8 {
    self.reason.load(Ordering::Acquire)
  }

  /// The recorded reason, or `Client` when the peer simply went away.
  pub fn reason(&self) -> EndReason {
    EndReason::from_u8(self.reason.load(Ordering::Acquire)).unwrap_or(EndReason::Client)
  }

  /// Drops the connection as soon as its task runs (with `reason` if none was recorded yet).
  pub fn kill(&self, reason: Option<EndReason>) {
    if let Some(r) = reason {
      self.set_reason(r);
    }
    self.killed.store(true, Ordering::Release);
    self.kill_waker.wake();
  }

  /// Records whether a socket write is waiting for the client.
  pub fn set_blocked(&self, blocked: bool) {
    self.blocked.store(blocked, Ordering::Release);
  }

  /// True while a socket write waits for the client.
  pub fn is_blocked(&self) -> bool {
    self.blocked.load(Ordering::Acquire)
  }

  /// Ready once [`kill`](Self::kill) was called. Only the connection's own task polls this.
  pub fn poll_killed(&self, cx: &mut Context<'_>) -> Poll<()> {
    if self.killed.load(Ordering::Acquire) {
      return Poll::Ready(());
    }
    self.kill_waker.register(cx.waker());
    if self.killed.load(Ordering::Acquire) {
      return Poll::Ready(());
    }
    Poll::Pending
  }

  /// Completes when [`kill`](Self::kill) was called.
  pub async fn killed(&self) {
    std::future::poll_fn(|cx| self.poll_killed(cx)).await;
  }

  /// Asks the connection task to leave hyper and serve `t` on the socket.
  pub fn hand_over(&self, t: Takeover) {
    *lock(&self.takeover) = Some(Box::new(t));
    self.has_takeover.store(true, Ordering::Release);
    self.kill_waker.wake();
  }

  /// An SSE response handed over but not yet taken.
  pub fn take_pending(&self) -> Option<Takeover> {
    // A load first: this runs on every poll of a connection, and a takeover is rare.
    if !self.has_takeover.load(Ordering::Acquire)
      || !self.has_takeover.swap(false, Ordering::AcqRel)
    {
      return None;
    }
    lock(&self.takeover).take().map(|t| *t)
  }

  /// Asks the connection to close once its current response is done.
  pub fn close_when_idle(&self) {
    self.graceful.store(true, Ordering::Release);
    self.kill_waker.wake();
  }

  /// What the connection task must do besides driving hyper, if anything. Registers `cx` for
  /// kills, takeovers, graceful closes and parks (one waker for all).
  pub fn poll_signal(&self, cx: &mut Context<'_>, graceful_seen: bool) -> Option<Signal> {
    self.kill_waker.register(cx.waker());
    if self.killed.load(Ordering::Acquire) {
      return Some(Signal::Killed);
    }
    if let Some(t) = self.take_pending() {
      return Some(Signal::Takeover(t));
    }
    if !graceful_seen && self.graceful.load(Ordering::Acquire) {
      return Some(Signal::Graceful);
    }
    if self.idle.take_park_signal() {
      return Some(Signal::Park);
    }
    None
  }

  /// Wakes the connection task so that it sees a park request (see `crate::timer::Idle`).
  pub fn wake(&self) {
    self.kill_waker.wake();
  }
}

/// See [`ConnCtl::poll_signal`].
pub enum Signal {
  Killed,
  Takeover(Takeover),
  Graceful,
  /// Idle: drop hyper until the client sends again.
  Park,
}

/// Receives the end of responses JS did not finish. Implemented by the server registry.
pub trait Ender: Send + Sync {
  /// Called at most once per streamed response, from the body's `Drop`.
  fn ended(&self, id: u64, reason: EndReason);
  /// A drain event for `id`.
  fn drained(&self, id: u64);
}

/// Limits of a streamed response.
#[derive(Debug, Clone, Copy)]
pub struct StreamLimits {
  pub high_water_mark: usize,
  pub max_queued: usize,
  /// Write deadline of a stalled socket; `None` = off.
  pub write_timeout: Option<Duration>,
}

struct StreamState {
  /// Bytes written by JS and not yet taken by hyper.
  buf: BytesMut,
  /// The largest single write in `buf` that was larger than the queue cap (a big chunk, a
  /// channel's history replay): kept whole, and not counted against the cap until taken.
  oversize: usize,
  /// JS finished the response: end the body once `buf` is taken.
  ended: bool,
  /// The body is gone (client left, evicted): writes are refused.
  gone: bool,
  /// A write reached the high-water mark: send a drain event when the queue is taken.
  want_drain: bool,
  /// The body task waiting for data.
  waker: Option<Waker>,
  /// Last time bytes went out (heartbeats only fill silence).
  last_write: Instant,
}

impl StreamState {
  /// Empties the queue (its bytes, and the bookkeeping of its big writes) and returns the bytes.
  fn take_queue(&mut self) -> BytesMut {
    self.oversize = 0;
    std::mem::take(&mut self.buf)
  }
}

/// The shared queue of one streamed response: written by JS (through the bridge or a channel),
/// read by hyper through [`StreamBody`].
pub struct Stream {
  pub id: u64,
  /// An SSE stream (gets heartbeats).
  pub sse: bool,
  /// Subscribed to a channel at some point: writes from JS then go through the fan-out queue,
  /// so they keep their order with the channel's events.
  pub fanned: std::sync::atomic::AtomicBool,
  pub conn: Arc<ConnCtl>,
  pub limits: StreamLimits,
  state: Mutex<StreamState>,
}

/// Result of a write: the bytes now queued, or why nothing was queued.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteResult {
  Queued(usize),
  /// The stream is gone or finished: nothing written.
  Gone,
}

impl WriteResult {
  /// The number JS receives: queued bytes, or -1.
  pub fn to_js(self) -> i64 {
    match self {
      WriteResult::Queued(n) => n as i64,
      WriteResult::Gone => -1,
    }
  }
}

impl Stream {
  pub fn new(id: u64, sse: bool, conn: Arc<ConnCtl>, limits: StreamLimits) -> Arc<Stream> {
    Arc::new(Stream {
      id,
      sse,
      fanned: std::sync::atomic::AtomicBool::new(false),
      conn,
      limits,
      state: Mutex::new(StreamState {
        buf: BytesMut::new(),
        oversize: 0,
        ended: false,
        gone: false,
        want_drain: false,
        waker: None,
        last_write: Instant::now(),
      }),
    })
  }

  /// Queues bytes produced by `fill` (called with the lock held, so encoding and queueing are one
  /// step and concurrent writers never interleave inside a message).
  pub fn write_with(&self, fill: impl FnOnce(&mut BytesMut)) -> WriteResult {
    let mut st = lock(&self.state);
    if st.gone || st.ended {
      return WriteResult::Gone;
    }
    let cap = self.limits.max_queued;
    let before = st.buf.len();
    let backlog_before = before - st.oversize;
    fill(&mut st.buf);
    let queued = st.buf.len();
    if queued - before > cap {
      st.oversize = st.oversize.max(queued - before);
    }
    // The backlog is what is queued beyond the largest single write that was larger than the cap:
    // such a write (a file piped in one chunk, a channel's history replay) is kept whole while the
    // client reads, and the writes right behind it are not held against it. Over the cap while
    // the socket waits for the client: a slow consumer. A write that finds four times the cap of
    // backlog: evicted anyway (an app ignoring backpressure). Memory stays bounded whatever the
    // cause: four times the cap, plus the largest write, plus the write that crossed four times
    // the cap.
    if queued - st.oversize > cap
      && (self.conn.is_blocked() || backlog_before >= cap.saturating_mul(4))
    {
      // Slow consumer: keep memory bounded. Drop what we hold and cut the connection.
      st.gone = true;
      st.take_queue();
      let waker = st.waker.take();
      drop(st);
      self.conn.kill(Some(EndReason::SlowClient));
      if let Some(w) = waker {
        run_or_defer(Deferred::Wake(w));
      }
      return WriteResult::Gone;
    }
    if queued >= self.limits.high_water_mark {
      st.want_drain = true;
    }
    let waker = if before == 0 { st.waker.take() } else { None };
    drop(st);
    if let Some(w) = waker {
      run_or_defer(Deferred::Wake(w));
    }
    WriteResult::Queued(queued)
  }

  /// A write from JS: straight into the queue, or, once the stream is in a channel, through the
  /// fan-out queue behind the channel events sent before it. The result then counts the bytes as
  /// queued already (and asks for a drain at the high-water mark), so backpressure works alike.
  pub fn write_js(self: &Arc<Self>, fill: impl FnOnce(&mut BytesMut)) -> WriteResult {
    if !self.fanned.load(Ordering::Acquire) {
      return self.write_with(fill);
    }
    let mut bytes = BytesMut::new();
    fill(&mut bytes);
    let queued = {
      let mut st = lock(&self.state);
      if st.gone || st.ended {
        return WriteResult::Gone;
      }
      let queued = st.buf.len() + bytes.len();
      if queued >= self.limits.high_water_mark {
        st.want_drain = true;
      }
      queued
    };
    crate::channel::queue_write(self.clone(), bytes.freeze());
    WriteResult::Queued(queued)
  }

  /// JS ends the stream: at once, or behind the channel events sent before (see `write_js`).
  pub fn finish_js(self: &Arc<Self>, last: Option<&[u8]>) -> bool {
    if !self.fanned.load(Ordering::Acquire) {
      return self.finish(last);
    }
    if !self.is_open() {
      return false;
    }
    if let Some(last) = last {
      crate::channel::queue_write(self.clone(), Bytes::copy_from_slice(last));
    }
    crate::channel::queue_finish(self.clone());
    true
  }

  /// Queues raw bytes.
  pub fn write(&self, data: &[u8]) -> WriteResult {
    self.write_with(|b| b.extend_from_slice(data))
  }

  /// Queues an optional last chunk and ends the body after it. `false` if already ended or gone.
  pub fn finish(&self, last: Option<&[u8]>) -> bool {
    let mut st = lock(&self.state);
    if st.gone || st.ended {
      return false;
    }
    if let Some(last) = last {
      st.buf.extend_from_slice(last);
    }
    st.ended = true;
    let waker = st.waker.take();
    drop(st);
    if let Some(w) = waker {
      run_or_defer(Deferred::Wake(w));
    }
    true
  }

  /// True while the stream accepts writes.
  pub fn is_open(&self) -> bool {
    let st = lock(&self.state);
    !st.gone && !st.ended
  }

  /// Bytes waiting for the socket.
  #[cfg(test)]
  pub fn queued(&self) -> usize {
    lock(&self.state).buf.len()
  }

  /// Takes everything queued, or says the stream ended or is gone, or registers `cx`'s waker.
  pub fn poll_take(&self, cx: &mut Context<'_>, ender: &dyn Ender) -> Poll<Take> {
    let mut st = lock(&self.state);
    if !st.buf.is_empty() {
      // Taken whole rather than split off: a split leaves the emptied buffer sharing (so
      // keeping alive) the allocation the taken bytes live in, for as long as the stream idles.
      let data = st.take_queue().freeze();
      st.last_write = Instant::now();
      let drained = std::mem::take(&mut st.want_drain);
      drop(st);
      if drained {
        ender.drained(self.id);
      }
      return Poll::Ready(Take::Data(data));
    }
    if st.ended {
      return Poll::Ready(Take::End);
    }
    if st.gone {
      return Poll::Ready(Take::Gone);
    }
    st.waker = Some(cx.waker().clone());
    Poll::Pending
  }

  /// Queues a heartbeat if nothing was written or queued for `every`. Returns whether it did.
  pub fn heartbeat_if_idle(&self, every: Duration, now: Instant) -> bool {
    let mut st = lock(&self.state);
    if st.gone || st.ended || !st.buf.is_empty() || now < st.last_write + every {
      return false;
    }
    st.buf.extend_from_slice(crate::sse::HEARTBEAT);
    // Counts as a write: the next heartbeat is due one interval after this one.
    st.last_write = now;
    let waker = st.waker.take();
    drop(st);
    if let Some(w) = waker {
      w.wake();
    }
    true
  }

  /// Records that bytes (a heartbeat) went out now.
  pub fn touch(&self) {
    lock(&self.state).last_write = Instant::now();
  }

  /// Marks the stream gone (no more writes) and drops what is queued. Returns whether JS had
  /// finished it (then its end is not an abort).
  pub fn close_down(&self) -> bool {
    let mut st = lock(&self.state);
    st.gone = true;
    st.waker = None;
    st.take_queue();
    st.ended
  }
}

/// What [`Stream::poll_take`] yields.
pub enum Take {
  Data(Bytes),
  /// JS finished the stream and everything was taken.
  End,
  /// The stream was evicted.
  Gone,
}

/// The hyper body of a streamed (non-SSE) response.
pub struct StreamBody {
  stream: Arc<Stream>,
  ender: Arc<dyn Ender>,
  /// The terminating chunk was produced: dropping the body now is a normal end.
  done: bool,
  /// A streamed body in progress keeps its connection from being parked or closed as idle.
  _busy: crate::timer::Busy,
}

impl StreamBody {
  pub fn new(stream: Arc<Stream>, ender: Arc<dyn Ender>) -> StreamBody {
    StreamBody {
      _busy: crate::timer::Idle::busy(&stream.conn),
      stream,
      ender,
      done: false,
    }
  }
}

impl Body for StreamBody {
  type Data = Bytes;
  type Error = std::io::Error;

  fn poll_frame(
    mut self: Pin<&mut Self>,
    cx: &mut Context<'_>,
  ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
    let this = &mut *self;
    if this.done {
      return Poll::Ready(None);
    }
    match this.stream.poll_take(cx, &*this.ender) {
      Poll::Ready(Take::Data(data)) => Poll::Ready(Some(Ok(Frame::data(data)))),
      Poll::Ready(Take::End) => {
        this.done = true;
        Poll::Ready(None)
      }
      Poll::Ready(Take::Gone) => Poll::Ready(Some(Err(std::io::Error::other("stream evicted")))),
      Poll::Pending => Poll::Pending,
    }
  }

  fn is_end_stream(&self) -> bool {
    self.done
  }

  fn size_hint(&self) -> SizeHint {
    SizeHint::default()
  }
}

impl Drop for StreamBody {
  fn drop(&mut self) {
    let finished_by_js = self.stream.close_down();
    if !self.done && !finished_by_js {
      self.ender.ended(self.stream.id, self.stream.conn.reason());
    }
  }
}

/// The body of every response this server sends.
pub enum ResBody {
  /// A complete body, sent with `Content-Length`.
  Full(Option<Bytes>),
  /// A streamed (chunked) body fed from JS.
  Stream(StreamBody),
}

impl ResBody {
  pub fn empty() -> ResBody {
    ResBody::Full(None)
  }
}

impl Body for ResBody {
  type Data = Bytes;
  type Error = std::io::Error;

  fn poll_frame(
    self: Pin<&mut Self>,
    cx: &mut Context<'_>,
  ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
    match self.get_mut() {
      ResBody::Full(data) => Poll::Ready(data.take().map(|d| Ok(Frame::data(d)))),
      ResBody::Stream(s) => Pin::new(s).poll_frame(cx),
    }
  }

  fn is_end_stream(&self) -> bool {
    match self {
      ResBody::Full(data) => data.is_none(),
      ResBody::Stream(s) => s.is_end_stream(),
    }
  }

  fn size_hint(&self) -> SizeHint {
    match self {
      ResBody::Full(data) => SizeHint::with_exact(data.as_ref().map_or(0, |d| d.len() as u64)),
      ResBody::Stream(s) => s.size_hint(),
    }
  }
}

#[cfg(test)]
mod tests {
  use super::*;
  use std::sync::atomic::AtomicUsize;

  #[derive(Default)]
  struct Recorder {
    ended: Mutex<Vec<(u64, EndReason)>>,
    drains: AtomicUsize,
  }
  impl Ender for Recorder {
    fn ended(&self, id: u64, reason: EndReason) {
      lock(&self.ended).push((id, reason));
    }
    fn drained(&self, _id: u64) {
      self.drains.fetch_add(1, Ordering::SeqCst);
    }
  }

  fn limits() -> StreamLimits {
    StreamLimits {
      high_water_mark: 8,
      max_queued: 32,
      write_timeout: None,
    }
  }

  fn poll(body: &mut StreamBody) -> Poll<Option<Result<Frame<Bytes>, std::io::Error>>> {
    let waker = std::task::Waker::noop();
    let mut cx = Context::from_waker(waker);
    Pin::new(body).poll_frame(&mut cx)
  }

  fn data(p: Poll<Option<Result<Frame<Bytes>, std::io::Error>>>) -> Vec<u8> {
    match p {
      Poll::Ready(Some(Ok(f))) => f.into_data().map(|b| b.to_vec()).unwrap_or_default(),
      _ => panic!("expected a data frame"),
    }
  }

  /// A stream of `id` on a connection of its own, with the body hyper would poll.
  fn open(id: u64, rec: &Arc<Recorder>) -> (Arc<Stream>, StreamBody) {
    let s = Stream::new(id, false, ConnCtl::new(), limits());
    let body = StreamBody::new(s.clone(), rec.clone());
    (s, body)
  }

  #[tokio::test]
  async fn writes_are_coalesced_into_one_frame() {
    let rec = Arc::new(Recorder::default());
    let (s, mut body) = open(1, &rec);
    assert!(poll(&mut body).is_pending());
    assert_eq!(s.write(b"ab"), WriteResult::Queued(2));
    assert_eq!(s.write(b"cd"), WriteResult::Queued(4));
    assert_eq!(data(poll(&mut body)), b"abcd");
    assert!(s.finish(Some(b"z")));
    assert_eq!(data(poll(&mut body)), b"z");
    assert!(matches!(poll(&mut body), Poll::Ready(None)));
    drop(body);
    assert!(
      lock(&rec.ended).is_empty(),
      "a finished body reports nothing"
    );
    assert_eq!(s.write(b"x"), WriteResult::Gone);
  }

  #[tokio::test]
  async fn high_water_mark_then_drain() {
    let rec = Arc::new(Recorder::default());
    let (s, mut body) = open(1, &rec);
    assert_eq!(s.write(b"0123456789"), WriteResult::Queued(10));
    assert_eq!(rec.drains.load(Ordering::SeqCst), 0);
    data(poll(&mut body));
    assert_eq!(rec.drains.load(Ordering::SeqCst), 1);
    assert_eq!(s.queued(), 0);
  }

  #[tokio::test]
  async fn dropping_an_unfinished_body_reports_once_with_the_reason() {
    let rec = Arc::new(Recorder::default());
    let (s, body) = open(7, &rec);
    let conn = s.conn.clone();
    conn.set_reason(EndReason::Timeout);
    conn.set_reason(EndReason::SlowClient);
    drop(body);
    assert_eq!(*lock(&rec.ended), vec![(7, EndReason::Timeout)]);
    assert_eq!(s.write(b"x"), WriteResult::Gone);
    assert!(!s.finish(None));
  }

  #[tokio::test]
  async fn a_queue_over_the_cap_evicts_the_slow_client() {
    let rec = Arc::new(Recorder::default());
    let (s, body) = open(3, &rec);
    let conn = s.conn.clone();
    assert_eq!(s.write(&[b'x'; 30]), WriteResult::Queued(30));
    conn.set_blocked(true);
    assert_eq!(s.write(&[b'x'; 3]), WriteResult::Gone);
    assert_eq!(s.queued(), 0, "evicted data is released");
    drop(body);
    assert_eq!(*lock(&rec.ended), vec![(3, EndReason::SlowClient)]);
  }

  #[tokio::test]
  async fn a_burst_over_the_cap_is_kept_while_the_socket_is_not_blocked() {
    let rec = Arc::new(Recorder::default());
    let (s, _body) = open(4, &rec);
    for i in 1..=4 {
      assert_eq!(s.write(&[b'x'; 32]), WriteResult::Queued(32 * i));
    }
    assert_eq!(
      s.write(&[b'x'; 1]),
      WriteResult::Gone,
      "four times the cap is a hard limit"
    );
  }

  #[tokio::test]
  async fn a_write_larger_than_the_cap_is_kept_whole_and_not_held_against_the_writes_behind_it() {
    let rec = Arc::new(Recorder::default());
    let (s, body) = open(5, &rec);
    // A 1000-byte write with a 32-byte cap (a big chunk, a history replay): kept.
    assert_eq!(s.write(&[b'x'; 1000]), WriteResult::Queued(1000));
    // Writes behind it count from zero: the backlog may reach four times the cap...
    for i in 1..=4 {
      assert_eq!(s.write(&[b'x'; 32]), WriteResult::Queued(1000 + 32 * i));
    }
    // ...and a socket waiting for the client does not matter while the backlog is within the cap.
    let (t, _t_body) = open(6, &rec);
    assert_eq!(t.write(&[b'x'; 1000]), WriteResult::Queued(1000));
    t.conn.set_blocked(true);
    assert_eq!(t.write(&[b'x'; 30]), WriteResult::Queued(1030));
    assert_eq!(
      t.write(&[b'x'; 3]),
      WriteResult::Gone,
      "backlog over the cap, socket blocked"
    );
    // The first stream: a write finding four times the cap of backlog is evicted.
    assert_eq!(s.write(&[b'x'; 1]), WriteResult::Gone);
    drop(body);
    assert_eq!(*lock(&rec.ended), vec![(5, EndReason::SlowClient)]);
    // Only the largest big write is exempt: big writes in a row ignoring backpressure are
    // evicted as soon as the others make four times the cap.
    let (u, _u_body) = open(7, &rec);
    assert_eq!(u.write(&[b'x'; 1000]), WriteResult::Queued(1000));
    assert_eq!(u.write(&[b'x'; 1000]), WriteResult::Queued(2000));
    assert_eq!(u.write(&[b'x'; 1000]), WriteResult::Gone);
  }

  #[tokio::test(start_paused = true)]
  async fn heartbeats_fill_silence_only() {
    let every = Duration::from_secs(15);
    let s = Stream::new(5, true, ConnCtl::new(), limits());
    let t0 = Instant::now();
    assert!(!s.heartbeat_if_idle(every, t0 + Duration::from_secs(10)));
    assert!(s.heartbeat_if_idle(every, t0 + Duration::from_secs(15)));
    assert_eq!(s.queued(), 2);
    assert!(
      !s.heartbeat_if_idle(every, t0 + Duration::from_secs(40)),
      "not while bytes wait"
    );
    let rec = Recorder::default();
    let waker = std::task::Waker::noop();
    let mut cx = Context::from_waker(waker);
    tokio::time::advance(Duration::from_secs(20)).await;
    assert!(matches!(
      s.poll_take(&mut cx, &rec),
      Poll::Ready(Take::Data(_))
    ));
    let later = Instant::now();
    assert!(
      !s.heartbeat_if_idle(every, later),
      "taking the bytes counts as a write"
    );
    assert!(s.heartbeat_if_idle(every, later + every));
    assert!(s.finish(None));
    assert!(!s.heartbeat_if_idle(every, later + every * 3));
  }

  #[test]
  fn full_bodies_have_exact_size() {
    let b = ResBody::Full(Some(Bytes::from_static(b"hello")));
    assert_eq!(b.size_hint().exact(), Some(5));
    assert_eq!(ResBody::empty().size_hint().exact(), Some(0));
  }

  /// Counts how often it is woken, and on which thread.
  struct Counted {
    wakes: AtomicUsize,
    threads: Mutex<Vec<std::thread::ThreadId>>,
  }
  impl std::task::Wake for Counted {
    fn wake(self: Arc<Self>) {
      self.wake_by_ref();
    }
    fn wake_by_ref(self: &Arc<Self>) {
      self.wakes.fetch_add(1, Ordering::SeqCst);
      lock(&self.threads).push(std::thread::current().id());
    }
  }

  fn counted() -> Arc<Counted> {
    Arc::new(Counted {
      wakes: AtomicUsize::new(0),
      threads: Mutex::new(Vec::new()),
    })
  }

  #[test]
  fn the_pump_runs_handed_over_wakeups_on_its_runtime_and_never_loses_one() {
    let rt = tokio::runtime::Builder::new_current_thread()
      .build()
      .expect("runtime");
    let pump = Pump::new();
    let task = rt.spawn(pump.clone().run());
    let target = counted();
    defer_on_this_thread();
    run_or_defer(Deferred::Wake(Waker::from(target.clone())));
    run_or_defer(Deferred::Wake(Waker::from(target.clone())));
    assert_eq!(target.wakes.load(Ordering::SeqCst), 0, "deferred, not run");
    assert_eq!(flush_deferred(&pump), 2);
    assert_eq!(flush_deferred(&pump), 0, "nothing left behind");
    // Handed over but not yet run: the runtime has not been driven.
    assert_eq!(target.wakes.load(Ordering::SeqCst), 0);
    let runtime_thread = rt.block_on(async {
      tokio::task::yield_now().await;
      std::thread::current().id()
    });
    assert_eq!(target.wakes.load(Ordering::SeqCst), 2);
    assert!(lock(&target.threads).iter().all(|t| *t == runtime_thread));

    // Handed over, then the runtime goes away before running the pump: run when it is dropped.
    run_or_defer(Deferred::Wake(Waker::from(target.clone())));
    flush_deferred(&pump);
    drop(task);
    drop(rt);
    assert_eq!(target.wakes.load(Ordering::SeqCst), 3);
    // The pump is gone: what is handed over runs at once.
    run_or_defer(Deferred::Wake(Waker::from(target.clone())));
    flush_deferred(&pump);
    assert_eq!(target.wakes.load(Ordering::SeqCst), 4);
    DEFERS.with(|d| d.set(false));
  }
}
