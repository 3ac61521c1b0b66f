//! Native fan-out: SSE channels with history and `Last-Event-ID` replay.
//!
//! Owns the subscriber set of each channel, its bounded history, the assignment of event ids, and
//! the delivery of each event to every subscriber. A broadcast costs the JS thread one encode and
//! one queue push, whatever the number of subscribers: delivery runs on one fan-out thread, which
//! appends the encoded bytes (encoded once, shared) to every subscriber's stream queue.
//!
//! Ordering: every channel's events go through one process-wide queue, so a stream subscribed to
//! several channels receives events in the order JS sent them, and `unsubscribe`/`close` take
//! effect exactly between the events sent before and after them.
//!
//! Gap-free, duplicate-free replay: every event gets a sequence number. A subscriber records the
//! first sequence number it receives live (and, once unsubscribed, the first it no longer gets);
//! replay from history (done synchronously at subscribe, under the channel lock) covers everything
//! before it, the fan-out thread everything after.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, OnceLock};

use bytes::{Bytes, BytesMut};
use tokio::sync::Notify;

use crate::response::{lock, Stream, WriteResult};
use crate::server::Shared;
use crate::sse::{self, FieldError};

/// The event sent first to a subscriber whose `Last-Event-ID` is not in history.
pub const REPLAY_UNAVAILABLE: &str = "replay-unavailable";

#[derive(Clone)]
struct Sub {
  stream: Arc<Stream>,
  server: Arc<Shared>,
  /// First sequence number this subscriber gets from the fan-out thread.
  from_seq: u64,
  /// First sequence number it no longer gets (set by `unsubscribe`).
  until_seq: u64,
}

impl Sub {
  fn wants(&self, seq: u64) -> bool {
    seq >= self.from_seq && seq < self.until_seq
  }
}

struct Event {
  seq: u64,
  id: String,
  bytes: Bytes,
}

impl Event {
  /// Memory an event in history holds, about: its bytes, its id and the shared allocation.
  fn footprint(&self) -> usize {
    self.bytes.len() + self.id.len() + std::mem::size_of::<Event>() + 16
  }
}

struct State {
  /// Subscribers, including unsubscribed ones until the fan-out thread passed their `until_seq`.
  /// Shared so that a delivery takes the list without copying it (`Arc::make_mut` copies only if
  /// a delivery still holds it when the list changes).
  subs: Arc<Vec<Sub>>,
  history: VecDeque<Arc<Event>>,
  /// The [`Event::footprint`]s of `history`.
  history_bytes: usize,
  capacity: usize,
  next_seq: u64,
  next_auto_id: u64,
  closed: bool,
}

struct Inner {
  state: Mutex<State>,
}

/// What the fan-out thread does, in the order JS asked for it.
enum Job {
  Deliver(Arc<Inner>, Arc<Event>),
  /// End these streams (after everything queued before).
  Finish(Vec<Arc<Stream>>),
  /// A stream's own write from JS, kept in order with channel events.
  Write(Arc<Stream>, Bytes),
}

struct Fanout {
  jobs: Mutex<Vec<Job>>,
  ready: Notify,
}

fn fanout() -> &'static Fanout {
  static FANOUT: OnceLock<Fanout> = OnceLock::new();
  static RUNTIME: OnceLock<Option<tokio::runtime::Runtime>> = OnceLock::new();
  let f = FANOUT.get_or_init(|| Fanout {
    jobs: Mutex::new(Vec::new()),
    ready: Notify::new(),
  });
  RUNTIME.get_or_init(|| {
    let rt = tokio::runtime::Builder::new_multi_thread()
      .worker_threads(1)
      .thread_name("hyper-sse-fanout")
      .build()
      .ok()?;
    rt.spawn(fanout_task(f));
    Some(rt)
  });
  f
}

fn push_jobs(jobs: impl IntoIterator<Item = Job>) {
  let f = fanout();
  let mut q = lock(&f.jobs);
  let first = q.is_empty();
  q.extend(jobs);
  drop(q);
  if first {
    f.ready.notify_one();
  }
}

/// Queues a stream's own write behind the channel events sent before it (see `Stream::write_js`).
pub fn queue_write(stream: Arc<Stream>, bytes: Bytes) {
  push_jobs([Job::Write(stream, bytes)]);
}

/// Ends a stream behind the channel events sent before (see `Stream::finish_js`).
pub fn queue_finish(stream: Arc<Stream>) {
  push_jobs([Job::Finish(vec![stream])]);
}

/// A broadcast channel.
pub struct Channel {
  inner: Arc<Inner>,
}

/// What `subscribe` did.
#[derive(Debug, PartialEq, Eq)]
pub enum Subscribed {
  /// Subscribed; this many events were replayed.
  Replayed(usize),
  /// The `Last-Event-ID` is not in history: `replay-unavailable` and the whole history were sent.
  Unavailable(usize),
  /// Already a subscriber: nothing changed.
  Already,
  /// The stream has ended, or the channel is closed.
  Gone,
}

impl Channel {
  /// A channel keeping the last `history` events for replay.
  pub fn new(history: usize) -> Channel {
    fanout();
    Channel {
      inner: Arc::new(Inner {
        state: Mutex::new(State {
          subs: Arc::new(Vec::new()),
          history: VecDeque::new(),
          history_bytes: 0,
          capacity: history,
          next_seq: 1,
          next_auto_id: 1,
          closed: false,
        }),
      }),
    }
  }

  /// Adds `stream` (owned by `server`). Replays the events after `last_event_id` first.
  pub fn subscribe(
    &self,
    server: Arc<Shared>,
    stream: Arc<Stream>,
    last_event_id: Option<&str>,
  ) -> Subscribed {
    let mut st = lock(&self.inner.state);
    if st.closed || !stream.is_open() {
      return Subscribed::Gone;
    }
    if st
      .subs
      .iter()
      .any(|s| s.stream.id == stream.id && s.until_seq == u64::MAX)
    {
      return Subscribed::Already;
    }
    let mut outcome = Subscribed::Replayed(0);
    if let Some(last) = last_event_id.filter(|l| !l.is_empty()) {
      // The latest event with that id: an app that reuses an id gets no duplicate replayed to a
      // client that saw its latest use.
      let pos = st.history.iter().rposition(|e| e.id == last);
      let unavailable = pos.is_none();
      let replay: Vec<Arc<Event>> = st
        .history
        .iter()
        .skip(pos.map_or(0, |p| p + 1))
        .cloned()
        .collect();
      let n = replay.len();
      let res = stream.write_with(|buf| {
        if unavailable {
          let data = format!("{{\"requested\":{}}}", json_string(last));
          let _ = sse::encode_message_into(buf, None, Some(REPLAY_UNAVAILABLE), &data);
        }
        for e in &replay {
          buf.extend_from_slice(&e.bytes);
        }
      });
      if res == WriteResult::Gone {
        return Subscribed::Gone;
      }
      outcome = if unavailable {
        Subscribed::Unavailable(n)
      } else {
        Subscribed::Replayed(n)
      };
    }
    // From now on the stream's own writes from JS keep their order with this channel's events.
    stream
      .fanned
      .store(true, std::sync::atomic::Ordering::Release);
    let from_seq = st.next_seq;
    Arc::make_mut(&mut st.subs).push(Sub {
      stream,
      server,
      from_seq,
      until_seq: u64::MAX,
    });
    outcome
  }

  /// Stops delivery to the stream with request id `id` (events sent before still arrive).
  /// `false` if it was not subscribed.
  pub fn unsubscribe(&self, id: u64) -> bool {
    let mut st = lock(&self.inner.state);
    let next = st.next_seq;
    let mut found = false;
    for s in Arc::make_mut(&mut st.subs)
      .iter_mut()
      .filter(|s| s.stream.id == id && s.until_seq == u64::MAX)
    {
      s.until_seq = next;
      found = true;
    }
    found
  }

  /// Broadcasts one event; returns its id (assigned `1`, `2`, ... when `id` is `None`).
  ///
  /// # Errors
  /// [`FieldError`] when `id` or `event` is invalid; nothing is sent.
  pub fn send(
    &self,
    id: Option<&str>,
    event: Option<&str>,
    data: &str,
  ) -> Result<String, FieldError> {
    sse::validate(id, event)?;
    let mut st = lock(&self.inner.state);
    let id = match id {
      Some(id) => id.to_string(),
      None => {
        let n = st.next_auto_id;
        st.next_auto_id += 1;
        n.to_string()
      }
    };
    if st.closed {
      return Ok(id);
    }
    let bytes = sse::encode_message(Some(&id), event, data)?;
    let seq = st.next_seq;
    st.next_seq += 1;
    let ev = Arc::new(Event {
      seq,
      id: id.clone(),
      bytes,
    });
    if st.capacity > 0 {
      if st.history.len() == st.capacity {
        if let Some(old) = st.history.pop_front() {
          st.history_bytes -= old.footprint();
        }
      }
      st.history_bytes += ev.footprint();
      st.history.push_back(ev.clone());
    }
    drop(st);
    push_jobs([Job::Deliver(self.inner.clone(), ev)]);
    Ok(id)
  }

  /// Memory the history holds, about (reported to V8 as external memory by the bridge).
  pub fn history_bytes(&self) -> usize {
    lock(&self.inner.state).history_bytes
  }

  /// Live subscribers (ended or unsubscribed streams are not counted).
  pub fn size(&self) -> usize {
    let mut st = lock(&self.inner.state);
    Arc::make_mut(&mut st.subs).retain(|s| s.stream.is_open());
    st.subs.iter().filter(|s| s.until_seq == u64::MAX).count()
  }

  /// Ends every subscribed stream from the server side, after the events already sent. Returns
  /// the request ids of the streams it completed (JS emits their `finish`, `close`).
  pub fn close(&self) -> Vec<u64> {
    let mut st = lock(&self.inner.state);
    st.closed = true;
    // Nothing can be replayed any more (subscribe refuses): the history's memory goes now, not
    // when the garbage collector finalizes the JS object (it does not see this memory).
    st.history = VecDeque::new();
    st.history_bytes = 0;
    let next = st.next_seq;
    let mut ids = Vec::new();
    let mut ending = Vec::new();
    for s in Arc::make_mut(&mut st.subs)
      .iter_mut()
      .filter(|s| s.until_seq == u64::MAX)
    {
      s.until_seq = next;
      if s.server.complete_by_server(&s.stream) {
        ids.push(s.stream.id);
        ending.push(s.stream.clone());
      }
    }
    drop(st);
    if !ending.is_empty() {
      push_jobs([Job::Finish(ending)]);
    }
    ids
  }
}

/// Delivers a run of events of one channel: one queue write per subscriber for the whole run.
fn deliver(inner: &Inner, run: &[Arc<Event>]) {
  let subs = {
    let mut st = lock(&inner.state);
    // Unsubscribed streams whose last event is delivered can go.
    Arc::make_mut(&mut st.subs).retain(|s| s.until_seq > run[0].seq && s.stream.is_open());
    st.subs.clone()
  };
  for sub in subs.iter() {
    if !run.iter().any(|e| sub.wants(e.seq)) {
      continue;
    }
    sub.stream.write_with(|buf: &mut BytesMut| {
      for e in run.iter().filter(|e| sub.wants(e.seq)) {
        buf.extend_from_slice(&e.bytes);
      }
    });
  }
}

fn run_jobs(jobs: Vec<Job>) {
  let mut i = 0;
  while i < jobs.len() {
    match &jobs[i] {
      Job::Deliver(inner, _) => {
        let mut run = Vec::new();
        while let Some(Job::Deliver(other, ev)) = jobs.get(i) {
          if !Arc::ptr_eq(other, inner) {
            break;
          }
          run.push(ev.clone());
          i += 1;
        }
        deliver(inner, &run);
      }
      Job::Finish(streams) => {
        for s in streams {
          s.finish(None);
        }
        i += 1;
      }
      Job::Write(stream, bytes) => {
        stream.write(bytes);
        i += 1;
      }
    }
  }
}

async fn fanout_task(f: &'static Fanout) {
  loop {
    f.ready.notified().await;
    loop {
      let jobs = std::mem::take(&mut *lock(&f.jobs));
      if jobs.is_empty() {
        break;
      }
      run_jobs(jobs);
    }
  }
}

/// A JSON string literal for `s`.
fn json_string(s: &str) -> String {
  let mut out = String::with_capacity(s.len() + 2);
  out.push('"');
  for c in s.chars() {
    match c {
      '"' => out.push_str("\\\""),
      '\\' => out.push_str("\\\\"),
      c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
      c => out.push(c),
    }
  }
  out.push('"');
  out
}

#[cfg(test)]
mod tests {
  use super::*;

  #[test]
  fn close_lets_the_history_go() {
    let ch = Channel::new(10);
    for i in 0..5 {
      ch.send(None, None, &format!("event {i}")).unwrap();
    }
    assert_eq!(lock(&ch.inner.state).history.len(), 5);
    let five = ch.history_bytes();
    assert!(five >= 5 * "event 0".len());
    // Full: each new event replaces the oldest, and the count follows.
    for i in 5..20 {
      ch.send(None, None, &format!("event {i}")).unwrap();
    }
    assert_eq!(lock(&ch.inner.state).history.len(), 10);
    let ten: usize = lock(&ch.inner.state)
      .history
      .iter()
      .map(|e| e.footprint())
      .sum();
    assert_eq!(ch.history_bytes(), ten);
    assert!(ch.close().is_empty());
    assert_eq!(ch.history_bytes(), 0);
    assert_eq!(lock(&ch.inner.state).history.len(), 0);
    assert_eq!(lock(&ch.inner.state).history.capacity(), 0);
  }

  #[test]
  fn json_strings_are_escaped() {
    assert_eq!(json_string("a\"b\\c\u{1}"), "\"a\\\"b\\\\c\\u0001\"");
  }
}
