//! The Server-Sent Events encoder: strings in, bytes out.
//!
//! Owns the wire format of one SSE message (`id`, `event`, `data`, `retry`, comments) and the
//! validation of its fields, following the WHATWG "Server-sent events" section. It does no I/O and
//! knows nothing about responses, sockets or Node; `response.rs` queues what it produces.
//!
//! Single-line output is byte-identical to Hyper-Express 6.14.12 (`field: value\n`, message ended by
//! a blank line). Multi-line data is split at CRLF, CR or LF into several `data:` lines, so the
//! browser sees the same string; nothing else is trimmed or rewritten.

use bytes::{BufMut, Bytes, BytesMut};

/// Why a field was refused. Nothing is encoded when a field is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldError {
  /// `event` contains CR or LF: it would inject other fields.
  Event,
  /// `id` contains CR, LF or NUL (browsers ignore ids with NUL).
  Id,
}

impl FieldError {
  /// The message JS shows, after the `ERR_SSE_INVALID_FIELD` code.
  pub fn message(self) -> &'static str {
    match self {
      FieldError::Event => "SSE event name must not contain CR or LF",
      FieldError::Id => "SSE id must not contain CR, LF or NUL",
    }
  }
}

fn has_line_break(s: &str) -> bool {
  s.bytes().any(|b| b == b'\r' || b == b'\n')
}

/// Checks the `id` and `event` fields of a message.
///
/// # Errors
/// [`FieldError`] when a field would break the stream's framing.
pub fn validate(id: Option<&str>, event: Option<&str>) -> Result<(), FieldError> {
  if let Some(event) = event {
    if has_line_break(event) {
      return Err(FieldError::Event);
    }
  }
  if let Some(id) = id {
    if has_line_break(id) || id.bytes().any(|b| b == 0) {
      return Err(FieldError::Id);
    }
  }
  Ok(())
}

/// Appends `data: <line>\n` for every line of `data` (split at CRLF, CR or LF).
/// Empty data gives one `data:\n` line, so the event is still dispatched with `""`.
fn put_data(out: &mut BytesMut, data: &str) {
  let bytes = data.as_bytes();
  let mut start = 0;
  let mut i = 0;
  while i < bytes.len() {
    match bytes[i] {
      b'\r' => {
        put_field(out, b"data", &bytes[start..i]);
        i += if bytes.get(i + 1) == Some(&b'\n') {
          2
        } else {
          1
        };
        start = i;
      }
      b'\n' => {
        put_field(out, b"data", &bytes[start..i]);
        i += 1;
        start = i;
      }
      _ => i += 1,
    }
  }
  put_field(out, b"data", &bytes[start..]);
}

/// Appends `name: value\n`, or `name:\n` when the value is empty (no trailing space).
fn put_field(out: &mut BytesMut, name: &[u8], value: &[u8]) {
  out.reserve(name.len() + value.len() + 3);
  out.put_slice(name);
  if value.is_empty() {
    out.put_slice(b":\n");
    return;
  }
  out.put_slice(b": ");
  out.put_slice(value);
  out.put_u8(b'\n');
}

/// Encodes one message into `out`: `id: ..\nevent: ..\ndata: ..\n\n`.
/// `None` fields are omitted; data is always written.
///
/// # Errors
/// [`FieldError`] when `id` or `event` is invalid; `out` is left untouched then.
pub fn encode_message_into(
  out: &mut BytesMut,
  id: Option<&str>,
  event: Option<&str>,
  data: &str,
) -> Result<(), FieldError> {
  validate(id, event)?;
  out.reserve(data.len() + 16 + id.map_or(0, |s| s.len() + 5) + event.map_or(0, |s| s.len() + 8));
  if let Some(id) = id {
    put_field(out, b"id", id.as_bytes());
  }
  if let Some(event) = event {
    put_field(out, b"event", event.as_bytes());
  }
  put_data(out, data);
  out.put_u8(b'\n');
  Ok(())
}

/// Encodes one message into its own buffer (used for fan-out: encode once, share the bytes).
///
/// # Errors
/// See [`encode_message_into`].
pub fn encode_message(
  id: Option<&str>,
  event: Option<&str>,
  data: &str,
) -> Result<Bytes, FieldError> {
  let mut out = BytesMut::new();
  encode_message_into(&mut out, id, event, data)?;
  Ok(out.freeze())
}

/// Encodes a comment. Every line gets its own `: ` prefix; `None` gives a bare `:` line.
pub fn encode_comment_into(out: &mut BytesMut, text: Option<&str>) {
  let Some(text) = text else {
    out.put_slice(b":\n");
    return;
  };
  let bytes = text.as_bytes();
  let mut start = 0;
  let mut i = 0;
  while i < bytes.len() {
    let brk = match bytes[i] {
      b'\r' if bytes.get(i + 1) == Some(&b'\n') => 2,
      b'\r' | b'\n' => 1,
      _ => 0,
    };
    if brk == 0 {
      i += 1;
      continue;
    }
    put_field(out, b"", &bytes[start..i]);
    i += brk;
    start = i;
  }
  put_field(out, b"", &bytes[start..]);
}

/// Encodes a `retry: <ms>` field followed by a blank line (sets the client's reconnection time;
/// dispatches no event because no data is set).
pub fn encode_retry_into(out: &mut BytesMut, ms: u64) {
  out.put_slice(b"retry: ");
  out.put_slice(ms.to_string().as_bytes());
  out.put_slice(b"\n\n");
}

/// The heartbeat sent on idle streams: a bare comment line, ignored by every client.
pub const HEARTBEAT: &[u8] = b":\n";

#[cfg(test)]
mod tests {
  use super::*;

  fn msg(id: Option<&str>, event: Option<&str>, data: &str) -> String {
    String::from_utf8(encode_message(id, event, data).unwrap().to_vec()).unwrap()
  }

  fn comment(text: Option<&str>) -> String {
    let mut out = BytesMut::new();
    encode_comment_into(&mut out, text);
    String::from_utf8(out.to_vec()).unwrap()
  }

  #[test]
  fn single_line_messages_match_hyper_express_bytes() {
    assert_eq!(msg(None, None, "d1"), "data: d1\n\n");
    assert_eq!(msg(None, Some("ev2"), "d2"), "event: ev2\ndata: d2\n\n");
    assert_eq!(
      msg(Some("id3"), Some("ev3"), "d3"),
      "id: id3\nevent: ev3\ndata: d3\n\n"
    );
    assert_eq!(
      msg(None, None, "[object Object]"),
      "data: [object Object]\n\n"
    );
  }

  #[test]
  fn multi_line_data_is_split_at_crlf_cr_and_lf() {
    assert_eq!(
      msg(None, None, "line1\nline2\r\nline3\rline4"),
      "data: line1\ndata: line2\ndata: line3\ndata: line4\n\n"
    );
    assert_eq!(msg(None, None, "a\n"), "data: a\ndata:\n\n");
    assert_eq!(msg(None, None, "\r\n\r\n"), "data:\ndata:\ndata:\n\n");
  }

  #[test]
  fn empty_data_still_dispatches_an_event() {
    assert_eq!(msg(None, None, ""), "data:\n\n");
    assert_eq!(
      msg(Some("i8"), Some("e8"), ""),
      "id: i8\nevent: e8\ndata:\n\n"
    );
  }

  #[test]
  fn leading_spaces_and_unicode_are_kept() {
    assert_eq!(msg(None, None, "  x"), "data:   x\n\n");
    assert_eq!(
      msg(None, Some("é"), "日本 🎉"),
      "event: é\ndata: 日本 🎉\n\n"
    );
  }

  #[test]
  fn line_breaks_in_event_or_id_are_refused() {
    assert_eq!(
      encode_message(None, Some("evil\ndata: x"), "d"),
      Err(FieldError::Event)
    );
    assert_eq!(
      encode_message(None, Some("a\rb"), "d"),
      Err(FieldError::Event)
    );
    assert_eq!(
      encode_message(Some("7\nevent: x"), Some("ev"), "d"),
      Err(FieldError::Id)
    );
    assert_eq!(encode_message(Some("a\0b"), None, "d"), Err(FieldError::Id));
    let mut out = BytesMut::from(&b"keep"[..]);
    assert!(encode_message_into(&mut out, Some("x\r"), None, "d").is_err());
    assert_eq!(&out[..], b"keep");
  }

  #[test]
  fn empty_id_and_event_are_written() {
    assert_eq!(msg(Some(""), Some(""), "d"), "id:\nevent:\ndata: d\n\n");
  }

  #[test]
  fn comments_prefix_every_line() {
    assert_eq!(comment(Some("c1")), ": c1\n");
    assert_eq!(comment(Some("open")), ": open\n");
    assert_eq!(comment(Some("c2\nc3")), ": c2\n: c3\n");
    assert_eq!(comment(Some("a\r\nb\rc")), ": a\n: b\n: c\n");
    assert_eq!(comment(None), ":\n");
    assert_eq!(comment(Some("")), ":\n");
    assert_eq!(comment(Some("a\n")), ": a\n:\n");
  }

  #[test]
  fn retry_field() {
    let mut out = BytesMut::new();
    encode_retry_into(&mut out, 3000);
    assert_eq!(&out[..], b"retry: 3000\n\n");
  }
}
