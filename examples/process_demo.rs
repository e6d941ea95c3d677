//! The process model: a master and `count` worker processes, driven as Workerman's
//! `php start.php start -d` is (`tests/process.rs` drives it the same way).
//!
//! ```text
//! cargo build --example process_demo
//! target/debug/examples/process_demo start -d     # daemon: a master and 2 workers
//! target/debug/examples/process_demo status       # Workerman's status table
//! curl http://127.0.0.1:8084/                     # "pid 1234 id 0": which worker answered
//! target/debug/examples/process_demo reload       # replace the workers, one at a time
//! target/debug/examples/process_demo stop
//! ```
//!
//! Routes: `/` answers the worker's pid and id; `/slow?ms=N` answers after N ms; a request with
//! `Accept: text/event-stream` gets an event `tick` every 200 ms.
//!
//! Settings from the environment (for tests): `DEMO_PORT` (8084), `DEMO_COUNT` (2),
//! `DEMO_REUSE_PORT=1`, and `DEMO_DIR`, a directory for the pid, log and stdout files, where each
//! worker also writes `worker-<id>.pid` when it starts. `DEMO_UNIX_UDP=1` adds two workers of
//! `DEMO_COUNT` processes each that answer anything with `pid N`: `unix://<DEMO_DIR>/demo.sock`
//! and `udp://127.0.0.1:<DEMO_PORT>`. `DEMO_METRICS_PORT=N` serves Prometheus metrics at
//! `http://127.0.0.1:N/metrics` (`Worker::set_metrics_listen`). `DEMO_TLS_CERT` and
//! `DEMO_TLS_KEY` (PEM paths) make the demo worker https (certificates read at start and on
//! `reload`).

use std::path::PathBuf;

use workerman::connection::SslContext;
use workerman::protocols::http::{Request, Response, ServerSentEvents};
use workerman::{TcpConnection, Timer, Worker};

fn main() {
    let port = std::env::var("DEMO_PORT").unwrap_or_else(|_| "8084".to_owned());
    let count = std::env::var("DEMO_COUNT")
        .ok()
        .and_then(|count| count.parse().ok())
        .unwrap_or(2);
    let dir = std::env::var_os("DEMO_DIR").map(PathBuf::from);
    if let Some(dir) = &dir {
        Worker::set_pid_file(dir.join("demo.pid"));
        Worker::set_log_file(dir.join("demo.log"));
        Worker::set_stdout_file(dir.join("demo.stdout"));
    }

    if let Ok(metrics_port) = std::env::var("DEMO_METRICS_PORT") {
        Worker::set_metrics_listen(format!("127.0.0.1:{metrics_port}"));
    }

    let mut worker = Worker::new(&format!("http://127.0.0.1:{port}"));
    worker.set_name("demo");
    worker.set_count(count);
    worker.set_reuse_port(std::env::var("DEMO_REUSE_PORT").as_deref() == Ok("1"));
    if let (Some(cert), Some(key)) = (
        std::env::var_os("DEMO_TLS_CERT"),
        std::env::var_os("DEMO_TLS_KEY"),
    ) {
        // https: the files are read at start and again on `reload`.
        worker.set_transport("ssl");
        worker.set_ssl_context(SslContext::new().local_cert(cert).local_pk(key));
    }
    worker.on_worker_start(move |worker| {
        if let Some(dir) = &dir {
            let file = dir.join(format!("worker-{}.pid", worker.id()));
            let _ = std::fs::write(file, std::process::id().to_string());
        }
    });
    let this = worker.clone();
    worker.on_message(move |connection: &TcpConnection, request: Request| {
        if request.header("accept") == Some("text/event-stream") {
            connection.send(Response::new(
                200,
                [("Content-Type", "text/event-stream")],
                "",
            ));
            let connection = connection.clone();
            Timer::add(0.2, move |timer_id| {
                if connection.status() != TcpConnection::STATUS_ESTABLISHED {
                    Timer::del(timer_id);
                    return;
                }
                connection.send(ServerSentEvents::new().event("tick").data("hello"));
            });
            return;
        }
        if request.path() == "/panic" {
            panic!("a bug in a handler: caught, counted in `status`, answered 500");
        }
        if request.path() == "/slow" {
            let millis: u64 = request
                .get("ms")
                .and_then(|ms| ms.parse().ok())
                .unwrap_or(1000);
            let connection = connection.clone();
            Timer::once(millis as f64 / 1000.0, move || {
                connection.send("slow done");
            });
            return;
        }
        connection.send(format!("pid {} id {}", std::process::id(), this.id()));
    });
    if std::env::var("DEMO_UNIX_UDP").as_deref() == Ok("1") {
        let unix_dir = std::env::var("DEMO_DIR").unwrap_or_else(|_| "/tmp".to_owned());
        for address in [
            format!("unix://{unix_dir}/demo.sock"),
            format!("udp://127.0.0.1:{port}"),
        ] {
            let mut worker = Worker::new(&address);
            worker.set_count(count);
            worker.on_message(|connection: &TcpConnection, _data: Vec<u8>| {
                connection.send(format!("pid {}", std::process::id()));
            });
        }
    }
    Worker::run_all();
}
