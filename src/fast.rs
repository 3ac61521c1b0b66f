//! Plain Node-API functions for the calls JS makes once per response or SSE message:
//! `resEnd`, `resWrite`, `sseSend` (`docs/NATIVE.md`).
//!
//! A `#[napi]` method costs about 300 ns per call before any work (napi-rs 3 opens a borrow
//! scope, allocates its storage and registers the receiver in a process-wide table); measured
//! from JS, `resEnd` for an unknown id took 750 ns. These functions are made with
//! `napi_create_function` instead: their data pointer holds the server's [`Shared`] (one strong
//! count, dropped when the function is garbage-collected), and they read their arguments with a few
//! Node-API calls. A wrong argument type is a `TypeError` (`ERR_INVALID_ARG_TYPE`); like every
//! export they never let a panic reach Node.

use std::ffi::{c_char, c_void};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::ptr;
use std::sync::Arc;

use bytes::Bytes;
use napi::sys;

use crate::server::{Outcome, Shared};

/// A JS value made here, handed back as is.
pub struct RawValue(sys::napi_value);

impl napi::bindgen_prelude::ToNapiValue for RawValue {
  unsafe fn to_napi_value(_env: sys::napi_env, val: Self) -> napi::Result<sys::napi_value> {
    Ok(val.0)
  }
}

/// A thrown error: the message, and the `code` of the `Error` (a `TypeError` for
/// `ERR_INVALID_ARG_TYPE`; else the codes the `NativeServer` methods give).
struct Throw(String, &'static std::ffi::CStr);

const TYPE: &std::ffi::CStr = c"ERR_INVALID_ARG_TYPE";
const FAILURE: &std::ffi::CStr = c"GenericFailure";

impl From<crate::error::Error> for Throw {
  fn from(e: crate::error::Error) -> Self {
    let code = match e {
      crate::error::Error::InvalidArg(_) => c"InvalidArg",
      _ => FAILURE,
    };
    Throw(e.to_string(), code)
  }
}

type Call = fn(&Shared, &Args) -> Result<sys::napi_value, Throw>;

/// The arguments of one call.
struct Args {
  env: sys::napi_env,
  argv: [sys::napi_value; 6],
  argc: usize,
}

impl Args {
  fn get(&self, i: usize) -> sys::napi_value {
    if i < self.argc {
      self.argv[i]
    } else {
      ptr::null_mut()
    }
  }

  fn type_of(&self, i: usize) -> sys::napi_valuetype {
    let v = self.get(i);
    if v.is_null() {
      return sys::ValueType::napi_undefined;
    }
    let mut t = sys::ValueType::napi_undefined;
    // SAFETY: a value of this callback's env.
    unsafe { sys::napi_typeof(self.env, v, &mut t) };
    t
  }

  /// A number argument; anything else is a `TypeError`.
  fn number(&self, i: usize, what: &str) -> Result<f64, Throw> {
    if self.type_of(i) != sys::ValueType::napi_number {
      return Err(type_error(what, "a number"));
    }
    let mut n = f64::NAN;
    // SAFETY: a number value of this callback's env.
    unsafe { sys::napi_get_value_double(self.env, self.get(i), &mut n) };
    Ok(n)
  }

  /// A string argument, or `None` for `null`/`undefined`; anything else is a `TypeError`.
  fn opt_string(&self, i: usize, what: &str) -> Result<Option<String>, Throw> {
    match self.type_of(i) {
      sys::ValueType::napi_undefined | sys::ValueType::napi_null => Ok(None),
      sys::ValueType::napi_string => Ok(Some(read_string(self.env, self.get(i))?)),
      _ => Err(type_error(what, "a string")),
    }
  }

  /// An array of strings, or `None` for `null`/`undefined`. Reading an element may run JS (a
  /// getter): callers read such arguments before borrowing a `Buffer` or the scratch buffer.
  fn opt_strings(&self, i: usize, what: &str) -> Result<Option<Vec<String>>, Throw> {
    match self.type_of(i) {
      sys::ValueType::napi_undefined | sys::ValueType::napi_null => return Ok(None),
      sys::ValueType::napi_object => {}
      _ => return Err(type_error(what, "an array of strings")),
    }
    let (env, arr) = (self.env, self.get(i));
    let mut is_array = false;
    let mut len = 0u32;
    // SAFETY: an object value of this callback's env.
    unsafe {
      sys::napi_is_array(env, arr, &mut is_array);
      if !is_array || sys::napi_get_array_length(env, arr, &mut len) != sys::Status::napi_ok {
        return Err(type_error(what, "an array of strings"));
      }
    }
    let mut out = Vec::with_capacity(len as usize);
    for k in 0..len {
      let mut v = ptr::null_mut();
      let mut t = sys::ValueType::napi_undefined;
      // SAFETY: as above; `v` is checked to be a string before it is read.
      unsafe {
        if sys::napi_get_element(env, arr, k, &mut v) != sys::Status::napi_ok
          || sys::napi_typeof(env, v, &mut t) != sys::Status::napi_ok
          || t != sys::ValueType::napi_string
        {
          return Err(type_error(what, "an array of strings"));
        }
      }
      out.push(read_string(env, v)?);
    }
    Ok(Some(out))
  }

  /// A `Buffer` or string body, copied, or `None` for `null`/`undefined`.
  fn opt_body(&self, i: usize, what: &str) -> Result<Option<Bytes>, Throw> {
    match self.type_of(i) {
      sys::ValueType::napi_undefined | sys::ValueType::napi_null => Ok(None),
      sys::ValueType::napi_string => Ok(Some(Bytes::from(read_string(self.env, self.get(i))?))),
      sys::ValueType::napi_object => self.with_buffer(i, what, Bytes::copy_from_slice).map(Some),
      _ => Err(type_error(what, "a Buffer or a string")),
    }
  }

  /// Passes the bytes of a `Buffer` argument to `f`, without copying them.
  fn with_buffer<R>(&self, i: usize, what: &str, f: impl FnOnce(&[u8]) -> R) -> Result<R, Throw> {
    let (env, v) = (self.env, self.get(i));
    let mut is_buffer = false;
    let mut data: *mut c_void = ptr::null_mut();
    let mut len = 0usize;
    // SAFETY: a value of this callback's env; the buffer's memory is read while the value is
    // alive (during this call) and nothing else runs meanwhile.
    unsafe {
      if v.is_null()
        || sys::napi_is_buffer(env, v, &mut is_buffer) != sys::Status::napi_ok
        || !is_buffer
        || sys::napi_get_buffer_info(env, v, &mut data, &mut len) != sys::Status::napi_ok
      {
        return Err(type_error(what, "a Buffer or a string"));
      }
      if len == 0 || data.is_null() {
        return Ok(f(&[]));
      }
      Ok(f(std::slice::from_raw_parts(data as *const u8, len)))
    }
  }
}

fn type_error(what: &str, expected: &str) -> Throw {
  Throw(format!("hyper-sse: {what} must be {expected}"), TYPE)
}

/// Node-API could not read a string argument (it writes valid UTF-8 when it can).
fn unreadable() -> Throw {
  Throw("cannot read a string argument".into(), FAILURE)
}

/// Reads a JS string as UTF-8 (lone surrogates become U+FFFD, as everywhere in Node-API).
fn read_string(env: sys::napi_env, v: sys::napi_value) -> Result<String, Throw> {
  let mut buf = Vec::new();
  read_utf8_into(env, v, &mut buf)?;
  String::from_utf8(buf).map_err(|_| unreadable())
}

/// Reads a JS string into this thread's scratch buffer ([`crate::server::with_scratch`]) and
/// passes it to `f`.
fn with_str<R>(
  env: sys::napi_env,
  v: sys::napi_value,
  f: impl FnOnce(&str) -> R,
) -> Result<R, Throw> {
  crate::server::with_scratch(|buf| {
    read_utf8_into(env, v, buf)?;
    Ok(f(std::str::from_utf8(buf).map_err(|_| unreadable())?))
  })
}

/// Reads a JS string as UTF-8 into `buf` (replacing its contents).
fn read_utf8_into(env: sys::napi_env, v: sys::napi_value, buf: &mut Vec<u8>) -> Result<(), Throw> {
  let mut len = 0usize;
  buf.clear();
  // SAFETY: `v` is a string of this env; the buffer has room for `len` bytes and the NUL
  // Node-API writes after them; `written` bytes are initialized afterwards.
  unsafe {
    if sys::napi_get_value_string_utf8(env, v, ptr::null_mut(), 0, &mut len) != sys::Status::napi_ok
    {
      return Err(unreadable());
    }
    buf.reserve(len + 1);
    let mut written = 0usize;
    if sys::napi_get_value_string_utf8(
      env,
      v,
      buf.as_mut_ptr() as *mut c_char,
      len + 1,
      &mut written,
    ) != sys::Status::napi_ok
    {
      return Err(unreadable());
    }
    buf.set_len(written.min(len));
  }
  Ok(())
}

fn js_int(env: sys::napi_env, n: i64) -> sys::napi_value {
  let mut v = ptr::null_mut();
  // SAFETY: creates a value in this callback's env.
  unsafe { sys::napi_create_int64(env, n, &mut v) };
  v
}

fn boolean(env: sys::napi_env, b: bool) -> sys::napi_value {
  let mut v = ptr::null_mut();
  // SAFETY: creates a value in this callback's env.
  unsafe { sys::napi_get_boolean(env, b, &mut v) };
  v
}

/// `resEnd(id, status, reason, headers, body) → boolean`.
fn res_end(shared: &Shared, a: &Args) -> Result<sys::napi_value, Throw> {
  let id = crate::bridge::id_of(a.number(0, "id")?);
  let status = a.number(1, "status")?;
  let reason = a.opt_string(2, "reason")?;
  let headers = a.opt_strings(3, "headers")?.unwrap_or_default();
  let body = a.opt_body(4, "body")?;
  // `as` saturates: NaN and negative numbers are 0, an invalid status either way.
  let head = crate::bridge::head_of(status as u32, reason.as_deref(), &headers);
  match shared.respond(id, &head, body) {
    Ok(outcome) => Ok(boolean(a.env, outcome == Outcome::Done)),
    Err(e) => Err(e.into()),
  }
}

/// `resWrite(id, chunk) → number`: bytes queued, or -1 when the stream is gone.
fn res_write(shared: &Shared, a: &Args) -> Result<sys::napi_value, Throw> {
  let id = crate::bridge::id_of(a.number(0, "id")?);
  let n = match a.type_of(1) {
    sys::ValueType::napi_string => with_str(a.env, a.get(1), |s| {
      shared.write_js(id, |b| b.extend_from_slice(s.as_bytes()))
    })?,
    sys::ValueType::napi_object => a.with_buffer(1, "chunk", |bytes| {
      shared.write_js(id, |b| b.extend_from_slice(bytes))
    })?,
    _ => return Err(type_error("chunk", "a Buffer or a string")),
  };
  Ok(js_int(a.env, n))
}

/// `sseSend(id, sseId, event, data) → number`: bytes queued, -1 when gone, -2/-3 for an invalid
/// event/id (nothing written then).
fn sse_send(shared: &Shared, a: &Args) -> Result<sys::napi_value, Throw> {
  let id = crate::bridge::id_of(a.number(0, "id")?);
  let sse_id = a.opt_string(1, "id")?;
  let event = a.opt_string(2, "event")?;
  if a.type_of(3) != sys::ValueType::napi_string {
    return Err(type_error("data", "a string"));
  }
  let n = match crate::sse::validate(sse_id.as_deref(), event.as_deref()) {
    Err(e) => crate::bridge::field_code(e),
    Ok(()) => with_str(a.env, a.get(3), |data| {
      shared.write_js(id, |buf| {
        // Validated above: encoding cannot fail.
        let _ = crate::sse::encode_message_into(buf, sse_id.as_deref(), event.as_deref(), data);
      })
    })?,
  };
  Ok(js_int(a.env, n))
}

/// Runs `call` for a callback: arguments read, panics caught, errors thrown.
///
/// # Safety
/// Called by Node with a valid env and callback info whose data is a `*const Shared` made by
/// [`make`].
unsafe fn run(env: sys::napi_env, info: sys::napi_callback_info, call: Call) -> sys::napi_value {
  let mut args = Args {
    env,
    argv: [ptr::null_mut(); 6],
    argc: 6,
  };
  let mut data: *mut c_void = ptr::null_mut();
  // SAFETY: per this function's contract.
  let ok = unsafe {
    sys::napi_get_cb_info(
      env,
      info,
      &mut args.argc,
      args.argv.as_mut_ptr(),
      ptr::null_mut(),
      &mut data,
    )
  } == sys::Status::napi_ok;
  // Node reports how many arguments were passed, more than the slots if so: only these are read.
  args.argc = args.argc.min(args.argv.len());
  let result = if !ok || data.is_null() {
    Err(Throw("hyper-sse: invalid native call".into(), FAILURE))
  } else {
    // SAFETY: `data` holds a strong count of a `Shared` until the function is finalized.
    let shared = unsafe { &*(data as *const Shared) };
    catch_unwind(AssertUnwindSafe(|| call(shared, &args)))
      .unwrap_or_else(|_| Err(Throw("hyper-sse: internal error (panic)".into(), FAILURE)))
  };
  match result {
    Ok(v) => v,
    Err(Throw(msg, code)) => {
      let msg = std::ffi::CString::new(msg.replace('\0', " ")).unwrap_or_default();
      // SAFETY: throws in this callback's env; the message is a NUL-terminated C string.
      unsafe {
        if code == TYPE {
          sys::napi_throw_type_error(env, code.as_ptr(), msg.as_ptr());
        } else {
          sys::napi_throw_error(env, code.as_ptr(), msg.as_ptr());
        }
      }
      ptr::null_mut()
    }
  }
}

/// The `extern "C"` entry point Node calls for `$call`.
macro_rules! entry {
  ($name:ident, $call:ident) => {
    unsafe extern "C" fn $name(
      env: sys::napi_env,
      info: sys::napi_callback_info,
    ) -> sys::napi_value {
      // SAFETY: called by Node for a function made by `make`.
      unsafe { run(env, info, $call) }
    }
  };
}

entry!(res_end_cb, res_end);
entry!(res_write_cb, res_write);
entry!(sse_send_cb, sse_send);

unsafe extern "C" fn finalize(_env: sys::napi_env, data: *mut c_void, _hint: *mut c_void) {
  if !data.is_null() {
    // SAFETY: the strong count `make` leaked for this function.
    drop(unsafe { Arc::from_raw(data as *const Shared) });
  }
}

/// Makes the plain function `name` (`resEnd`, `resWrite`, `sseSend`) for `shared`.
///
/// # Errors
/// When Node-API fails or the name is unknown.
pub fn make(env: sys::napi_env, shared: &Arc<Shared>, name: &str) -> napi::Result<RawValue> {
  let cb: unsafe extern "C" fn(sys::napi_env, sys::napi_callback_info) -> sys::napi_value =
    match name {
      "resEnd" => res_end_cb,
      "resWrite" => res_write_cb,
      "sseSend" => sse_send_cb,
      _ => {
        return Err(napi::Error::new(
          napi::Status::InvalidArg,
          format!("hyper-sse: no native function {name}"),
        ))
      }
    };
  let data = Arc::into_raw(shared.clone()) as *mut c_void;
  let mut f = ptr::null_mut();
  // SAFETY: env is the current callback's. On failure the count is leaked rather than taken
  // back: a function made without its finalizer is never returned, and a finalizer registered
  // before a failure reported afterwards would drop it once more.
  unsafe {
    let status = sys::napi_create_function(
      env,
      name.as_ptr() as *const c_char,
      name.len() as isize,
      Some(cb),
      data,
      &mut f,
    );
    if status != sys::Status::napi_ok
      || sys::napi_wrap(
        env,
        f,
        data,
        Some(finalize),
        ptr::null_mut(),
        ptr::null_mut(),
      ) != sys::Status::napi_ok
    {
      return Err(napi::Error::from_reason(
        "hyper-sse: cannot create a native function",
      ));
    }
  }
  Ok(RawValue(f))
}
