//! bench-client: the non-Node side of the hyper-sse benchmarks (see ../README.md).
//!
//! ```text
//! bench-client load --port P [--path /] [--conns 64] [--duration-ms 10000]
//! bench-client sse  --port P [--path /sse] [--conns N] [--expect E] [--latency]
//!                   [--bufsize 4096] [--connect-concurrency 256] [--connect-timeout-ms 120000]
//! ```
//!
//! Output: one JSON object per line on stdout. `load` prints one result and exits.
//! `sse` opens N keep-alive connections (`GET <path>`), prints `{"ev":"ready",..}` once every
//! response head arrived (or failed), then obeys commands read from stdin, one per line:
//!
//! * `wait <ms>`  wait until every connection received `--expect` events (or the timeout), print
//!                `{"ev":"done",..}` with counts, receive times and latency percentiles;
//! * `stats`      print the current counts;
//! * `fin`/`rst`  close every connection at once, with FIN (shutdown(SHUT_WR) then close) or with
//!                RST (SO_LINGER 0 then close), print `{"ev":"closed",..}` and exit.
//!
//! Times are CLOCK_MONOTONIC (ns), the same clock as Node's `process.hrtime.bigint()`, so the
//! harness can subtract server-side and client-side timestamps. With `--latency`, each event's
//! data must start with the send time in microseconds of that clock (`<us>:...`); the client
//! records `receive_time - send_time` per event.

use std::cell::{Cell, RefCell};
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::sync::{watch, Notify, Semaphore};

fn mono_ns() -> u64 {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: valid pointer to a timespec; CLOCK_MONOTONIC always exists on Linux.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

// ---------------------------------------------------------------------------------------------
// Arguments

struct Args {
    mode: String,
    port: u16,
    path: String,
    conns: usize,
    duration_ms: u64,
    expect: u64,
    latency: bool,
    bufsize: usize,
    connect_concurrency: usize,
    connect_timeout_ms: u64,
}

fn parse_args() -> Args {
    let mut it = std::env::args().skip(1);
    let mode = it.next().unwrap_or_default();
    let mut a = Args {
        mode,
        port: 0,
        path: String::new(),
        conns: 0,
        duration_ms: 10_000,
        expect: 0,
        latency: false,
        bufsize: 0,
        connect_concurrency: 256,
        connect_timeout_ms: 120_000,
    };
    while let Some(k) = it.next() {
        let mut val = || it.next().unwrap_or_else(|| die(&format!("missing value for {k}")));
        match k.as_str() {
            "--port" => a.port = val().parse().unwrap_or_else(|_| die("bad --port")),
            "--path" => a.path = val(),
            "--conns" => a.conns = val().parse().unwrap_or_else(|_| die("bad --conns")),
            "--duration-ms" => a.duration_ms = val().parse().unwrap_or_else(|_| die("bad --duration-ms")),
            "--expect" => a.expect = val().parse().unwrap_or_else(|_| die("bad --expect")),
            "--bufsize" => a.bufsize = val().parse().unwrap_or_else(|_| die("bad --bufsize")),
            "--connect-concurrency" => {
                a.connect_concurrency = val().parse().unwrap_or_else(|_| die("bad --connect-concurrency"))
            }
            "--connect-timeout-ms" => {
                a.connect_timeout_ms = val().parse().unwrap_or_else(|_| die("bad --connect-timeout-ms"))
            }
            "--latency" => a.latency = true,
            _ => die(&format!("unknown argument {k}")),
        }
    }
    if a.port == 0 {
        die("--port is required");
    }
    a
}

fn die(msg: &str) -> ! {
    println!("{{\"ev\":\"error\",\"msg\":{}}}", json_str(msg));
    std::process::exit(2);
}

fn json_str(s: &str) -> String {
    let mut o = String::with_capacity(s.len() + 2);
    o.push('"');
    for c in s.chars() {
        match c {
            '"' => o.push_str("\\\""),
            '\\' => o.push_str("\\\\"),
            c if (c as u32) < 0x20 => o.push_str(&format!("\\u{:04x}", c as u32)),
            c => o.push(c),
        }
    }
    o.push('"');
    o
}

fn main() {
    let args = parse_args();
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("tokio runtime");
    let local = tokio::task::LocalSet::new();
    match args.mode.as_str() {
        "load" => local.block_on(&rt, load_main(args)),
        "sse" => local.block_on(&rt, sse_main(args)),
        _ => die("usage: bench-client load|sse --port P ..."),
    }
}

// ---------------------------------------------------------------------------------------------
// HTTP/1.1 response parsing (just enough for these servers)

struct Head {
    status: u16,
    content_length: Option<usize>,
    chunked: bool,
    len: usize, // bytes of the head including the blank line
}

fn find_head_end(buf: &[u8]) -> Option<usize> {
    memchr::memmem::find(buf, b"\r\n\r\n").map(|i| i + 4)
}

fn parse_head(buf: &[u8]) -> Result<Option<Head>, String> {
    let Some(len) = find_head_end(buf) else {
        if buf.len() > 64 * 1024 {
            return Err("response head larger than 64 KiB".into());
        }
        return Ok(None);
    };
    let text = std::str::from_utf8(&buf[..len]).map_err(|_| "non-UTF-8 response head".to_string())?;
    let mut lines = text.split("\r\n");
    let status_line = lines.next().unwrap_or("");
    let mut parts = status_line.splitn(3, ' ');
    let proto = parts.next().unwrap_or("");
    if !proto.starts_with("HTTP/1.") {
        return Err(format!("bad status line {status_line:?}"));
    }
    let status: u16 = parts.next().unwrap_or("").parse().map_err(|_| format!("bad status line {status_line:?}"))?;
    let mut content_length = None;
    let mut chunked = false;
    for l in lines {
        let Some((k, v)) = l.split_once(':') else { continue };
        let v = v.trim();
        if k.eq_ignore_ascii_case("content-length") {
            content_length = Some(v.parse().map_err(|_| format!("bad content-length {v:?}"))?);
        } else if k.eq_ignore_ascii_case("transfer-encoding") && v.to_ascii_lowercase().contains("chunked") {
            chunked = true;
        }
    }
    Ok(Some(Head { status, content_length, chunked, len }))
}

#[derive(Clone, Copy, PartialEq)]
enum CState {
    Size,
    Ext,
    Data,
    DataEnd,
    Trailer,
    Done,
}

/// Incremental `Transfer-Encoding: chunked` decoder.
struct Chunked {
    st: CState,
    size: usize,
    any_digit: bool,
    line_nonempty: bool,
}

impl Chunked {
    fn new() -> Self {
        Chunked { st: CState::Size, size: 0, any_digit: false, line_nonempty: false }
    }

    /// Decodes `inp`, passing payload bytes to `out`. Returns the bytes consumed (less than
    /// `inp.len()` only once the terminating chunk and trailer were read).
    fn feed(&mut self, inp: &[u8], out: &mut impl FnMut(&[u8])) -> Result<usize, String> {
        let mut i = 0;
        while i < inp.len() {
            match self.st {
                CState::Size => {
                    let b = inp[i];
                    i += 1;
                    match b {
                        b'0'..=b'9' | b'a'..=b'f' | b'A'..=b'F' => {
                            let d = (b as char).to_digit(16).unwrap() as usize;
                            self.size = self.size.checked_mul(16).and_then(|s| s.checked_add(d)).ok_or("chunk size overflow")?;
                            self.any_digit = true;
                        }
                        b';' | b' ' | b'\t' => self.st = CState::Ext,
                        b'\r' => {}
                        b'\n' => self.end_size_line()?,
                        _ => return Err(format!("bad byte {b:#x} in chunk size")),
                    }
                }
                CState::Ext => {
                    match memchr::memchr(b'\n', &inp[i..]) {
                        Some(j) => {
                            i += j + 1;
                            self.end_size_line()?;
                        }
                        None => i = inp.len(),
                    }
                }
                CState::Data => {
                    let n = self.size.min(inp.len() - i);
                    out(&inp[i..i + n]);
                    i += n;
                    self.size -= n;
                    if self.size == 0 {
                        self.st = CState::DataEnd;
                    }
                }
                CState::DataEnd => {
                    let b = inp[i];
                    i += 1;
                    match b {
                        b'\r' => {}
                        b'\n' => {
                            self.st = CState::Size;
                            self.size = 0;
                            self.any_digit = false;
                        }
                        _ => return Err("missing CRLF after chunk data".into()),
                    }
                }
                CState::Trailer => {
                    let b = inp[i];
                    i += 1;
                    match b {
                        b'\r' => {}
                        b'\n' => {
                            if !self.line_nonempty {
                                self.st = CState::Done;
                                return Ok(i);
                            }
                            self.line_nonempty = false;
                        }
                        _ => self.line_nonempty = true,
                    }
                }
                CState::Done => return Ok(i),
            }
        }
        Ok(i)
    }

    fn end_size_line(&mut self) -> Result<(), String> {
        if !self.any_digit {
            return Err("empty chunk size line".into());
        }
        if self.size == 0 {
            self.st = CState::Trailer;
            self.line_nonempty = false;
        } else {
            self.st = CState::Data;
        }
        Ok(())
    }

    fn done(&self) -> bool {
        self.st == CState::Done
    }
}

// ---------------------------------------------------------------------------------------------
// load mode: keep-alive GET loop, like `wrk -c N` without pipelining

struct LoadShared {
    ok: Cell<u64>,
    non2xx: Cell<u64>,
    errors: Cell<u64>,
    first_error: RefCell<Option<String>>,
    lat_us: RefCell<Vec<u32>>,
}

async fn load_main(a: Args) {
    let conns = if a.conns == 0 { 64 } else { a.conns };
    let path = if a.path.is_empty() { "/".to_string() } else { a.path.clone() };
    let addr: SocketAddr = ([127, 0, 0, 1], a.port).into();
    let req = Rc::new(format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\n\r\n", a.port).into_bytes());
    let sh = Rc::new(LoadShared {
        ok: Cell::new(0),
        non2xx: Cell::new(0),
        errors: Cell::new(0),
        first_error: RefCell::new(None),
        lat_us: RefCell::new(Vec::with_capacity(1 << 20)),
    });
    let start = mono_ns();
    let deadline = start + a.duration_ms * 1_000_000;
    let mut tasks = Vec::new();
    for _ in 0..conns {
        let (sh, req) = (sh.clone(), req.clone());
        tasks.push(tokio::task::spawn_local(async move {
            if let Err(e) = load_conn(&sh, addr, &req, deadline).await {
                sh.errors.set(sh.errors.get() + 1);
                sh.first_error.borrow_mut().get_or_insert(e);
            }
        }));
    }
    for t in tasks {
        let _ = t.await;
    }
    let elapsed_ns = mono_ns() - start;
    let mut lat = std::mem::take(&mut *sh.lat_us.borrow_mut());
    lat.sort_unstable();
    let pct = |p: f64| if lat.is_empty() { 0 } else { lat[((lat.len() - 1) as f64 * p) as usize] };
    let ok = sh.ok.get();
    println!(
        "{{\"ev\":\"load\",\"requests\":{},\"non2xx\":{},\"errors\":{},\"first_error\":{},\"elapsed_ms\":{:.1},\"rps\":{:.1},\"p50_us\":{},\"p99_us\":{},\"max_us\":{}}}",
        ok,
        sh.non2xx.get(),
        sh.errors.get(),
        sh.first_error.borrow().as_deref().map(json_str).unwrap_or("null".into()),
        elapsed_ns as f64 / 1e6,
        ok as f64 / (elapsed_ns as f64 / 1e9),
        pct(0.5),
        pct(0.99),
        lat.last().copied().unwrap_or(0)
    );
}

async fn load_conn(sh: &LoadShared, addr: SocketAddr, req: &[u8], deadline: u64) -> Result<(), String> {
    let mut s = TcpStream::connect(addr).await.map_err(|e| format!("connect: {e}"))?;
    s.set_nodelay(true).ok();
    let mut buf = vec![0u8; 16 * 1024];
    let mut filled = 0usize;
    let mut lat = Vec::with_capacity(1 << 16);
    loop {
        let t0 = mono_ns();
        if t0 >= deadline {
            break;
        }
        s.write_all(req).await.map_err(|e| format!("write: {e}"))?;
        // head
        let head = loop {
            if let Some(h) = parse_head(&buf[..filled])? {
                break h;
            }
            if filled == buf.len() {
                buf.resize(buf.len() * 2, 0);
            }
            let n = s.read(&mut buf[filled..]).await.map_err(|e| format!("read: {e}"))?;
            if n == 0 {
                return Err("server closed the connection".into());
            }
            filled += n;
        };
        buf.copy_within(head.len..filled, 0);
        filled -= head.len;
        // body
        if head.chunked {
            let mut dec = Chunked::new();
            loop {
                let used = dec.feed(&buf[..filled], &mut |_| {})?;
                buf.copy_within(used..filled, 0);
                filled -= used;
                if dec.done() {
                    break;
                }
                let n = s.read(&mut buf[filled..]).await.map_err(|e| format!("read: {e}"))?;
                if n == 0 {
                    return Err("server closed mid-body".into());
                }
                filled += n;
            }
        } else {
            let need = head.content_length.unwrap_or(0);
            while filled < need {
                if need > buf.len() {
                    buf.resize(need, 0);
                }
                let n = s.read(&mut buf[filled..]).await.map_err(|e| format!("read: {e}"))?;
                if n == 0 {
                    return Err("server closed mid-body".into());
                }
                filled += n;
            }
            buf.copy_within(need..filled, 0);
            filled -= need;
        }
        let t1 = mono_ns();
        if t1 > deadline {
            break; // completed after the window: not counted
        }
        if (200..300).contains(&head.status) {
            sh.ok.set(sh.ok.get() + 1);
        } else {
            sh.non2xx.set(sh.non2xx.get() + 1);
        }
        lat.push(((t1 - t0) / 1000).min(u32::MAX as u64) as u32);
    }
    sh.lat_us.borrow_mut().extend_from_slice(&lat);
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// sse mode

/// Minimal SSE line parser: counts dispatched events (a blank line after at least one `data`
/// line) and, with `latency`, reads the leading decimal timestamp of the first data line.
struct SseParser {
    partial: Vec<u8>,
    has_data: bool,
    ts: Option<u64>,
    latency: bool,
}

impl SseParser {
    fn new(latency: bool) -> Self {
        SseParser { partial: Vec::new(), has_data: false, ts: None, latency }
    }

    fn feed(&mut self, data: &[u8], on_event: &mut impl FnMut(Option<u64>)) {
        let mut rest = data;
        while let Some(i) = memchr::memchr(b'\n', rest) {
            if self.partial.is_empty() {
                self.line(&rest[..i], on_event);
            } else {
                let mut p = std::mem::take(&mut self.partial);
                p.extend_from_slice(&rest[..i]);
                self.line(&p, on_event);
                p.clear();
                self.partial = p;
            }
            rest = &rest[i + 1..];
        }
        if !rest.is_empty() {
            self.partial.extend_from_slice(rest);
        }
    }

    #[inline]
    fn line(&mut self, l: &[u8], on_event: &mut impl FnMut(Option<u64>)) {
        let l = l.strip_suffix(b"\r").unwrap_or(l);
        if l.is_empty() {
            if self.has_data {
                on_event(self.ts);
            }
            self.has_data = false;
            self.ts = None;
            return;
        }
        if let Some(v) = l.strip_prefix(b"data") {
            if !(v.is_empty() || v[0] == b':') {
                return; // some other field name starting with "data"
            }
            self.has_data = true;
            if self.latency && self.ts.is_none() {
                let v = v.strip_prefix(b":").unwrap_or(v);
                let v = v.strip_prefix(b" ").unwrap_or(v);
                let mut n: u64 = 0;
                let mut any = false;
                for &b in v {
                    if b.is_ascii_digit() {
                        n = n * 10 + (b - b'0') as u64;
                        any = true;
                    } else {
                        break;
                    }
                }
                if any {
                    self.ts = Some(n);
                }
            }
        }
    }
}

struct SseShared {
    conns: usize,
    expect: u64,
    ready: Cell<usize>,
    failed: Cell<usize>,
    bad_status: Cell<usize>,
    eof: Cell<usize>,
    complete: Cell<usize>,
    closed: Cell<usize>,
    events: Cell<u64>,
    no_ts: Cell<u64>,
    first_rx_ns: Cell<u64>,
    last_rx_ns: Cell<u64>,
    min_ts_us: Cell<u64>,
    first_error: RefCell<Option<String>>,
    lat_us: RefCell<Vec<u32>>,
    notify: Notify,
}

impl SseShared {
    fn error(&self, e: String) {
        self.first_error.borrow_mut().get_or_insert(e);
    }
    fn bump(&self, c: &Cell<usize>) {
        c.set(c.get() + 1);
        self.notify.notify_one();
    }
    fn stats_json(&self, ev: &str) -> String {
        format!(
            "\"ev\":\"{ev}\",\"conns\":{},\"ready\":{},\"failed\":{},\"bad_status\":{},\"eof\":{},\"complete\":{},\"events\":{},\"expected_events\":{},\"no_ts\":{},\"first_error\":{}",
            self.conns,
            self.ready.get(),
            self.failed.get(),
            self.bad_status.get(),
            self.eof.get(),
            self.complete.get(),
            self.events.get(),
            self.expect * self.conns as u64,
            self.no_ts.get(),
            self.first_error.borrow().as_deref().map(json_str).unwrap_or("null".into())
        )
    }
}

const CLOSE_NONE: u8 = 0;
const CLOSE_FIN: u8 = 1;
const CLOSE_RST: u8 = 2;

async fn sse_main(a: Args) {
    let conns = if a.conns == 0 { 1 } else { a.conns };
    let path = if a.path.is_empty() { "/sse".to_string() } else { a.path.clone() };
    let bufsize = if a.bufsize == 0 { if conns > 100 { 4096 } else { 256 * 1024 } } else { a.bufsize };
    let addr: SocketAddr = ([127, 0, 0, 1], a.port).into();
    let req = Rc::new(
        format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nAccept: text/event-stream\r\n\r\n", a.port)
            .into_bytes(),
    );
    let sh = Rc::new(SseShared {
        conns,
        expect: a.expect,
        ready: Cell::new(0),
        failed: Cell::new(0),
        bad_status: Cell::new(0),
        eof: Cell::new(0),
        complete: Cell::new(0),
        closed: Cell::new(0),
        events: Cell::new(0),
        no_ts: Cell::new(0),
        first_rx_ns: Cell::new(u64::MAX),
        last_rx_ns: Cell::new(0),
        min_ts_us: Cell::new(u64::MAX),
        first_error: RefCell::new(None),
        lat_us: RefCell::new(Vec::with_capacity(if a.latency { (a.expect as usize) * conns } else { 0 })),
        notify: Notify::new(),
    });
    let (close_tx, close_rx) = watch::channel(CLOSE_NONE);
    let sem = Rc::new(Semaphore::new(a.connect_concurrency.max(1)));
    let t_start = mono_ns();
    let mut tasks = Vec::with_capacity(conns);
    for _ in 0..conns {
        let (sh, req, sem, rx) = (sh.clone(), req.clone(), sem.clone(), close_rx.clone());
        let latency = a.latency;
        tasks.push(tokio::task::spawn_local(async move {
            sse_conn(sh, addr, req, latency, bufsize, rx, sem).await;
        }));
    }
    drop(close_rx);

    // Phase 1: every connection got its response head (or failed).
    let connect_deadline = tokio::time::Instant::now() + Duration::from_millis(a.connect_timeout_ms);
    loop {
        if sh.ready.get() + sh.failed.get() >= conns {
            break;
        }
        if tokio::time::timeout_at(connect_deadline, sh.notify.notified()).await.is_err() {
            sh.error(format!("connect phase timed out after {} ms", a.connect_timeout_ms));
            break;
        }
    }
    let ok = sh.ready.get() == conns && sh.failed.get() == 0;
    println!(
        "{{{},\"ok\":{},\"connect_ms\":{:.1}}}",
        sh.stats_json("ready"),
        ok,
        (mono_ns() - t_start) as f64 / 1e6
    );

    // Phase 2: commands.
    let mut lines = BufReader::new(tokio::io::stdin()).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        let mut parts = line.split_whitespace();
        match parts.next() {
            Some("stats") => println!("{{{}}}", sh.stats_json("stats")),
            Some("wait") => {
                let ms: u64 = parts.next().and_then(|v| v.parse().ok()).unwrap_or(60_000);
                let deadline = tokio::time::Instant::now() + Duration::from_millis(ms);
                let mut timed_out = false;
                while sh.complete.get() < conns {
                    if tokio::time::timeout_at(deadline, sh.notify.notified()).await.is_err() {
                        timed_out = true;
                        break;
                    }
                }
                let mut lat = sh.lat_us.borrow().clone();
                lat.sort_unstable();
                let pct = |p: f64| if lat.is_empty() { 0 } else { lat[((lat.len() - 1) as f64 * p) as usize] };
                println!(
                    "{{{},\"ok\":{},\"timed_out\":{},\"first_rx_ns\":{},\"last_rx_ns\":{},\"min_ts_us\":{},\"lat_samples\":{},\"p50_us\":{},\"p99_us\":{},\"max_us\":{}}}",
                    sh.stats_json("done"),
                    !timed_out && sh.complete.get() == conns,
                    timed_out,
                    if sh.first_rx_ns.get() == u64::MAX { 0 } else { sh.first_rx_ns.get() },
                    sh.last_rx_ns.get(),
                    if sh.min_ts_us.get() == u64::MAX { 0 } else { sh.min_ts_us.get() },
                    lat.len(),
                    pct(0.5),
                    pct(0.99),
                    lat.last().copied().unwrap_or(0)
                );
            }
            Some(m @ ("fin" | "rst")) => {
                let t0 = mono_ns();
                let _ = close_tx.send(if m == "rst" { CLOSE_RST } else { CLOSE_FIN });
                for t in tasks.drain(..) {
                    let _ = t.await;
                }
                let t1 = mono_ns();
                println!(
                    "{{{},\"closed\":{},\"t0_ns\":{},\"t1_ns\":{}}}",
                    sh.stats_json("closed"),
                    sh.closed.get(),
                    t0,
                    t1
                );
                std::process::exit(0);
            }
            Some(other) => println!("{{\"ev\":\"error\",\"msg\":{}}}", json_str(&format!("unknown command {other}"))),
            None => {}
        }
    }
    // stdin closed: exit (sockets are closed by the kernel).
    std::process::exit(0);
}

async fn close_stream(s: TcpStream, mode: u8) {
    if mode == CLOSE_RST {
        let _ = socket2::SockRef::from(&s).set_linger(Some(Duration::ZERO));
        drop(s);
    } else {
        let mut s = s;
        let _ = s.shutdown().await; // FIN
        drop(s);
    }
}

async fn sse_conn(
    sh: Rc<SseShared>,
    addr: SocketAddr,
    req: Rc<Vec<u8>>,
    latency: bool,
    bufsize: usize,
    mut close_rx: watch::Receiver<u8>,
    sem: Rc<Semaphore>,
) {
    let permit = sem.acquire().await.expect("semaphore");
    let mut s = match TcpStream::connect(addr).await {
        Ok(s) => s,
        Err(e) => {
            sh.error(format!("connect: {e}"));
            sh.bump(&sh.failed);
            return;
        }
    };
    s.set_nodelay(true).ok();
    if let Err(e) = s.write_all(&req).await {
        sh.error(format!("write: {e}"));
        sh.bump(&sh.failed);
        return;
    }
    let mut buf = vec![0u8; bufsize.max(1024)];
    let mut head_buf: Vec<u8> = Vec::new();
    let head = loop {
        let n = tokio::select! {
            biased;
            _ = close_rx.changed() => { let m = *close_rx.borrow(); sh.bump(&sh.failed); close_stream(s, m).await; sh.closed.set(sh.closed.get() + 1); return; }
            r = s.read(&mut buf) => r,
        };
        match n {
            Ok(0) => {
                sh.error("server closed before the response head".into());
                sh.bump(&sh.failed);
                return;
            }
            Err(e) => {
                sh.error(format!("read: {e}"));
                sh.bump(&sh.failed);
                return;
            }
            Ok(n) => head_buf.extend_from_slice(&buf[..n]),
        }
        match parse_head(&head_buf) {
            Ok(Some(h)) => break h,
            Ok(None) => {}
            Err(e) => {
                sh.error(e);
                sh.bump(&sh.failed);
                return;
            }
        }
    };
    drop(permit);
    if head.status != 200 {
        sh.bad_status.set(sh.bad_status.get() + 1);
        sh.error(format!("status {}", head.status));
        sh.bump(&sh.failed);
        return;
    }
    sh.bump(&sh.ready);

    let mut dec = if head.chunked { Some(Chunked::new()) } else { None };
    let mut parser = SseParser::new(latency);
    let mut count: u64 = 0;
    let mut lat_local: Vec<u32> = Vec::new();
    let expect = sh.expect;

    // Processes received body bytes; returns Err on a framing error.
    let mut process = |bytes: &[u8], rx_ns: u64, count: &mut u64, lat_local: &mut Vec<u32>| -> Result<bool, String> {
        let now_us = rx_ns / 1000;
        let before = *count;
        let mut on_event = |ts: Option<u64>| {
            *count += 1;
            if latency {
                match ts {
                    Some(t) => {
                        if t < sh.min_ts_us.get() {
                            sh.min_ts_us.set(t);
                        }
                        lat_local.push(now_us.saturating_sub(t).min(u32::MAX as u64) as u32);
                    }
                    None => sh.no_ts.set(sh.no_ts.get() + 1),
                }
            }
        };
        let mut ended = false;
        match dec.as_mut() {
            Some(d) => {
                d.feed(bytes, &mut |payload| parser.feed(payload, &mut on_event))?;
                ended = d.done();
            }
            None => parser.feed(bytes, &mut on_event),
        }
        let got = *count - before;
        if got > 0 {
            sh.events.set(sh.events.get() + got);
            if sh.first_rx_ns.get() == u64::MAX {
                sh.first_rx_ns.set(rx_ns);
            }
            if rx_ns > sh.last_rx_ns.get() {
                sh.last_rx_ns.set(rx_ns);
            }
            if expect > 0 && before < expect && *count >= expect {
                sh.lat_us.borrow_mut().extend_from_slice(lat_local);
                lat_local.clear();
                sh.bump(&sh.complete);
            }
        }
        Ok(ended)
    };

    let leftover = head_buf[head.len..].to_vec();
    drop(head_buf);
    if !leftover.is_empty() {
        match process(&leftover, mono_ns(), &mut count, &mut lat_local) {
            Ok(false) => {}
            Ok(true) => {
                sh.error("server ended the SSE body".into());
                sh.bump(&sh.eof);
                return;
            }
            Err(e) => {
                sh.error(e);
                sh.bump(&sh.eof);
                return;
            }
        }
    }
    loop {
        let r = tokio::select! {
            biased;
            _ = close_rx.changed() => {
                let m = *close_rx.borrow();
                close_stream(s, m).await;
                sh.closed.set(sh.closed.get() + 1);
                return;
            }
            r = s.read(&mut buf) => r,
        };
        match r {
            Ok(0) => {
                sh.error("server closed an SSE stream".into());
                sh.bump(&sh.eof);
                return;
            }
            Err(e) => {
                sh.error(format!("read: {e}"));
                sh.bump(&sh.eof);
                return;
            }
            Ok(n) => match process(&buf[..n], mono_ns(), &mut count, &mut lat_local) {
                Ok(false) => {}
                Ok(true) => {
                    sh.error("server ended the SSE body".into());
                    sh.bump(&sh.eof);
                    return;
                }
                Err(e) => {
                    sh.error(e);
                    sh.bump(&sh.eof);
                    return;
                }
            },
        }
    }
}
