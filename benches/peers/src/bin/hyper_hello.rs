//! hyper 1.x on a current-thread tokio runtime answering `hello` with the same headers as
//! workerman's `http_hello` (keep-alive, pipelining flushed in batches).
//!
//! ```text
//! hyper_hello [--port 18182] [--count 1]      (env PORT, COUNT)
//! ```

use std::convert::Infallible;

use bytes::Bytes;
use http_body_util::Full;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use workerman_bench_peers::{arg, listen, raise_nofile, run_processes};

async fn hello(
    _request: Request<hyper::body::Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    Ok(Response::builder()
        .header("Connection", "keep-alive")
        .header("Content-Type", "text/html;charset=utf-8")
        .body(Full::new(Bytes::from_static(b"hello")))
        .expect("response"))
}

fn serve(port: u16) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::from_std(listen(port)).expect("listener");
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let _ = stream.set_nodelay(true);
            tokio::spawn(async move {
                let _ = http1::Builder::new()
                    .pipeline_flush(true)
                    .serve_connection(TokioIo::new(stream), service_fn(hello))
                    .await;
            });
        }
    });
}

fn main() {
    raise_nofile();
    let port: u16 = arg("port", "PORT", "18182").parse().expect("port");
    let count: usize = arg("count", "COUNT", "1").parse().expect("count");
    eprintln!("hyper_hello: listening on 0.0.0.0:{port} ({count} process(es))");
    run_processes(count, || serve(port));
}
