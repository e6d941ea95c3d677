//! `examples/http_hello.rs` on a port of our choosing: `hello` for every request, whatever the
//! path (so the 4,096-distinct-paths run hits the same handler).
//!
//! ```text
//! PORT=18081 COUNT=1 target/release/deps/hello_server-<hash> start
//! ```
//! (`cargo bench --no-run` builds it and names the file; `benches/run.sh` finds it.) The command
//! line is `Worker::run_all`'s, so the settings come from the environment; `COUNT` above 1 sets
//! `reuse_port`; `METRICS=127.0.0.1:18290` turns the metrics endpoint on
//! (`Worker::set_metrics_listen`), to measure what publishing them costs; `TLS_CERT` and
//! `TLS_KEY` (PEM paths) serve https (`benches/tls_http.sh`). Run by a plain `cargo bench` (which passes `--bench`), it prints its usage and
//! exits.

use workerman::protocols::http::Request;
use workerman::{TcpConnection, Worker};

/// A setting from the environment (the command line belongs to `Worker::run_all`).
fn setting(env: &str, default: &str) -> String {
    std::env::var(env).unwrap_or_else(|_| default.to_string())
}

fn main() {
    // A plain `cargo bench` runs every bench target with `--bench`: do nothing then.
    if std::env::args().len() < 2 || std::env::args().any(|a| a == "--bench") {
        eprintln!(
            "usage: PORT=18081 COUNT=1 hello_server start   (then Workerman's stop/status/...)"
        );
        return;
    }
    let port: u16 = setting("PORT", "18081").parse().expect("PORT");
    let count: usize = setting("COUNT", "1").parse().expect("COUNT");
    if let Ok(address) = std::env::var("METRICS") {
        Worker::set_metrics_listen(address);
    }
    // TLS_CERT and TLS_KEY (PEM files) serve https instead (benches/tls_http.sh).
    let tls = std::env::var("TLS_CERT")
        .ok()
        .zip(std::env::var("TLS_KEY").ok());
    let scheme = if tls.is_some() { "https" } else { "http" };
    let mut worker = Worker::new(&format!("{scheme}://0.0.0.0:{port}"));
    if let Some((cert, key)) = tls {
        // TLS_NO_TICKET=1: no session resumption, a full handshake on every connection.
        worker.set_ssl_context(
            workerman::connection::SslContext::new()
                .local_cert(cert)
                .local_pk(key)
                .no_ticket(std::env::var("TLS_NO_TICKET").as_deref() == Ok("1")),
        );
    }
    worker.set_name("http_hello");
    worker.set_count(count);
    if count > 1 {
        worker.set_reuse_port(true);
    }
    worker.on_message(|connection: &TcpConnection, _request: Request| {
        connection.send("hello");
    });
    eprintln!("hello_server: listening on 0.0.0.0:{port}");
    Worker::run_all();
}
