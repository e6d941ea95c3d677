//! Server-Sent Events for many clients: one global timer, a broadcast to every process, and
//! replay on reconnect, through [`SseHub`] over [`Channel`].
//!
//! ```text
//! cargo run --release --example sse_broadcast
//! curl -N -H 'Accept: text/event-stream' http://127.0.0.1:8090/events
//! curl -d 'hi' http://127.0.0.1:8090/publish
//! curl -X POST http://127.0.0.1:8090/disconnect
//! ```
//! Or open <http://127.0.0.1:8090/> in a browser.
//!
//! `LISTEN` (default `http://0.0.0.0:8090`), `DEMO_DIR` (a directory for the pid and log
//! files) and `TICK` (seconds between ticks, 1 by default; the benchmarks use 10) are optional
//! settings from the environment.
//!
//! `COUNT=4 cargo run --release --example sse_broadcast` runs 4 worker processes on the one port
//! (`reuse_port`: the kernel spreads the connections). A publish received by any process reaches
//! every subscriber of every process, once, in one order (the processes share an embedded relay
//! that `run_all` starts; `REDIS_URL=redis://..` shares Redis instead, across machines), and
//! `/disconnect` closes the streams of every process.
//!
//! - `GET /events` (or any request with `Accept: text/event-stream`) subscribes to the topics
//!   `tick` and `message`. The stream starts with `retry: 1000`, so a browser reconnects one
//!   second after losing it; a reconnect carries `Last-Event-ID`, and every event after it still
//!   in the history is replayed first, then live ones, with no duplicate and no gap; when the
//!   history no longer reaches back that far, the stream says so with an `event: reset`.
//! - One timer (in the first process only, not one per connection, which is what the seed does)
//!   publishes `event: tick` every second.
//! - Each stream gets a `: keep-alive` comment every 15 seconds (one timer for the hub).
//! - `POST /publish` (the raw body, or a form's `message=`) broadcasts `event: message`.
//! - `POST /disconnect` closes every event stream, to watch browsers reconnect and catch up.
//!
//! The `id:` holds one position per topic (`<tick id>,<message id>`): a client that sends it
//! back resumes both topics where it left them.

use std::path::PathBuf;

use workerman::channel::{Channel, SseHub};
use workerman::protocols::http::{Request, Response};
use workerman::{TcpConnection, Timer, Worker};

/// The topics every stream gets (and their SSE event types).
const TOPICS: [&str; 2] = ["tick", "message"];
/// The event that closes the streams of every process.
const DISCONNECT: &str = "sse_broadcast disconnect";

/// The text to publish: a form's `message` field, else the whole body.
fn message_of(request: &Request) -> String {
    if let Some(message) = request.post("message") {
        return message.to_string();
    }
    String::from_utf8_lossy(request.raw_body()).into_owned()
}

fn wants_event_stream(request: &Request) -> bool {
    request.path() == "/events"
        || request
            .header("accept")
            .is_some_and(|accept| accept.to_ascii_lowercase().contains("text/event-stream"))
}

fn text(status: u16, body: String) -> Response {
    Response::new(
        status,
        [("Content-Type", "text/plain; charset=utf-8")],
        body,
    )
}

fn main() {
    let hub = SseHub::new();
    let listen = std::env::var("LISTEN").unwrap_or_else(|_| "http://0.0.0.0:8090".into());
    let mut worker = Worker::new(&listen);
    worker.set_name("sse_broadcast");
    // The command line is Workerman's (start, stop, status, ...): the process count comes from
    // the environment.
    let count = std::env::var("COUNT")
        .ok()
        .and_then(|count| count.parse::<usize>().ok())
        .unwrap_or(1)
        .max(1);
    worker.set_count(count);
    if count > 1 {
        worker.set_reuse_port(true);
    }
    if let Some(dir) = std::env::var_os("DEMO_DIR").map(PathBuf::from) {
        Worker::set_pid_file(dir.join("demo.pid"));
        Worker::set_log_file(dir.join("demo.log"));
        Worker::set_stdout_file(dir.join("demo.stdout"));
    }
    let redis_url = std::env::var("REDIS_URL")
        .ok()
        .filter(|url| !url.is_empty());

    let starting = hub.clone();
    // Seconds between ticks (`TICK=10` for the benchmarks' million streams); 1 by default.
    let tick = std::env::var("TICK")
        .ok()
        .and_then(|tick| tick.parse::<f64>().ok())
        .filter(|tick| tick.is_finite() && *tick > 0.0)
        .unwrap_or(1.0);
    worker.on_worker_start(move |worker| {
        if let Some(url) = &redis_url {
            if let Err(error) = Channel::connect(url) {
                log::error!("sse_broadcast: cannot use {url}: {error}");
                std::process::exit(1);
            }
        }
        let hub = starting.clone();
        Channel::on(DISCONNECT, move |_data| {
            hub.disconnect_all();
        });
        // One timer for everyone: a tick each `TICK` seconds, from the first process only.
        if worker.id() == 0 {
            let hub = starting.clone();
            let mut ticks = 0u64;
            Timer::add(tick, move |_timer_id| {
                ticks += 1;
                hub.publish("tick", ticks.to_string(), |result| {
                    if let Err(error) = result {
                        log::warn!("sse_broadcast: tick not published: {error}");
                    }
                });
            });
        }
    });

    let requests = hub.clone();
    worker.on_message(move |connection: &TcpConnection, request: Request| {
        if wants_event_stream(&request) {
            requests.subscribe(connection, &request, &TOPICS);
            return;
        }
        match (request.method(), request.path()) {
            ("GET", "/") => {
                connection.send(Response::new(
                    200,
                    [("Content-Type", "text/html; charset=utf-8")],
                    PAGE,
                ));
            }
            ("POST", "/publish") => {
                let message = message_of(&request);
                if message.is_empty() {
                    connection.send(text(400, "empty message\n".into()));
                    return;
                }
                let answer = connection.clone();
                requests.publish("message", message, move |result| {
                    answer.send(match result {
                        Ok(id) => text(200, format!("ok {id}\n")),
                        Err(error) => text(503, format!("not published: {error}\n")),
                    });
                });
            }
            ("POST", "/disconnect") => {
                let answer = connection.clone();
                Channel::publish_with(DISCONNECT, "", move |result| {
                    answer.send(match result {
                        Ok(_) => text(200, "ok, closing every event stream\n".into()),
                        Err(error) => text(503, format!("disconnect failed: {error}\n")),
                    });
                });
            }
            _ => {
                connection.send(text(404, "not found\n".into()));
            }
        }
    });

    // Forget a subscriber as soon as it goes.
    worker.on_close(move |connection| hub.unsubscribe(connection));

    Worker::run_all();
}

const PAGE: &str = r#"<!doctype html>
<html lang="en">
<meta charset="utf-8">
<title>workerman: SSE broadcast</title>
<link rel="icon" href="data:,">
<style>
  body { font: 15px system-ui, sans-serif; margin: 2em; }
  #state { color: #666; }
  #log { font-family: ui-monospace, monospace; list-style: none; padding: 0; }
  #log .message { font-weight: bold; }
</style>
<h1>Server-Sent Events broadcast</h1>
<form id="publish" method="post" action="/publish">
  <input name="message" placeholder="say something" autocomplete="off" required>
  <button>Publish</button>
  <button type="button" id="disconnect">Disconnect everyone</button>
  <span id="state">connecting…</span>
</form>
<ul id="log"></ul>
<script>
  const log = document.getElementById("log");
  const state = document.getElementById("state");
  const show = (event) => {
    const item = document.createElement("li");
    item.className = event.type;
    item.textContent = `#${event.lastEventId} ${event.type}: ${event.data}`;
    log.prepend(item);
    while (log.children.length > 200) log.lastChild.remove();
  };
  const source = new EventSource("/events");
  source.addEventListener("open", () => (state.textContent = "connected"));
  source.addEventListener("error", () => (state.textContent = "reconnecting…"));
  source.addEventListener("tick", show);
  source.addEventListener("message", show);

  const form = document.getElementById("publish");
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    await fetch("/publish", { method: "POST", body: new URLSearchParams(new FormData(form)) });
    form.reset();
  });
  document.getElementById("disconnect").addEventListener("click", () =>
    fetch("/disconnect", { method: "POST" }),
  );
</script>
</html>
"#;
