//! The seed's pattern as a benchmark server: every event stream gets its own repeating timer
//! (`Timer::add(interval, ..)`), exactly as `examples/sse.rs` does, on a port of our choosing.
//!
//! ```text
//! PORT=18080 INTERVAL=2 COUNT=1 target/release/deps/seed_sse-<hash> start
//! ```
//! (`cargo bench --no-run` builds it and names the file; `benches/run.sh` finds it.) The command
//! line is `Worker::run_all`'s (`start`, `stop`, `status`, ...), so the settings come from the
//! environment. With `COUNT` above 1 the worker sets `reuse_port`, so each worker process binds
//! its own listen socket. `METRICS=127.0.0.1:18290` turns the metrics endpoint on
//! (`Worker::set_metrics_listen`). `TLS_CERT` and `TLS_KEY` (PEM paths) serve the same over
//! https (`benches/sse_tls.sh`). Run by a plain `cargo bench` (which passes `--bench`), it
//! prints its usage and exits.

use workerman::protocols::http::{Request, Response, ServerSentEvents};
use workerman::{TcpConnection, Timer, Worker};

/// A setting from the environment (the command line belongs to `Worker::run_all`).
fn setting(env: &str, default: &str) -> String {
    std::env::var(env).unwrap_or_else(|_| default.to_string())
}

fn main() {
    // A plain `cargo bench` runs every bench target with `--bench`: do nothing then.
    if std::env::args().len() < 2 || std::env::args().any(|a| a == "--bench") {
        eprintln!(
            "usage: PORT=18080 INTERVAL=2 COUNT=1 seed_sse start   (then Workerman's stop/status/...)"
        );
        return;
    }
    let port: u16 = setting("PORT", "18080").parse().expect("PORT");
    let interval: f64 = setting("INTERVAL", "2").parse().expect("INTERVAL");
    let count: usize = setting("COUNT", "1").parse().expect("COUNT");

    if let Ok(address) = std::env::var("METRICS") {
        Worker::set_metrics_listen(address);
    }
    let mut worker = Worker::new(&format!("http://0.0.0.0:{port}"));
    worker.set_name("seed_sse");
    worker.set_count(count);
    if count > 1 {
        worker.set_reuse_port(true);
    }
    // TLS_CERT and TLS_KEY (PEM files) serve https instead (benches/sse_tls.sh).
    if let (Ok(cert), Ok(key)) = (std::env::var("TLS_CERT"), std::env::var("TLS_KEY")) {
        worker.set_transport("ssl");
        worker.set_ssl_context(
            workerman::connection::SslContext::new()
                .local_cert(cert)
                .local_pk(key),
        );
    }
    worker.on_message(move |connection: &TcpConnection, request: Request| {
        if request.header("accept") == Some("text/event-stream") {
            connection.send(Response::new(
                200,
                [("Content-Type", "text/event-stream")],
                "\r\n",
            ));
            let connection = connection.clone();
            Timer::add(interval, move |timer_id| {
                if connection.status() != TcpConnection::STATUS_ESTABLISHED {
                    Timer::del(timer_id);
                    return;
                }
                connection.send(ServerSentEvents::new().event("message").data("hello").id(1));
            });
            return;
        }
        connection.send("ok");
    });
    eprintln!("seed_sse: listening on 0.0.0.0:{port}, an event every {interval} s per stream");
    Worker::run_all();
}
