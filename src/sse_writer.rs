//! Serves one SSE response on the raw socket, after hyper parsed its request.
//!
//! Owns the life of an SSE connection once the response starts: the response head, chunked
//! framing of the queued event bytes (one `send` per batch, however many events were queued),
//! the write deadline, and disconnect detection by reading the socket
//! (FIN, RST, `ETIMEDOUT` from TCP_USER_TIMEOUT/keepalive). Leaving hyper for the stream releases
//! hyper's per-connection buffers, which is what keeps an idle stream small.
//!
//! The end of the stream is decided here, in one place ([`SseConnection::finish`]), and reported once through the
//! registry unless JS finished the stream itself. When JS finishes it on an HTTP/1.1 keep-alive
//! connection, the socket goes back to hyper for the next request.

use std::future::Future;
use std::io::{self, IoSlice};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::net::TcpStream;

use crate::response::{ConnCtl, EndReason, Stream, Take, Takeover};
use crate::server::Shared;

/// How a served stream left the connection.
#[derive(Debug, PartialEq, Eq)]
pub enum After {
  /// JS finished the stream; the connection can serve another request.
  KeepAlive,
  /// The connection must close.
  Close,
}

/// Writes all of `bufs` under the write deadline (see [`crate::server::poll_write_timed`]). Fails
/// with the end reason when the socket errors, makes no progress for `timeout`, or the
/// connection is killed.
async fn write_all(
  sock: &TcpStream,
  ctl: &ConnCtl,
  bufs: &mut [IoSlice<'_>],
  timeout: Option<Duration>,
) -> Result<(), EndReason> {
  let mut bufs = bufs;
  let mut stall = None;
  while !bufs.is_empty() {
    let written = std::future::poll_fn(|cx| {
      if ctl.poll_killed(cx).is_ready() {
        return Poll::Ready(None);
      }
      crate::server::poll_write_timed(sock, ctl, timeout, &mut stall, cx, |s| {
        crate::server::sock_send(s, bufs)
      })
      .map(Some)
    })
    .await;
    match written {
      None => return Err(ctl.reason()),
      Some(Ok(0)) => return Err(EndReason::Client),
      Some(Ok(n)) => IoSlice::advance_slices(&mut bufs, n),
      Some(Err(e)) => return Err(EndReason::from_io(&e)),
    }
  }
  Ok(())
}

/// Frames `data` as one HTTP chunk (or raw, for a close-delimited HTTP/1.0 body) and writes it.
async fn write_data(
  sock: &TcpStream,
  ctl: &ConnCtl,
  data: &[u8],
  chunked: bool,
  timeout: Option<Duration>,
) -> Result<(), EndReason> {
  if !chunked {
    return write_all(sock, ctl, &mut [IoSlice::new(data)], timeout).await;
  }
  let mut size = [0u8; 18];
  let size = chunk_size_line(data.len(), &mut size);
  let mut bufs = [
    IoSlice::new(size),
    IoSlice::new(data),
    IoSlice::new(b"\r\n"),
  ];
  write_all(sock, ctl, &mut bufs, timeout).await
}

/// `<len in hex>\r\n`, the line that opens an HTTP chunk, written into `out` (no allocation).
fn chunk_size_line(len: usize, out: &mut [u8; 18]) -> &[u8] {
  const HEX: &[u8; 16] = b"0123456789abcdef";
  let mut at = 16;
  let mut n = len;
  loop {
    at -= 1;
    out[at] = HEX[n & 0xf];
    n >>= 4;
    if n == 0 {
      break;
    }
  }
  out[16] = b'\r';
  out[17] = b'\n';
  &out[at..]
}

/// One connection while an SSE stream is served on it; back to hyper afterwards when it can.
///
/// A hand-written future rather than an `async fn`: an idle stream is this struct and nothing
/// else (72 bytes, so tokio's task for it is 256 bytes; the `async fn` it replaced nested three
/// frames and made a 640-byte task). The one operation in progress (a write, or the probe of
/// a readable socket) is boxed and exists only while it runs.
pub struct SseConnection {
  /// `None` once the connection was handed on (back to hyper, or to the closer).
  sock: Option<Arc<TcpStream>>,
  shared: Arc<Shared>,
  ctl: Arc<ConnCtl>,
  stream: Arc<Stream>,
  conn_id: u64,
  /// Keeps the connection counted busy (never parked, never closed as idle) while served.
  busy: Option<crate::timer::Busy>,
  op: Option<Op>,
  /// HTTP/1.1: chunked framing; HTTP/1.0: close-delimited body.
  chunked: bool,
  keep_alive: bool,
  /// `op` writes the last chunk: the stream is over when it completes.
  ending: bool,
  /// `op` writes the response head.
  head: bool,
  /// Bytes the client sent during the stream, discarded (see [`MAX_DISCARDED`]); with none, the
  /// connection is clean for another request.
  discarded: u32,
  /// When the stream started, in whole seconds of the server's coarse clock: a stream younger
  /// than the write timeout cannot have timed out (see `probe_op`).
  started_s: u32,
}

/// Whether a stream started at `started_s` (coarse clock seconds) is old enough for the kernel
/// to have given up on its peer: the write timeout (TCP_USER_TIMEOUT, keepalive) has passed
/// since, counting one second more for the clock's coarseness. Never without a write timeout.
fn may_have_timed_out(shared: &Shared, started_s: u32) -> bool {
  let Some(timeout) = shared.cfg.write_timeout else {
    return false;
  };
  let age_s = u64::from(clock_s(shared).wrapping_sub(started_s));
  (age_s + 1).saturating_mul(1000) >= timeout.as_millis() as u64
}

/// The server's coarse clock in whole seconds.
fn clock_s(shared: &Shared) -> u32 {
  (shared.clock.now_ms() / 1000) as u32
}

/// What an idle stream does next.
enum Step {
  Run(Op),
  /// The stream is over (JS ended a close-delimited HTTP/1.0 body: nothing to write).
  End,
}

/// A write, or the probe of a readable socket: `Ok(n)` with the bytes the client sent (0 for a
/// write).
type Op = Pin<Box<dyn Future<Output = Result<usize, EndReason>> + Send>>;

/// Bytes a client may send on an event stream (discarded) before the stream is ended as if the
/// client had left: an EventSource sends nothing, a pipelined request is small.
const MAX_DISCARDED: u32 = 1 << 20;

impl SseConnection {
  pub fn new(
    sock: Arc<TcpStream>,
    shared: Arc<Shared>,
    ctl: Arc<ConnCtl>,
    conn_id: u64,
    t: Takeover,
    unread: usize,
  ) -> SseConnection {
    let Takeover {
      head,
      stream,
      chunked,
      keep_alive,
    } = t;
    let started_s = clock_s(&shared);
    let mut conn = SseConnection {
      busy: Some(crate::timer::Idle::busy(&ctl)),
      sock: Some(sock),
      shared,
      ctl,
      stream,
      conn_id,
      op: None,
      chunked,
      keep_alive,
      ending: false,
      head: true,
      // Bytes already read past the request (pipelined behind it): discarded like the ones the
      // client sends later, so the connection closes after the stream.
      discarded: u32::try_from(unread).unwrap_or(u32::MAX),
      started_s,
    };
    conn.op = conn.write_op(head, false);
    conn
  }

  /// A boxed write of `data` (framed as a chunk when `frame`), owning what it needs.
  fn write_op(&self, data: impl AsRef<[u8]> + Send + 'static, frame: bool) -> Option<Op> {
    let sock = self.sock.clone()?;
    let ctl = self.ctl.clone();
    let timeout = self.stream.limits.write_timeout;
    let chunked = frame && self.chunked;
    Some(Box::pin(async move {
      write_data(&sock, &ctl, data.as_ref(), chunked, timeout).await?;
      Ok(0)
    }))
  }

  /// Reads what woke a readable socket: the end of the stream (FIN, RST, timeout), or bytes the
  /// client sent (discarded; the connection then closes after the stream).
  fn probe_op(&self) -> Option<Op> {
    let sock = self.sock.clone()?;
    let shared = self.shared.clone();
    let ctl = self.ctl.clone();
    let started_s = self.started_s;
    Some(Box::pin(async move {
      // The readiness already says whether the connection ended (EPOLLRDHUP/HUP), without a
      // read: a FIN, a reset, or the kernel giving up on a peer that stopped acknowledging
      // (TCP_USER_TIMEOUT, keepalive). The socket's pending error tells which: ETIMEDOUT is a
      // dead peer (`timeout`), none or another one a client that left. (The readiness itself
      // does not carry the error bit: it is masked out for a READABLE interest.) Both timeouts
      // need the peer silent for the write timeout, so a younger stream skips that system call:
      // thousands of resets at once (clients or a proxy restarting) cost no extra call each.
      // The error readiness (EPOLLERR) tells a reset from a FIN at no cost.
      let interest = tokio::io::Interest::READABLE | tokio::io::Interest::ERROR;
      if let Ok(ready) = sock.ready(interest).await {
        if ready.is_error() {
          ctl.set_errored();
        }
        if ready.is_read_closed() || ready.is_error() {
          let error = if may_have_timed_out(&shared, started_s) {
            sock.take_error().ok().flatten()
          } else {
            None
          };
          return Err(error.map_or(EndReason::Client, |e| EndReason::from_io(&e)));
        }
      }
      // A client does not send on an event stream; what it sends is discarded (a bounded number
      // of reads per wake-up, at most `MAX_DISCARDED` bytes per stream), and the connection
      // closes after the stream (a pipelined request cannot be served).
      let mut scratch = [0u8; 256];
      let mut sent = 0;
      for _ in 0..64 {
        match sock.try_read(&mut scratch) {
          // The client closed its side: with an event stream that means it left.
          Ok(0) => return Err(EndReason::Client),
          Ok(n) => sent += n,
          Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
          Err(e) => return Err(EndReason::from_io(&e)),
        }
      }
      Ok(sent)
    }))
  }

  /// The next step of an idle stream, or `Pending` with every wake-up registered.
  fn poll_idle(&mut self, cx: &mut Context<'_>) -> Poll<Result<Step, EndReason>> {
    if self.ctl.poll_killed(cx).is_ready() {
      return Poll::Ready(Err(self.ctl.reason()));
    }
    let op = match self.stream.poll_take(cx, &*self.shared.registry) {
      Poll::Ready(Take::Data(data)) => self.write_op(data, true),
      Poll::Ready(Take::End) => {
        self.ending = true;
        if !self.chunked {
          return Poll::Ready(Ok(Step::End));
        }
        self.write_op(b"0\r\n\r\n", false)
      }
      Poll::Ready(Take::Gone) => return Poll::Ready(Err(self.ctl.reason())),
      Poll::Pending => match &self.sock {
        Some(sock) if sock.poll_read_ready(cx).is_ready() => self.probe_op(),
        _ => return Poll::Pending,
      },
    };
    // No operation only without a socket (the connection was handed on): ends like a kill.
    Poll::Ready(op.map(Step::Run).ok_or_else(|| self.ctl.reason()))
  }

  /// The stream ended (`Ok(())` when JS finished it): reports an end JS did not ask for, then
  /// hands the connection back to hyper when it can serve another request, else to the closer.
  fn finish(&mut self, result: Result<(), EndReason>) -> Poll<()> {
    self.op = None;
    let keep = match result {
      Ok(()) => {
        self.stream.close_down();
        self.discarded == 0 && self.keep_alive && self.chunked
      }
      Err(reason) => {
        self.ctl.set_reason(reason);
        if !self.stream.close_down() {
          self
            .shared
            .registry
            .report_end(self.stream.id, self.ctl.reason());
        }
        false
      }
    };
    self.busy = None;
    let Some(sock) = self.sock.take() else {
      return Poll::Ready(());
    };
    // The peer address is read again (only when hyper takes the connection back) rather than
    // kept by every idle stream.
    if keep && !self.shared.is_graceful() {
      if let Ok(remote) = sock.peer_addr() {
        tokio::spawn(crate::server::serve_http(
          sock,
          remote,
          self.shared.clone(),
          self.ctl.clone(),
          self.conn_id,
        ));
        return Poll::Ready(());
      }
    }
    // The end is reported; the socket's teardown (kernel work, and for a FIN the closing
    // handshake) happens on the closer thread, so when many clients leave at once this thread
    // goes on reporting the others.
    self
      .shared
      .connection_closed(self.conn_id, sock, self.ctl.is_errored());
    Poll::Ready(())
  }
}

impl Future for SseConnection {
  type Output = ();

  fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
    let this = self.get_mut();
    if this.sock.is_none() {
      return Poll::Ready(());
    }
    loop {
      if let Some(op) = &mut this.op {
        let received = match op.as_mut().poll(cx) {
          Poll::Pending => return Poll::Pending,
          Poll::Ready(Err(reason)) => return this.finish(Err(reason)),
          Poll::Ready(Ok(received)) => received,
        };
        this.op = None;
        let received = u32::try_from(received).unwrap_or(u32::MAX);
        this.discarded = this.discarded.saturating_add(received);
        if this.discarded > MAX_DISCARDED {
          return this.finish(Err(EndReason::Client));
        }
        if std::mem::take(&mut this.head) {
          this.stream.touch();
        }
        if this.ending {
          return this.finish(Ok(()));
        }
      }
      match this.poll_idle(cx) {
        Poll::Pending => return Poll::Pending,
        Poll::Ready(Ok(Step::Run(op))) => this.op = Some(op),
        Poll::Ready(Ok(Step::End)) => return this.finish(Ok(())),
        Poll::Ready(Err(reason)) => return this.finish(Err(reason)),
      }
    }
  }
}

#[cfg(test)]
mod tests {
  use super::{chunk_size_line, SseConnection};

  #[test]
  fn an_idle_stream_task_stays_small() {
    // What an idle stream costs in its task: tokio's task cell around this future is 128-byte
    // aligned, so up to ~120 bytes here keep the cell at 256 bytes (the `async fn` before was
    // 480 bytes, a 640-byte cell).
    let size = std::mem::size_of::<SseConnection>();
    assert!(size <= 96, "SseConnection is {size} bytes");
  }

  #[test]
  fn chunk_size_lines_are_lowercase_hex_with_crlf() {
    let mut out = [0u8; 18];
    for len in [0usize, 1, 9, 10, 15, 16, 255, 4096, 1 << 20, usize::MAX] {
      let expected = format!("{len:x}\r\n");
      assert_eq!(chunk_size_line(len, &mut out), expected.as_bytes(), "{len}");
    }
  }
}
