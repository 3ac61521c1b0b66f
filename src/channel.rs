//! Native fan-out: SSE channels with history and `Last-Event-ID` replay.
//!
//! Owns the subscriber set of a channel, its bounded history, the assignment of event ids, and the
//! delivery of each event to every subscriber. A broadcast costs the JS thread one encode and one
//! queue push, whatever the number of subscribers: delivery runs on a fan-out thread, which writes
//! the encoded bytes (shared, not copied per encode) into every subscriber's stream queue.
//!
//! Gap-free, duplicate-free replay: every event gets a sequence number. A subscriber records the
//! first sequence number it receives live; replay from history (done synchronously at subscribe,
//! under the channel lock) covers everything before it, the fan-out thread everything after.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use bytes::{Bytes, BytesMut};
use tokio::sync::Notify;

use crate::response::{lock, Stream, WriteResult};
use crate::server::Shared;
use crate::sse::{self, FieldError};

/// The event sent first to a subscriber whose `Last-Event-ID` is not in history.
pub const REPLAY_UNAVAILABLE: &str = "replay-unavailable";

struct Sub {
  stream: Arc<Stream>,
  server: Arc<Shared>,
  /// First sequence number this subscriber gets from the fan-out thread.
  from_seq: u64,
}

struct Event {
  seq: u64,
  id: String,
  bytes: Bytes,
}

struct State {
  subs: Vec<Sub>,
  history: VecDeque<Arc<Event>>,
  capacity: usize,
  /// Sent, not yet delivered by the fan-out thread.
  outbox: Vec<Arc<Event>>,
  next_seq: u64,
  next_auto_id: u64,
  closed: bool,
}

struct Inner {
  state: Mutex<State>,
  /// Held while delivering, so `close` never overtakes a batch in flight.
  delivering: Mutex<()>,
  wake: Notify,
  dropped: AtomicBool,
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
  /// The stream has ended.
  Gone,
}

fn fanout_runtime() -> Option<&'static tokio::runtime::Runtime> {
  static RT: OnceLock<Option<tokio::runtime::Runtime>> = OnceLock::new();
  RT.get_or_init(|| {
    tokio::runtime::Builder::new_multi_thread()
      .worker_threads(1)
      .thread_name("hyper-sse-fanout")
      .build()
      .ok()
  })
  .as_ref()
}

impl Channel {
  /// A channel keeping the last `history` events for replay.
  pub fn new(history: usize) -> Channel {
    let inner = Arc::new(Inner {
      state: Mutex::new(State {
        subs: Vec::new(),
        history: VecDeque::new(),
        capacity: history,
        outbox: Vec::new(),
        next_seq: 1,
        next_auto_id: 1,
        closed: false,
      }),
      delivering: Mutex::new(()),
      wake: Notify::new(),
      dropped: AtomicBool::new(false),
    });
    if let Some(rt) = fanout_runtime() {
      rt.spawn(fanout_task(inner.clone()));
    }
    Channel { inner }
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
    if st.subs.iter().any(|s| s.stream.id == stream.id) {
      return Subscribed::Already;
    }
    let mut outcome = Subscribed::Replayed(0);
    if let Some(last) = last_event_id.filter(|l| !l.is_empty()) {
      let pos = st.history.iter().position(|e| e.id == last);
      let (replay, unavailable): (Vec<Arc<Event>>, bool) = match pos {
        Some(p) => (st.history.iter().skip(p + 1).cloned().collect(), false),
        None => (st.history.iter().cloned().collect(), true),
      };
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
    let from_seq = st.next_seq;
    st.subs.push(Sub {
      stream,
      server,
      from_seq,
    });
    outcome
  }

  /// Removes the stream with request id `id`. `false` if it was not subscribed.
  pub fn unsubscribe(&self, id: u64) -> bool {
    let mut st = lock(&self.inner.state);
    let before = st.subs.len();
    st.subs.retain(|s| s.stream.id != id);
    st.subs.len() != before
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
    let bytes = sse::encode_message(Some(&id), event, data)?;
    if st.closed {
      return Ok(id);
    }
    let seq = st.next_seq;
    st.next_seq += 1;
    let ev = Arc::new(Event {
      seq,
      id: id.clone(),
      bytes,
    });
    if st.capacity > 0 {
      if st.history.len() == st.capacity {
        st.history.pop_front();
      }
      st.history.push_back(ev.clone());
    }
    let first = st.outbox.is_empty();
    st.outbox.push(ev);
    drop(st);
    if first {
      self.inner.wake.notify_one();
    }
    Ok(id)
  }

  /// Live subscribers (ended streams are pruned).
  pub fn size(&self) -> usize {
    let mut st = lock(&self.inner.state);
    st.subs.retain(|s| s.stream.is_open());
    st.subs.len()
  }

  /// Delivers what is pending, then ends every subscribed stream from the server side.
  /// Returns the request ids of the streams it ended.
  pub fn close(&self) -> Vec<u64> {
    let _delivering = lock(&self.inner.delivering);
    let (batch, subs) = {
      let mut st = lock(&self.inner.state);
      st.closed = true;
      (std::mem::take(&mut st.outbox), std::mem::take(&mut st.subs))
    };
    deliver(&batch, &subs);
    subs
      .iter()
      .filter(|s| s.server.end_stream_by_server(&s.stream))
      .map(|s| s.stream.id)
      .collect()
  }
}

impl Drop for Channel {
  fn drop(&mut self) {
    self.inner.dropped.store(true, Ordering::Release);
    self.inner.wake.notify_one();
  }
}

/// Writes each event of `batch` to every subscriber that should get it, one queue write per
/// subscriber per batch.
fn deliver(batch: &[Arc<Event>], subs: &[Sub]) {
  if batch.is_empty() {
    return;
  }
  let single = batch.len() == 1;
  for sub in subs {
    if single {
      if batch[0].seq >= sub.from_seq {
        sub.stream.write(&batch[0].bytes);
      }
      continue;
    }
    sub.stream.write_with(|buf: &mut BytesMut| {
      for e in batch.iter().filter(|e| e.seq >= sub.from_seq) {
        buf.extend_from_slice(&e.bytes);
      }
    });
  }
}

async fn fanout_task(inner: Arc<Inner>) {
  loop {
    inner.wake.notified().await;
    if inner.dropped.load(Ordering::Acquire) {
      return;
    }
    let _delivering = lock(&inner.delivering);
    let (batch, subs) = {
      let mut st = lock(&inner.state);
      let batch = std::mem::take(&mut st.outbox);
      let subs: Vec<Sub> = st
        .subs
        .iter()
        .map(|s| Sub {
          stream: s.stream.clone(),
          server: s.server.clone(),
          from_seq: s.from_seq,
        })
        .collect();
      (batch, subs)
    };
    deliver(&batch, &subs);
    drop(subs);
    let mut st = lock(&inner.state);
    st.subs.retain(|s| s.stream.is_open());
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
  fn json_strings_are_escaped() {
    assert_eq!(json_string("a\"b\\c\u{1}"), "\"a\\\"b\\\\c\\u0001\"");
  }
}
