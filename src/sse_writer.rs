//! Serves one SSE response on the raw socket, after hyper parsed its request.
//!
//! Owns the life of an SSE connection once the response starts: the response head, chunked
//! framing of the queued event bytes (one `writev` per batch, however many events were queued),
//! the write deadline, and disconnect detection by reading the socket
//! (FIN, RST, `ETIMEDOUT` from TCP_USER_TIMEOUT/keepalive). Leaving hyper for the stream releases
//! hyper's per-connection buffers, which is what keeps an idle stream small.
//!
//! The end of the stream is decided here, in one place ([`serve`]), and reported once through the
//! registry unless JS finished the stream itself. When JS finishes it on an HTTP/1.1 keep-alive
//! connection, the socket goes back to hyper for the next request.

use std::io::{self, IoSlice};
use std::sync::Arc;
use std::task::Poll;
use std::time::Duration;

use tokio::net::TcpStream;

use crate::request::Registry;
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
pub async fn serve_connection(
  sock: Arc<TcpStream>,
  shared: Arc<Shared>,
  ctl: Arc<ConnCtl>,
  conn_id: u64,
  t: Takeover,
) {
  let busy = crate::timer::Idle::busy(&ctl);
  let after = serve(&sock, &ctl, t, &shared.registry).await;
  drop(busy);
  // The peer address is read again (only when hyper takes the connection back) rather than kept
  // by every idle stream.
  if after == After::KeepAlive && !shared.is_graceful() {
    if let Ok(remote) = sock.peer_addr() {
      tokio::spawn(crate::server::serve_http(
        sock, remote, shared, ctl, conn_id,
      ));
      return;
    }
  }
  // The end is reported; the socket's teardown (kernel work, and for a FIN the closing handshake)
  // happens on the closer thread, so when many clients leave at once this thread goes on
  // reporting the others.
  shared.connection_closed(conn_id, sock);
}

/// Serves the stream until it ends; reports an end JS did not ask for.
pub async fn serve(
  sock: &TcpStream,
  ctl: &ConnCtl,
  mut t: Takeover,
  registry: &Arc<Registry>,
) -> After {
  let stream = t.stream.clone();
  let head = std::mem::take(&mut t.head);
  match run(sock, ctl, head, &t, registry).await {
    Ok(clean) => {
      stream.close_down();
      if clean && t.keep_alive && t.chunked {
        After::KeepAlive
      } else {
        After::Close
      }
    }
    Err(reason) => {
      ctl.set_reason(reason);
      if !stream.close_down() {
        registry.report_end(stream.id, ctl.reason());
      }
      After::Close
    }
  }
}

/// What woke an idle stream.
enum Wake {
  Killed,
  Take(Take),
  Readable,
}

/// Returns whether the connection is clean for another request (the client sent nothing meanwhile).
///
/// While idle, the only state held is this frame's few fields: the write path is boxed so its
/// (larger) state exists only while writing, and heartbeats come through the queue from the
/// server's one heartbeat task (see `server::heartbeats`), not from a timer per stream.
async fn run(
  sock: &TcpStream,
  ctl: &ConnCtl,
  head: Vec<u8>,
  t: &Takeover,
  registry: &Arc<Registry>,
) -> Result<bool, EndReason> {
  let stream: &Stream = &t.stream;
  let timeout = stream.limits.write_timeout;
  Box::pin(write_all(sock, ctl, &mut [IoSlice::new(&head)], timeout)).await?;
  drop(head);
  stream.touch();
  let mut clean = true;
  loop {
    let wake = std::future::poll_fn(|cx| {
      if ctl.poll_killed(cx).is_ready() {
        return Poll::Ready(Wake::Killed);
      }
      if let Poll::Ready(take) = stream.poll_take(cx, &**registry) {
        return Poll::Ready(Wake::Take(take));
      }
      if sock.poll_read_ready(cx).is_ready() {
        return Poll::Ready(Wake::Readable);
      }
      Poll::Pending
    })
    .await;
    match wake {
      Wake::Killed => return Err(ctl.reason()),
      Wake::Take(Take::Data(data)) => {
        Box::pin(write_data(sock, ctl, &data, t.chunked, timeout)).await?
      }
      Wake::Take(Take::End) => {
        if t.chunked {
          Box::pin(write_all(
            sock,
            ctl,
            &mut [IoSlice::new(b"0\r\n\r\n")],
            timeout,
          ))
          .await?;
        }
        return Ok(clean);
      }
      Wake::Take(Take::Gone) => return Err(ctl.reason()),
      Wake::Readable => {
        // The readiness already says whether the peer closed (EPOLLRDHUP/HUP): a FIN ends the
        // stream without a read. Errors (RST, ETIMEDOUT) are read below to learn which.
        // Boxed: the readiness future is large and only needed once, at the end; an idle stream
        // keeps its task small.
        if let Ok(ready) = Box::pin(sock.ready(tokio::io::Interest::READABLE)).await {
          if ready.is_read_closed() && !ready.is_error() {
            return Err(EndReason::Client);
          }
        }
        let mut scratch = [0u8; 64];
        match sock.try_read(&mut scratch) {
          // The client closed its side: with an event stream that means it left.
          Ok(0) => return Err(EndReason::Client),
          // A client does not send on an event stream; what it sends is discarded, and the
          // connection closes after the stream (a pipelined request cannot be served).
          Ok(_) => clean = false,
          Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
          Err(e) => return Err(EndReason::from_io(&e)),
        }
      }
    }
  }
}

#[cfg(test)]
mod tests {
  use super::chunk_size_line;

  #[test]
  fn chunk_size_lines_are_lowercase_hex_with_crlf() {
    let mut out = [0u8; 18];
    for len in [0usize, 1, 9, 10, 15, 16, 255, 4096, 1 << 20, usize::MAX] {
      let expected = format!("{len:x}\r\n");
      assert_eq!(chunk_size_line(len, &mut out), expected.as_bytes(), "{len}");
    }
  }
}
