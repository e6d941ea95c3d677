//! Server-Sent Events across processes and machines: topics, replay by `Last-Event-ID` on any
//! node, and a reset event when history is gone ([`SseHub`] over [`Channel`]).
//!
//! ```text
//! cargo run --release --example sse_cluster                       # one node, one process
//! COUNT=4 cargo run --release --example sse_cluster               # four processes, no broker
//! REDIS_URL=redis://127.0.0.1:6379 LISTEN=http://127.0.0.1:8091 COUNT=2 \
//!     cargo run --release --example sse_cluster                   # node A
//! REDIS_URL=redis://127.0.0.1:6379 LISTEN=http://127.0.0.1:8092 COUNT=2 DEMO_DIR=/tmp/node-b \
//!     cargo run --release --example sse_cluster                   # node B
//! curl -N 'http://127.0.0.1:8091/events?topic=news'
//! curl -d 'hello' 'http://127.0.0.1:8092/publish?topic=news'
//! ```
//!
//! The wire contract (tests and users rely on it):
//! - `LISTEN` (default `http://127.0.0.1:8091`), `COUNT` (default 1), `REDIS_URL` (optional;
//!   without it the processes of this machine share an embedded relay). `DEMO_DIR` (optional):
//!   where the pid, log and stdout files go, so that two nodes can run from one checkout (each
//!   worker process also writes an empty `worker-<pid>` file there when it starts).
//!   `HISTORY_SIZE` (default 1000): events kept per topic for replay. `MAX_QUEUED_BYTES`
//!   (default 64 MiB) and `MAX_SEND_BUFFER` (default 1 MiB): the hub's process-wide bound on
//!   queued event bytes and its per-subscriber limit.
//! - `GET /events?topic=T` (any number of `topic` parameters; `Last-Event-ID` header or
//!   `last_event_id` parameter) is the stream: `event: T`, `id: <the event's id>` (with Redis
//!   the stream entry id), `data: <what was published>`; `event: reset` when the asked-for id is
//!   older than the history or unknown. See [`SseHub`] for the exact format.
//! - `POST /publish?topic=T` with the event's data as the body answers 200 with the new event's
//!   id as the body, or 503 with a body saying why the publish failed (never a silent drop).
//! - `POST /disconnect` closes every stream of this node, in all its processes (they
//!   reconnect and replay).
//! - `GET /` (or `/?topic=T`) is a page showing a topic live.

use std::path::PathBuf;

use workerman::channel::{Channel, SseHub};
use workerman::protocols::http::{Request, Response};
use workerman::{TcpConnection, Worker};

fn text(status: u16, body: String) -> Response {
    Response::new(
        status,
        [("Content-Type", "text/plain; charset=utf-8")],
        body,
    )
}

fn main() {
    let listen = std::env::var("LISTEN").unwrap_or_else(|_| "http://127.0.0.1:8091".into());
    let count = std::env::var("COUNT")
        .ok()
        .and_then(|count| count.parse::<usize>().ok())
        .unwrap_or(1)
        .max(1);
    let redis_url = std::env::var("REDIS_URL")
        .ok()
        .filter(|url| !url.is_empty());
    let dir = std::env::var_os("DEMO_DIR").map(PathBuf::from);
    if let Some(dir) = &dir {
        Worker::set_pid_file(dir.join("demo.pid"));
        Worker::set_log_file(dir.join("demo.log"));
        Worker::set_stdout_file(dir.join("demo.stdout"));
    }
    let number = |name: &str| {
        std::env::var(name)
            .ok()
            .and_then(|value| value.parse::<usize>().ok())
    };
    let history_size = number("HISTORY_SIZE");
    // `/disconnect` reaches the processes of this node only: its event names the node.
    let disconnect_event = format!("sse_cluster disconnect {listen}");

    let hub = SseHub::new();
    if let Some(bytes) = number("MAX_QUEUED_BYTES") {
        hub.set_max_queued_bytes(bytes);
    }
    if let Some(bytes) = number("MAX_SEND_BUFFER") {
        hub.set_max_send_buffer_size(bytes);
    }
    let mut worker = Worker::new(&listen);
    worker.set_name("sse_cluster");
    worker.set_count(count);
    if count > 1 {
        worker.set_reuse_port(true);
    }

    let starting = hub.clone();
    let disconnect = disconnect_event.clone();
    worker.on_worker_start(move |_worker| {
        if let Some(url) = &redis_url {
            if let Err(error) = Channel::connect(url) {
                log::error!("sse_cluster: cannot use {url}: {error}");
                std::process::exit(1);
            }
        }
        if let Some(size) = history_size {
            Channel::set_history_size(size);
        }
        if let Some(dir) = &dir {
            let _ = std::fs::write(dir.join(format!("worker-{}", std::process::id())), "");
        }
        let hub = starting.clone();
        Channel::on(&disconnect, move |_data| {
            let closed = hub.disconnect_all();
            log::info!("sse_cluster: /disconnect closed {closed} streams");
        });
    });

    let requests = hub.clone();
    worker.on_message(move |connection: &TcpConnection, request: Request| {
        match (request.method(), request.path()) {
            ("GET", "/events") => {
                requests.subscribe_request(connection, &request);
            }
            ("POST", "/publish") => {
                let Some(topic) = request.get("topic") else {
                    connection.send(text(400, "no topic\n".into()));
                    return;
                };
                let answer = connection.clone();
                requests.publish(topic, request.raw_body(), move |result| {
                    let response = match result {
                        Ok(id) => text(200, id.to_string()),
                        Err(error) => text(503, format!("publish failed: {error}\n")),
                    };
                    answer.send(response);
                });
            }
            ("POST", "/disconnect") => {
                let answer = connection.clone();
                Channel::publish_with(&disconnect_event, "", move |result| {
                    let response = match result {
                        Ok(_) => text(200, "ok\n".into()),
                        Err(error) => text(503, format!("disconnect failed: {error}\n")),
                    };
                    answer.send(response);
                });
            }
            ("GET", "/") => {
                connection.send(Response::new(
                    200,
                    [("Content-Type", "text/html; charset=utf-8")],
                    PAGE,
                ));
            }
            _ => {
                connection.send(text(404, "not found\n".into()));
            }
        }
    });
    worker.on_close(move |connection| hub.unsubscribe(connection));

    Worker::run_all();
}

const PAGE: &str = r#"<!doctype html>
<html lang="en">
<meta charset="utf-8">
<title>workerman: SSE cluster</title>
<link rel="icon" href="data:,">
<style>
  body { font: 15px system-ui, sans-serif; margin: 2em; }
  #state { color: #666; }
  #log { font-family: ui-monospace, monospace; list-style: none; padding: 0; }
  #log .reset { color: #a00; }
</style>
<h1>Topic <code id="topic"></code></h1>
<form id="publish">
  <input name="message" placeholder="say something" autocomplete="off" required>
  <button>Publish</button>
  <button type="button" id="disconnect">Disconnect this node</button>
  <span id="state">connecting…</span>
</form>
<ul id="log"></ul>
<script>
  const topic = new URLSearchParams(location.search).get("topic") || "news";
  document.getElementById("topic").textContent = topic;
  const log = document.getElementById("log");
  const state = document.getElementById("state");
  const show = (event) => {
    const item = document.createElement("li");
    item.className = event.type;
    item.textContent = `#${event.lastEventId} ${event.type}: ${event.data}`;
    log.prepend(item);
    while (log.children.length > 200) log.lastChild.remove();
  };
  const source = new EventSource(`/events?topic=${encodeURIComponent(topic)}`);
  source.addEventListener("open", () => (state.textContent = "connected"));
  source.addEventListener("error", () => (state.textContent = "reconnecting…"));
  source.addEventListener(topic, show);
  source.addEventListener("reset", show);

  const form = document.getElementById("publish");
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const body = new FormData(form).get("message");
    await fetch(`/publish?topic=${encodeURIComponent(topic)}`, { method: "POST", body });
    form.reset();
  });
  document.getElementById("disconnect").addEventListener("click", () =>
    fetch("/disconnect", { method: "POST" }),
  );
</script>
</html>
"#;
