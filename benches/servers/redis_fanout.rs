//! The pub/sub fan-out benchmark's server: one worker holding event streams, fed two ways, so
//! the same worker's two broadcast paths can be timed against each other by `sse_load`.
//!
//! ```text
//! PORT=18195 REDIS_URL=redis://127.0.0.1:6379 target/release/deps/redis_fanout-<hash> start
//! ```
//! - `GET /events`: an event stream.
//! - `POST /publish`: the body is broadcast to every stream at once (a locally published event).
//! - `POST /redis-publish`: the worker `PUBLISH`es the body on Redis channel `bench`; the
//!   message comes back through its subscription and is broadcast from there. The path is one
//!   hop longer than an outside publisher's (the `PUBLISH` itself goes out from this worker).
//!
//! Each event is encoded once for all streams. `benches/redis_fanout.sh` runs it; run by a plain
//! `cargo bench` (which passes `--bench`), it prints its usage and exits.

use std::cell::RefCell;

use workerman::protocols::http::{Request, Response, ServerSentEvents};
use workerman::redis::Client;
use workerman::{TcpConnection, Worker};

thread_local! {
    static STREAMS: RefCell<Vec<TcpConnection>> = const { RefCell::new(Vec::new()) };
    static REDIS: RefCell<Option<Client>> = const { RefCell::new(None) };
}

fn broadcast(data: &[u8]) {
    let event = ServerSentEvents::new()
        .data(String::from_utf8_lossy(data).into_owned())
        .to_bytes();
    let streams = STREAMS.with(|streams| {
        let mut streams = streams.borrow_mut();
        streams.retain(|stream| stream.status() == TcpConnection::STATUS_ESTABLISHED);
        streams.clone()
    });
    for stream in &streams {
        stream.send(&event[..]);
    }
}

fn main() {
    if std::env::args().len() < 2 || std::env::args().any(|a| a == "--bench") {
        eprintln!("usage: PORT=18195 REDIS_URL=redis://127.0.0.1:6379 redis_fanout start");
        return;
    }
    let port = std::env::var("PORT").unwrap_or_else(|_| "18195".into());
    let redis_url = std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
    let mut worker = Worker::new(&format!("http://127.0.0.1:{port}"));
    worker.set_name("redis_fanout");
    worker.on_worker_start(move |_| {
        let client = Client::new(&redis_url);
        client.subscribe(["bench"], |_, message| broadcast(message));
        REDIS.with(|redis| *redis.borrow_mut() = Some(client));
    });
    worker.on_message(|connection: &TcpConnection, request: Request| {
        match (request.method(), request.path()) {
            ("POST", "/publish") => {
                broadcast(request.raw_body());
                connection.send("ok");
            }
            ("POST", "/redis-publish") => {
                let redis = REDIS.with(|redis| redis.borrow().clone());
                let connection = connection.clone();
                if let Some(redis) = redis {
                    redis.publish("bench", request.raw_body(), move |result| {
                        connection.send(if result.is_ok() { "ok" } else { "failed" });
                    });
                }
            }
            _ => {
                connection.send(Response::new(
                    200,
                    [("Content-Type", "text/event-stream")],
                    ": open\n\n",
                ));
                STREAMS.with(|streams| streams.borrow_mut().push(connection.clone()));
            }
        }
    });
    Worker::run_all();
}
