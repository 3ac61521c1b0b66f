//! `hyper-hello`: the `hello` scenario's reference row, hyper with a native handler and no JS.
//!
//! Not a peer: it shows what hyper itself costs per request on this machine, so the `hello` row
//! of hyper-sse can be read as "hyper + the crossing to JS + the JS layer". Configured like
//! hyper-sse's default server: one current-thread tokio runtime, HTTP/1.1 keep-alive,
//! `TCP_NODELAY`, mimalloc. Listens on `127.0.0.1:0` and prints `{"port":N}` once bound.

use std::convert::Infallible;
use std::io::Write;

use bytes::Bytes;
use http_body_util::Full;
use hyper::header::{HeaderValue, CONTENT_TYPE};
use hyper::{service::service_fn, Request, Response};
use hyper_util::rt::TokioIo;

#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

async fn hello(_req: Request<hyper::body::Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    let mut res = Response::new(Full::new(Bytes::from_static(b"Hello World")));
    res.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    Ok(res)
}

fn main() -> std::io::Result<()> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let port = listener.local_addr()?.port();
        let mut out = std::io::stdout().lock();
        writeln!(out, "{{\"port\":{port}}}")?;
        out.flush()?;
        drop(out);
        loop {
            let (stream, _) = match listener.accept().await {
                Ok(conn) => conn,
                // Out of file descriptors and similar: back off instead of spinning.
                Err(_) => {
                    tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                    continue;
                }
            };
            let _ = stream.set_nodelay(true);
            tokio::spawn(async move {
                let _ = hyper::server::conn::http1::Builder::new()
                    .keep_alive(true)
                    .serve_connection(TokioIo::new(stream), service_fn(hello))
                    .await;
            });
        }
    })
}
